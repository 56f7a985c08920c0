"""People are people: a new phone joins the same person, devices are listed and signed out with
a confirmation, phones sign themselves out, shared phones change hands with a re-join code,
records are merged, renamed and deactivated, and nobody is greeted by a placeholder."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from server import operations
from server import people as volunteers
from server.extensions import db
from server.models import AuditEntry, Device, Invite, Person, Role, Submission
from tests.conftest import mutation, sign_in, street_answers, visit

PASSWORD = "correct horse battery"
ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
AREA = "/coordinator/millbrook"


@pytest.fixture
def world(client, make_area, make_site, publish_forms, enrol, sync):
    publish_forms()
    area = make_area("millbrook", "Millbrook")
    other = make_area("eastside", "Eastside")
    site = make_site(area, "Canal Street")
    operations.create_person("Cora Coordinator", email="cora@example.org", password=PASSWORD,
                             roles=[("coordinator", area)])
    operations.create_person("Ada Admin", email="ada@example.org", password=PASSWORD, roles=[("admin", None)])
    db.session.commit()
    token, body = enrol(area, name="Rita Rep")
    first = visit(site, answers=street_answers("B"))
    assert sync(token, [mutation(first)]).get_json()["results"][0]["status"] == "applied"
    _other_token, otto = enrol(other, name="Otto Other")
    return {"area": area, "other": other, "site": site, "token": token, "device_id": body["device_id"],
            "rita": body["person"]["id"], "otto": otto["person"]["id"], "first_visit": first["id"]}


def _enrol(client, code, *, device_name="", display_name=None, user_agent=None, address="127.0.0.1"):
    body = {"protocol": 1, "code": code, "device_name": device_name}
    if display_name is not None:
        body["display_name"] = display_name
    headers = {"User-Agent": user_agent} if user_agent else {}
    return client.post("/api/sync/v1/enrol", json=body, headers=headers, environ_base={"REMOTE_ADDR": address})


def _shown_code(page: str) -> str:
    return re.search(r'class="invite-code">([A-Z0-9-]+)<', page).group(1)


def _audit(action: str) -> list[AuditEntry]:
    db.session.expire_all()
    return db.session.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars().all()


def _people_count() -> int:
    return db.session.execute(select(func.count()).select_from(Person)).scalar_one()


# -- 1. invite again / new phone ------------------------------------------------------------------


def test_invite_again_joins_the_same_person_and_keeps_one_history(client, world, sync):
    csrf = sign_in(client, "cora@example.org")
    people_page = client.get(f"{AREA}/people").text
    assert f"{AREA}/people/{world['rita']}/invite" in people_page and "Invite again / new phone" in people_page
    page = client.post(f"{AREA}/people/{world['rita']}/invite", data={"csrf_token": csrf})
    assert page.status_code == 200 and "New phone for Rita Rep" in page.text
    before = _people_count()
    joined = _enrol(client, _shown_code(page.text), device_name="Rita's new phone")
    assert joined.status_code == 201, joined.get_json()
    assert joined.get_json()["person"] == {"id": world["rita"], "display_name": "Rita Rep",
                                           "roles": [{"role": "street_rep", "area_id": world["area"].id}]}
    assert _people_count() == before  # no "Rita Rep 1"
    invite = db.session.execute(select(Invite).where(Invite.person_id == world["rita"])).scalar_one()
    assert invite.used_at is not None
    # Both phones work, and what each sends is one person's history.
    second = visit(world["site"], answers=street_answers("C"))
    assert sync(joined.get_json()["token"], [mutation(second)]).get_json()["results"][0]["status"] == "applied"
    assert sync(world["token"]).status_code == 200
    owners = set(db.session.execute(select(Submission.person_id)).scalars())
    assert owners == {world["rita"]}
    listing = client.get(f"{AREA}/people").text
    assert listing.count(">Rita Rep</a>") == 1 and "Rita&#39;s new phone" in listing and "Test phone" in listing


def test_invite_again_is_only_for_this_areas_volunteers(client, world):
    csrf = sign_in(client, "cora@example.org")
    assert client.post(f"{AREA}/people/{world['otto']}/invite", data={"csrf_token": csrf}).status_code == 404
    coordinator = db.session.execute(select(Person).where(Person.email == "cora@example.org")).scalar_one()
    assert client.post(f"{AREA}/people/{coordinator.id}/invite", data={"csrf_token": csrf}).status_code == 404


# -- 2. devices listed; revoking asks first -------------------------------------------------------


def test_revoking_shows_what_happens_first_then_signs_out_and_is_audited(client, world, sync):
    csrf = sign_in(client, "cora@example.org")
    address = f"{AREA}/devices/{world['device_id']}/revoke"
    people = client.get(f"{AREA}/people").text
    assert f'href="{address}"' in people  # a link to the confirmation, not a form that signs out at once
    confirm = client.get(address)
    assert confirm.status_code == 200
    text = confirm.text
    assert "Visits the phone has not sent yet are refused by the server" in text
    assert "Export unsent" in text and "Move to a new phone" in text and "Import a device export" in text
    assert sync(world["token"]).status_code == 200  # looking is not signing out
    assert client.post(address, data={"csrf_token": csrf}).status_code == 302
    refused = sync(world["token"])
    assert refused.status_code == 401 and refused.get_json()["code"] == "token_revoked"
    entries = _audit("device.revoke")
    assert [(e.record_id, e.details["person_id"]) for e in entries] == [(world["device_id"], world["rita"])]
    again = client.get(address).text
    assert "This device was signed out on" in again and "Sign out this device" not in again


def test_unnamed_devices_are_named_by_kind_and_join_date_never_by_user_agent(client, world, app):
    today = datetime.now(timezone.utc)
    names = {}
    for agent in (ANDROID, IPHONE, WINDOWS):
        code = operations.issue_invite(world["area"], "street_rep", person=db.session.get(Person, world["rita"]))
        db.session.commit()
        response = _enrol(client, code, user_agent=agent)
        assert response.status_code == 201
        names[agent] = response.get_json()["device_name"]
    with app.test_request_context():
        day = volunteers.short_date(today)
    assert names == {ANDROID: f"Android phone, joined {day}", IPHONE: f"iPhone, joined {day}",
                     WINDOWS: f"Windows computer, joined {day}"}
    # A device an older app named with the browser's user-agent string is shown readably too.
    old = db.session.get(Device, world["device_id"])
    old.name = ANDROID[:60]
    db.session.commit()
    sign_in(client, "cora@example.org")
    page = client.get(f"{AREA}/people").text
    assert "Mozilla" not in page and "AppleWebKit" not in page
    assert page.count("Android phone, joined") == 2 and f"iPhone, joined {day}" in page
    assert "Signed in" in page and "Last sync" in page


def test_last_sync_is_written_once_a_minute_and_the_pages_say_to_within_a_minute(client, world, sync):
    """A phone's syncs within a minute of the stored time write nothing; one after it writes the time again."""
    device = db.session.get(Device, world["device_id"])
    first = device.last_sync_at
    assert first is not None  # the fixture's sync wrote it
    assert sync(world["token"]).status_code == 200
    db.session.expire_all()
    assert db.session.get(Device, world["device_id"]).last_sync_at == first  # seconds later: not written again
    db.session.get(Device, world["device_id"]).last_sync_at = first - timedelta(minutes=1, seconds=1)
    db.session.commit()
    assert sync(world["token"]).status_code == 200
    db.session.expire_all()
    assert db.session.get(Device, world["device_id"]).last_sync_at >= first  # over a minute old: written
    sign_in(client, "cora@example.org")
    assert "Last sync (to within a minute)" in client.get(f"{AREA}/people").text
    assert "Last sync (to within a minute): " in client.get(f"{AREA}/people/{world['rita']}").text
    page = client.get(f"{AREA}/devices/{world['device_id']}/revoke")
    assert page.status_code == 200 and "Last sync (to within a minute)" in page.text


def test_the_join_date_of_a_device_name_is_in_the_readers_language(app):
    from flask_babel import refresh

    app.config["LANGUAGES"] = ["en", "en_GB", "fr"]
    moment = datetime(2026, 12, 3, 12, tzinfo=timezone.utc)
    for language, expected in (("fr", "3 déc."), ("en-GB", "3 Dec"), ("en", "Dec 3")):
        with app.test_request_context(headers={"Accept-Language": language}):
            refresh()
            assert volunteers.short_date(moment) == expected, language
    with app.test_request_context(headers={"Accept-Language": "en-GB"}):
        refresh()
        assert volunteers.readable_device_name(IPHONE, moment) == "iPhone, joined 3 Dec"
        assert volunteers.device_kind("curl/8.0") == "Phone or computer"


# -- 3. signing out on the phone -------------------------------------------------------------------


def _sign_out(client, token):
    return client.post("/api/sync/v1/device/sign-out", json={"protocol": 1},
                       headers={"Authorization": f"Bearer {token}"} if token else {})


def test_a_phone_signing_out_revokes_its_token_once_and_is_idempotent(client, world, sync):
    first = _sign_out(client, world["token"])
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["device_id"] == world["device_id"] and body["server_epoch"]
    refused = sync(world["token"])
    assert refused.status_code == 401 and refused.get_json()["code"] == "token_revoked"
    again = _sign_out(client, world["token"])
    assert again.status_code == 200 and again.get_json()["signed_out_at"] == body["signed_out_at"]
    entries = _audit("device.signed_out")
    assert [(e.device_id, e.person_id) for e in entries] == [(world["device_id"], world["rita"])]
    assert _sign_out(client, "kbd_not-a-token").get_json()["code"] == "token_invalid"
    assert _sign_out(client, "kbd_not-a-token").status_code == 401
    assert _sign_out(client, None).status_code == 401


def test_the_sign_out_operation_is_documented_with_every_status(client):
    document = client.get("/api/openapi.json").get_json()
    operation = document["paths"]["/api/sync/v1/device/sign-out"]["post"]
    assert {"200", "400", "401", "413", "426", "503"} <= set(operation["responses"])
    assert operation["security"] == [{"deviceToken": []}]
    with open("docs/sync-protocol.md", encoding="utf-8") as protocol:
        text = protocol.read()
    assert "POST /api/sync/v1/device/sign-out" in text and "device.signed_out" in text


# -- 4. re-join codes for a shared phone -----------------------------------------------------------


def _reset_code(client, csrf, person_id):
    page = client.post(f"{AREA}/people/{person_id}/rejoin-code", data={"csrf_token": csrf})
    assert page.status_code == 200
    return _shown_code(page.text)


def test_a_rejoin_code_takes_over_a_phone_as_the_same_person_and_is_kept_hashed(client, world):
    csrf = sign_in(client, "cora@example.org")
    code = _reset_code(client, csrf, world["rita"])
    assert len(code.replace("-", "")) == volunteers.REJOIN_LENGTH
    rita = db.session.get(Person, world["rita"])
    handle, secret = volunteers.split_rejoin_code(code)
    assert rita.rejoin_handle == handle and rita.rejoin_hash == hashlib.sha256(secret.encode()).hexdigest()
    with client.session_transaction() as session:
        assert code not in repr(dict(session))  # shown once on the page, never kept in the cookie
    assert code not in client.get(f"{AREA}/people/{world['rita']}").text
    before = _people_count()
    joined = _enrol(client, code.lower())
    assert joined.status_code == 201, joined.get_json()
    assert joined.get_json()["person"]["id"] == world["rita"] and _people_count() == before
    assert _enrol(client, code).status_code == 201  # personal: it keeps working until reset
    assert _audit("device.enrol")[-1].details == {"by": "rejoin_code"}
    new = _reset_code(client, csrf, world["rita"])
    assert new != code
    stale = _enrol(client, code)
    assert stale.status_code == 400 and stale.get_json()["code"] == "rejoin_invalid"
    assert _audit("person.rejoin_code_reset")[-1].details == {}


def test_wrong_rejoin_codes_are_throttled_per_person_from_any_address(client, world, app):
    app.config["REJOIN_FAILURE_LIMIT_PERSON"] = "3 per 15 minutes"
    csrf = sign_in(client, "cora@example.org")
    code = _reset_code(client, csrf, world["rita"])
    handle, _secret = volunteers.split_rejoin_code(code)
    for n in range(3):
        wrong = _enrol(client, handle + "ABCDEFGHJKLM", address=f"10.0.0.{n}")
        assert wrong.status_code == 400 and wrong.get_json()["code"] == "rejoin_invalid"
    held = _enrol(client, code, address="10.0.9.9")  # even the right code waits: no more guesses for Rita
    assert held.status_code == 429 and int(held.headers["Retry-After"]) > 0
    assert "Wait 15 minutes" in held.get_json()["message"]


def test_wrong_codes_are_throttled_per_address(client, world, app):
    app.config["ENROL_FAILURE_LIMIT_ADDRESS"] = "2 per 15 minutes"
    for _ in range(2):
        assert _enrol(client, "ABCD-EFGH-JKLM-NPQR", address="10.1.1.1").status_code == 400
    refused = _enrol(client, "ABCD-EFGH-JKLM-NPQR", address="10.1.1.1")
    assert refused.status_code == 429 and refused.headers["Retry-After"]


# -- 5. merge, rename, deactivate ------------------------------------------------------------------


def _twin(client, world, sync):
    """Rita joined a second time with a fresh invite: a second record with a visit of its own."""
    code = operations.issue_invite(world["area"], "street_rep", display_name="Rita R")
    db.session.commit()
    body = _enrol(client, code, device_name="Rita's tablet").get_json()
    extra = visit(world["site"], answers=street_answers("A"))
    assert sync(body["token"], [mutation(extra)]).get_json()["results"][0]["status"] == "applied"
    return body


def test_merging_two_records_moves_the_history_and_says_so(client, world, sync):
    twin = _twin(client, world, sync)
    csrf = sign_in(client, "cora@example.org")
    address = f"{AREA}/people/{twin['person']['id']}/merge"
    confirm = client.get(address, query_string={"with": world["rita"]})
    assert confirm.status_code == 200
    assert "What each record holds" in confirm.text and "Yes, merge them" in confirm.text
    unconfirmed = client.post(address, data={"csrf_token": csrf, "with": world["rita"], "keep": world["rita"]})
    assert unconfirmed.status_code == 302 and db.session.get(Person, twin["person"]["id"]) is not None
    merged = client.post(address, data={"csrf_token": csrf, "with": world["rita"], "keep": world["rita"],
                                        "confirm": "merge"})
    assert merged.status_code == 302 and merged.headers["Location"].endswith(f"/people/{world['rita']}")
    db.session.expire_all()
    assert db.session.get(Person, twin["person"]["id"]) is None
    assert set(db.session.execute(select(Submission.person_id)).scalars()) == {world["rita"]}
    devices = db.session.execute(select(Device.person_id).where(Device.id.in_(
        [twin["device_id"], world["device_id"]]))).scalars().all()
    assert devices == [world["rita"], world["rita"]]
    entry = _audit("person.merged")[-1]
    assert entry.details["kept"] == world["rita"] and entry.details["merged"] == twin["person"]["id"]
    assert entry.details["moved"]["visits"] == 1 and entry.details["moved"]["devices"] == 1
    # The moved phone still syncs, now as Rita, and receives both visits as its own.
    pulled = sync(twin["token"]).get_json()
    mine = {c["id"] for c in pulled["changes"] if c["collection"] == "my_submissions"}
    assert world["first_visit"] in mine and len(mine) == 2
    page = client.get(f"{AREA}/people/{world['rita']}").text
    assert "Rita&#39;s tablet" in page and "Test phone" in page


def test_a_coordinator_merges_only_volunteers_of_their_own_areas(client, world, sync, make_area):
    twin = _twin(client, world, sync)
    # The twin is also a rep in Eastside, which Cora does not coordinate: an admin's to merge.
    db.session.add(Role(person_id=twin["person"]["id"], role="street_rep", area_id=world["other"].id))
    db.session.commit()
    csrf = sign_in(client, "cora@example.org")
    address = f"{AREA}/people/{world['rita']}/merge"
    data = {"csrf_token": csrf, "with": twin["person"]["id"], "keep": world["rita"], "confirm": "merge"}
    page = client.get(address, query_string={"with": twin["person"]["id"]})
    assert page.status_code == 403 and "Only an admin can merge these records" in page.text
    assert client.post(address, data=data).status_code == 403
    assert db.session.get(Person, twin["person"]["id"]) is not None
    admin_csrf = sign_in(client, "ada@example.org")
    assert client.post(address, data={**data, "csrf_token": admin_csrf}).status_code == 302
    db.session.expire_all()
    rita = db.session.get(Person, world["rita"])
    assert {(r.role, r.area_id) for r in rita.roles} == {("street_rep", world["area"].id),
                                                        ("street_rep", world["other"].id)}


def test_merge_handles_every_reference_to_a_person(app):
    referring = set()
    for table in db.metadata.tables.values():
        for column in table.columns:
            if any(key.target_fullname == "person.id" for key in column.foreign_keys):
                referring.add((table.name, column.name))
    assert referring == set(volunteers.MERGE_HANDLES)


def test_rename_and_deactivate_then_reactivate(client, world, sync):
    csrf = sign_in(client, "cora@example.org")
    person_page = f"{AREA}/people/{world['rita']}"
    assert client.post(f"{person_page}/rename", data={"csrf_token": csrf, "display_name": " "}).status_code == 400
    assert client.post(f"{person_page}/rename", data={"csrf_token": csrf, "display_name": "Rita Ramos"}).status_code == 302
    assert db.session.get(Person, world["rita"]).display_name == "Rita Ramos"
    assert _audit("person.rename")[-1].details == {"before": {"display_name": "Rita Rep"},
                                                    "after": {"display_name": "Rita Ramos"}}
    code = _reset_code(client, csrf, world["rita"])
    pending = operations.issue_invite(world["area"], "street_rep", person=db.session.get(Person, world["rita"]))
    db.session.commit()
    assert client.post(f"{person_page}/deactivate", data={"csrf_token": csrf}).status_code == 302
    assert _audit("person.deactivate")[-1].details == {"devices_signed_out": 1}
    assert sync(world["token"]).status_code == 401
    for attempt in (pending, code):
        refused = _enrol(client, attempt)
        assert refused.status_code == 400 and refused.get_json()["code"] == "person_deactivated"
    assert client.post(f"{person_page}/invite", data={"csrf_token": csrf}).status_code == 302  # refused, told why
    assert db.session.execute(select(func.count()).select_from(Invite).where(
        Invite.person_id == world["rita"])).scalar_one() == 1
    assert "Deactivated" in client.get(f"{AREA}/people").text
    assert client.post(f"{person_page}/reactivate", data={"csrf_token": csrf}).status_code == 302
    assert _enrol(client, code).status_code == 201


def test_a_deactivated_partner_cannot_sign_in_and_is_not_offered_as_assignee(client, world, app):
    from server.coordinator.actions import organisations
    from server.people import deactivate

    partner = operations.create_person("Cleansing Team", email="clean@example.org", password=PASSWORD,
                                       organisation="Street cleansing", roles=[("partner", world["area"])])
    db.session.commit()
    with app.test_request_context():
        assert "Street cleansing" in organisations(world["area"])
    deactivate(partner)
    db.session.commit()
    with app.test_request_context():
        assert "Street cleansing" not in organisations(world["area"])
    client.get("/login")
    with client.session_transaction() as session:
        csrf = session["csrf"]
    refused = client.post("/login", data={"email": "clean@example.org", "password": PASSWORD, "csrf_token": csrf})
    assert refused.status_code == 401


# -- 6/7. no placeholder names ----------------------------------------------------------------------


def test_an_invite_without_a_name_takes_the_volunteers_own_or_none(client, world):
    csrf = sign_in(client, "cora@example.org")
    page = client.post(f"{AREA}/people", data={"csrf_token": csrf, "role": "street_rep", "display_name": ""})
    assert page.status_code == 200 and "the volunteer is asked for theirs when they join" in page.text
    named = _enrol(client, _shown_code(page.text), display_name="Sam Sweep").get_json()
    assert named["person"]["display_name"] == "Sam Sweep"
    page = client.post(f"{AREA}/people", data={"csrf_token": csrf, "role": "street_rep", "display_name": ""})
    unnamed = _enrol(client, _shown_code(page.text)).get_json()
    # The phone is told no name was given (it greets with just "Hello"); coordinators see a placeholder.
    assert unnamed["person"]["display_name"] == ""
    person = db.session.get(Person, unnamed["person"]["id"])
    assert person.name_given is False and person.display_name == "Volunteer (no name given)"
    # A name the coordinator gave wins over what is typed on the phone.
    page = client.post(f"{AREA}/people", data={"csrf_token": csrf, "role": "street_rep", "display_name": "Pat Park"})
    given = _enrol(client, _shown_code(page.text), display_name="Someone else").get_json()
    assert given["person"]["display_name"] == "Pat Park"


def test_the_demo_invites_carry_no_placeholder_name(app):
    from server import demo

    details = demo.load_demo(months=1)
    for code in (details["invite"], details["shopper_invite"]):
        invite = db.session.execute(select(Invite).where(Invite.code_hash == operations.invite_hash(code))).scalar_one()
        assert invite.display_name is None
