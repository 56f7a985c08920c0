"""Behind a TLS proxy: the client's real address and scheme, HSTS on HTTPS, and no caching of private answers."""

from __future__ import annotations

import re

import pytest

from server import create_app, operations
from server.auth import access_rule
from server.extensions import db
from server.headers import SHARED_FILES
from tests.conftest import sign_in

PASSWORD = "correct horse battery"
FORWARDED_HTTPS = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


@pytest.fixture
def behind_proxy(app):
    """The same server and database, configured with one trusted proxy in front."""
    proxied = create_app({"TESTING": True, "TRUSTED_PROXIES": 1,
                          **{key: app.config[key] for key in ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "BLOB_DIR")}})
    yield proxied
    with proxied.app_context():
        db.engine.dispose()


def _csrf(client, **headers):
    page = client.get("/login", headers=headers).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _fail_sign_in(client, email, **headers):
    return client.post("/login", data={"email": email, "password": "wrong", "csrf_token": _csrf(client, **headers)},
                       headers=headers).status_code


def test_forwarded_headers_are_ignored_without_trusted_proxies(app, client):
    response = client.get("/login", headers=FORWARDED_HTTPS)
    assert "Strict-Transport-Security" not in response.headers
    assert "Secure" not in response.headers["Set-Cookie"]


def test_behind_a_trusted_proxy_https_gets_hsts_and_a_secure_cookie(behind_proxy):
    client = behind_proxy.test_client()
    response = client.get("/login", headers=FORWARDED_HTTPS)
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "; Secure" in response.headers["Set-Cookie"]
    plain = client.get("/", headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "http"})
    assert "Strict-Transport-Security" not in plain.headers


def test_hsts_on_a_direct_https_request(client):
    assert "Strict-Transport-Security" in client.get("/", base_url="https://kerbside.example").headers
    assert "Strict-Transport-Security" not in client.get("/").headers


def test_behind_a_trusted_proxy_each_client_address_has_its_own_throttle(behind_proxy, app):
    app.config["SIGNIN_LIMIT_ADDRESS"] = behind_proxy.config["SIGNIN_LIMIT_ADDRESS"] = "2 per 15 minutes"
    client = behind_proxy.test_client()
    first = {"X-Forwarded-For": "203.0.113.7"}
    assert [_fail_sign_in(client, f"a{n}@example.org", **first) for n in range(3)] == [401, 401, 429]
    assert _fail_sign_in(client, "b@example.org", **{"X-Forwarded-For": "198.51.100.2"}) == 401
    # A client cannot pick its own address: only the hop the proxy added is believed.
    spoofed = {"X-Forwarded-For": "192.0.2.99, 203.0.113.7"}
    assert _fail_sign_in(client, "c@example.org", **spoofed) == 429


def test_without_trusted_proxies_every_forwarded_address_is_one_client(app, client):
    """Negative control for the test above: with 0 proxies the header changes nothing."""
    app.config["SIGNIN_LIMIT_ADDRESS"] = "2 per 15 minutes"
    codes = [_fail_sign_in(client, f"a{n}@example.org", **{"X-Forwarded-For": f"203.0.113.{n}"}) for n in range(3)]
    assert codes == [401, 401, 429]


# -- Cache-Control -------------------------------------------------------------------------


def _path(rule, slug):
    from werkzeug.routing import IntegerConverter

    values = {}
    for name in rule.arguments:
        if name == "slug":
            values[name] = slug
        elif isinstance(rule._converters[name], IntegerConverter):
            values[name] = 1
        else:
            values[name] = "x" * 64 if name == "sha256" else "nothing-here"
    return rule.build(values)[1]


def test_every_private_answer_and_export_is_no_store(app, client, make_area, enrol, publish_forms):
    area = make_area()
    publish_forms()
    token, _body = enrol(area)
    operations.create_person("Ada", email="ada@example.org", password=PASSWORD, roles=[("admin", None)])
    db.session.commit()
    csrf = sign_in(client, "ada@example.org")
    checked = []
    for rule in app.url_map.iter_rules():
        with app.test_request_context():
            audiences = access_rule(rule.endpoint)
        # Signing the admin out everywhere would end the walk's own session.
        skipped = SHARED_FILES | {"admin_people.sign_out_everywhere"}
        if "public" in audiences or rule.endpoint in skipped:
            continue
        methods = sorted(rule.methods - {"HEAD", "OPTIONS"}) or ["HEAD"]  # a HEAD-only route is walked by HEAD
        method = "GET" if "GET" in methods else methods[0]
        if "device" in audiences:
            response = client.open(_path(rule, area.slug), method=method, json={"protocol": 1, "mutations": []},
                                   headers={"Authorization": f"Bearer {token}"})
        elif method == "GET":
            response = client.get(_path(rule, area.slug))
        else:
            response = client.open(_path(rule, area.slug), method=method, data={"csrf_token": csrf})
        response.get_data()  # exports stream: read them to the end, then let them go
        response.close()
        assert response.headers.get("Cache-Control") == "no-store", (rule.rule, response.status_code)
        checked.append((rule.endpoint, response.status_code))
    assert ("coordinator.export_submissions", 200) in checked and ("sync.sync", 200) in checked
    assert ("admin_people.people", 200) in checked and ("account.password", 200) in checked


def test_the_sign_in_form_and_public_pages_seen_signed_in_are_no_store(app, client, make_area):
    area = make_area()
    assert client.get("/login").headers["Cache-Control"] == "no-store"
    anonymous = client.get(f"/area/{area.slug}")
    assert anonymous.status_code == 200 and anonymous.headers.get("Cache-Control") != "no-store"
    operations.create_person("Sam", email="sam@example.org", password=PASSWORD, roles=[("coordinator", area)])
    db.session.commit()
    sign_in(client, "sam@example.org")
    assert client.get(f"/area/{area.slug}").headers["Cache-Control"] == "no-store"
    assert client.get("/").headers["Cache-Control"] == "no-store"
