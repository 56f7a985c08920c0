"""Checklist results: for each promise of our part and your part, how often it was found kept."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import render_template, request
from flask_babel import gettext as _

from server import charts, reporting
from server.auth import allow
from server.coordinator import bp
from server.coordinator.common import area_or_404, period_args, requested_period
from server.extensions import db


def promise_charts(results: reporting.ChecklistResults, prefix: str, period: reporting.Period) -> dict:
    """A month-by-month SVG chart per promise (the trends page's bars): the share found partly or not kept.

    The bars show the promise falling short, as the trends page's show C and D grades, so a
    tall bar means the same on both pages; answers of "can't tell" are left out of the share.
    """
    drawn = {}
    partial = charts.partial_months(results.months, period.start, period.end, datetime.now(timezone.utc))
    for n, promise in enumerate(results.promises):
        shares = [promise.short_share(month) for month in results.months]
        words = "; ".join(
            _("%(month)s: %(share)s", month=charts.month_label(month), share=_("no answers") if share is None else f"{round(share * 100)}%")
            for month, share in zip(results.months, shares))
        drawn[promise.key] = charts.share_bars(
            f"{prefix}-{n}", _("Share of checklists finding “%(promise)s” partly or not kept, by month",
                               promise=promise.text), results.months, shares, words, partial)
    return drawn


def part_label(part: str) -> str:
    return {"our_part": _("Our part: what the council and partners promise"),
            "your_part": _("Your part: what residents promise")}.get(part, part)


@bp.get("/<slug>/checklists")
@allow("coordinator")
def checklist_results(slug):
    """Kept, partly, not kept and can't tell for each promise, month by month and by site."""
    area = area_or_404(slug)
    period = requested_period(365)
    results = reporting.checklist_results(db.session, area.id, period)
    # ?promise= narrows the by-site table to one promise; anything else shows each part.
    chosen = next((p for p in results.promises if p.key == request.args.get("promise")), None)
    return render_template("coordinator/checklists.html", area=area, period=period, results=results,
                           charts=promise_charts(results, "checklist", period), part_label=part_label,
                           period_args=period_args(period), chosen=chosen, choose_promise=True)
