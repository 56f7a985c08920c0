"""Coordinator and public pages answer whatever an address or a form holds: a page, a friendly 400, never a 5xx.

Every GET route in the URL map is walked with hostile values in its path and in every query
argument the pages read; every coordinator form is posted with hostile fields. On SQLite, and
on PostgreSQL (TEST_DATABASE_URL), where a NUL in a query would otherwise fail in the database.
"""

from __future__ import annotations

import hashlib

import pytest
from werkzeug.routing import IntegerConverter
from sqlalchemy import select

from server import operations
from server.extensions import db
from server.models import SiteEdit
from server.seed_content import AGREEMENT
from tests.conftest import mutation, recently, sign_in, street_answers, visit

PASSWORD = "correct horse battery"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x02" * 64

# What a query argument may be given: dates past the ends of the calendar, numbers too big for
# any column or for int() itself, other scripts' digits, control characters, very long text.
QUERY_VALUES = ["9999-12-31", "0001-01-01", "2026-02-30", "10**20", str(10**20), "1" * 5000, "-1", "NaN",
                "\x00", "x\x1b" * 3, "y" * 3000, "١٢٣", ""]
QUERY_NAMES = ("from", "to", "page", "overdue", "status", "kind", "site_id", "submission_id", "line_key",
               "next", "editor", "lang")
PATH_VALUES = ["\x00", "nothing-here", "z" * 3000, "..", "\u202eevil", "9" * 5000]
INT_PATH_VALUES = [0, 2**31, 2**63, 10**30]


@pytest.fixture
def walk(client, make_area, make_site, publish_forms, enrol, sync):
    """An area with a visit, a photo, an action and an agreement; a coordinator signed in; its real ids."""
    area = make_area("millbrook", "Millbrook")
    # The area's own forms, so the coordinator's editors are reached (a shared form is an admin's).
    versions = publish_forms(area_id=area.id)
    operations.publish_agreement_version(operations.draft_agreement_version("millbrook-deal", area, AGREEMENT))
    site = make_site(area, "Canal Street")
    operations.create_person("Cora", email="cora@example.org", password=PASSWORD, roles=[("coordinator", area)])
    db.session.commit()
    token, body = enrol(area, name="Rita Rep")
    sha = hashlib.sha256(PNG).hexdigest()
    client.put(f"/api/sync/v1/blobs/{sha}", data=PNG, headers={"Authorization": f"Bearer {token}"})
    data = visit(site, answers=street_answers("B", litter={"grade": "D", "photos": [sha]}))
    earlier = visit(site, observed_at=recently(days=20), answers=street_answers("C"))
    results = sync(token, [mutation(data, seq=1), mutation(earlier, seq=2)]).get_json()["results"]
    assert [r["status"] for r in results] == ["applied", "applied"]
    edit = mutation({"id": site.id, "base_version": 1, "patch": {"notes": "Gate"}}, kind="site.update", seq=3)
    assert sync(token, [edit]).get_json()["results"][0]["pending_review"] is True
    action = operations.raise_action(area, "Sweep the canal", site=site, line_key="litter", assigned_to="Street cleansing")
    db.session.commit()
    csrf = sign_in(client, "cora@example.org", PASSWORD)
    real = {"slug": area.slug, "site_id": site.id, "submission_id": data["id"], "action_id": action.id,
            "form_id": "street", "agreement_id": "millbrook-deal", "version": versions["street"].version,
            "sha256": sha, "device_id": body["device_id"], "filename": "leaflet.js", "key": "nothing-here",
            "name": "nothing-here", "person_id": body["person"]["id"],
            "edit_id": db.session.execute(select(SiteEdit.id)).scalar_one()}
    return {"csrf": csrf, "real": real}


def _path(app, rule, values: dict) -> str:
    with app.test_request_context():
        return rule.build(values)[1]


def _arguments(rule, real: dict, hostile, hostile_int) -> dict:
    values = {}
    for name in rule.arguments:
        if isinstance(rule._converters[name], IntegerConverter):
            values[name] = hostile_int
        else:
            values[name] = hostile if name != "slug" else real["slug"]
    return values


def _get_rules(app):
    return [rule for rule in app.url_map.iter_rules() if "GET" in rule.methods and not rule.rule.startswith("/api/sync")]


def _answered(response, where):
    """A page, a redirect or a refusal (its status); a refusal of a page is a page, not a stack trace."""
    try:
        assert response.status_code < 500, (where, response.status_code)
        if response.status_code == 400 and response.mimetype == "text/html":
            assert "<html" in response.text.lower() and "Traceback" not in response.text, where
        return response.status_code
    finally:
        response.close()  # files sent from disk stay open until their response is closed


def test_every_get_route_answers_hostile_query_values_without_a_server_error(app, client, walk, no_server_errors):
    real = walk["real"]
    for rule in _get_rules(app):
        good_path = _path(app, rule, {name: real[name] for name in rule.arguments})
        for value in QUERY_VALUES:
            everything = {name: value for name in QUERY_NAMES}
            if _answered(client.get(good_path, query_string=everything), (rule.rule, value)) != 400:
                continue
            # Refused early (a date it cannot read): give each part of the query its own turn.
            no_dates = {name: value for name in QUERY_NAMES if name not in ("from", "to")}
            for query in (no_dates, {"from": value}, {"to": value}):
                _answered(client.get(good_path, query_string=query), (rule.rule, query))


def test_every_get_route_answers_hostile_path_values_without_a_server_error(app, client, walk, no_server_errors):
    real = walk["real"]
    for rule in _get_rules(app):
        if not rule.arguments:
            continue
        for value, number in zip(PATH_VALUES, INT_PATH_VALUES * 2):
            _answered(client.get(_path(app, rule, _arguments(rule, real, value, number))), rule.rule)
        if "slug" in rule.arguments:
            hostile_slug = {**{name: real[name] for name in rule.arguments}, "slug": "\x00millbrook"}
            _answered(client.get(_path(app, rule, hostile_slug)), rule.rule)


def test_public_pages_answer_hostile_values_to_strangers_too(client, walk, no_server_errors):
    client.post("/logout", data={"csrf_token": walk["csrf"]})
    for path in ("/", "/area/millbrook", "/area/\x00", "/login", "/coordinator/millbrook/trends"):
        for value in QUERY_VALUES:
            _answered(client.get(path, query_string={name: value for name in QUERY_NAMES}), path)


def test_dates_past_the_ends_of_the_calendar_are_a_friendly_400(client, walk, no_server_errors):
    for query in ("to=9999-12-31", "from=0001-01-01", "from=2026-02-30", "to=tomorrow"):
        response = client.get(f"/coordinator/millbrook/trends?{query}")
        assert response.status_code == 400, query
        assert "Choose dates between 2000-01-01 and 2100-12-31" in response.text


def test_a_very_long_period_is_shortened_to_ten_years(client, walk, no_server_errors):
    page = client.get("/coordinator/millbrook/trends?from=2000-01-01&to=2100-12-31")
    assert page.status_code == 200
    # The period form shows what was used: ten years (3653 days) up to the end asked for.
    assert 'name="from" type="date" value="2090-12-31"' in page.text
    assert 'name="to" type="date" value="2100-12-31"' in page.text


@pytest.mark.parametrize("number, shown", [("10**20", 1), (str(10**20), 10_000), ("-5", 1), ("1" * 5000, 1)])
def test_a_page_number_out_of_range_is_brought_into_range(client, walk, no_server_errors, number, shown):
    response = client.get("/coordinator/millbrook/submissions", query_string={"page": number, "status": "all"})
    assert response.status_code == 200
    # The visit's row (its site in a table cell), not the site filter's option, says page 1 is shown.
    assert ("<td>Canal Street</td>" in response.text) is (shown == 1)


def test_control_characters_in_an_address_are_a_friendly_400(client, walk, no_server_errors):
    response = client.get("/coordinator/millbrook/sites/\x00")
    assert response.status_code == 400 and "hidden or broken character, so Kerbside cannot read it" in response.text
    api = client.get("/api/openapi.json?x=\x00")
    assert api.status_code == 400 and api.get_json()["code"] == "bad_request"


# -- forms posted by a signed-in coordinator -------------------------------------------------------

FORM_VALUES = ["\x00", "a\x00b", "t" * 100_000, "²", "9" * 5000, "", "   "]
FORM_FIELDS = ("title", "description", "assigned_to", "assigned_to_other", "status", "reason", "public_note",
               "display_name", "role", "definition", "editor", "days", "email", "password", "site_id",
               "submission_id", "line_key", "lang", "text-title", "text-lines.litter.label")


def _post_rules(app):
    return [rule for rule in app.url_map.iter_rules() if "POST" in rule.methods and not rule.rule.startswith("/api/")
            and rule.endpoint not in ("signin.logout", "imports.upload")]


def test_every_coordinator_form_answers_hostile_fields_without_a_server_error(app, client, walk, no_server_errors):
    real = walk["real"]
    for rule in _post_rules(app):
        path = _path(app, rule, {name: real[name] for name in rule.arguments})
        for value in FORM_VALUES:
            fields = {name: value for name in FORM_FIELDS} | {"csrf_token": walk["csrf"]}
            _answered(client.post(path, data=fields), (rule.rule, value[:10]))
        # And the editors' own shapes: standards' days in other digits, definitions no column holds.
        for fields in ({"editor": "wording", "standard-answer_calls-days": "²"},
                       {"editor": "wording", "standard-answer_calls-days": "9" * 5000},
                       {"definition": "[" * 100_000 + "]" * 100_000},
                       {"definition": '{"title": "x", "n": ' + "9" * 30 + "}"},
                       {"definition": '{"title": "x", "n": 1e400}'},
                       {"definition": '{"title": "x", "deep": ' + "[" * 300 + "]" * 300 + "}"}):
            _answered(client.post(path, data=fields | {"csrf_token": walk["csrf"]}), (rule.rule, fields))


def test_a_definition_no_column_holds_is_refused_with_a_reason(client, walk, no_server_errors):
    draft = client.post("/coordinator/millbrook/forms/street/drafts", data={"csrf_token": walk["csrf"]})
    assert draft.status_code == 302
    path = draft.headers["Location"]
    for text, words in (('{"title": "x", "n": ' + "9" * 30 + "}", "too large"),
                        ('{"title": "x", "deep": ' + "[" * 300 + "]" * 300 + "}", "nested too deeply"),
                        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
                        ('{"title": "tab\\u0000"}', "control characters")):
        response = client.post(path, data={"csrf_token": walk["csrf"], "definition": text})
        assert response.status_code == 400 and words in response.text, words


def test_a_too_long_name_or_title_is_refused_not_a_database_error(client, walk, no_server_errors):
    people = client.post("/coordinator/millbrook/people",
                         data={"csrf_token": walk["csrf"], "role": "street_rep", "display_name": "N" * 201})
    assert people.status_code == 400 and "200 characters" in people.text
    action = client.post("/coordinator/millbrook/actions/new", data={"csrf_token": walk["csrf"], "title": "T" * 301})
    assert action.status_code == 400 and "300 characters" in action.text


def test_the_walks_reach_real_pages(client, walk):
    """The walks above must see pages render, not only refusals: the fixture's ids are good."""
    real = walk["real"]
    for path in (f"/coordinator/millbrook/sites/{real['site_id']}", f"/coordinator/millbrook/submissions/{real['submission_id']}",
                 f"/coordinator/millbrook/actions/{real['action_id']}", "/coordinator/millbrook/forms/street/1",
                 "/coordinator/millbrook/forms/street/1/translation?lang=cy",
                 "/coordinator/millbrook/agreement/millbrook-deal/1/translation?lang=ur",
                 f"/coordinator/millbrook/photos/{real['sha256']}", "/coordinator/millbrook/trends"):
        with client.get(path) as response:  # the photo is streamed from the store: closed when done
            assert response.status_code == 200, path
