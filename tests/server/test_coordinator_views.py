"""The coordinator's pages: who may see what, review, actions, forms, agreements, people, photos."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from server import operations
from server.extensions import db
from server.models import Action, AgreementVersion, Device, FormVersion, Submission
from server.seed_content import AGREEMENT
from tests.conftest import mutation, sign_in, street_answers, visit

PASSWORD = "correct horse battery"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def world(client, make_area, make_site, publish_forms, enrol, sync):
    """Two areas; a coordinator of the first, one of the second, a partner; visits by a rep with a photo."""
    publish_forms()
    area = make_area("millbrook", "Millbrook")
    other = make_area("eastside", "Eastside")
    operations.publish_agreement_version(operations.draft_agreement_version("millbrook-deal", area, AGREEMENT))
    canal = make_site(area, "Canal Street")
    mill = make_site(area, "Mill Lane")
    east_site = make_site(other, "East Road")
    operations.create_person("Cora Coordinator", email="cora@example.org", password=PASSWORD, roles=[("coordinator", area)])
    operations.create_person("Eli Eastside", email="eli@example.org", password=PASSWORD, roles=[("coordinator", other)])
    operations.create_person("Cleansing Team", email="clean@example.org", password=PASSWORD,
                             organisation="Street cleansing", roles=[("partner", area)])
    db.session.commit()
    token, body = enrol(area, name="Rita Rep")
    sha = hashlib.sha256(PNG).hexdigest()
    put = client.put(f"/api/sync/v1/blobs/{sha}", data=PNG, headers={"Authorization": f"Bearer {token}",
                                                                       "Content-Type": "image/png"})
    assert put.status_code in (200, 201), put.get_json()
    # The first visit is weeks old (within what the server accepts for forms published today).
    earlier = datetime.now(timezone.utc).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=40)
    visits = [
        visit(canal, observed_at=earlier.isoformat(), answers=street_answers("B")),
        visit(canal, observed_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
              answers=street_answers("B", litter={"grade": "D", "note": "Bins overflowing", "photos": [sha]})),
        visit(mill, observed_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat(), answers=street_answers("A")),
    ]
    results = sync(token, [mutation(v, seq=n) for n, v in enumerate(visits, 1)]).get_json()["results"]
    assert [r["status"] for r in results] == ["applied"] * 3, results
    other_token, _ = enrol(other, name="Otto Other")
    sync(other_token, [mutation(visit(east_site, answers=street_answers("D")))])
    return {"area": area, "other": other, "canal": canal, "mill": mill, "token": token, "sha": sha, "earlier": earlier,
            "bad_visit": visits[1]["id"], "other_token": other_token, "device_id": body["device_id"]}


def test_signed_out_people_are_sent_to_sign_in(client, world):
    response = client.get("/coordinator/millbrook/priorities")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_coordinator_of_another_area_gets_404(client, world):
    sign_in(client, "eli@example.org")
    for path in ("/coordinator/millbrook/", "/coordinator/millbrook/priorities", "/coordinator/millbrook/trends",
                 f"/coordinator/millbrook/submissions/{world['bad_visit']}", "/coordinator/millbrook/exports/submissions.csv",
                 f"/coordinator/millbrook/photos/{world['sha']}"):
        assert client.get(path).status_code == 404, path
    # Their own area works, and a visit of the other area is not found through it.
    assert client.get("/coordinator/eastside/priorities").status_code == 200
    assert client.get(f"/coordinator/eastside/submissions/{world['bad_visit']}").status_code == 404


def test_partner_cannot_open_coordinator_pages(client, world):
    sign_in(client, "clean@example.org")
    assert client.get("/coordinator/millbrook/").status_code == 403
    assert client.get("/coordinator/millbrook/exports/actions.csv").status_code == 403
    assert client.get("/coordinator/millbrook/actions").status_code == 200


def test_every_page_renders_for_the_coordinator(client, world):
    sign_in(client, "cora@example.org")
    for path in ("/coordinator/", "/coordinator/millbrook/", "/coordinator/millbrook/priorities",
                 "/coordinator/millbrook/trends", "/coordinator/millbrook/map", "/coordinator/millbrook/coverage",
                 "/coordinator/millbrook/mystery-shops", "/coordinator/millbrook/submissions?status=all",
                 "/coordinator/millbrook/actions", "/coordinator/millbrook/actions/new",
                 "/coordinator/millbrook/forms", "/coordinator/millbrook/forms/street/1",
                 "/coordinator/millbrook/agreement", "/coordinator/millbrook/agreement/millbrook-deal/1",
                 "/coordinator/millbrook/people", "/coordinator/millbrook/exports",
                 f"/coordinator/millbrook/sites/{world['canal'].id}",
                 "/coordinator/leaflet/leaflet.js"):
        with client.get(path, follow_redirects=True) as response:
            assert response.status_code == 200, path
            if response.mimetype == "text/html":
                assert 'style="' not in response.text and "<script>" not in response.text, path


def test_priority_list_links_to_the_visit_and_offers_an_action(client, world):
    sign_in(client, "cora@example.org")
    page = client.get("/coordinator/millbrook/priorities").text
    assert "Canal Street" in page and "Mill Lane" not in page
    assert f"/coordinator/millbrook/submissions/{world['bad_visit']}" in page
    assert "line_key=litter" in page
    assert "worse: B → D" in page


def test_trends_page_draws_svg_with_text_alternatives(client, world):
    sign_in(client, "cora@example.org")
    earlier = world["earlier"]
    start, end = (earlier - timedelta(days=1)).date().isoformat(), (earlier + timedelta(days=1)).date().isoformat()
    page = client.get(f"/coordinator/millbrook/trends?from={start}&to={end}").text
    assert page.count('role="img"') >= 3
    assert "<title id=" in page and "<desc id=" in page
    assert earlier.strftime("%Y-%m") in page


def test_submission_page_shows_everything_and_the_photo(client, world):
    sign_in(client, "cora@example.org")
    page = client.get(f"/coordinator/millbrook/submissions/{world['bad_visit']}").text
    assert "Bins overflowing" in page
    assert "Rita Rep" in page and "Test phone" in page
    assert "version 1" in page
    assert "Received (server time)" in page
    with client.get(f"/coordinator/millbrook/photos/{world['sha']}") as photo:  # streamed: closed when read
        assert photo.status_code == 200 and photo.data == PNG and photo.mimetype == "image/png"


def test_flagging_needs_a_reason_and_reaches_the_volunteer(client, world, sync):
    csrf = sign_in(client, "cora@example.org")
    path = f"/coordinator/millbrook/submissions/{world['bad_visit']}"
    assert client.post(path, data={"status": "flagged", "reason": " ", "csrf_token": csrf}).status_code == 400
    assert db.session.get(Submission, world["bad_visit"]).review_status == "pending"
    response = client.post(path, data={"status": "flagged", "reason": "Photo is of another street", "csrf_token": csrf})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Submission, world["bad_visit"]).review_status == "flagged"
    changes = sync(world["token"]).get_json()["changes"]
    mine = [c for c in changes if c["collection"] == "my_submissions" and c["id"] == world["bad_visit"]]
    assert mine[-1]["data"]["review_status"] == "flagged"
    assert mine[-1]["data"]["review_reason"] == "Photo is of another street"


def test_review_without_csrf_token_is_refused(client, world):
    sign_in(client, "cora@example.org")
    response = client.post(f"/coordinator/millbrook/submissions/{world['bad_visit']}", data={"status": "accepted"})
    assert response.status_code == 400
    assert db.session.get(Submission, world["bad_visit"]).review_status == "pending"


def test_raise_action_from_a_grade_then_not_doing_needs_a_reason(client, world):
    csrf = sign_in(client, "cora@example.org")
    response = client.post("/coordinator/millbrook/actions/new", data={
        "csrf_token": csrf, "site_id": world["canal"].id, "line_key": "litter", "submission_id": world["bad_visit"],
        "title": "Empty the bins on Canal Street twice a week", "assigned_to": "", "assigned_to_other": "Street cleansing"})
    assert response.status_code == 302
    action = db.session.execute(select(Action)).scalar_one()
    assert (action.site_id, action.line_key, action.submission_id, action.assigned_to) == (
        world["canal"].id, "litter", world["bad_visit"], "Street cleansing")
    path = f"/coordinator/millbrook/actions/{action.id}"
    refused = client.post(path, data={"csrf_token": csrf, "status": "not_doing", "reason": ""})
    assert refused.status_code == 400
    assert "residents will see the reason" in refused.text
    ok = client.post(path, data={"csrf_token": csrf, "status": "not_doing",
                                 "reason": "Bins are already emptied daily; we will add a sign instead."})
    assert ok.status_code == 302
    db.session.expire_all()
    assert db.session.get(Action, action.id).status == "not_doing"
    public = client.get("/area/millbrook").text
    assert "Bins are already emptied daily; we will add a sign instead." in public


def test_action_transition_not_allowed_is_refused(client, world):
    csrf = sign_in(client, "cora@example.org")
    action = operations.raise_action(world["area"], "Fix the lights", assigned_to="Street lighting")
    db.session.commit()
    response = client.post(f"/coordinator/millbrook/actions/{action.id}", data={"csrf_token": csrf, "status": "done"})
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(Action, action.id).status == "open"


def test_partner_sees_and_updates_only_their_actions(client, world):
    ours = operations.raise_action(world["area"], "Clear the fly-tipping", assigned_to="Street cleansing")
    theirs = operations.raise_action(world["area"], "Patrol the park", assigned_to="Police")
    db.session.commit()
    csrf = sign_in(client, "clean@example.org")
    board = client.get("/coordinator/millbrook/actions").text
    assert "Clear the fly-tipping" in board and "Patrol the park" not in board
    assert client.get(f"/coordinator/millbrook/actions/{theirs.id}").status_code == 404
    response = client.post(f"/coordinator/millbrook/actions/{ours.id}", data={
        "csrf_token": csrf, "status": "acknowledged", "public_note": "Booked for Tuesday",
        "assigned_to_other": "Police"})
    assert response.status_code == 302
    db.session.expire_all()
    updated = db.session.get(Action, ours.id)
    # A partner cannot hand the action to someone else.
    assert (updated.status, updated.public_note, updated.assigned_to) == ("acknowledged", "Booked for Tuesday",
                                                                         "Street cleansing")
    assert client.get("/coordinator/eastside/actions").status_code == 404


def test_new_form_version_draft_edit_publish_retire(client, world, sync):
    # The street form is shared by every area, so an admin changes it (issue 9: a coordinator
    # may not; see test_shared_forms.py for the coordinator's own copy).
    operations.create_person("Ada Admin", email="ada@example.org", password=PASSWORD, roles=[("admin", None)])
    db.session.commit()
    csrf = sign_in(client, "ada@example.org")
    response = client.post("/coordinator/millbrook/forms/street/drafts", data={"csrf_token": csrf})
    assert response.status_code == 302 and response.headers["Location"].endswith("/forms/street/2")
    page = client.get("/coordinator/millbrook/forms/street/2").text
    assert "Preview, as the phone shows it" in page and 'type="radio"' in page
    text = re.search(r'<textarea id="definition"[^>]*>(.*?)</textarea>', page, re.S).group(1)
    import html
    import json

    definition = json.loads(html.unescape(text))
    definition["title"] = "Street monitoring (spring)"
    bad = client.post("/coordinator/millbrook/forms/street/2", data={"csrf_token": csrf, "definition": "{not json"})
    assert bad.status_code == 400
    saved = client.post("/coordinator/millbrook/forms/street/2", data={"csrf_token": csrf, "definition": json.dumps(definition)})
    assert saved.status_code == 302
    assert client.post("/coordinator/millbrook/forms/street/2/publish", data={"csrf_token": csrf}).status_code == 302
    db.session.expire_all()
    assert db.session.get(FormVersion, ("street", 2)).status == "published"
    pulled = [c for c in sync(world["token"]).get_json()["changes"] if c["collection"] == "forms" and c["id"] == "street@2"]
    assert pulled[-1]["data"]["title"] == "Street monitoring (spring)"
    assert client.post("/coordinator/millbrook/forms/street/1/retire", data={"csrf_token": csrf}).status_code == 302
    db.session.expire_all()
    assert db.session.get(FormVersion, ("street", 1)).status == "retired"
    # A published version cannot be edited.
    refused = client.post("/coordinator/millbrook/forms/street/2", data={"csrf_token": csrf, "definition": json.dumps(definition)})
    assert refused.status_code == 400
    assert "Street monitoring (spring)" in client.get("/area/millbrook").text


def test_agreement_draft_and_publish_changes_the_public_page(client, world):
    csrf = sign_in(client, "cora@example.org")
    assert client.post("/coordinator/millbrook/agreement/millbrook-deal/drafts", data={"csrf_token": csrf}).status_code == 302
    import json

    definition = {**AGREEMENT, "title": "The Deal 2027"}
    assert client.post("/coordinator/millbrook/agreement/millbrook-deal/2",
                       data={"csrf_token": csrf, "definition": json.dumps(definition)}).status_code == 302
    assert "The Deal 2027" not in client.get("/area/millbrook").text
    client.post("/coordinator/millbrook/agreement/millbrook-deal/2/publish", data={"csrf_token": csrf})
    db.session.expire_all()
    assert db.session.get(AgreementVersion, ("millbrook-deal", 1)).status == "retired"
    assert "The Deal 2027" in client.get("/area/millbrook").text


def test_invite_shows_code_and_qr_once(client, world):
    csrf = sign_in(client, "cora@example.org")
    response = client.post("/coordinator/millbrook/people", data={"csrf_token": csrf, "role": "mystery_shopper",
                                                                  "display_name": "Mo Shopper"})
    assert response.status_code == 200
    code = re.search(r'class="invite-code">([A-Z0-9-]+)<', response.text).group(1)
    qr_path = re.search(r'<img class="qr" src="([^"]+)"', response.text).group(1)
    qr = client.get(qr_path)
    assert qr.status_code == 200 and qr.mimetype == "image/svg+xml" and b"<svg" in qr.data
    assert code not in qr_path
    enrolled = client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": code, "device_name": "Mo's phone"})
    assert enrolled.status_code == 201
    assert client.get("/coordinator/millbrook/people/invites/not-a-key.svg").status_code == 404
    assert client.post("/coordinator/millbrook/people", data={"csrf_token": csrf, "role": "admin",
                                                              "display_name": "X"}).status_code == 400


def test_people_page_lists_devices_and_revoking_stops_sync(client, world, sync):
    csrf = sign_in(client, "cora@example.org")
    page = client.get("/coordinator/millbrook/people").text
    assert "Rita Rep" in page and "Test phone" in page and "Otto Other" not in page
    other_device = db.session.execute(select(Device).join(Device.person).where(
        Device.id != world["device_id"])).scalars().first()
    assert client.post(f"/coordinator/millbrook/devices/{other_device.id}/revoke",
                       data={"csrf_token": csrf}).status_code == 404
    response = client.post(f"/coordinator/millbrook/devices/{world['device_id']}/revoke", data={"csrf_token": csrf})
    assert response.status_code == 302
    refused = sync(world["token"])
    assert refused.status_code == 401 and refused.get_json()["code"] == "token_revoked"
