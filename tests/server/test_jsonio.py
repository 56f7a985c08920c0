"""The API's JSON: orjson first, the standard library where orjson refuses valid JSON, never a 500."""

from __future__ import annotations

import math

import pytest
from flask import jsonify

from server import jsonio


def test_what_orjson_refuses_but_is_json_is_read_by_the_standard_library():
    assert jsonio.loads(b'{"note": "broken \\ud800"}') == {"note": "broken \ud800"}
    assert jsonio.loads(b"[1e400]") == [math.inf]
    assert jsonio.loads('{"a": 1}') == {"a": 1}


def test_a_body_no_parser_takes_is_bad_json_not_a_crash():
    with pytest.raises(jsonio.BodyTooDeep):
        jsonio.loads("[" * 100_000 + "]" * 100_000)
    assert issubclass(jsonio.BodyTooDeep, ValueError)  # so Flask answers it as bad JSON
    with pytest.raises(ValueError):
        jsonio.loads(b"{not json")


def test_an_answer_orjson_will_not_write_is_written_by_the_standard_library(app):
    with app.test_request_context():
        response = jsonify({"errors": {"answers.\ud800": ["Unknown field."]}, "big": 2**70})
    assert response.status_code == 200
    assert b'"answers.\\ud800"' in response.get_data() and b"1180591620717411303424" in response.get_data()
