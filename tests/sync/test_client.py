"""The reference client against the real server app, through the Flask test client.

Faults are injected in the transport (a lost answer, a 5xx, a 426) and in the client's
own storage (a crash mid-page), and each test checks what the device and the server hold.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
import time

import pytest
from sqlalchemy import func, select

from server import operations
from server.extensions import db
from server.models import Device, Role, Site, Submission
from sync.client import Client, OutboxItem, SyncReport, first_batch
from sync.export import read_export
from sync.protocol import MAX_MUTATIONS_PER_REQUEST, payload_hash
from sync.transport import Response, TransportError
from tests.conftest import street_answers, visit

PNG = b"\x89PNG\r\n\x1a\n" + b"kerbside test photo" * 10


class FlaskTransport:
    """The client's transport over Flask's test client; records each request and answer."""

    def __init__(self, test_client):
        self.test_client = test_client
        self.calls: list[tuple[str, str, dict | None, Response]] = []

    def __call__(self, method, path, *, json=None, body=None, headers=None):
        kwargs = {"headers": headers or {}}
        if json is not None:
            kwargs["json"] = json
        if body is not None:
            kwargs["data"] = body
            kwargs["content_type"] = "application/octet-stream"
        answer = self.test_client.open(path, method=method, **kwargs)
        response = Response(answer.status_code, dict(answer.headers), answer.get_json(silent=True))
        self.calls.append((method, path, json, response))
        return response

    def pushes(self) -> list[int]:
        """How many mutations each sync request carried."""
        return [len(sent["mutations"]) for method, path, sent, _r in self.calls if path == "/api/sync/v1"]


class Clock:
    def __init__(self):
        self.t = time.time()

    def __call__(self):
        return self.t


@pytest.fixture
def server(client):
    return FlaskTransport(client)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def world(make_area, make_site, publish_forms):
    """An area with one site and the seed's forms published."""
    area = make_area()
    site = make_site(area)
    versions = publish_forms()
    return {"area": area, "site": site, "street": versions["street"].version}


def invite(area) -> str:
    code = operations.issue_invite(area, "street_rep", display_name="Rep")
    db.session.commit()
    return code


@pytest.fixture
def device(tmp_path, server, clock, world):
    """An enrolled device whose transport is the Flask test client."""
    phone = Client(str(tmp_path / "phone.sqlite"), server, clock=clock, rng=random.Random(7))
    phone.enrol(invite(world["area"]), "Test phone")
    yield phone
    phone.close()


def street_visit(world, **kwargs):
    return visit(world["site"], form_version=world["street"], **kwargs)


def submissions_on_server() -> int:
    return db.session.execute(select(func.count()).select_from(Submission)).scalar_one()


# -- pushing --------------------------------------------------------------------------------


def test_each_sync_request_reports_how_long_the_oldest_unsent_item_has_waited(device, world, server, clock):
    device.queue_submission(street_visit(world))
    clock.t += 600  # queued ten minutes ago, offline since
    device.queue_submission(street_visit(world))
    device.sync_once()
    bodies = [sent for method, path, sent, _r in server.calls if path == "/api/sync/v1"]
    assert bodies[0]["oldest_unsent_age_s"] == pytest.approx(600, abs=0.01)
    device.sync_once()  # nothing left to send: nothing has waited
    assert [sent for _m, path, sent, _r in server.calls if path == "/api/sync/v1"][-1]["oldest_unsent_age_s"] is None


def test_queued_visit_is_applied_once_and_archived(device, world, server):
    data = street_visit(world)
    mid = device.queue_submission(data)

    report = device.sync_once()

    assert report.status == "ok" and report.applied == 1
    assert device.outbox() == []
    (archived,) = device.sent()
    assert archived["mid"] == mid and archived["data"] == data
    assert archived["payload_hash"] == payload_hash(data) and archived["result"]["status"] == "applied"
    assert submissions_on_server() == 1
    assert world["site"].id in device.replica("sites")

    again = device.sync_once()
    assert again.status == "ok" and again.applied == again.duplicate == 0
    assert server.pushes() == [1, 0]
    assert submissions_on_server() == 1


def test_queued_item_is_frozen_and_never_holds_the_token(device, world):
    data = street_visit(world)
    device.queue_submission(data)
    data["answers"]["noise"] = {"grade": "D"}  # the app edits its draft after queueing

    (item,) = device.outbox()
    assert item["data"]["answers"]["noise"] == {"grade": "B"}
    token = device._get("token")
    assert token and token not in json.dumps(device.outbox()) and token not in json.dumps(device.export_unsent())
    assert [i["seq"] for i in device.outbox()] == [1]
    device.queue_submission(street_visit(world))
    assert [i["seq"] for i in device.outbox()] == [1, 2]


def test_retry_after_lost_response_is_duplicate_not_second_copy(device, world, server):
    lost = []

    def loses_first_answer(method, path, **kwargs):
        response = server(method, path, **kwargs)
        if path == "/api/sync/v1" and not lost:
            lost.append(response)
            raise TransportError("connection reset after the server committed")
        return response

    device.transport = loses_first_answer
    mid = device.queue_submission(street_visit(world))

    first = device.sync_once()
    assert first.status == "offline" and [i["mid"] for i in device.outbox()] == [mid]
    assert lost[0].json["results"][0]["status"] == "applied"  # the server did store it

    second = device.sync_once(force=True)
    assert second.status == "ok" and second.duplicate == 1
    assert device.outbox() == [] and device.sent()[0]["result"]["status"] == "duplicate"
    assert submissions_on_server() == 1


@pytest.mark.parametrize(("status", "retry_after"), [(500, None), (503, "120"), (429, "30")])
def test_server_error_keeps_item_in_outbox(device, world, server, clock, status, retry_after):
    def failing(method, path, **kwargs):
        headers = {"Retry-After": retry_after} if retry_after else {}
        return Response(status, headers, {"code": "unavailable", "message": "Busy."})

    device.transport = failing
    mid = device.queue_submission(street_visit(world))
    report = device.sync_once()

    assert report.status == ("failed" if status == 500 else "server_busy")
    (item,) = device.outbox()
    assert item["mid"] == mid and item["attempts"] == 1 and item["last_error"] == "unavailable"
    wait = float(retry_after) if retry_after else 1.0  # the first backoff is one second
    assert item["next_attempt_at"] == pytest.approx(clock.t + wait)
    assert submissions_on_server() == 0

    device.transport = server
    early = device.sync_once(clock.t + wait - 0.5)
    assert [i["mid"] for i in device.outbox()] == [mid]
    if retry_after:
        assert early.status == "waiting" and early.requests == 0  # the server asked for quiet
    else:
        assert server.pushes() == [0]  # a pull, without the item still waiting out its backoff

    late = device.sync_once(clock.t + wait + 0.5)
    assert late.applied == 1 and device.outbox() == [] and submissions_on_server() == 1


def test_backoff_grows_with_each_failure_and_stays_within_five_minutes(device, world, clock):
    device.transport = lambda method, path, **kw: Response(500, {}, None)
    device.queue_submission(street_visit(world))
    delays = []
    for _attempt in range(12):
        device.sync_once(force=True)
        delays.append(device.outbox()[0]["next_attempt_at"] - clock.t)
    assert device.outbox()[0]["attempts"] == 12
    assert all(1.0 <= d <= 300.0 for d in delays)
    assert max(delays[-4:]) > 2.0  # later failures wait longer than the first


def test_deferred_photo_is_sent_after_blob_upload(device, world, server, clock):
    sha256 = hashlib.sha256(PNG).hexdigest()
    data = street_visit(world, answers=street_answers(litter={"grade": "C", "photos": [sha256]}))
    mid = device.queue_submission(data)

    first = device.sync_once()  # the photo's bytes are not on the device yet
    assert first.deferred == 1 and first.photos_uploaded == 0
    (item,) = device.outbox()
    assert item["mid"] == mid and item["last_error"] == "attachment_missing"
    assert item["next_attempt_at"] == pytest.approx(clock.t + 30)

    assert device.add_blob(PNG) == sha256
    second = device.sync_once(clock.t + 31)
    assert second.photos_uploaded == 1 and second.applied == 1
    methods = [(m, p) for m, p, _j, _r in server.calls if "/blobs/" in p]
    assert methods == [("HEAD", f"/api/sync/v1/blobs/{sha256}"), ("PUT", f"/api/sync/v1/blobs/{sha256}")]
    assert device.outbox() == [] and submissions_on_server() == 1


def test_photo_already_on_server_is_not_uploaded_again(device, world, server):
    sha256 = device.add_blob(PNG)
    for _visit in range(2):
        device.queue_submission(street_visit(world, answers=street_answers(litter={"grade": "C", "photos": [sha256]})))
        assert device.sync_once().applied == 1
    assert [m for m, p, _j, _r in server.calls if "/blobs/" in p] == ["HEAD", "PUT"]


def test_refused_photo_puts_its_visit_in_attention(device, world):
    sha256 = device.add_blob(b"not an image at all")
    mid = device.queue_submission(street_visit(world, answers=street_answers(litter={"grade": "C", "photos": [sha256]})))
    report = device.sync_once()
    assert report.attention == 1 and device.outbox() == []
    (item,) = device.attention()
    assert item["mid"] == mid and item["code"] == "not_an_image" and item["message"]


def test_rejected_item_goes_to_attention_with_message(device, world):
    bad = street_visit(world, answers=street_answers(noise={"grade": "E"}))
    good = street_visit(world)
    bad_mid = device.queue_submission(bad)
    device.queue_submission(good)

    report = device.sync_once()

    assert report.applied == 1 and report.attention == 1  # one bad item never blocks the other
    (item,) = device.attention()
    assert item["mid"] == bad_mid and item["status"] == "rejected" and item["code"] == "validation_failed"
    assert item["message"] and "answers.noise" in item["result"]["errors"]
    exported = device.export_unsent()
    (noted,) = exported["attention"]
    assert noted["mutation"]["mid"] == bad_mid and noted["mutation"]["data"] == bad
    assert noted["result"]["code"] == "validation_failed"
    assert device.status()["attention"] == 1


def test_duplicate_of_a_rejected_item_goes_to_attention(device, world, server):
    calls = []

    def loses_first_answer(method, path, **kwargs):
        response = server(method, path, **kwargs)
        calls.append(path)
        if path == "/api/sync/v1" and len(calls) == 1:
            raise TransportError("timed out")
        return response

    device.transport = loses_first_answer
    mid = device.queue_submission(street_visit(world, answers={}))
    device.sync_once()
    report = device.sync_once(force=True)
    assert report.attention == 1 and device.sent() == [] and device.outbox() == []
    (item,) = device.attention()
    assert item["mid"] == mid and item["status"] == "rejected" and item["code"] == "validation_failed"


def test_conflicting_site_update_goes_to_attention_with_server_value(device, world):
    site = world["site"]
    version = site.version
    # A coordinator's edits apply at once (a street rep's wait for review: the test below).
    person_id = db.session.get(Device, device.device_id).person_id
    db.session.add(Role(person_id=person_id, area_id=world["area"].id, role="coordinator"))
    db.session.commit()
    device.queue("site.update", {"id": site.id, "base_version": version, "patch": {"notes": "Bins by the gate"}})
    assert device.sync_once().applied == 1
    stale = device.queue("site.update", {"id": site.id, "base_version": version, "patch": {"notes": "Gate repainted"}})

    report = device.sync_once()

    assert report.attention == 1
    (item,) = device.attention()
    assert item["mid"] == stale and item["status"] == "conflict"
    assert item["result"]["server_value"]["notes"] == "Bins by the gate"
    assert device.replica("sites")[site.id]["notes"] == "Bins by the gate"


def test_street_reps_site_edit_shows_on_their_phone_until_a_coordinator_refuses_it(device, world):
    from server.coordinator import sites as moderation
    from server.models import SiteEdit

    site = world["site"]
    device.queue("site.update", {"id": site.id, "base_version": site.version, "patch": {"notes": "Bins by the gate"}})
    report = device.sync_once()
    assert report.applied == 1 and report.results[0]["pending_review"] is True
    mine = device.replica("sites")[site.id]
    assert mine["notes"] == "Bins by the gate" and mine["pending_edit"] is True and mine["version"] == site.version
    db.session.refresh(site)
    assert site.notes == ""  # not applied: it waits for a coordinator

    moderation.refuse_edit(db.session, db.session.execute(select(SiteEdit)).scalar_one(), "Bins are round the back")
    db.session.commit()
    device.sync_once(force=True)
    back = device.replica("sites")[site.id]
    assert back["notes"] == "" and "pending_edit" not in back
    (notice,) = device.replica("device").values()
    assert notice["code"] == "site_edit_refused" and notice["reason"] == "Bins are round the back"


# -- signing in, protocol versions --------------------------------------------------------------


def test_revoked_token_keeps_outbox_and_asks_to_rejoin(device, world, server):
    operations.revoke_device(db.session.get(Device, device.device_id))
    db.session.commit()
    mids = [device.queue_submission(street_visit(world)) for _i in range(3)]

    report = device.sync_once()

    assert report.status == "needs_enrolment" and report.code == "token_revoked"
    assert device.needs_enrolment == "token_revoked" and device.status()["needs_enrolment"] == "token_revoked"
    assert [i["mid"] for i in device.outbox()] == mids
    calls = len(server.calls)
    assert device.sync_once().status == "needs_enrolment" and len(server.calls) == calls  # no pointless calls

    device.enrol(invite(world["area"]), "Test phone")
    assert device.needs_enrolment is None
    after = device.sync_once()
    assert after.status == "ok" and after.applied == 3
    assert device.outbox() == [] and submissions_on_server() == 3


def test_revoked_token_during_photo_upload_keeps_visit_and_photo(device, world, server):
    sha256 = device.add_blob(PNG)
    mid = device.queue_submission(street_visit(world, answers=street_answers(litter={"grade": "C", "photos": [sha256]})))
    operations.revoke_device(db.session.get(Device, device.device_id))
    db.session.commit()

    report = device.sync_once()

    assert server.calls[-1][0] == "HEAD" and server.calls[-1][3].status == 401
    assert report.status == "needs_enrolment" and device.needs_enrolment
    assert [i["mid"] for i in device.outbox()] == [mid] and device.outbox()[0]["attempts"] == 0
    device.enrol(invite(world["area"]), "Test phone")
    assert device.sync_once().applied == 1 and submissions_on_server() == 1


def test_426_keeps_the_outbox_asks_again_each_sync_and_sends_once_accepted(device, world, server):
    def newer_server(method, path, *, json=None, **kwargs):
        if json is not None:
            json = {**json, "protocol": 99}  # as if this app spoke a protocol the server dropped
        return server(method, path, json=json, **kwargs)

    device.transport = newer_server
    mid = device.queue_submission(street_visit(world))

    report = device.sync_once()

    assert server.calls[-1][3].status == 426
    assert report.status == "update_required" and report.code == "protocol_unsupported"
    assert device.update_required and device.status()["update_required"]
    assert [i["mid"] for i in device.outbox()] == [mid] and device.outbox()[0]["attempts"] == 0
    # Each later sync asks again, with nothing pushed: the items stay frozen on the device.
    calls = len(server.calls)
    assert device.sync_once(force=True).status == "update_required"
    (_method, _path, asked, answer) = server.calls[calls]
    assert len(server.calls) == calls + 1 and asked["mutations"] == [] and answer.status == 426
    assert [i["mid"] for i in device.outbox()] == [mid] and submissions_on_server() == 0

    # The server accepts this app again (say, a rollback): the next sync sends at once.
    device.transport = server
    report = device.sync_once()
    assert report.status == "ok" and report.applied == 1 and not device.update_required
    assert device.outbox() == [] and submissions_on_server() == 1


def test_unenrolled_device_does_not_call_the_server(tmp_path, server, world):
    phone = Client(str(tmp_path / "new.sqlite"), server)
    phone.queue_submission(street_visit(world))
    assert phone.sync_once().status == "not_enrolled" and server.calls == []
    phone.close()


def test_wrong_invite_code_raises_enrolment_error(tmp_path, server, world):
    from sync.client import EnrolmentError

    phone = Client(str(tmp_path / "new.sqlite"), server)
    with pytest.raises(EnrolmentError) as caught:
        phone.enrol("AAAA-BBBB-CCCC", "phone")
    assert caught.value.status == 400 and caught.value.code == "invite_invalid"
    assert phone.device_id is None
    phone.close()


# -- batches ------------------------------------------------------------------------------------


def test_batches_split_at_200_items(device, world, server):
    for _i in range(MAX_MUTATIONS_PER_REQUEST + 5):
        device.queue_submission(street_visit(world))

    report = device.sync_once()

    assert server.pushes() == [200, 5]
    assert report.applied == 205 and device.outbox() == [] and submissions_on_server() == 205


def test_batches_split_at_the_byte_limit():
    items = [OutboxItem(f"m{i}", i, "submission.create", "h", json.dumps({"n": "x" * 1000}), 0.0) for i in range(10)]
    one = len(json.dumps(items[0].wire()))
    batch = first_batch(items, max_items=200, max_bytes=3 * one + 10)
    assert [i.mid for i in batch] == ["m0", "m1", "m2"]
    assert [i.mid for i in first_batch(items, max_items=4)] == ["m0", "m1", "m2", "m3"]
    assert len(first_batch(items[:1], max_bytes=10)) == 1  # a big item still goes, alone


def test_non_ascii_text_counts_at_its_escaped_size():
    item = OutboxItem("m", 1, "submission.create", "h", json.dumps({"n": "é" * 1000}, ensure_ascii=False), 0.0)
    assert len(first_batch([item, item], max_bytes=7000)) == 1


def test_413_from_server_halves_the_batch(device, world, server):
    def small_server(method, path, *, json=None, **kwargs):
        if json is not None and len(json.get("mutations", [])) > 2:
            return Response(413, {}, {"code": "too_many_mutations", "message": "Too many."})
        return server(method, path, json=json, **kwargs)

    device.transport = small_server
    for _i in range(5):
        device.queue_submission(street_visit(world))
    report = device.sync_once()
    assert report.applied == 5 and server.pushes() == [2, 2, 1]


def test_a_visit_that_crashes_the_server_is_isolated_and_the_rest_is_stored_once(device, world, server, clock):
    """A server bug that one visit triggers (a 500 whenever its request carries it) against the real app."""
    poison = street_visit(world, answers=street_answers(litter={"grade": "C", "note": "POISON"}))

    def buggy_server(method, path, *, json=None, **kwargs):
        if json is not None and any("POISON" in str(m["data"]) for m in json.get("mutations", [])):
            return Response(500, {}, {"code": "server_error", "message": "Something went wrong on our side."})
        return server(method, path, json=json, **kwargs)

    device.transport = buggy_server
    good = [device.queue_submission(street_visit(world)) for _i in range(6)]
    bad = device.queue_submission(poison)
    good += [device.queue_submission(street_visit(world)) for _i in range(5)]
    for _sync in range(12):
        clock.t += 600
        device.sync_once(force=True)
        if not device.outbox():
            break

    assert device.outbox() == []
    assert {item["mid"] for item in device.sent()} == set(good)
    (stuck,) = device.attention()
    assert stuck["mid"] == bad and stuck["code"] == "could_not_send" and stuck["status"] == "failed"
    assert submissions_on_server() == 11
    # The bug is fixed: the volunteer sends it again, under its own mid, and it is stored once.
    device.transport = server
    assert device.send_again(bad) and device.attention() == []
    assert device.sync_once().applied == 1 and submissions_on_server() == 12
    assert not device.send_again(bad)  # nothing is in attention any more


def test_only_a_visit_the_device_gave_up_on_can_be_sent_again(device, world):
    device.transport = lambda method, path, **kw: Response(200, {}, {
        "protocol": 1, "server_epoch": "ep", "cursor": "c", "has_more": False, "reset": False, "changes": [],
        "results": [{"mid": m["mid"], "status": "rejected", "code": "validation_failed", "message": "No."}
                    for m in kw["json"]["mutations"]]})
    mid = device.queue_submission(street_visit(world))
    device.sync_once()
    assert [item["mid"] for item in device.attention()] == [mid]
    assert not device.send_again(mid)  # the server's own refusal would only come back
    assert device.outbox() == []


# -- pulling --------------------------------------------------------------------------------------


def test_pull_pages_store_cursor_with_changes(tmp_path, server, clock, world):
    area = world["area"]
    operations.create_sites(area, [{"name": f"Street {n}", "lat": 53.5, "lng": -2.6} for n in range(30)])
    db.session.commit()
    phone = Client(str(tmp_path / "pages.sqlite"), server, clock=clock, pull_limit=5)
    phone.enrol(invite(area), "phone")
    delivered: list[int] = []
    posts = []

    def records(method, path, **kwargs):
        if path == "/api/sync/v1":
            posts.append(1)
            if len(posts) == 3:
                raise TransportError("signal lost between pages")
        response = server(method, path, **kwargs)
        delivered.extend(c["seq"] for c in (response.json or {}).get("changes", []))
        return response

    phone.transport = records
    first = phone.sync_once()
    assert first.status == "offline" and first.pages == 2
    assert len(phone.replica("sites")) + len(phone.replica("areas")) + len(phone.replica("forms")) == 10
    cursor_after_two_pages = phone.cursor

    real_apply = Client._apply_change
    applied = []

    def crashes_mid_page(self, db_, change):
        applied.append(change["seq"])
        if len(applied) == 3:
            raise RuntimeError("power cut while storing a page")
        real_apply(self, db_, change)

    phone._apply_change = crashes_mid_page.__get__(phone)
    with pytest.raises(RuntimeError):
        phone.sync_once()
    assert phone.cursor == cursor_after_two_pages  # the half-stored page left nothing behind
    assert sum(len(phone.replica(c)) for c in ("sites", "areas", "forms")) == 10
    del phone._apply_change

    last = phone.sync_once()
    assert last.status == "ok" and not last.reset
    sites = phone.replica("sites")
    assert set(sites) == set(db.session.execute(select(Site.id)).scalars())
    assert len(phone.replica("forms")) == 3 and area.id in phone.replica("areas")
    # Pages 1 and 2 were never fetched again (their cursor was stored with them); only the
    # page whose storing crashed came twice, and it had left nothing behind the first time.
    assert delivered[:10] == sorted(set(delivered[:10]))
    assert delivered[10:15] == delivered[15:20] and applied == delivered[10:13]
    assert sorted(seq for seq in set(delivered) if delivered.count(seq) > 1) == delivered[10:15]
    assert len(set(delivered)) == len(delivered) - 5 == len(sites) + 3 + 1
    phone.close()


def test_deleted_record_leaves_the_replica(device, world):
    from server.changes import PendingChange, write_changes

    device.sync_once()
    assert world["site"].id in device.replica("sites")
    write_changes([PendingChange("sites", world["site"].id, op="delete", area_id=world["area"].id)])
    db.session.commit()
    device.sync_once()
    assert world["site"].id not in device.replica("sites")


def test_reset_drops_replica(device, world):
    device.queue_submission(street_visit(world))
    assert device.sync_once().applied == 1
    old_epoch = device.server_epoch
    with device._transaction() as store:
        store.execute("INSERT INTO replica (collection, id, seq, data) VALUES ('sites', 'ghost', 1, '{}')")

    new_epoch = operations.start_new_epoch()
    report = device.sync_once()

    assert new_epoch != old_epoch and device.server_epoch == new_epoch
    assert report.epoch_changed and report.reset and report.repushed == 1 and report.duplicate == 1
    sites = device.replica("sites")
    assert "ghost" not in sites and world["site"].id in sites
    assert len(device.replica("forms")) == 3
    assert device.outbox() == [] and len(device.sent()) == 1 and submissions_on_server() == 1


def test_new_epoch_repushes_only_the_last_30_days(device, world, clock):
    device.queue_submission(street_visit(world))
    old = device.sync_once(clock.t - 30.5 * 86400)
    assert old.applied == 1
    recent = device.queue_submission(street_visit(world))
    device.sync_once(clock.t - 86400)
    assert len(device.sent()) == 2

    operations.start_new_epoch()
    report = device.sync_once(clock.t)

    assert report.repushed == 1 and report.duplicate == 1
    assert [i["mid"] for i in device.sent()] == [recent]  # the older one was past the 30 days


# -- one sync at a time, status, export ----------------------------------------------------------


def test_second_sync_while_one_runs_returns_busy(device, world, server):
    entered, release = threading.Event(), threading.Event()

    def slow(method, path, **kwargs):
        entered.set()
        release.wait(5)
        return server(method, path, **kwargs)

    device.transport = slow
    device.queue_submission(street_visit(world))
    db.session.commit()  # on SQLite this test's session would hold the write lock the worker needs
    reports: list[SyncReport] = []
    worker = threading.Thread(target=lambda: reports.append(device.sync_once()))
    worker.start()
    assert entered.wait(5)
    assert device.sync_once().status == "busy"
    release.set()
    worker.join(5)
    assert reports[0].status == "ok" and reports[0].applied == 1


def test_status_warns_when_oldest_unsent_is_older_than_three_days(device, world, clock):
    device.queue_submission(street_visit(world), now=clock.t - 4 * 86400)
    device.queue_submission(street_visit(world), now=clock.t - 3600)
    status = device.status()
    assert status["unsent"] == 2 and status["warning"]
    assert status["oldest_unsent_age_s"] == pytest.approx(4 * 86400)
    assert status["last_sync_at"] is None
    device.sync_once()
    assert device.status() | {"last_sync_at": None} == {
        "unsent": 0, "oldest_unsent_age_s": None, "last_sync_at": None, "attention": 0, "warning": False,
        "needs_enrolment": None, "update_required": False, "next_attempt_at": None,
    }
    assert device.status()["last_sync_at"] is not None


def test_recent_unsent_item_gives_no_warning(device, world, clock):
    device.queue_submission(street_visit(world), now=clock.t - 2 * 86400)
    assert device.status()["unsent"] == 1 and not device.status()["warning"]


def test_export_unsent_holds_outbox_and_attention(device, world, clock):
    data = street_visit(world, answers=street_answers(litter={"grade": "C", "photos": [device.add_blob(PNG)]}))
    mid = device.queue_submission(data)
    exported = device.export_unsent()
    assert exported["format"] == "kerbside-unsent" and exported["format_version"] == 1
    assert "version" not in exported  # one version field, the one the schema names
    assert exported["device_id"] == device.device_id and exported["exported_at"]
    assert exported["person"]["id"] == device._get("person_id") and exported["person"]["display_name"] == "Rep"
    assert exported["outbox"] == [{"mid": mid, "seq": 1, "type": "submission.create",
                                   "payload_hash": payload_hash(data), "data": data,
                                   "queued_at": round(clock.t * 1000)}]
    assert exported["attention"] == [] and exported["drafts"] == []
    assert exported["photos"] == {hashlib.sha256(PNG).hexdigest(): {"type": "image/png",
                                                                    "base64": base64.b64encode(PNG).decode()}}
    assert read_export(json.dumps(exported).encode()) == exported  # JSON-able, and valid against the schema
