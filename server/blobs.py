"""Photo storage behind a small interface: local disk now, object storage when one disk is not enough."""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from datetime import datetime, timedelta
from typing import Protocol

from flask import current_app

from server import photo_location

IMAGE_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)


def image_type(data: bytes) -> str | None:
    """The image type the bytes really are (never what the client claims), or None."""
    for signature, content_type in IMAGE_SIGNATURES:
        if data.startswith(signature):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class BlobStore(Protocol):
    def exists(self, sha256: str) -> bool: ...
    def put(self, sha256: str, data: bytes) -> None: ...
    def get(self, sha256: str) -> bytes: ...
    def delete(self, sha256: str) -> None: ...


class LocalBlobStore:
    """Files named by hash under one folder, written atomically (temp file, then rename)."""

    def __init__(self, root: str):
        self.root = root

    def path(self, sha256: str) -> str:
        return os.path.join(self.root, sha256[:2], sha256[2:4], sha256)

    def exists(self, sha256: str) -> bool:
        return os.path.exists(self.path(sha256))

    def put(self, sha256: str, data: bytes) -> None:
        target = self.path(sha256)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".upload-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise

    def get(self, sha256: str) -> bytes:
        with open(self.path(sha256), "rb") as handle:
            return handle.read()

    def delete(self, sha256: str) -> None:
        """Remove the bytes; a name that is not here is no error (retention may run twice)."""
        try:
            os.unlink(self.path(sha256))
        except FileNotFoundError:
            pass


class PhotoRefused(Exception):
    """An upload this device may not make now: too fast (`retry_after` seconds) or over its quota."""

    def __init__(self, code: str, message: str, retry_after: int | None = None):
        super().__init__(code)
        self.code, self.message, self.retry_after = code, message, retry_after


def check_upload_allowed(device_id: str, size: int, now: datetime | None = None) -> None:
    """Raise PhotoRefused when a new photo of `size` bytes would break the device's rate or quota.

    Counted from the blob rows (each knows its device and time), so the limits hold across
    workers and hosts. Two uploads racing in the same instant may both pass: the limits are
    there to stop a runaway phone or a stolen token, not to count to the last photo.
    """
    from flask_babel import gettext as _
    from sqlalchemy import func, select

    from server.extensions import db
    from server.models import Blob, utcnow

    config = current_app.config
    now = now or utcnow()
    minute_ago = now - timedelta(minutes=1)
    recent = db.session.execute(
        select(func.count(), func.min(Blob.created_at))
        .where(Blob.device_id == device_id, Blob.created_at > minute_ago)
    ).one()
    if recent[0] >= config["PHOTO_RATE_PER_MINUTE"]:
        wait = max(1, math.ceil((recent[1] + timedelta(minutes=1) - now).total_seconds()))
        raise PhotoRefused("too_many_requests", _("Too many photos at once. Your device will wait, then send the rest."),
                           retry_after=wait)
    count, total = db.session.execute(
        select(func.count(), func.coalesce(func.sum(Blob.size), 0))
        .where(Blob.device_id == device_id, Blob.created_at > now - timedelta(days=config["PHOTO_QUOTA_DAYS"]))
    ).one()
    if count >= config["PHOTO_QUOTA_COUNT"] or total + size > config["PHOTO_QUOTA_BYTES"]:
        raise PhotoRefused("photo_quota_exceeded", _(
            "This phone has sent as many photos as it may in %(days)s days (%(count)s photos or %(megabytes)s MB). "
            "The visit is kept on the phone: send it again later from “Needs attention”, or ask your coordinator.",
            days=config["PHOTO_QUOTA_DAYS"], count=config["PHOTO_QUOTA_COUNT"],
            megabytes=config["PHOTO_QUOTA_BYTES"] // (1024 * 1024)))


def keeps_location(person_id: str) -> bool:
    """Whether a person's photos keep where they were taken: only if every area they work in says so."""
    from sqlalchemy import select

    from server.extensions import db
    from server.models import Area, Role

    kept = db.session.execute(
        select(Area.keep_photo_location).join(Role, Role.area_id == Area.id).where(Role.person_id == person_id)
    ).scalars().all()
    return bool(kept) and all(kept)


def keep(sha256: str, data: bytes, content_type: str, device_id: str | None, *, keep_location: bool = False) -> bool:
    """Store a checked photo and its row, bytes first so a row never points at nothing; False if already here.

    Unless `keep_location`, the bytes stored are the photo without its location, under their
    own hash; the row keeps the device's name for them (photo_location.LocationNotRemovable
    when a position cannot be taken out).
    """
    from server import bulk
    from server.extensions import db
    from server.models import Blob, utcnow

    if db.session.get(Blob, sha256) is not None:
        return False
    stored = data if keep_location else photo_location.strip_location(data, content_type)
    stored_sha256 = sha256 if stored is data or stored == data else hashlib.sha256(stored).hexdigest()
    if not store().exists(stored_sha256):
        store().put(stored_sha256, stored)
    row = {"sha256": sha256, "content_type": content_type, "size": len(stored), "device_id": device_id,
           "stored_sha256": None if stored_sha256 == sha256 else stored_sha256, "created_at": utcnow()}
    bulk.insert_new(db.session, Blob.__table__, [row], "sha256")
    return True


def store() -> BlobStore:
    """The app's blob store, made on first use from BLOB_DIR."""
    found = current_app.extensions.get("kerbside_blobs")
    if found is None:
        found = current_app.extensions["kerbside_blobs"] = LocalBlobStore(current_app.config["BLOB_DIR"])
    return found
