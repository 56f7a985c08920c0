"""JSON in and out of the API and the JSON columns with orjson, which parses and writes it several times faster.

A push of 100 visits is about 100 KB of JSON each way; with the standard library, reading and
writing it cost the worker more than the SQL that stores the visits. Output stays what
Flask's provider writes, byte for byte in meaning: dates go through Flask's own converter
(HTTP dates), keys need not be strings, and debug mode still pretty-prints.
"""

from __future__ import annotations

import json
import typing as t

import orjson
from flask.json.provider import DefaultJSONProvider
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def column_text(value) -> str:
    """The text of a JSON column's value (SQLAlchemy's json_serializer, and COPY's)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def column_value(text: str | bytes):
    """A JSON column's value from its text (SQLAlchemy's json_deserializer)."""
    return orjson.loads(text)


class BodyTooDeep(ValueError):
    """A body nested beyond what any parser here takes: answered as bad JSON (400), never a 500."""


def loads(text: str | bytes) -> t.Any:
    """A request body parsed by orjson, or by the standard library where orjson refuses valid JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        # orjson refuses integers beyond 64 bits, lone surrogates ("\ud800") and nesting beyond
        # 1024, all of which the standard library reads. Parsed, such an item of a push is
        # refused on its own; refused here, it would fail its whole batch. Bodies that are
        # not JSON at all are refused by both, at the cost of a second look.
        try:
            return json.loads(text)
        except RecursionError:
            raise BodyTooDeep("nested too deeply") from None


class JSONProvider(DefaultJSONProvider):
    def loads(self, s: str | bytes, **kwargs: t.Any) -> t.Any:
        if kwargs:
            return super().loads(s, **kwargs)
        # Both parsers' errors are ValueErrors, so Flask answers bad JSON as before.
        return loads(s)

    def response(self, *args: t.Any, **kwargs: t.Any):
        if (self.compact is None and self._app.debug) or self.compact is False:
            return super().response(*args, **kwargs)
        obj = self._prepare_response_obj(args, kwargs)
        try:
            body = orjson.dumps(obj, default=self.default, option=_OPTIONS)
        except orjson.JSONEncodeError:
            # An answer that echoes what a client sent (a field name in an error) may hold what
            # orjson will not write; the standard library escapes it. Rare, so the slow path is fine.
            return super().response(*args, **kwargs)
        return self._app.response_class(body + b"\n", mimetype=self.mimetype)


class CachedJSONParser(FlaskParser):
    """webargs reads the body Flask has already parsed, instead of parsing it a second time."""

    def _raw_load_json(self, req):
        if not is_json_request(req):
            return core.missing
        body = req.get_json(silent=True)
        if body is None:
            return super()._raw_load_json(req)  # words the error for a body that is not JSON
        return body
