"""Set-based writes convert each distinct moment once, and still convert every one correctly."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import postgresql

from server import bulk
from server.models import Answer


def test_a_remembered_time_converts_like_the_column_and_once_per_value():
    calls = []
    column = Answer.__table__.c.observed_at.type.bind_processor(postgresql.psycopg.dialect())

    def counting(value):
        calls.append(value)
        return column(value)

    convert = bulk._remembered(counting)
    moment = datetime(2026, 11, 20, 14, 5, tzinfo=timezone(timedelta(hours=1)))
    same_instant = moment.astimezone(timezone.utc)
    values = [moment] * 12 + [same_instant, None, moment + timedelta(minutes=1)]
    assert [convert(v) for v in values] == [column(v) for v in values]
    assert convert(moment).tzinfo == timezone.utc and convert(moment) == same_instant
    assert len(calls) == 3  # the moment, None and the minute after: twelve repeats and the same instant are remembered
    with pytest.raises(ValueError):
        convert(datetime(2026, 11, 20, 14, 5))  # naive times are refused as before


def test_only_time_columns_are_remembered():
    dialect = postgresql.psycopg.dialect()
    converters = dict(zip(("observed_at", "grade", "photos"),
                          bulk._converters(Answer.__table__, ["observed_at", "grade", "photos"], dialect)))
    assert converters["observed_at"].__qualname__.startswith("_remembered")
    assert converters["photos"] is bulk._json_text
