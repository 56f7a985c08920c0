"""What a load balancer and a monitoring system ask: is the process up, can it serve, what has it done.

- `/healthz`: the process answers (no database, no store), for a liveness probe: restart me if not.
- `/readyz`: the database answers a cheap query and the blob store a cheap look-up, for a
  readiness probe: send me no traffic if not. A failure is 503 with the error envelope
  naming which part failed, never the error's text (it may carry a host name or a user).
- `/metrics`: Prometheus's text format (server/metrics.py), only when KERBSIDE_METRICS is on,
  and with KERBSIDE_METRICS_TOKEN set only for `Authorization: Bearer <that token>`.

None of them is a page: they answer JSON or plain text and are never cached.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, jsonify, request
from flask_babel import gettext as _
from sqlalchemy import text

from server import blobs, metrics
from server.auth import allow
from server.errors import envelope
from server.extensions import db

bp = Blueprint("ops", __name__)

# A name no photo has (a SHA-256 of all zeros): looking it up reaches the store, finds nothing.
PROBE_NAME = "0" * 64


def _uncached(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
@allow("public")
def healthz():
    """The process is up and answering; nothing else is touched."""
    return _uncached(jsonify({"status": "ok"}))


@bp.get("/readyz")
@allow("public")
def readyz():
    """The database and the blob store both answer: this host can serve devices."""
    failed = {}
    try:
        db.session.execute(text("SELECT 1")).scalar_one()
    except Exception as error:  # any failure means not ready; its text stays out of the answer
        db.session.rollback()
        current_app.logger.warning("Not ready: the database did not answer (%s).", type(error).__qualname__)
        failed["database"] = [_("The database did not answer.")]
    else:
        db.session.rollback()
    try:
        store = blobs.store()
        ping = getattr(store, "ping", None)
        ping() if callable(ping) else store.exists(PROBE_NAME)
    except Exception as error:
        current_app.logger.warning("Not ready: the photo store did not answer (%s).", type(error).__qualname__)
        failed["blob_store"] = [_("The photo store did not answer.")]
    if failed:
        return _uncached(envelope(503, "not_ready", _("This server cannot serve requests yet."), errors=failed,
                                  headers={"Retry-After": 5}))
    return _uncached(jsonify({"status": "ok", "checks": {"database": "ok", "blob_store": "ok"}}))


@bp.get("/metrics")
@allow("public")
def metrics_page():
    """Prometheus metrics, when switched on; with a token set, for its bearer only."""
    config = current_app.config
    if not config.get("METRICS"):
        abort(404)
    if not metrics.token_accepted(config.get("METRICS_TOKEN"), request.headers.get("Authorization")):
        response = envelope(401, "token_invalid", _("These metrics need the metrics token."))
        response.headers["WWW-Authenticate"] = "Bearer"
        return _uncached(response)
    body, content_type = metrics.exposition()
    return _uncached(Response(body, content_type=content_type))


def register(app):
    app.register_blueprint(bp)
    app.after_request(_count_sync)


def _count_sync(response):
    """after_request: every sync round trip by its status, refusals (401, 413, 429) too."""
    if request.endpoint == "sync.sync":
        metrics.sync_answered(response.status_code)
    return response
