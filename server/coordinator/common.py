"""What every coordinator view needs: the area it may see, the period asked for, form line labels."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from flask import abort, g, request
from flask_babel import gettext as _
from sqlalchemy import select

from server import auth
from server.reporting import Period
from server.extensions import db
from server.models import Area
from sync.protocol import EARLIEST_YEAR, LATEST_YEAR

COORDINATING = ("coordinator", "admin")
# A page shows at most ten years: longer, and a month-by-month chart has more bars than a screen.
MAX_PERIOD_DAYS = 3653
# Ids in addresses: a form or agreement version is a 32-bit number in the database.
MAX_VERSION = 2**31 - 1


def area_or_404(slug: str, roles=COORDINATING) -> Area:
    """The area called `slug` if the signed-in person holds one of `roles` in it; 404 otherwise."""
    area = db.session.execute(select(Area).where(Area.slug == slug)).scalar_one_or_none()
    allowed = auth.area_ids_for(g.person, roles)
    if area is None or (allowed is not None and area.id not in allowed):
        abort(404)
    return area


def in_area_or_404(model, record_id: str, area: Area):
    """The `model` row `record_id` if it belongs to `area`; 404 otherwise (another area's ids are not told apart from none)."""
    found = db.session.get(model, record_id)
    if found is None or found.area_id != area.id:
        abort(404)
    return found


def is_coordinator(area: Area) -> bool:
    return auth.has_role(g.person, "coordinator", area.id)


def requested_period(default_days: int) -> Period:
    """The period from ?from=YYYY-MM-DD&to=YYYY-MM-DD (inclusive days), else the last `default_days` days."""
    default = Period.last_days(default_days)
    start = date_arg("from")
    end = date_arg("to")
    if start is None and end is None:
        return default
    end_at = _midnight(end) + timedelta(days=1) if end else default.end
    start_at = _midnight(start) if start else end_at - timedelta(days=default_days)
    if start_at >= end_at:
        start_at = end_at - timedelta(days=1)
    start_at = max(start_at, end_at - timedelta(days=MAX_PERIOD_DAYS))
    return Period(start_at, end_at)


def date_arg(name: str) -> date | None:
    """A date from the query, or None when it is not given; a friendly 400 page when it cannot be one."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        day = None
    # Within these years the day after, and a period before, are always dates too.
    if day is None or not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
        abort(400, description=_("Choose dates between %(first)s and %(last)s, written like 2026-11-20.",
                                 first=f"{EARLIEST_YEAR}-01-01", last=f"{LATEST_YEAR}-12-31"))
    return day


def page_number(name: str = "page", last: int = 10_000) -> int:
    """A page number from the query, brought into 1..`last`; 1 when it is not a whole number."""
    number = request.args.get(name, 1, type=int) or 1
    return max(1, min(last, number))


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def period_args(period: Period) -> dict:
    """The query arguments that ask for `period` again (for links between pages)."""
    return {"from": period.start.date().isoformat(), "to": period.last_day.date().isoformat()}
