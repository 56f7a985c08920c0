"""What Kerbside stops keeping, and when: the rules `kerbside retention` applies once a day.

Each kind of record has its own period (settings `KERBSIDE_RETENTION_*`; docs/retention.md
gives the defaults and why):

- a photo no visit or site refers to, after a grace period: a phone uploads a visit's photos
  just before the visit, so for a moment every photo is unreferenced;
- a signed-out (revoked) device's details: its name, token hash and last sync time are
  blanked; the row itself goes only when nothing refers to it, since visits, photos and the
  exactly-once ledger name their device;
- the bodies of refused pushes (kept so that a coordinator can see why a visit was refused);
- the GPS position a phone recorded with each visit, on the visit and in its stored body.

The function runs without a request, so the CLI, a test or a scheduler can call it. It
counts what it removed and never names a person, a device or a place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, null, or_, select, update

from server import blobs, sessions, throttle
from server.extensions import db
from server.models import Answer, Blob, Device, MutationAudit, MutationLog, Site, Submission, utcnow

# A revoked device's token hash after retention: it cannot match any token's SHA-256 (hex digits only).
REMOVED_TOKEN_PREFIX = "removed:"


@dataclass
class RetentionReport:
    """How many records of each kind were (or, in a dry run, would be) removed."""

    unreferenced_photos: int = 0
    photo_files: int = 0
    revoked_devices_blanked: int = 0
    revoked_devices_removed: int = 0
    rejected_payloads: int = 0
    gps_positions: int = 0
    # Rows of web sessions that ended (idle or too old) but were never shown again, and
    # throttle windows that are over: both are ignored anyway, so they go whenever this runs.
    ended_sessions: int = 0
    throttle_windows: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class RetentionPeriods:
    """Days each kind of record is kept (from the app's settings by default)."""

    unreferenced_photo_days: int
    revoked_device_days: int
    rejected_payload_days: int
    gps_days: int

    @classmethod
    def from_config(cls, config) -> RetentionPeriods:
        return cls(config["RETENTION_UNREFERENCED_PHOTO_DAYS"], config["RETENTION_REVOKED_DEVICE_DAYS"],
                   config["RETENTION_REJECTED_PAYLOAD_DAYS"], config["RETENTION_GPS_DAYS"])


def apply_retention(periods: RetentionPeriods, *, now: datetime | None = None, dry_run: bool = False) -> RetentionReport:
    """Remove what is past its period (nothing when `dry_run`); the counts of what went."""
    now = now or utcnow()
    report = RetentionReport()
    files = _unreferenced_photos(now - timedelta(days=periods.unreferenced_photo_days), report)
    _revoked_devices(now - timedelta(days=periods.revoked_device_days), report)
    _rejected_payloads(now - timedelta(days=periods.rejected_payload_days), report)
    _gps_positions(now - timedelta(days=periods.gps_days), report)
    report.ended_sessions = sessions.purge_over()
    report.throttle_windows = throttle.purge_expired()
    report.photo_files = len(files)
    if dry_run:
        db.session.rollback()
        return report
    db.session.commit()
    # Files go after the rows are gone: a crash in between leaves a file nobody names, never a
    # row naming a file that is not there.
    store = blobs.store()
    for sha256 in files:
        store.delete(sha256)
    return report


def _referenced_photos(candidates: set[str]) -> set[str]:
    """Those of `candidates` that a visit's answer or a site names."""
    found = set()
    # Answers' photo lists are JSON, read in pages: the job runs daily, off the request path.
    # (IS NOT NULL skips rows stored as SQL NULL; a JSON null still reaches the check below.)
    rows = select(Answer.photos).where(Answer.photos.is_not(None)).execution_options(yield_per=5000)
    for photos in db.session.execute(rows).scalars():
        if photos:
            found.update(sha for sha in photos if sha in candidates)
    found.update(db.session.execute(select(Site.photo).where(Site.photo.in_(candidates))).scalars())
    return found


def _unreferenced_photos(before: datetime, report: RetentionReport) -> set[str]:
    """Delete photo rows older than `before` that nothing names; the stored files no remaining row needs."""
    rows = db.session.execute(select(Blob.sha256, Blob.stored_sha256).where(Blob.created_at < before)).all()
    candidates = {row.sha256 for row in rows}
    if not candidates:
        return set()
    unused = candidates - _referenced_photos(candidates)
    if not unused:
        return set()
    files = {row.stored_sha256 or row.sha256 for row in rows if row.sha256 in unused}
    for start in range(0, len(unused), 500):
        chunk = sorted(unused)[start:start + 500]
        db.session.execute(delete(Blob).where(Blob.sha256.in_(chunk)))
    # Two uploads may share stored bytes (the same photo with and without its location).
    still_needed = set(db.session.execute(select(Blob.sha256).where(Blob.sha256.in_(files))).scalars())
    still_needed |= set(db.session.execute(select(Blob.stored_sha256).where(Blob.stored_sha256.in_(files))).scalars())
    report.unreferenced_photos = len(unused)
    return files - still_needed


def _revoked_devices(before: datetime, report: RetentionReport):
    """Blank revoked devices' details; remove the rows nothing refers to."""
    devices = db.session.execute(
        select(Device).where(Device.revoked_at < before, ~Device.token_hash.startswith(REMOVED_TOKEN_PREFIX))
    ).scalars().all()
    for device in devices:
        referenced = db.session.execute(select(
            exists().where(Submission.device_id == device.id)
            | exists().where(Blob.device_id == device.id)
            | exists().where(MutationLog.device_id == device.id)
            | exists().where(MutationAudit.device_id == device.id)
        )).scalar()
        if referenced:
            device.name = ""
            device.token_hash = REMOVED_TOKEN_PREFIX + device.id
            device.last_sync_at = None
            report.revoked_devices_blanked += 1
        else:
            db.session.delete(device)
            report.revoked_devices_removed += 1
    db.session.flush()


def _rejected_payloads(before: datetime, report: RetentionReport):
    """Drop the bodies of refused items (the ledger keeps their hash and the answer given)."""
    logged = db.session.execute(
        update(MutationLog).where(MutationLog.status == "rejected", MutationLog.received_at < before,
                                  MutationLog.data.is_not(None)).values(data=null())
    ).rowcount
    audited = db.session.execute(
        update(MutationAudit).where(MutationAudit.received_at < before, MutationAudit.data.is_not(None))
        .values(data=null())
    ).rowcount
    report.rejected_payloads = logged + audited


def _gps_positions(before: datetime, report: RetentionReport):
    """Drop the phone's position from visits received before `before`, on the row and in its stored body."""
    visits = db.session.execute(
        select(Submission).where(Submission.received_at < before,
                                 or_(Submission.lat.is_not(None), Submission.lng.is_not(None),
                                     Submission.accuracy_m.is_not(None)))
        .execution_options(yield_per=1000)
    ).scalars().all()
    for visit in visits:
        visit.lat = visit.lng = visit.accuracy_m = None
        if isinstance(visit.data, dict) and "location" in visit.data:
            # `payload_hash` stays as the device computed it: duplicates are judged on the hash.
            visit.data = {key: value for key, value in visit.data.items() if key != "location"}
    report.gps_positions = len(visits)
    db.session.flush()
