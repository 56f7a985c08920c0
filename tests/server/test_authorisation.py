"""Every route states who may use it, and the rule is enforced."""

from __future__ import annotations

from server.auth import AUDIENCES, access_rule


def test_every_route_states_its_audience(app):
    missing = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            audiences = access_rule(rule.endpoint)
            if not audiences or not set(audiences) <= AUDIENCES:
                missing.append(rule.rule)
    assert missing == []


def test_a_route_without_a_rule_is_refused(app, client):
    """Deny by default: a view added without @allow cannot be reached."""

    @app.get("/unguarded-for-test")
    def unguarded():
        return "should never be seen"

    response = client.get("/unguarded-for-test")
    assert response.status_code == 403
    assert b"should never be seen" not in response.data


def _sample_path(rule):
    """A URL for `rule` with made-up arguments of the right kind."""
    from werkzeug.routing import IntegerConverter

    values = {}
    for name in rule.arguments:
        if isinstance(rule._converters[name], IntegerConverter):
            values[name] = 987654
        else:
            values[name] = "x" * 64 if name == "sha256" else "nothing-here"
    return rule.build(values)[1]


def test_non_public_api_routes_need_a_device_token(app, client):
    for rule in app.url_map.iter_rules():
        with app.test_request_context():
            audiences = access_rule(rule.endpoint)
        if "public" in audiences or not rule.rule.startswith("/api/"):
            continue
        method = sorted(rule.methods - {"OPTIONS", "HEAD"})[0] if rule.methods - {"OPTIONS", "HEAD"} else "HEAD"
        response = client.open(_sample_path(rule), method=method, json={"protocol": 1})
        assert response.status_code == 401, rule.rule
        assert response.get_json()["code"] == "token_missing"


def test_signed_in_pages_send_strangers_to_sign_in(app, client):
    for rule in app.url_map.iter_rules():
        with app.test_request_context():
            audiences = access_rule(rule.endpoint)
        if "public" in audiences or "device" in audiences or "GET" not in rule.methods:
            continue
        response = client.get(_sample_path(rule))
        assert response.status_code == 302 and "/login" in response.headers["Location"], rule.rule
