"""Photo storage behind a small interface: local disk now, object storage when one disk is not enough."""

from __future__ import annotations

import os
import tempfile
from typing import Protocol

from flask import current_app

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


def keep(sha256: str, data: bytes, content_type: str, device_id: str | None) -> bool:
    """Store a checked photo and its row, bytes first so a row never points at nothing; False if already here."""
    from server import bulk
    from server.extensions import db
    from server.models import Blob, utcnow

    if db.session.get(Blob, sha256) is not None:
        return False
    store().put(sha256, data)
    row = {"sha256": sha256, "content_type": content_type, "size": len(data), "device_id": device_id,
           "created_at": utcnow()}
    bulk.insert_new(db.session, Blob.__table__, [row], "sha256")
    return True


def store() -> BlobStore:
    """The app's blob store, made on first use from BLOB_DIR."""
    found = current_app.extensions.get("kerbside_blobs")
    if found is None:
        found = current_app.extensions["kerbside_blobs"] = LocalBlobStore(current_app.config["BLOB_DIR"])
    return found
