"""Configuration, read from the environment so the same code runs anywhere."""

from __future__ import annotations

import os

from server import jsonio
from sync.protocol import MAX_BLOB_BYTES


def from_environment(instance_path: str) -> dict:
    """Settings from environment variables, with embedded defaults for a single machine."""
    database_url = os.environ.get("DATABASE_URL") or "sqlite:///" + os.path.join(instance_path, "kerbside.sqlite")
    return {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": os.environ.get("SECRET_KEY"),
        "BLOB_DIR": os.environ.get("KERBSIDE_BLOB_DIR") or os.path.join(instance_path, "blobs"),
        # Requests per minute a device may make to the sync API (per worker process).
        "SYNC_RATE_PER_MINUTE": int(os.environ.get("KERBSIDE_SYNC_RATE_PER_MINUTE", "240")),
        # Sync requests one worker process serves at once before answering 503.
        "SYNC_MAX_CONCURRENT": int(os.environ.get("KERBSIDE_SYNC_MAX_CONCURRENT", "16")),
        # New photos one device may upload in any minute, counted in the database (every worker sees them).
        "PHOTO_RATE_PER_MINUTE": int(os.environ.get("KERBSIDE_PHOTO_RATE_PER_MINUTE", "30")),
        # A device's photo quota over a rolling period: a rep who takes 15 photos on each of
        # 30 daily walks stays within it; a runaway phone or a stolen token does not.
        "PHOTO_QUOTA_COUNT": int(os.environ.get("KERBSIDE_PHOTO_QUOTA_COUNT", "500")),
        "PHOTO_QUOTA_BYTES": int(os.environ.get("KERBSIDE_PHOTO_QUOTA_MB", "1024")) * 1024 * 1024,
        "PHOTO_QUOTA_DAYS": int(os.environ.get("KERBSIDE_PHOTO_QUOTA_DAYS", "30")),
        # How long `kerbside retention` keeps each kind of record (docs/retention.md says why).
        "RETENTION_UNREFERENCED_PHOTO_DAYS": int(os.environ.get("KERBSIDE_RETENTION_UNREFERENCED_PHOTO_DAYS", "7")),
        "RETENTION_REVOKED_DEVICE_DAYS": int(os.environ.get("KERBSIDE_RETENTION_REVOKED_DEVICE_DAYS", "90")),
        "RETENTION_REJECTED_PAYLOAD_DAYS": int(os.environ.get("KERBSIDE_RETENTION_REJECTED_PAYLOAD_DAYS", "90")),
        "RETENTION_GPS_DAYS": int(os.environ.get("KERBSIDE_RETENTION_GPS_DAYS", "90")),
    }


DEFAULTS = {
    # JSON columns (submissions, change rows, form definitions) are read and written by orjson.
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "json_serializer": jsonio.column_text,
                                  "json_deserializer": jsonio.column_value},
    # Blobs are the largest request bodies; the sync endpoint sets its own smaller limit.
    "MAX_CONTENT_LENGTH": MAX_BLOB_BYTES + 64 * 1024,
    "API_TITLE": "Kerbside API",
    "API_VERSION": "1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "openapi.json",
    # The docs UI is our own server-rendered page (server/api/docs.py): no CDN, no scripts.
    "BABEL_DEFAULT_LOCALE": "en",
    "LANGUAGES": ["en"],
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "ASSETS_DEBUG": False,
    "ASSETS_AUTO_BUILD": True,
}
