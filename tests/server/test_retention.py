"""`kerbside retention`: each kind of record goes after its period, and nothing still in use goes."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from server import blobs, operations, retention
from server.cli import retention_command
from server.extensions import db
from server.models import Blob, Device, MutationAudit, MutationLog, Submission, utcnow
from tests.conftest import mutation, street_answers, visit

PERIODS = retention.RetentionPeriods(unreferenced_photo_days=7, revoked_device_days=90, rejected_payload_days=90,
                                     gps_days=90)


def png(n: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + n.to_bytes(4, "big") * 16


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def field(client, make_area, make_site, publish_forms, enrol):
    area = make_area("millbrook", "Millbrook")
    site = make_site(area)
    publish_forms()
    token, body = enrol(area)
    return area, site, token, body


def upload(client, token, data):
    response = client.put(f"/api/sync/v1/blobs/{sha(data)}", data=data, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201
    db.session.rollback()


def age(model, days, **where):
    """Make rows of `model` look `days` old."""
    column = {"Blob": Blob.created_at, "Device": Device.revoked_at, "MutationLog": MutationLog.received_at,
              "MutationAudit": MutationAudit.received_at, "Submission": Submission.received_at}[model.__name__]
    statement = update(model).values({column.key: utcnow() - timedelta(days=days)})
    for name, value in where.items():
        statement = statement.where(getattr(model, name) == value)
    db.session.execute(statement)
    db.session.commit()


def test_an_unreferenced_photo_goes_after_its_grace_period_and_a_referenced_one_never(client, field, sync):
    area, site, token, _body = field
    used, unused, recent = png(1), png(2), png(3)
    for data in (used, unused, recent):
        upload(client, token, data)
    item = mutation(visit(site, answers=street_answers(litter={"grade": "C", "photos": [sha(used)]})))
    assert sync(token, [item]).get_json()["results"][0]["status"] == "applied"
    db.session.rollback()
    age(Blob, 30)
    age(Blob, 2, sha256=sha(recent))  # in its grace period: its visit may still be on its way

    report = retention.apply_retention(PERIODS)

    assert report.unreferenced_photos == 1 and report.photo_files == 1
    assert db.session.get(Blob, sha(unused)) is None and not blobs.store().exists(sha(unused))
    for kept in (used, recent):
        assert db.session.get(Blob, sha(kept)) is not None and blobs.store().get(sha(kept)) == kept
    # A second run finds nothing more.
    assert retention.apply_retention(PERIODS).unreferenced_photos == 0


def test_a_sites_photo_is_referenced_too(client, field):
    area, site, token, _body = field
    upload(client, token, png(4))
    site.photo = sha(png(4))
    db.session.commit()
    age(Blob, 30)
    assert retention.apply_retention(PERIODS).unreferenced_photos == 0
    assert db.session.get(Blob, sha(png(4))) is not None


def test_stored_bytes_shared_with_another_row_stay(client, field):
    """Two names for the same stored bytes (with and without location): removing one keeps the file."""
    area, site, token, body = field
    upload(client, token, png(5))
    db.session.add(Blob(sha256="f" * 64, content_type="image/png", size=10, stored_sha256=sha(png(5)),
                        device_id=body["device_id"], created_at=utcnow()))
    db.session.commit()
    age(Blob, 30, sha256=sha(png(5)))
    report = retention.apply_retention(PERIODS)
    assert report.unreferenced_photos == 1 and report.photo_files == 0
    assert blobs.store().exists(sha(png(5)))


def test_a_dry_run_counts_and_removes_nothing(client, field):
    _area, _site, token, _body = field
    upload(client, token, png(6))
    age(Blob, 30)
    report = retention.apply_retention(PERIODS, dry_run=True)
    assert report.unreferenced_photos == 1
    assert db.session.get(Blob, sha(png(6))) is not None and blobs.store().exists(sha(png(6)))


def test_a_revoked_devices_details_are_blanked_after_the_period_and_a_live_one_is_untouched(
        client, field, enrol, sync):
    area, site, token, body = field
    _other_token, other = enrol(area, name="Still active")
    assert sync(token, [mutation(visit(site))]).get_json()["results"][0]["status"] == "applied"
    db.session.rollback()
    device = db.session.get(Device, body["device_id"])
    operations.revoke_device(device)
    db.session.commit()
    age(Device, 30, id=device.id)
    assert retention.apply_retention(PERIODS).revoked_devices_blanked == 0  # still within its period

    age(Device, 100, id=device.id)
    report = retention.apply_retention(PERIODS)

    assert report.revoked_devices_blanked == 1
    db.session.expire_all()
    device = db.session.get(Device, body["device_id"])
    assert device.name == "" and device.last_sync_at is None
    assert device.token_hash.startswith(retention.REMOVED_TOKEN_PREFIX)
    # Its visit still counts for the area, and still names the device row.
    assert db.session.execute(select(Submission.device_id)).scalar_one() == device.id
    live = db.session.get(Device, other["device_id"])
    assert live.name == "Test phone" and not live.token_hash.startswith(retention.REMOVED_TOKEN_PREFIX)
    assert retention.apply_retention(PERIODS).revoked_devices_blanked == 0


def test_a_revoked_device_nothing_refers_to_is_removed(client, field):
    _area, _site, _token, body = field
    operations.revoke_device(db.session.get(Device, body["device_id"]))
    db.session.commit()
    age(Device, 100)
    assert retention.apply_retention(PERIODS).revoked_devices_removed == 1
    assert db.session.get(Device, body["device_id"]) is None


def test_rejected_payloads_lose_their_body_after_the_period(client, field, sync):
    _area, site, token, _body = field
    old = mutation(visit(site, answers=street_answers(litter={"grade": "Q"})))
    new = mutation(visit(site, answers=street_answers(litter={"grade": "Q"})))
    for item in (old, new):
        assert sync(token, [item]).get_json()["results"][0]["status"] == "rejected"
    clash = dict(old, payload_hash=mutation(visit(site))["payload_hash"], data=visit(site))
    sync(token, [clash])  # the same mid with other content: kept in the audit table
    db.session.rollback()
    assert db.session.query(MutationAudit).count() == 1
    age(MutationLog, 100, mid=old["mid"])
    age(MutationAudit, 100)

    report = retention.apply_retention(PERIODS)

    assert report.rejected_payloads == 2
    db.session.expire_all()
    assert db.session.get(MutationLog, old["mid"]).data is None
    assert db.session.get(MutationLog, old["mid"]).result["code"] == "validation_failed"  # the answer stays
    assert db.session.get(MutationLog, new["mid"]).data is not None
    assert db.session.execute(select(MutationAudit.data)).scalar_one() is None
    # The device sending the old item again still hears its refusal.
    again = sync(token, [old]).get_json()["results"][0]
    assert again["status"] == "duplicate" and again["first"]["status"] == "rejected"


def test_gps_positions_go_from_visits_after_the_period(client, field, sync):
    _area, site, token, _body = field
    located = visit(site)
    located["location"] = {"lat": 53.54, "lng": -2.63, "accuracy_m": 8}
    recent = visit(site)
    recent["location"] = {"lat": 53.55, "lng": -2.64, "accuracy_m": 9}
    first, second = mutation(located), mutation(recent, seq=2)
    assert [r["status"] for r in sync(token, [first, second]).get_json()["results"]] == ["applied", "applied"]
    db.session.rollback()
    age(Submission, 100, id=located["id"])

    report = retention.apply_retention(PERIODS)

    assert report.gps_positions == 1
    db.session.expire_all()
    old = db.session.get(Submission, located["id"])
    assert (old.lat, old.lng, old.accuracy_m) == (None, None, None) and "location" not in old.data
    assert old.data["answers"] == located["answers"]
    kept = db.session.get(Submission, recent["id"])
    assert (kept.lat, kept.lng) == (53.55, -2.64) and kept.data["location"]["lat"] == 53.55
    # The same item sent again is still a duplicate: judged on the hash the device computed.
    assert sync(token, [first]).get_json()["results"][0]["status"] == "duplicate"


def test_the_command_prints_counts_only(app, client, field):
    _area, _site, token, _body = field
    upload(client, token, png(7))
    age(Blob, 30)
    runner = app.test_cli_runner()
    dry = runner.invoke(retention_command, ["--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Dry run: nothing was removed." in dry.output and "Unreferenced photos (would go): 1" in dry.output
    assert db.session.get(Blob, sha(png(7))) is not None
    db.session.rollback()
    done = runner.invoke(retention_command, [])
    assert done.exit_code == 0, done.output
    assert "Unreferenced photos: 1 (kept 7 days)" in done.output
    assert sha(png(7)) not in done.output and "Test phone" not in done.output


def test_ended_web_sessions_and_spent_throttle_windows_go_and_live_ones_stay(app, client):
    from server import sessions
    from server.models import Person, ThrottleCounter, WebSession

    person = operations.create_person("Ada", email="ada@example.org", password="correct horse battery")
    db.session.commit()
    sessions.open_for(person.id)
    sessions.open_for(person.id)
    db.session.commit()
    idle = db.session.execute(select(WebSession)).scalars().first()
    idle.last_seen_at = utcnow() - timedelta(minutes=app.config["SESSION_IDLE_MINUTES"] + 1)
    db.session.add(ThrottleCounter(key="spent", count=3, expires_at=0))
    db.session.add(ThrottleCounter(key="live", count=1, expires_at=4102444800))
    db.session.commit()
    report = retention.apply_retention(PERIODS)
    assert (report.ended_sessions, report.throttle_windows) == (1, 1)
    assert len(db.session.execute(select(WebSession)).scalars().all()) == 1
    assert [row.key for row in db.session.execute(select(ThrottleCounter)).scalars()] == ["live"]
    assert db.session.get(Person, person.id) is not None
