"""Personal data (UK GDPR): a subject access export holds everything; erasure leaves the figures and no trace."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from sqlalchemy import func, select

from server import audit, operations, privacy
from server.cli import main
from server.coordinator import exports
from server.extensions import db
from server.models import AuditEntry, Device, Invite, MutationLog, Person, Submission
from server.seed_content import AGREEMENT
from tests.conftest import mutation, sign_in, street_answers, visit

PASSWORD = "correct horse battery"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x02" * 64
NAME, EMAIL = "Rosalind Quibble", "rosalind.quibble@example.org"


@pytest.fixture
def world(client, make_area, make_site, publish_forms, enrol, sync):
    """An area with a rep (named NAME, with an email), their visits, a photo, a rejected push, a second rep."""
    publish_forms()
    area = make_area("millbrook", "Millbrook")
    operations.publish_agreement_version(operations.draft_agreement_version("millbrook-deal", area, AGREEMENT))
    canal = make_site(area, "Canal Street")
    mill = make_site(area, "Mill Lane")
    operations.create_person("Cora Coordinator", email="cora@example.org", password=PASSWORD, roles=[("coordinator", area)])
    operations.create_person("Ada Admin", email="ada@example.org", password=PASSWORD, roles=[("admin", None)])
    operations.create_person("Cleansing Team", email="clean@example.org", password=PASSWORD,
                             organisation="Street cleansing", roles=[("partner", area)])
    db.session.commit()
    token, body = enrol(area, name=NAME)
    person = db.session.get(Person, body["person"]["id"])
    person.email = EMAIL  # a volunteer who also signs in on the web (or gave an email)
    db.session.commit()
    sha = hashlib.sha256(PNG).hexdigest()
    assert client.put(f"/api/sync/v1/blobs/{sha}", data=PNG, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "image/png"}).status_code in (200, 201)
    located = visit(canal, answers=street_answers("D", litter={"grade": "D", "note": "Bins overflowing", "photos": [sha]}))
    located["location"] = {"lat": 53.5412, "lng": -2.6321, "accuracy_m": 8}
    plain = visit(mill, answers=street_answers("B"))
    refused = visit(mill, form_version=99)
    results = sync(token, [mutation(located, seq=1), mutation(plain, seq=2), mutation(refused, seq=3)]).get_json()["results"]
    assert [r["status"] for r in results] == ["applied", "applied", "rejected"], results
    other_token, _other = enrol(area, name="Otto Other")
    sync(other_token, [mutation(visit(canal, answers=street_answers("A")))])
    # A second device waiting to be used, and a coordinator's review of a visit of theirs.
    operations.issue_invite(area, "street_rep", person=person, display_name=NAME)
    db.session.commit()
    csrf = sign_in(client, "cora@example.org")
    client.post(f"/coordinator/millbrook/submissions/{located['id']}", data={"csrf_token": csrf, "status": "accepted"})
    client.post(f"/coordinator/millbrook/devices/{body['device_id']}/revoke", data={"csrf_token": csrf})
    client.post("/logout", data={"csrf_token": csrf})
    return {"area": area, "person_id": person.id, "device_id": body["device_id"], "token": token, "sha": sha,
            "located": located["id"], "other_token": other_token, "canal": canal, "mill": mill}


def test_export_holds_every_kind_of_record_about_the_person(world):
    document = privacy.export_person(world["person_id"])
    assert document["format"] == privacy.EXPORT_FORMAT
    assert document["person"]["display_name"] == NAME and document["person"]["email"] == EMAIL
    assert document["roles"] == [{"role": "street_rep", "area_id": world["area"].id, "area": "Millbrook"}]
    assert [d["id"] for d in document["devices"]] == [world["device_id"]]
    assert document["devices"][0]["revoked_at"] is not None
    assert len(document["invites"]) == 1
    assert len(document["visits"]) == 2
    located = next(v for v in document["visits"] if v["id"] == world["located"])
    assert located["lat"] == 53.5412 and located["review_status"] == "accepted"
    assert located["as_sent"]["answers"]["litter"]["note"] == "Bins overflowing"
    assert document["photos"] == [world["sha"]]
    assert len(document["rejected_items"]) == 1
    actions = {e["action"] for e in document["audit_entries"]}
    assert {"device.enrol", "device.revoke"} <= actions
    json.dumps(document)  # plain JSON all the way down


def test_export_of_a_partner_lists_the_actions_assigned_to_them(client, world):
    csrf = sign_in(client, "cora@example.org")
    client.post("/coordinator/millbrook/actions/new", data={"csrf_token": csrf, "title": "Empty the bins",
                                                             "assigned_to": "Street cleansing"})
    partner = db.session.execute(select(Person).where(Person.email == "clean@example.org")).scalar_one()
    document = privacy.export_person(partner.id)
    assert [a["title"] for a in document["actions_assigned_to_their_organisation"]] == ["Empty the bins"]


def test_admin_downloads_the_export_and_it_is_logged(client, world):
    sign_in(client, "ada@example.org")
    listing = client.get("/admin/privacy?q=quibble").get_data(as_text=True)
    assert NAME in listing
    response = client.get(f"/admin/privacy/{world['person_id']}/export.json")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.get_json()["person"]["email"] == EMAIL
    entry = db.session.execute(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).scalar_one()
    assert (entry.action, entry.record_id) == ("person.export", world["person_id"])


def test_only_admins_reach_personal_data(client, world):
    sign_in(client, "cora@example.org")
    for path in ("/admin/privacy", f"/admin/privacy/{world['person_id']}",
                 f"/admin/privacy/{world['person_id']}/export.json", f"/admin/privacy/{world['person_id']}/erase"):
        assert client.get(path).status_code == 403, path


# -- erasure -----------------------------------------------------------------------------------

COORDINATOR_PAGES = ("/", "/priorities", "/trends", "/map", "/coverage", "/mystery-shops", "/submissions?status=all",
                     "/actions", "/people", "/exports")
EXPORTS = ("/exports/submissions.csv", "/exports/actions.csv", "/exports/sites.geojson")


def _normalised(text: str) -> str:
    # The sign-out form carries the session's CSRF token; nothing else may differ.
    return re.sub(r'name="csrf_token" value="[^"]*"', "", text)


def _snapshot(client, world):
    pages = {path: _normalised(client.get("/coordinator/millbrook" + path).get_data(as_text=True))
             for path in COORDINATOR_PAGES + EXPORTS}
    pages["site"] = _normalised(client.get(f"/coordinator/millbrook/sites/{world['canal'].id}").get_data(as_text=True))
    pages["visit"] = _normalised(client.get(f"/coordinator/millbrook/submissions/{world['located']}").get_data(as_text=True))
    pages["public"] = client.get("/area/millbrook").get_data(as_text=True)
    return pages


def test_erase_leaves_the_figures_and_no_trace_of_the_person(client, world, sync, no_server_errors):
    sign_in(client, "cora@example.org")
    before = _snapshot(client, world)
    assert NAME in before["/coverage"] and NAME in before["visit"]

    report = privacy.erase_person(world["person_id"])
    db.session.commit()
    assert report.counts["visits_de_identified"] == 2 and report.counts["devices_removed"] == 1

    after = _snapshot(client, world)
    with client.application.test_request_context():
        pseudonym = exports.volunteer_pseudonym(world["person_id"])
    assert pseudonym in before["/exports/submissions.csv"]
    for key in before:
        if key in ("/people", "visit", "/submissions?status=all"):
            # The volunteers' list, the visit's own page and the review queue's volunteer filter
            # (the erased volunteer's visits now belong to the placeholder) change (checked below).
            continue
        # The pages are the same but for the name, the exports but for the pseudonym (pseudonymous data
        # is personal data: it no longer links the visits); the public page is the same byte for byte.
        assert after[key] == before[key].replace(NAME, "Erased volunteer").replace(pseudonym, "Erased volunteer"), key
    assert pseudonym not in after["/exports/submissions.csv"]
    assert NAME in before["/people"] and "Erased volunteer" not in after["/people"]
    queue = after["/submissions?status=all"]
    assert NAME in before["/submissions?status=all"] and NAME not in queue and "Erased volunteer" in queue
    assert world["person_id"] not in queue
    for key, text in after.items():
        assert NAME not in text and EMAIL not in text, key
    assert "53.5412" not in after["visit"] and "Test phone" not in after["visit"]
    assert "Erased volunteer" in after["visit"] and "53.5412" in before["visit"]
    # Another device of the area pulls everything from the start: nothing of the person is in it.
    pulled = json.dumps(sync(world["other_token"]).get_json())
    assert NAME not in pulled and EMAIL not in pulled and world["person_id"] not in pulled
    # Their phone can no longer sync, and nothing in the database names them.
    assert sync(world["token"]).status_code == 401
    assert db.session.execute(select(Person).where(Person.email == EMAIL)).first() is None
    assert db.session.get(Person, world["person_id"]) is None
    assert db.session.execute(select(func.count()).select_from(Device).where(Device.id == world["device_id"])).scalar_one() == 0
    assert db.session.execute(select(func.count()).select_from(MutationLog).where(
        MutationLog.device_id == world["device_id"])).scalar_one() == 0
    assert db.session.execute(select(func.count()).select_from(Invite).where(
        Invite.person_id == world["person_id"])).scalar_one() == 0
    visits = db.session.execute(select(Submission).where(Submission.person_id == privacy.ERASED_PERSON_ID)).scalars().all()
    assert len(visits) == 2
    assert all(v.lat is None and v.lng is None and v.device_id is None and "location" not in v.data for v in visits)


def test_erase_is_recorded_and_the_audit_chain_stays_whole(client, world):
    entries_before = db.session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    privacy.erase_person(world["person_id"])
    db.session.commit()
    last = db.session.execute(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).scalar_one()
    assert (last.action, last.record_id, last.seq) == ("person.erase", world["person_id"], entries_before + 1)
    assert audit.verify().intact


def test_erase_page_confirms_first_and_admins_cannot_erase_themselves(client, world):
    sign_in(client, "ada@example.org")
    page = client.get(f"/admin/privacy/{world['person_id']}/erase")
    assert page.status_code == 200 and "cannot be undone" in page.get_data(as_text=True)
    with client.session_transaction() as session:
        csrf = session["csrf"]
    unconfirmed = client.post(f"/admin/privacy/{world['person_id']}/erase", data={"csrf_token": csrf})
    assert unconfirmed.status_code == 400 and db.session.get(Person, world["person_id"]) is not None
    admin = db.session.execute(select(Person).where(Person.email == "ada@example.org")).scalar_one()
    own = client.post(f"/admin/privacy/{admin.id}/erase", data={"csrf_token": csrf, "confirm": "erase"})
    assert own.status_code == 400
    done = client.post(f"/admin/privacy/{world['person_id']}/erase", data={"csrf_token": csrf, "confirm": "erase"})
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(Person, world["person_id"]) is None
    assert client.get(f"/admin/privacy/{world['person_id']}").status_code == 404


def test_cli_exports_and_erases_a_person(app, world):
    runner = app.test_cli_runner()
    exported = runner.invoke(main, ["person", "export", world["person_id"]])
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.output)["person"]["email"] == EMAIL
    erased = runner.invoke(main, ["person", "erase", world["person_id"], "--yes"])
    assert erased.exit_code == 0, erased.output
    db.session.expire_all()
    assert db.session.get(Person, world["person_id"]) is None
    assert runner.invoke(main, ["person", "erase", world["person_id"], "--yes"]).exit_code == 1


# -- mystery shoppers are pseudonyms to partners --------------------------------------------------


def test_partners_see_a_mystery_shopper_only_by_pseudonym(client, world, enrol, sync):
    token, body = enrol(world["area"], role="mystery_shopper", name="Marjorie Secretshopper")
    shop = visit(world["mill"], form_id="mystery_shop", answers={
        "scenario": {"value": "Report graffiti"}, "channel": {"value": "phone"},
        "contacted_at": {"value": "2026-11-20T09:00:00+00:00"}, "treated_well": {"value": "no"},
        "what_happened": {"value": "Nobody answered."},
    })
    assert sync(token, [mutation(shop)]).get_json()["results"][0]["status"] == "applied"
    csrf = sign_in(client, "cora@example.org")
    raised = client.post("/coordinator/millbrook/actions/new", data={
        "csrf_token": csrf, "title": "Answer the phone", "submission_id": shop["id"], "assigned_to": "Street cleansing"})
    action_path = raised.headers["Location"]
    client.post("/logout", data={"csrf_token": csrf})
    sign_in(client, "clean@example.org")
    shown = client.get(action_path).get_data(as_text=True)
    name = privacy.pseudonym(body["person"]["id"])
    assert re.fullmatch(r"Shopper [0-9A-F]{6}", name)
    assert name in shown and "Mystery shop" in shown
    board = client.get("/coordinator/millbrook/actions").get_data(as_text=True)
    for text in (shown, board):
        assert "Marjorie" not in text and body["person"]["id"] not in text
    # Stable: the same shopper has the same pseudonym; another person another.
    assert privacy.pseudonym(body["person"]["id"]) == name != privacy.pseudonym(world["person_id"])


def test_erasure_handles_every_reference_to_a_person_or_device(app):
    """A new table that points at a person or a device must be handled by erase_person (and listed)."""
    references = {(table.name, fk.parent.name) for table in db.metadata.sorted_tables for fk in table.foreign_keys
                  if fk.column.table.name in ("person", "device")}
    assert references == set(privacy.ERASURE_HANDLES)


def test_an_erased_volunteers_photo_stays_visible_only_where_their_visits_are(client, world, make_area):
    elsewhere = make_area("riverside", "Riverside")
    operations.create_person("Rita Riverside", email="rita@example.org", password=PASSWORD,
                             roles=[("coordinator", elsewhere)])
    db.session.commit()
    privacy.erase_person(world["person_id"])
    db.session.commit()
    csrf = sign_in(client, "rita@example.org")
    # With no device left to say where the volunteer worked, another area must not see it.
    assert client.get(f"/coordinator/riverside/photos/{world['sha']}").status_code == 404
    client.post("/logout", data={"csrf_token": csrf})
    sign_in(client, "cora@example.org")
    with client.get(f"/coordinator/millbrook/photos/{world['sha']}") as photo:  # streamed: closed when done
        assert photo.status_code == 200
