"""One error envelope for every /api/ path; friendly pages everywhere else.

`{"code": "<machine_code>", "message": "<plain English>", "errors": {<field>: [..]}}`
— never an HTML page or a stack trace on an API path.
"""

from __future__ import annotations

import traceback

from flask import jsonify, render_template, request
from flask_babel import gettext as _
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from server.auth import DeviceAuthError, is_api_request
from server.schema_messages import translated

RETRY_AFTER_BUSY_S = 5

CODES = {
    400: "bad_request",
    401: "unauthorised",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    426: "protocol_unsupported",
    429: "too_many_requests",
    500: "server_error",
    503: "unavailable",
}


def messages():
    """Plain-English messages per status, translated at request time."""
    return {
        400: _("Kerbside could not read what was sent. Go back and try again."),
        401: _("Sign in to use this."),
        403: _("Your account cannot do this. If you think it should, ask your coordinator."),
        404: _("There is nothing at this address. Check the address, or go back to the front page."),
        405: _("This page cannot be used that way. Go back and try again."),
        413: _("This is too big to send in one go. Send less at a time."),
        415: _("Kerbside cannot take this kind of file here. Go back and try again."),
        422: _("Some of what was sent needs changing. The notes beside each part say what to change."),
        429: _("Too many requests. Wait a little, then try again."),
        500: _("Something went wrong on our side. Nothing you sent is lost. Try again later."),
        503: _("Kerbside is busy. Wait a moment, then try again. The field app tries again by itself."),
    }


class ApiError(HTTPException):
    """An error with its own machine code and field errors, for the envelope."""

    def __init__(self, status: int, code: str, message: str, errors=None, headers=None, extra=None):
        super().__init__(description=message)
        self.code = status
        self.machine_code = code
        self.errors = errors or {}
        self.extra_headers = headers or {}
        self.extra = extra or {}


def envelope(status: int, code: str, message: str, errors=None, headers=None, extra=None):
    body = {"code": code, "message": message, "errors": errors or {}, **(extra or {})}
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = str(value)
    return response


def flatten_validation(messages_by_location) -> dict:
    """webargs nests field errors under the location ("json"); devices want field names."""
    flat: dict = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            flat[prefix or "_schema"] = translated(value if isinstance(value, list) else [value])

    for location_errors in (messages_by_location or {}).values():
        walk("", location_errors)
    return flat


def _allow(error: HTTPException) -> dict:
    """A 405 says which methods the address takes (RFC 9110), on pages and API paths alike."""
    valid = getattr(error, "valid_methods", None)
    return {"Allow": ", ".join(sorted(valid))} if isinstance(error, MethodNotAllowed) and valid else {}


def handle_http_exception(error: HTTPException):
    status = error.code or 500
    if not is_api_request():
        if status >= 500:
            return render_template("error.html", status=status, message=messages()[500]), status
        message = error.description if isinstance(error, ApiError) or status in (400,) else messages().get(status, error.description)
        return render_template("error.html", status=status, message=message), status, _allow(error)
    if isinstance(error, ApiError):
        return envelope(status, error.machine_code, error.description, error.errors, error.extra_headers, error.extra)
    data = getattr(error, "data", None) or {}
    errors = flatten_validation(data.get("messages")) if status == 422 else {}
    default = messages().get(status, error.description)
    # Our own abort(...) calls carry a plain-English description; werkzeug's defaults do not.
    message = default if status == 422 or error.description == type(error).description else error.description
    headers = dict(data.get("headers") or {}) | _allow(error)
    if status == 413:
        message = messages()[413]
    return envelope(status, CODES.get(status, "error"), message, errors, headers)


def handle_device_auth(error: DeviceAuthError):
    return envelope(401, error.code, error.message, headers={"WWW-Authenticate": "Bearer"})


def handle_database_busy(error: OperationalError):
    """A locked or overloaded database is temporary: tell the device to come back."""
    from server.extensions import db

    db.session.rollback()
    if is_api_request():
        return envelope(503, "unavailable", messages()[503], headers={"Retry-After": RETRY_AFTER_BUSY_S})
    return render_template("error.html", status=503, message=messages()[503]), 503


def _log_unexpected(logger, error: Exception):
    """Log where a bug happened, never what it carried.

    An exception's message can hold a request's values (a KeyError's key, PostgreSQL's
    "Failing row contains (…)"), which may be names, emails or notes: the log gets the
    exception's type, the statement's shape for a database error, and the frames.
    """
    statement = getattr(error, "statement", None)
    frames = "".join(traceback.format_list(traceback.extract_tb(error.__traceback__)))
    logger.error("Unhandled %s on %s %s%s (its message is left out: it may hold personal data)\n%s",
                 type(error).__qualname__, request.method, request.path,
                 f" in statement {statement!r}" if statement else "", frames)


def handle_unexpected(error: Exception):
    """A bug: roll back, log it, tell whoever listens, and answer 500 without a stack trace."""
    from flask import current_app, got_request_exception

    from server.extensions import db

    db.session.rollback()
    _log_unexpected(current_app.logger, error)
    # Flask sends this only for errors no handler takes; this handler takes them all, so it
    # sends it itself: monitoring and the tests that prove no input reaches here listen to it.
    got_request_exception.send(current_app._get_current_object(), exception=error)
    if is_api_request():
        return envelope(500, "server_error", messages()[500])
    return render_template("error.html", status=500, message=messages()[500]), 500


def register(app):
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DeviceAuthError, handle_device_auth)
    app.register_error_handler(OperationalError, handle_database_busy)
    app.register_error_handler(Exception, handle_unexpected)
