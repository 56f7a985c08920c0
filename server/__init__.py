"""Kerbside's Flask server: the canonical data and the sync protocol v1 endpoint."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from functools import lru_cache
from urllib.parse import urlsplit

from flask import Flask, current_app, g, has_request_context, request
from flask_babel import get_locale
from sqlalchemy import event
from werkzeug.middleware.proxy_fix import ProxyFix

from server import auth, errors, headers, jsonio, languages, limits, mail, passwords, sessions
from server.config import DEFAULTS, from_environment
from server.extensions import babel, db, migrate, smorest

IMAGE_SOURCES = "'self' data: blob:"
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src " + IMAGE_SOURCES,
        "connect-src 'self'",
        "worker-src 'self'",
        "manifest-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def create_app(config: dict | None = None) -> Flask:
    """Build the app: settings from the environment, then `config` on top."""
    app = Flask(__name__, instance_path=os.environ.get("KERBSIDE_INSTANCE") or None)
    app.json = jsonio.JSONProvider(app)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(DEFAULTS)
    app.config.update(from_environment(app.instance_path))
    app.config.update(config or {})
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(app.instance_path)
    _trust_proxies(app)
    mail.check_settings(app.config)
    content_security_policy(app.config.get("MAP_TILES"))  # a tile URL no policy can allow stops the start
    # The photo store is made now: a bad KERBSIDE_BLOB_URL stops the start, not the first upload.
    from server import blobs

    blobs.init_app(app)
    # The cookie lasts no longer than the session it names; the row decides (server/sessions.py).
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=app.config["SESSION_MAX_HOURS"])
    app.session_interface = sessions.CookieSessionInterface()
    passwords.dummy_hash()  # made now, so the first unknown email takes no longer than any other

    db.init_app(app)
    # Batch mode lets future migrations alter tables on SQLite too.
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "migrations"), render_as_batch=True)
    _compile_translations_in_checkout()
    babel.init_app(app, locale_selector=_choose_locale)
    # The document lists only what the server answers: the real error envelope, and no
    # catch-all "default" response standing in for the statuses each operation states.
    from server.schemas import ErrorEnvelopeSchema

    smorest.ERROR_SCHEMA = ErrorEnvelopeSchema
    smorest.DEFAULT_ERROR_RESPONSE_NAME = None
    smorest.init_app(app, spec_kwargs={"info": {"description": (
        "Kerbside sync protocol v1: the API field devices use to enrol, sync and upload photos. Coordinators, "
        "partners and admins use the server's web pages, which are not part of this API.")}})
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _tune_sqlite(db.engine)

    _register_blueprints(app)
    errors.register(app)
    from server import throttle

    throttle.register(app)
    # Request ids and JSON logs first, so every later hook's lines carry the id; compression is
    # registered early, so its after-request hook runs last.
    from server import compression, logs, ops

    logs.configure(app)
    compression.compress.init_app(app)
    ops.register(app)
    app.before_request(limits.apply_body_limit)
    app.before_request(limits.refuse_unreadable_text)
    app.before_request(auth.enforce)
    app.after_request(_security_headers)
    app.after_request(headers.strict_transport)
    app.after_request(headers.no_store_when_private)
    app.jinja_env.globals.update(csrf_token=auth.csrf_token, get_locale=get_locale, html_lang=languages.html_lang,
                                 text_direction=languages.direction)

    from server import cli

    cli.register(app)
    return app


def _register_blueprints(app: Flask):
    from server.api import docs, sync
    from server import web

    smorest.register_blueprint(sync.blp)
    sync.security_schemes(smorest.spec)
    # flask-smorest registers this for paginated views; the API has none.
    smorest.spec.components.schemas.pop("PaginationMetadata", None)
    # Named in the document, though no view loads it whole (each pushed item is read alone).
    smorest.spec.components.schema("Mutation", schema=sync.schemas.MutationSchema)
    app.register_blueprint(docs.bp)
    app.register_blueprint(web.bp)
    from server import pwa, signin

    app.register_blueprint(signin.bp)
    app.register_blueprint(pwa.bp)
    from server import coordinator, public
    from server.coordinator import imports

    app.register_blueprint(imports.bp)

    app.register_blueprint(coordinator.bp)
    app.register_blueprint(public.bp)
    from server import admin_audit, admin_privacy

    app.register_blueprint(admin_audit.bp)
    app.register_blueprint(admin_privacy.bp)
    from server import account, admin_people

    app.register_blueprint(account.bp)
    app.register_blueprint(admin_people.bp)


def _trust_proxies(app: Flask):
    """Behind KERBSIDE_TRUSTED_PROXIES proxies, take the client's address and scheme from them.

    Each trusted proxy appends to X-Forwarded-For and sets X-Forwarded-Proto; only that many
    hops are believed, so a client cannot choose its own address. With 0 (the default) the
    headers are ignored: a server reached directly must not trust what a client says.
    """
    hops = app.config["TRUSTED_PROXIES"]
    if hops < 0:
        raise RuntimeError("KERBSIDE_TRUSTED_PROXIES must be 0 or more.")
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0, x_port=0, x_prefix=0)


def _compile_translations_in_checkout():
    """In a source checkout, compile stale .po files to the .mo Flask-Babel reads (`pybabel compile`).

    An installed package carries them compiled by its build (setup.py) and is never written to.
    """
    from server import pwa_build

    if os.path.isfile(os.path.join(os.path.dirname(pwa_build.HERE), "pwa", "index.html")):
        pwa_build.compile_translations()


def _choose_locale():
    """The reader's language: their choice (the switcher's cookie), else their browser's best match.

    Outside a request (CLI, demo), the default. Accept-Language matches by base language too, so
    a browser asking for `en-US` or `en` gets British English.
    """
    if not has_request_context():
        return None
    shipped = current_app.config["LANGUAGES"]
    chosen = languages.choose(request.cookies.get(languages.COOKIE), shipped)
    if chosen:
        return chosen
    for wanted, _quality in request.accept_languages:
        found = languages.choose(wanted, shipped)
        if found:
            return found
    return None


def tile_origin(template: str) -> str:
    """The origin a tile URL template loads from, as a CSP source ({s} subdomains become a wildcard)."""
    parts = urlsplit(template)
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        host = ""
    if parts.scheme not in ("https", "http") or not host or parts.username or parts.password:
        raise RuntimeError("KERBSIDE_MAP_TILES must be an http(s) URL template such as "
                           "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
    if host.startswith("{s}."):
        host = "*." + host[4:]
    if not all(c.isalnum() or c in "-.*" for c in host) or "*" in host[1:]:
        raise RuntimeError("KERBSIDE_MAP_TILES names a host that a browser's policy cannot allow: " + host)
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


@lru_cache(maxsize=8)
def content_security_policy(map_tiles: str | None) -> str:
    """The policy every answer carries: images may also come from the map's tile server, when one is set."""
    if not map_tiles:
        return CONTENT_SECURITY_POLICY
    return CONTENT_SECURITY_POLICY.replace("img-src " + IMAGE_SOURCES,
                                           "img-src " + IMAGE_SOURCES + " " + tile_origin(map_tiles), 1)


def _security_headers(response):
    response.headers.setdefault("Content-Security-Policy", content_security_policy(current_app.config.get("MAP_TILES")))
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _instance_secret(instance_path: str) -> str:
    """A per-installation secret kept in the instance folder when SECRET_KEY is not set."""
    path = os.path.join(instance_path, "secret_key")
    if not os.path.exists(path):
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
            handle.write(secrets.token_hex(32))
    with open(path) as handle:
        return handle.read().strip()


def _tune_sqlite(engine):
    """WAL for concurrent readers; writers take the lock at BEGIN so none fails mid-transaction.

    pysqlite's own transaction handling is switched off. A request that may write (any
    method but GET/HEAD/OPTIONS), and work outside requests, starts with BEGIN IMMEDIATE:
    a push reads, then writes, and a deferred transaction upgraded to a writer after
    another committed fails at once with "database is locked" instead of waiting. Page
    views and exports only read, so they begin deferred and never hold up a device.
    """

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        # A page that only reads may still write one short transaction (an export's audit entry).
        reading = (has_request_context() and request.method in ("GET", "HEAD", "OPTIONS")
                   and not g.get("kerbside_writes"))
        connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")
