"""Each area's public page: the agreement, aggregated grades, what was done, and how to join.

Readable without signing in. It shows counts and actions only: never a volunteer's
name or device, and nothing that would tell a service which mystery shopper tested it.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_babel import get_locale, gettext as _
from sqlalchemy import case, select

from server.auth import allow
from server.coordinator.checklists import part_label, promise_charts
from server import charts, reporting
from server.extensions import db
from server.models import Action, Area, Form, FormVersion, Site
from sync import content

bp = Blueprint("public", __name__)

PUBLIC_PERIOD_DAYS = 90
STATUS_ORDER = ("in_progress", "acknowledged", "open", "done", "not_doing")


@bp.get("/area/<slug>")
@allow("public")
def area(slug):
    """The public page of one area."""
    found = db.session.execute(select(Area).where(Area.slug == slug)).scalar_one_or_none()
    if found is None:
        abort(404)
    period = reporting.Period.last_days(PUBLIC_PERIOD_DAYS)
    agreement = reporting.current_agreement(db.session, found.id)
    themes = reporting.grade_shares_by_theme(db.session, found.id, period)
    strips = []
    for n, (theme, counts) in enumerate(sorted(themes.items())):
        words = ", ".join(_("%(grade)s: %(share)s", grade=g, share=_share(counts.get(g, 0), counts["total"]))
                          for g in "ABCD")
        strips.append((theme, counts, charts.grade_strip(f"public-strip-{n}", _("Grades for %(theme)s", theme=theme),
                                                         counts, words)))
    order = case({status: n for n, status in enumerate(STATUS_ORDER)}, value=Action.status, else_=len(STATUS_ORDER))
    actions = db.session.execute(
        select(Action, Site.name.label("site_name")).outerjoin(Site, Site.id == Action.site_id)
        .where(Action.area_id == found.id).order_by(order, Action.updated_at.desc())
    ).all()
    street_form = _current_street_form(found)
    # The checklist figures the coordinator sees, for the same period as the grades above:
    # counts per promise, month and site only; no volunteer is named in them.
    checklists = reporting.checklist_results(db.session, found.id, period)
    # The agreement's words in the page's language where it has a translation, else as written.
    shown = content.localised("agreement", agreement.definition, agreement.translations, agreement.language,
                              str(get_locale() or "")) if agreement else None
    return render_template("public/area.html", area=found, agreement=agreement, shown_definition=shown,
                           strips=strips, period=period,
                           actions=actions, street_form=street_form, share=_share,
                           lines=reporting.street_lines(db.session, found.id), checklists=checklists,
                           checklist_charts=promise_charts(checklists, "public-checklist", period), part_label=part_label)


def _share(n: int, total: int) -> str:
    return f"{round(100 * n / total)}%" if total else "–"


def _current_street_form(area: Area) -> FormVersion | None:
    """The street form version reps are using now, so residents can see what is checked."""
    return db.session.execute(
        select(FormVersion).join(Form)
        .where(Form.kind == "street", FormVersion.status == "published",
               (Form.area_id == area.id) | Form.area_id.is_(None))
        .order_by(Form.area_id.is_(None), FormVersion.published_at.desc())
    ).scalars().first()
