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
        # Where photos are kept: file:///folder or s3://bucket/prefix (server/blobs.py); unset, BLOB_DIR.
        # A store that is not AWS is named by its endpoint; credentials come from the AWS_* variables.
        "BLOB_URL": os.environ.get("KERBSIDE_BLOB_URL") or None,
        "BLOB_ENDPOINT_URL": os.environ.get("KERBSIDE_BLOB_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL") or None,
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
        # Web sessions end after this long without a request, and this long after signing in.
        "SESSION_IDLE_MINUTES": int(os.environ.get("KERBSIDE_SESSION_IDLE_MINUTES", "30")),
        "SESSION_MAX_HOURS": int(os.environ.get("KERBSIDE_SESSION_MAX_HOURS", "12")),
        # Proxies in front of the server whose X-Forwarded-For/-Proto are believed (0: none).
        "TRUSTED_PROXIES": int(os.environ.get("KERBSIDE_TRUSTED_PROXIES", "0")),
        # Shared store for throttles (and, later, other counters) across hosts; else the database.
        "REDIS_URL": os.environ.get("KERBSIDE_REDIS_URL") or None,
        "THROTTLE_STORAGE": os.environ.get("KERBSIDE_THROTTLE_STORAGE") or None,
        # Failed sign-ins allowed per email and per client address, in the `limits` notation.
        "SIGNIN_LIMIT_ACCOUNT": os.environ.get("KERBSIDE_SIGNIN_LIMIT_ACCOUNT", "10 per 15 minutes"),
        "SIGNIN_LIMIT_ADDRESS": os.environ.get("KERBSIDE_SIGNIN_LIMIT_ADDRESS", "50 per 15 minutes"),
        # Invite-code enrolments per client address: every attempt, and wrong codes.
        "ENROL_LIMIT_ADDRESS": os.environ.get("KERBSIDE_ENROL_LIMIT_ADDRESS", "20 per minute"),
        "ENROL_FAILURE_LIMIT_ADDRESS": os.environ.get("KERBSIDE_ENROL_FAILURE_LIMIT_ADDRESS", "30 per 15 minutes"),
    }


DEFAULTS = {
    # JSON columns (submissions, change rows, form definitions) are read and written by orjson.
    # A database error's message leaves out the statement's values (names, emails, notes), so
    # the last-resort handler's log line never carries personal data.
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "json_serializer": jsonio.column_text,
                                  "json_deserializer": jsonio.column_value, "hide_parameters": True},
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
