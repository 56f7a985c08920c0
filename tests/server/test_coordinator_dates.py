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
                    assert kdate(moment) == format_date(moment, "long")
        with force_locale("de"):
            german = kdate(MOMENTS[0])
        with force_locale("en"):
            assert kdate(MOMENTS[0]) != german
        assert kdate(None) == ""


def test_dates_read_as_british_english_by_default(app):
    from server.coordinator.views import kdatetime

    with app.test_request_context("/"):
        assert kdate(date(2026, 8, 25)) == "25 August 2026"
        assert kdatetime(datetime(2026, 8, 25, 14, 5, tzinfo=timezone.utc)) == "25 August 2026, 14:05"
    with app.test_request_context("/", headers={"Accept-Language": "en-US,en;q=0.8"}):
        assert kdate(date(2026, 8, 25)) == "25 August 2026"
