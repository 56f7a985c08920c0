"""Request ids for every answer, and JSON logs (one object a line) when KERBSIDE_LOG_FORMAT=json.

Each request gets an id: the one a proxy sent in `X-Request-Id` when it is safe to repeat
(printable ASCII, no spaces, at most 128 characters), else a new one. It is echoed in the
answer's `X-Request-Id` and carried by every log line written while the request runs, so
one failing sync can be followed from the load balancer to the database.

A log line says what happened and where, never what was carried: the path without its
query string (a link may hold a token or an email), never a header's value, a cookie, a
form field or a body. Only `request` (method, path, status, time taken) and messages the
code writes itself (which already leave personal data out, server/errors.py) are logged.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
import uuid
from datetime import datetime, timezone

from flask import Flask, g, has_request_context, request
from flask.logging import default_handler

SAFE_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
REQUEST_LOGGER = "kerbside.request"


def request_id() -> str | None:
    return g.get("request_id") if has_request_context() else None


def _begin():
    sent = request.headers.get("X-Request-Id", "")
    g.request_id = sent if SAFE_REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex
    g.request_started = time.perf_counter()


def _end(response):
    response.headers["X-Request-Id"] = g.get("request_id") or uuid.uuid4().hex
    started = g.get("request_started")
    elapsed_ms = round((time.perf_counter() - started) * 1000, 2) if started is not None else None
    logging.getLogger(REQUEST_LOGGER).info("%s %s %s", request.method, request.path, response.status_code,
                                           extra={"status": response.status_code, "duration_ms": elapsed_ms})
    return response


class JSONFormatter(logging.Formatter):
    """time, level, logger, message, and the request's id, method and path when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context():
            line.update(request_id=request_id(), method=request.method, path=request.path)
        for key in ("status", "duration_ms"):
            if hasattr(record, key):
                line[key] = getattr(record, key)
        if record.exc_info:
            # The frames only: an exception's message may hold a request's values.
            kind, _error, frames = record.exc_info
            line["exception"] = kind.__qualname__ if kind else None
            line["frames"] = "".join(traceback.format_list(traceback.extract_tb(frames)))
        return json.dumps(line, ensure_ascii=False)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a line is written (gunicorn and tests replace it)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


_installed: dict[str, logging.Handler] = {}


def configure(app: Flask) -> None:
    """Request ids always; JSON lines on stderr from the root logger when LOG_FORMAT is json."""
    app.before_request(_begin)
    app.after_request(_end)
    if app.config.get("LOG_FORMAT") == "json":
        json_lines()
        app.logger.removeHandler(default_handler)  # else Flask's text line too


def json_lines() -> None:
    """Put the JSON handler on the root logger, alone, at INFO (again after a migration's fileConfig replaced it)."""
    root = logging.getLogger()
    handler = _installed.get("json")
    if handler is None:  # one per process, though tests make many apps
        handler = _installed["json"] = StderrHandler()
        handler.setFormatter(JSONFormatter())
    for other in list(root.handlers):
        if isinstance(other, logging.StreamHandler) and other is not handler and not _belongs_to_tests(other):
            root.removeHandler(other)  # a text handler (Alembic's logging.ini) would write each line again
    if handler not in root.handlers:
        root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    logging.getLogger(REQUEST_LOGGER).setLevel(logging.INFO)


def _belongs_to_tests(handler: logging.Handler) -> bool:
    return type(handler).__module__.startswith("_pytest")
