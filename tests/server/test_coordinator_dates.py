"""Dates on the coordinator's pages: the remembered formatting gives what Flask-Babel gives, per language."""

from __future__ import annotations

from datetime import date, datetime, timezone

from flask_babel import force_locale, format_date

from server.coordinator.views import kdate

MOMENTS = [datetime(2026, 1, 5, 10, tzinfo=timezone.utc), datetime(2026, 12, 31, 23, 59, tzinfo=timezone.utc),
           datetime(2026, 3, 1, 0, 0, 1, tzinfo=timezone.utc), date(2026, 7, 14)]


def test_kdate_matches_flask_babel_in_each_language(app):
    with app.test_request_context("/"):
        for language in ("en", "de", "fr"):
            with force_locale(language):
                for moment in MOMENTS * 2:  # the second time round comes from the cache
                    assert kdate(moment) == format_date(moment, "medium")
        with force_locale("de"):
            german = kdate(MOMENTS[0])
        with force_locale("en"):
            assert kdate(MOMENTS[0]) != german
        assert kdate(None) == ""
