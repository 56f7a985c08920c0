"""Every state-changing route and every download leaves an audit entry, and admins can read the log.

The walk below reads the URL map: a POST route, or a download, that has no case here fails
`test_every_state_changing_route_has_an_audit_case`, so a new route cannot be added without
saying (and testing) what it records.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import select

from server import audit, operations
from server.auth import access_rule
from server.extensions import db
from server.models import AuditEntry, Person, SiteEdit
from server.push import proposed_site_id
from server.seed_content import AGREEMENT, STREET_FORM
from sync.content import agreement_texts, form_texts
from tests.conftest import mutation, sign_in, street_answers, visit
from tests.server.test_import import upload

PASSWORD = "correct horse battery"

# Device-only routes are volunteers' own sync, not coordinator, partner or admin actions.
NOT_AUDITED = {"sync.sync", "sync.blob"}
DOWNLOAD_SUFFIXES = (".csv", ".geojson", ".json", ".xlsx")


@pytest.fixture
def world(client, make_area, make_site, publish_forms, enrol, sync):
    area = make_area("millbrook", "Millbrook")
    # The area's own forms, which its coordinator may change whoever owns the shared ones.
    publish_forms(area_id=area.id)
    # And a shared form the area may make its own copy of.
    operations.publish_form_version(operations.draft_form_version("shared-street", STREET_FORM))
    operations.publish_agreement_version(operations.draft_agreement_version("millbrook-deal", area, AGREEMENT))
    site = make_site(area)
    coordinator = operations.create_person("Cora Coordinator", email="cora@example.org", password=PASSWORD,
                                           roles=[("coordinator", area)])
    partner = operations.create_person("Cleansing Team", email="clean@example.org", password=PASSWORD,
                                       organisation="Street cleansing", roles=[("partner", area)])
    admin = operations.create_person("Ada Admin", email="ada@example.org", password=PASSWORD, roles=[("admin", None)])
    db.session.commit()
    token, body = enrol(area, name="Rita Rep")
    first = visit(site, answers=street_answers("D"))
    assert sync(token, [mutation(first)]).get_json()["results"][0]["status"] == "applied"
    return {"area": area, "site": site, "token": token, "device_id": body["device_id"],
            "rep_id": body["person"]["id"], "visit_id": first["id"], "coordinator": coordinator.id,
            "partner": partner.id, "admin": admin.id}


def _entries():
    db.session.expire_all()
    return db.session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars().all()


def _audited_endpoints(app) -> set[str]:
    found = set()
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if rule.endpoint in NOT_AUDITED or rule.endpoint == "static":
                continue
            audiences = access_rule(rule.endpoint)
            downloads = "GET" in rule.methods and rule.rule.endswith(DOWNLOAD_SUFFIXES) and "public" not in audiences
            if "POST" in rule.methods or downloads:
                found.add(rule.endpoint)
    return found


def _import_document(world):
    extra = visit(world["site"], answers=street_answers("A"))
    return {"format": "kerbside-unsent", "format_version": 1, "exported_at": "2026-11-22T10:00:00.000Z",
            "device_id": world["device_id"], "person": {"id": world["rep_id"], "display_name": "Rita Rep"},
            "outbox": [mutation(extra, seq=5)], "attention": [], "drafts": [], "photos": {}}


def _cases(client, world):
    """(endpoint, who signs in, how to call it, the action it records), in an order each can build on."""
    area = "/coordinator/millbrook"
    street_two = json.dumps({**STREET_FORM, "title": "Street monitoring (spring)"})
    deal_two = json.dumps({**AGREEMENT, "title": "The Deal 2027"})

    def post(path, **data):
        return lambda csrf: client.post(path, data={"csrf_token": csrf, **data})

    def get(path):
        return lambda csrf: client.get(path)

    new_action = {}

    def raise_action(csrf):
        response = client.post(f"{area}/actions/new", data={"csrf_token": csrf, "title": "Empty the bins",
                                                             "assigned_to": "Street cleansing"})
        new_action["id"] = response.headers["Location"].rsplit("/", 1)[-1]
        return response

    def update_action(csrf):
        return client.post(f"{area}/actions/{new_action['id']}", data={"csrf_token": csrf, "status": "acknowledged"})

    def erase(csrf):
        victim = operations.create_person("Vic Volunteer", email="vic@example.org", password=PASSWORD)
        db.session.commit()
        return client.post(f"/admin/privacy/{victim.id}/erase", data={"csrf_token": csrf, "confirm": "erase"})

    def enrol(csrf):
        code = operations.issue_invite(world["area"], "street_rep")
        db.session.commit()
        return client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": code, "device_name": "Second phone"})

    def device_sign_out(csrf):
        code = operations.issue_invite(world["area"], "street_rep", person=db.session.get(Person, world["rep_id"]))
        db.session.commit()
        token = client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": code}).get_json()["token"]
        return client.post("/api/sync/v1/device/sign-out", json={"protocol": 1},
                           headers={"Authorization": f"Bearer {token}"})

    def merge(csrf):
        code = operations.issue_invite(world["area"], "street_rep", display_name="Rita again")
        db.session.commit()
        twin = client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": code}).get_json()["person"]["id"]
        return client.post(f"{area}/people/{world['rep_id']}/merge",
                           data={"csrf_token": csrf, "with": twin, "keep": world["rep_id"], "confirm": "merge"})

    def propose_and_approve(csrf):
        proposing = visit(None, answers=street_answers("B"))
        proposing["new_site"] = {"name": "Back alley"}
        assert sync_rep([mutation(proposing)])[0]["status"] == "applied"
        return client.post(f"{area}/sites-waiting/sites/{proposed_site_id(proposing['id'])}",
                           data={"csrf_token": csrf, "decision": "approve", "name": "Back Alley"})

    def edit_and_accept(csrf):
        edit = mutation({"id": world["site"].id, "base_version": 1, "patch": {"notes": "Gate"}}, kind="site.update")
        assert sync_rep([edit])[0]["pending_review"] is True
        edit_id = db.session.execute(select(SiteEdit.id).where(SiteEdit.status == "pending")).scalar_one()
        return client.post(f"{area}/sites-waiting/edits/{edit_id}", data={"csrf_token": csrf, "decision": "accept"})

    def sync_rep(mutations):
        """The rep's phone syncs (its own bearer token; the web session is not used by the API)."""
        response = client.post("/api/sync/v1", headers={"Authorization": f"Bearer {world['token']}"},
                               json={"protocol": 1, "cursor": None, "limit": 10, "mutations": mutations})
        return response.get_json()["results"]

    rep = f"{area}/people/{world['rep_id']}"
    return [
        ("coordinator.reinvite", "coordinator", post(f"{rep}/invite"), "invite.create"),
        ("coordinator.rename_person", "coordinator", post(f"{rep}/rename", display_name="Rita R."), "person.rename"),
        ("coordinator.reset_rejoin_code", "coordinator", post(f"{rep}/rejoin-code"), "person.rejoin_code_reset"),
        ("coordinator.merge_person", "coordinator", merge, "person.merged"),
        ("sync.device_sign_out", None, device_sign_out, "device.signed_out"),
        ("coordinator.decide_site", "coordinator", propose_and_approve, "site.approve"),
        ("coordinator.decide_site_edit", "coordinator", edit_and_accept, "site.edit_accept"),
        ("coordinator.new_form_draft", "coordinator", post(f"{area}/forms/street/drafts"), "form.draft"),
        ("coordinator.form_version", "coordinator", post(f"{area}/forms/street/2", definition=street_two), "form.edit_draft"),
        ("coordinator.publish_form", "coordinator", post(f"{area}/forms/street/2/publish"), "form.publish"),
        ("coordinator.retire_form", "coordinator", post(f"{area}/forms/street/1/retire"), "form.retire"),
        ("coordinator.new_agreement_draft", "coordinator", post(f"{area}/agreement/millbrook-deal/drafts"), "agreement.draft"),
        ("coordinator.agreement_version", "coordinator", post(f"{area}/agreement/millbrook-deal/2", definition=deal_two),
         "agreement.edit_draft"),
        ("coordinator.publish_agreement", "coordinator", post(f"{area}/agreement/millbrook-deal/2/publish"), "agreement.publish"),
        ("coordinator.form_translation", "coordinator",
         post(f"{area}/forms/street/2/translation", lang="cy",
              **{f"text-{key}": ("Ffurflen" if key == "title" else "") for key in form_texts(STREET_FORM)}),
         "form.translate"),
        ("coordinator.agreement_translation", "coordinator",
         post(f"{area}/agreement/millbrook-deal/2/translation", lang="ur",
              **{f"text-{key}": ("معاہدہ" if key == "title" else "") for key in agreement_texts(AGREEMENT)}),
         "agreement.translate"),
        ("coordinator.people", "coordinator", post(f"{area}/people", role="mystery_shopper", display_name="Sam Shopper"),
         "invite.create"),
        ("coordinator.accept_selected", "coordinator",
         post(f"{area}/submissions/accept-selected", visit=world["visit_id"]), "submission.accept_selected"),
        ("coordinator.accept_matching", "coordinator", post(f"{area}/submissions/accept-all?status=flagged", count="0"),
         "submission.accept_matching"),
        ("coordinator.submission", "coordinator", post(f"{area}/submissions/{world['visit_id']}", status="accepted"),
         "submission.review"),
        ("coordinator.copy_form", "coordinator", post(f"{area}/forms/shared-street/copy"), "form.copy"),
        ("coordinator.new_action", "coordinator", raise_action, "action.create"),
        ("coordinator.action", "partner", update_action, "action.update"),
        ("coordinator.action_comment", "coordinator",
         lambda csrf: client.post(f"{area}/actions/{new_action['id']}/comments",
                                  data={"csrf_token": csrf, "comment": "Can you do it this week?"}), "action.comment"),
        ("account.password", "partner", post("/account/password", current_password=PASSWORD,
                                              new_password="a much longer new passphrase 2026",
                                              confirm_password="a much longer new passphrase 2026"), "password.change"),
        ("coordinator.export_submissions", "coordinator", get(f"{area}/exports/submissions.csv"), "export.download"),
        ("coordinator.export_actions", "coordinator", get(f"{area}/exports/actions.csv"), "export.download"),
        ("coordinator.export_sites", "coordinator", get(f"{area}/exports/sites.geojson"), "export.download"),
        ("coordinator.export_mystery_shops", "coordinator", get(f"{area}/exports/mystery-shops.csv"), "export.download"),
        ("coordinator.export_checklists", "coordinator", get(f"{area}/exports/checklists.csv?from=2026-01-01"),
         "export.download"),
        ("coordinator.export_workbook", "coordinator", get(f"{area}/exports/kerbside.xlsx"), "export.download"),
        ("imports.upload", "coordinator", lambda csrf: upload(client, csrf, _import_document(world)), "import.unsent"),
        ("coordinator.area_settings", "coordinator", post(f"{area}/settings", keep_photo_location="yes"), "area.settings"),
        ("coordinator.revoke_device", "coordinator", post(f"{area}/devices/{world['device_id']}/revoke"), "device.revoke"),
        # After the revoke and the import (deactivating signs the rep's devices out).
        ("coordinator.deactivate_person", "coordinator", post(f"{rep}/deactivate"), "person.deactivate"),
        ("coordinator.reactivate_person", "coordinator", post(f"{rep}/reactivate"), "person.reactivate"),
        ("admin_audit.entries_csv", "admin", get("/admin/audit/entries.csv"), "audit.export"),
        ("admin_privacy.export", "admin", get(f"/admin/privacy/{world['rep_id']}/export.json"), "person.export"),
        ("admin_privacy.erase", "admin", erase, "person.erase"),
        ("admin_people.one_time_password", "admin", post(f"/admin/people/{world['partner']}/one-time-password"),
         "person.one_time_password"),
        ("admin_people.sign_out_everywhere", "admin", post(f"/admin/people/{world['coordinator']}/sign-out"),
         "person.sign_out_everywhere"),
        ("signin.logout", "admin", post("/logout"), "sign_out"),
        ("signin.login", None, lambda csrf: sign_in(client, "cora@example.org"), "sign_in"),
        ("sync.enrol", None, enrol, "device.enrol"),
    ]


def test_every_state_changing_route_has_an_audit_case(app, client, world):
    covered = {endpoint for endpoint, *_rest in _cases(client, world)}
    assert _audited_endpoints(app) == covered
    # And the admin's page says each of their actions in words.
    from server.admin_audit import action_label

    with app.test_request_context():
        unnamed = [action for *_rest, action in _cases(client, world) if action_label(action) == action]
    assert unnamed == []


def test_each_action_leaves_an_entry_naming_who_did_it(app, client, world, no_server_errors):
    emails = {"coordinator": "cora@example.org", "partner": "clean@example.org", "admin": "ada@example.org"}
    signed_in_as, csrf = None, None
    for endpoint, who, call, action in _cases(client, world):
        if who != signed_in_as and who is not None:
            csrf, signed_in_as = sign_in(client, emails[who]), who
        before = len(_entries())
        response = call(csrf)
        status = response.status_code if hasattr(response, "status_code") else 302
        assert status in (200, 201, 302), (endpoint, status)
        if hasattr(response, "get_data"):
            response.get_data()  # a download writes as it streams: read it all
        new = _entries()[before:]
        assert [e.action for e in new][-1:] == [action], (endpoint, [e.action for e in new])
        entry = new[-1]
        if who is not None:
            assert entry.person_id == world[who], endpoint
            assert entry.address == "127.0.0.1", endpoint
        if who is None and endpoint == "signin.login":
            signed_in_as, csrf = "coordinator", None
    assert audit.verify().intact


def test_edits_record_only_the_changed_fields(client, world):
    csrf = sign_in(client, "cora@example.org")
    client.post(f"/coordinator/millbrook/submissions/{world['visit_id']}",
                data={"csrf_token": csrf, "status": "flagged", "reason": "Wrong street"})
    entry = _entries()[-1]
    assert entry.action == "submission.review" and entry.record_id == world["visit_id"]
    assert entry.details == {"before": {"review_status": "pending", "review_reason": None},
                             "after": {"review_status": "flagged", "review_reason": "Wrong street"}}


def test_failed_sign_in_keeps_no_typed_email_of_an_unknown_account(client, world):
    client.get("/login")
    with client.session_transaction() as session:
        token = session["csrf"]
    client.post("/login", data={"email": "nobody-here@example.org", "password": "x", "csrf_token": token})
    client.post("/login", data={"email": "cora@example.org", "password": "wrong", "csrf_token": token})
    unknown, known = _entries()[-2:]
    assert unknown.action == known.action == "sign_in.failed"
    assert unknown.person_id is None and "nobody-here" not in json.dumps(unknown.details)
    assert len(unknown.details["email_key"]) == 32
    assert known.person_id == world["coordinator"] and "cora@" not in json.dumps(known.details)


def test_a_failed_action_leaves_no_entry(client, world):
    """Negative control: an entry means the action happened, so a refused one records nothing."""
    csrf = sign_in(client, "cora@example.org")
    before = len(_entries())
    response = client.post("/coordinator/millbrook/submissions/" + world["visit_id"],
                           data={"csrf_token": csrf, "status": "flagged", "reason": ""})
    assert response.status_code == 400
    assert len(_entries()) == before


# -- the admin's page ---------------------------------------------------------------------------


def test_only_admins_read_the_audit_log(client, world):
    sign_in(client, "cora@example.org")
    assert client.get("/admin/audit").status_code == 403
    assert client.get("/admin/audit/entries.csv").status_code == 403
    assert client.get("/admin/privacy").status_code == 403


def test_admin_filters_the_log_and_downloads_what_is_shown(client, world):
    csrf = sign_in(client, "cora@example.org")
    client.post(f"/coordinator/millbrook/submissions/{world['visit_id']}", data={"csrf_token": csrf, "status": "accepted"})
    client.get("/coordinator/millbrook/exports/actions.csv").get_data()
    client.post("/logout", data={"csrf_token": csrf})
    sign_in(client, "ada@example.org")
    page = client.get(f"/admin/audit?action=submission.review&person={world['coordinator']}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "submission.review" in text and "<small>export.download</small>" not in text
    by_area = client.get(f"/admin/audit?area={world['area'].id}").get_data(as_text=True)
    assert "export.download" in by_area and "<small>sign_in</small>" not in by_area
    download = client.get(f"/admin/audit/entries.csv?person={world['coordinator']}")
    assert download.headers["Cache-Control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    assert {r["action"] for r in rows} == {"sign_in", "submission.review", "export.download", "sign_out"}
    assert [int(r["seq"]) for r in rows] == sorted((int(r["seq"]) for r in rows), reverse=True)
    future = client.get("/admin/audit?from=2099-01-01").get_data(as_text=True)
    assert "No entries match." in future
    assert client.get("/admin/audit?from=not-a-date").status_code == 400


def test_the_log_pages_newest_first(client, world):
    for n in range(120):
        audit.record("form.publish", record_type="form_version", record_id=f"f@{n}", person_id=world["coordinator"])
    db.session.commit()
    sign_in(client, "ada@example.org")
    first = client.get("/admin/audit?action=form.publish").get_data(as_text=True)
    assert "f@119" in first and "f@69" not in first and "page=2" in first
    second = client.get("/admin/audit?action=form.publish&page=2").get_data(as_text=True)
    assert "f@69" in second and "f@119" not in second


ADMIN_QUERY_NAMES = ("person", "action", "record_type", "record_id", "area", "from", "to", "page", "q")


def test_admin_pages_answer_hostile_values_without_a_server_error(app, client, world, no_server_errors):
    from tests.server.test_hostile_pages import PATH_VALUES, QUERY_VALUES, _answered

    sign_in(client, "ada@example.org")
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/admin/") and "GET" in r.methods]
    assert rules
    for rule in rules:
        with app.test_request_context():
            good = rule.build({name: world["rep_id"] for name in rule.arguments})[1]
        for value in QUERY_VALUES:
            _answered(client.get(good, query_string={name: value for name in ADMIN_QUERY_NAMES}), (rule.rule, value))
            _answered(client.get(good, query_string={"person": value}), (rule.rule, value))
        for value in PATH_VALUES if rule.arguments else ():
            with app.test_request_context():
                path = rule.build({name: value for name in rule.arguments})[1]
            _answered(client.get(path), (rule.rule, value))
