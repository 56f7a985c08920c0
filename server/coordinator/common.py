"""What every coordinator view needs: the area it may see, the period asked for, form line labels."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from flask import abort, g, request
from sqlalchemy import select

from server import auth
from server.coordinator.queries import Period
from server.extensions import db
from server.models import Area

COORDINATING = ("coordinator", "admin")


def area_or_404(slug: str, roles=COORDINATING) -> Area:
    """The area called `slug` if the signed-in person holds one of `roles` in it; 404 otherwise."""
    area = db.session.execute(select(Area).where(Area.slug == slug)).scalar_one_or_none()
    allowed = auth.area_ids_for(g.person, roles)
    if area is None or (allowed is not None and area.id not in allowed):
        abort(404)
    return area


def is_coordinator(area: Area) -> bool:
    return auth.has_role(g.person, "coordinator", area.id)


def requested_period(default_days: int) -> Period:
    """The period from ?from=YYYY-MM-DD&to=YYYY-MM-DD (inclusive days), else the last `default_days` days."""
    default = Period.last_days(default_days)
    start = _date_arg("from")
    end = _date_arg("to")
    if start is None and end is None:
        return default
    end_at = _midnight(end) + timedelta(days=1) if end else default.end
    start_at = _midnight(start) if start else end_at - timedelta(days=default_days)
    if start_at >= end_at:
        start_at = end_at - timedelta(days=1)
    return Period(start_at, end_at)


def _date_arg(name: str) -> date | None:
    raw = request.args.get(name, "").strip()
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def period_args(period: Period) -> dict:
    """The query arguments that ask for `period` again (for links between pages)."""
    return {"from": period.start.date().isoformat(), "to": period.last_day.date().isoformat()}
