"""Configuration, read from the environment so the same code runs anywhere."""

from __future__ import annotations

import os

from server import jsonio, languages
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
        # Requests per minute a device may make to the sync API, counted across every host (server/throttle.py).
        "SYNC_RATE_PER_MINUTE": int(os.environ.get("KERBSIDE_SYNC_RATE_PER_MINUTE", "240")),
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
        # Days of the change log kept whole: a phone that has not synced for longer rebuilds its copy.
        "CHANGES_KEEP_DAYS": int(os.environ.get("KERBSIDE_CHANGES_KEEP_DAYS", "30")),
        # Web sessions end after this long without a request, and this long after signing in.
        "SESSION_IDLE_MINUTES": int(os.environ.get("KERBSIDE_SESSION_IDLE_MINUTES", "30")),
        "SESSION_MAX_HOURS": int(os.environ.get("KERBSIDE_SESSION_MAX_HOURS", "12")),
        # Proxies in front of the server whose X-Forwarded-For/-Proto are believed (0: none).
        "TRUSTED_PROXIES": int(os.environ.get("KERBSIDE_TRUSTED_PROXIES", "0")),
        # Shared store for throttles (and, later, other counters) across hosts; else the database.
        "REDIS_URL": os.environ.get("KERBSIDE_REDIS_URL") or None,
        "THROTTLE_STORAGE": os.environ.get("KERBSIDE_THROTTLE_STORAGE") or None,
        # What the counters' Redis keys start with, so two deployments can share one Redis.
        "REDIS_PREFIX": os.environ.get("KERBSIDE_REDIS_PREFIX") or None,
        # Failed sign-ins allowed per email and per client address, in the `limits` notation.
        "SIGNIN_LIMIT_ACCOUNT": os.environ.get("KERBSIDE_SIGNIN_LIMIT_ACCOUNT", "10 per 15 minutes"),
        "SIGNIN_LIMIT_ADDRESS": os.environ.get("KERBSIDE_SIGNIN_LIMIT_ADDRESS", "50 per 15 minutes"),
        # Invite-code enrolments per client address: every attempt, and wrong codes.
        "ENROL_LIMIT_ADDRESS": os.environ.get("KERBSIDE_ENROL_LIMIT_ADDRESS", "20 per minute"),
        "ENROL_FAILURE_LIMIT_ADDRESS": os.environ.get("KERBSIDE_ENROL_FAILURE_LIMIT_ADDRESS", "30 per 15 minutes"),
        # Wrong tries of one person's re-join code, from anywhere (as sign-in counts per account).
        "REJOIN_FAILURE_LIMIT_PERSON": os.environ.get("KERBSIDE_REJOIN_FAILURE_LIMIT_PERSON", "10 per 15 minutes"),
        # -- Compression, health, metrics and logs (docs/deployment.md "Health, metrics and logs") --
        # Off when a proxy in front compresses instead (server/compression.py).
        "COMPRESSION": _switch("KERBSIDE_COMPRESSION", True),
        # Prometheus metrics at /metrics: off unless asked for; with a token, only for its bearer.
        "METRICS": _switch("KERBSIDE_METRICS", False),
        "METRICS_TOKEN": os.environ.get("KERBSIDE_METRICS_TOKEN") or None,
        # "json": one JSON object a line (server/logs.py); anything else: Flask's plain text.
        "LOG_FORMAT": (os.environ.get("KERBSIDE_LOG_FORMAT") or "text").strip().lower(),
        **_mail_and_map_settings(),
    }


def _mail_and_map_settings() -> dict:
    """Partner emails (docs/deployment.md, "Emails to partners") and the map's street tiles."""
    return {
        # No server: nothing is sent, and the action page says to tell the partner yourself.
        "MAIL_SERVER": os.environ.get("KERBSIDE_MAIL_SERVER") or None,
        "MAIL_PORT": int(os.environ["KERBSIDE_MAIL_PORT"]) if os.environ.get("KERBSIDE_MAIL_PORT") else None,
        "MAIL_USERNAME": os.environ.get("KERBSIDE_MAIL_USERNAME") or None,
        "MAIL_PASSWORD": os.environ.get("KERBSIDE_MAIL_PASSWORD") or None,
        # starttls (the default), ssl (SMTPS, usually port 465) or off (a relay on this machine).
        "MAIL_TLS": (os.environ.get("KERBSIDE_MAIL_TLS") or "starttls").strip().lower(),
        "MAIL_FROM": os.environ.get("KERBSIDE_MAIL_FROM") or None,
        # Seconds to wait for the mail server at each step; the page waits for it after saving.
        "MAIL_TIMEOUT": float(os.environ.get("KERBSIDE_MAIL_TIMEOUT", "10")),
        # Where the links in emails point: the address partners use to reach this server.
        "BASE_URL": os.environ.get("KERBSIDE_BASE_URL") or None,
        # A tile URL template ({z}/{x}/{y}); none by default, since the server may have no internet.
        "MAP_TILES": os.environ.get("KERBSIDE_MAP_TILES") or None,
        "MAP_ATTRIBUTION": os.environ.get("KERBSIDE_MAP_ATTRIBUTION") or "",
    }


def _switch(name: str, default: bool) -> bool:
    """An on/off setting: on, true, yes, 1 or off, false, no, 0 (anything else is refused)."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    value = value.strip().lower()
    if value in ("on", "true", "yes", "1"):
        return True
    if value in ("off", "false", "no", "0"):
        return False
    raise RuntimeError(f"{name} must be on or off, not {value!r}.")


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
    # The shipped languages (server/languages.py): British English, the msgids' own language, first.
    "BABEL_DEFAULT_LOCALE": languages.DEFAULT,
    "LANGUAGES": list(languages.LANGUAGES),
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "ASSETS_AUTO_BUILD": True,
    # -- Compression (server/compression.py): Brotli when the client lists it, else gzip; the
    # same for streamed exports (Flask-Compress leaves gzip out of streams by default).
    # zstd and deflate are left out: browsers that send them send br and gzip too.
    "COMPRESS_ALGORITHM": ["br", "gzip"],
    "COMPRESS_ALGORITHM_STREAMING": ["br", "gzip"],
    "COMPRESS_STREAMS": True,
}
