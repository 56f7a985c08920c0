"""Reading pages: dashboard, priorities, trends, site history, map, coverage, mystery shops, review."""

from __future__ import annotations

import os
from datetime import date, datetime
from functools import lru_cache

from flask import Response, abort, current_app, flash, g, redirect, render_template, request, send_from_directory, url_for
from flask_babel import format_date, format_datetime, get_locale, gettext as _, to_user_timezone
from sqlalchemy import func, select

from server import audit, auth, blobs, operations
from server.auth import allow
from server import charts, reporting
from server.coordinator import bp
from server.coordinator.common import area_or_404, page_number, period_args, requested_period
from server.extensions import db
from server.models import Action, Answer, Area, Blob, Device, FormVersion, Person, Role, Site, Submission

REVIEW_PAGE = 50


# -- words and dates in templates (app-wide: the public page uses them too) --------------------


@bp.app_template_filter("kdate")
def kdate(moment) -> str:
    """A date as people write it, in the reader's language."""
    if not moment:
        return ""
    day = to_user_timezone(moment).date() if isinstance(moment, datetime) else moment
    return _medium_date(day, get_locale())


@lru_cache(maxsize=4096)
def _medium_date(day: date, locale) -> str:
    # Long lists repeat the same few days; Babel takes tens of microseconds to format each one.
    return format_date(day, "medium")


@bp.app_template_filter("kdatetime")
def kdatetime(moment) -> str:
    return format_datetime(moment, "medium") if moment else ""


@bp.app_template_global()
def answer_value_label(value) -> str:
    """An answer's stored value in words."""
    return {
        "kept": _("Kept"), "partly": _("Partly"), "not_kept": _("Not kept"), "cant_tell": _("Can't tell"),
        "phone": _("Phone"), "online": _("Online"), "in_person": _("In person"),
        "yes": _("Yes"), "no": _("No"), "unknown": _("Not said"),
    }.get(value, value if value is not None else "")


@bp.app_template_global()
def form_kind_label(kind: str) -> str:
    return {"street": _("Street visit"), "checklist": _("Agreement checklist"),
            "mystery_shop": _("Mystery shop")}.get(kind, kind)


@bp.app_template_global()
def review_status_label(status: str) -> str:
    return {"pending": _("Waiting for review"), "accepted": _("Accepted"), "flagged": _("Flagged")}.get(status, status)


@bp.app_template_global()
def version_status_label(status: str) -> str:
    return {"draft": _("Draft"), "published": _("Published"), "retired": _("Retired")}.get(status, status)


@bp.app_template_global()
def minutes_in_words(minutes: float) -> str:
    if minutes < 90:
        return _("%(n)s min", n=round(minutes))
    if minutes < 48 * 60:
        return _("%(n)s hours", n=round(minutes / 60, 1))
    return _("%(n)s days", n=round(minutes / 1440, 1))


@bp.get("/")
@allow("coordinator", "partner")
def index():
    """The areas this person coordinates (or partners in); straight to the only one."""
    allowed = auth.area_ids_for(g.person, ("coordinator", "partner", "admin"))
    query = select(Area).order_by(Area.name)
    if allowed is not None:
        query = query.where(Area.id.in_(allowed))
    areas = db.session.execute(query).scalars().all()
    if len(areas) == 1:
        area = areas[0]
        if auth.has_role(g.person, "coordinator", area.id):
            return redirect(url_for("coordinator.dashboard", slug=area.slug))
        return redirect(url_for("coordinator.actions_board", slug=area.slug))
    return render_template("coordinator/index.html", areas=areas)


@bp.get("/<slug>/")
@allow("coordinator")
def dashboard(slug):
    """One picture of the area: top priorities, coverage, what waits for review, open actions."""
    area = area_or_404(slug)
    period = requested_period(90)
    session = db.session
    priorities = reporting.priority_list(session, area.id, period, limit=5)
    cover = reporting.coverage(session, area.id, period)
    pending = session.execute(select(func.count()).select_from(Submission).where(
        Submission.area_id == area.id, Submission.review_status == "pending")).scalar()
    open_actions = session.execute(select(func.count()).select_from(Action).where(
        Action.area_id == area.id, Action.status.not_in(("done", "not_doing")))).scalar()
    themes = reporting.grade_shares_by_theme(session, area.id, period)
    strips = {
        theme: charts.grade_strip(f"strip-{n}", _("Grades for %(theme)s", theme=theme), counts, _grades_in_words(counts))
        for n, (theme, counts) in enumerate(sorted(themes.items()))
    }
    return render_template("coordinator/dashboard.html", area=area, period=period, priorities=priorities,
                           coverage=cover, pending=pending, open_actions=open_actions, themes=themes, strips=strips,
                           lines=reporting.street_lines(session, area.id), period_args=period_args(period))


def _grades_in_words(counts: dict) -> str:
    total = counts.get("total") or 0
    if not total:
        return _("No grades yet.")
    return ", ".join(
        _("%(grade)s: %(n)s of %(total)s", grade=grade, n=counts.get(grade, 0), total=total) for grade in "ABCD")


@bp.get("/<slug>/priorities")
@allow("coordinator")
def priorities(slug):
    """Sites × lines graded C or D at their latest visit, or worse than before, ranked."""
    area = area_or_404(slug)
    period = requested_period(90)
    rows = reporting.priority_list(db.session, area.id, period)
    return render_template("coordinator/priorities.html", area=area, period=period, rows=rows,
                           lines=reporting.street_lines(db.session, area.id),
                           actions=reporting.open_actions_by_line(db.session, area.id), period_args=period_args(period))


@bp.get("/<slug>/trends")
@allow("coordinator")
def trends(slug):
    """Share of C/D grades month by month, by theme and by line, drawn as SVG with tables beside."""
    area = area_or_404(slug)
    period = requested_period(365)
    lines = reporting.street_lines(db.session, area.id)
    by_theme, by_line = reporting.trend_tables(db.session, area.id, period)
    theme_charts = [(key, _chart(f"theme-{n}", key, by_theme)) for n, key in enumerate(by_theme.keys)]
    line_order = [k for k in lines if k in by_line.keys] + [k for k in by_line.keys if k not in lines]
    line_charts = [(key, _chart(f"line-{n}", lines.get(key, {}).get("label", key), by_line, key))
                   for n, key in enumerate(line_order)]
    sites = reporting.street_sites(db.session, area.id)
    return render_template("coordinator/trends.html", area=area, period=period, by_theme=by_theme, by_line=by_line,
                           theme_charts=theme_charts, line_charts=line_charts, line_order=line_order, lines=lines,
                           sites=sites, period_args=period_args(period))


def _chart(chart_id, label, table, key=None):
    key = key or label
    shares = [table.share(month, key) for month in table.months]
    words = "; ".join(
        _("%(month)s: %(share)s", month=month, share=_("no grades") if share is None else f"{round(share * 100)}%")
        for month, share in zip(table.months, shares))
    return charts.share_bars(chart_id, _("Share of C or D grades for %(label)s, by month", label=label),
                             table.months, shares, words)


@bp.get("/<slug>/sites/<site_id>")
@allow("coordinator")
def site(slug, site_id):
    """A site's history: every street visit with its grade per line, newest first."""
    area = area_or_404(slug)
    site = db.session.get(Site, site_id)
    if site is None or site.area_id != area.id:
        abort(404)
    history = reporting.site_history(db.session, site.id)
    lines = reporting.street_lines(db.session, area.id)
    used = [k for k in lines if any(k in v.grades for v in history)]
    site_actions = db.session.execute(select(Action).where(Action.site_id == site.id)
                                      .order_by(Action.created_at.desc())).scalars().all()
    return render_template("coordinator/site.html", area=area, site=site, history=history, lines=lines, used=used,
                           actions=site_actions)


@bp.get("/<slug>/map")
@allow("coordinator")
def map_view(slug):
    """Sites coloured by the worst grade of their latest visit: a map, and the same as a list."""
    area = area_or_404(slug)
    grades = sorted(reporting.latest_worst_grades(db.session, area.id),
                    key=lambda s: (-ord(s.worst) if s.worst else 0, -s.bad_lines, s.name))
    tiles = current_app.config.get("MAP_TILE_URL") or os.environ.get("KERBSIDE_MAP_TILE_URL", "")
    counts = {g: sum(1 for s in grades if s.worst == g) for g in "ABCD"}
    return render_template("coordinator/map.html", area=area, grades=grades, tiles=tiles, counts=counts,
                           unvisited=sum(1 for s in grades if s.worst is None))


@bp.get("/leaflet/<path:filename>")
@allow("coordinator")
def leaflet(filename):
    """Leaflet's JS, CSS and images from the xstatic-leaflet package: no CDN."""
    import xstatic.pkg.leaflet as leaflet_package

    return send_from_directory(leaflet_package.BASE_DIR, filename, max_age=86400)


@bp.get("/<slug>/coverage")
@allow("coordinator")
def coverage(slug):
    """Which sites were monitored in the period, which are overdue, visits per volunteer."""
    area = area_or_404(slug)
    period = requested_period(90)
    overdue_days = max(1, min(365, request.args.get("overdue", 30, type=int) or 30))
    result = reporting.coverage(db.session, area.id, period, overdue_days=overdue_days)
    return render_template("coordinator/coverage.html", area=area, period=period, coverage=result,
                           period_args=period_args(period))


@bp.get("/<slug>/mystery-shops")
@allow("coordinator")
def mystery_shops(slug):
    """Standards met and response times, beside what street reps graded in the same period."""
    area = area_or_404(slug)
    period = requested_period(180)
    summary = reporting.mystery_shop_summary(db.session, area.id, period)
    return render_template("coordinator/mystery_shops.html", area=area, period=period, summary=summary,
                           period_args=period_args(period))


# -- review ------------------------------------------------------------------------------------

KINDS = ("street", "checklist", "mystery_shop")


@bp.get("/<slug>/submissions")
@allow("coordinator")
def submissions(slug):
    """Synced submissions, newest arrivals first, filtered by review status and form kind."""
    area = area_or_404(slug)
    status = request.args.get("status", "pending")
    kind = request.args.get("kind", "")
    page = page_number()
    query = (select(Submission, Site.name.label("site_name"), Person.display_name.label("person_name"))
             .outerjoin(Site, Site.id == Submission.site_id).join(Person, Person.id == Submission.person_id)
             .where(Submission.area_id == area.id))
    if status in ("pending", "accepted", "flagged"):
        query = query.where(Submission.review_status == status)
    if kind in KINDS:
        query = query.where(Submission.kind == kind)
    rows = db.session.execute(query.order_by(Submission.received_at.desc(), Submission.id)
                              .offset((page - 1) * REVIEW_PAGE).limit(REVIEW_PAGE + 1)).all()
    return render_template("coordinator/submissions.html", area=area, rows=rows[:REVIEW_PAGE],
                           more=len(rows) > REVIEW_PAGE, page=page, status=status, kind=kind, kinds=KINDS)


@bp.route("/<slug>/submissions/<submission_id>", methods=["GET", "POST"])
@allow("coordinator")
def submission(slug, submission_id):
    """One submission in full, as it was sent; accept it or flag it with a reason."""
    area = area_or_404(slug)
    found = db.session.get(Submission, submission_id)
    if found is None or found.area_id != area.id:
        abort(404)
    error = None
    if request.method == "POST":
        try:
            before = {"review_status": found.review_status, "review_reason": found.review_reason}
            operations.review_submission(found, request.form.get("status", ""), g.person,
                                         request.form.get("reason", ""))
            audit.record("submission.review", record_type="submission", record_id=found.id, area_id=area.id,
                         before=before, after={"review_status": found.review_status,
                                               "review_reason": found.review_reason})
            db.session.commit()
            flash(_("Review saved. The volunteer sees it after their next sync."))
            return redirect(url_for("coordinator.submission", slug=slug, submission_id=found.id))
        except operations.OperationError as problem:
            db.session.rollback()
            error = problem.message
    version = db.session.get(FormVersion, (found.form_id, found.form_version))
    answers = found.data.get("answers", {})
    sections = []
    for section in (version.definition.get("sections", []) if version else []):
        lines = [(line, answers.get(line["key"])) for line in section.get("lines", [])]
        sections.append((section.get("theme", ""), lines))
    known = {line["key"] for _theme, lines in sections for line, _a in lines}
    extra = [(key, answer) for key, answer in answers.items() if key not in known]
    site = db.session.get(Site, found.site_id) if found.site_id else None
    person = db.session.get(Person, found.person_id)
    device = db.session.get(Device, found.device_id) if found.device_id else None
    reviewer = db.session.get(Person, found.reviewed_by) if found.reviewed_by else None
    site_actions = db.session.execute(select(Action).where(Action.submission_id == found.id)).scalars().all()
    return render_template("coordinator/submission.html", area=area, submission=found, version=version,
                           sections=sections, extra=extra, site=site, person=person, device=device,
                           reviewer=reviewer, error=error, actions=site_actions,
                           observed_local=_local_time(found)), (400 if error else 200)


def _local_time(submission: Submission):
    """The observation time as the volunteer's device showed it (its own offset)."""
    from datetime import timedelta, timezone

    text = submission.observed_offset or "+00:00"
    sign = -1 if text.startswith("-") else 1
    hours, _sep, minutes = text[1:].partition(":")
    offset = timezone(sign * timedelta(hours=int(hours or 0), minutes=int(minutes or 0)))
    return submission.observed_at.astimezone(offset)


def _shown_in_area(sha256: str, area_id: str) -> bool:
    """Whether a visit in the area shows the photo (its answers' photo lists are JSON, read here)."""
    lists = db.session.execute(select(Answer.photos).where(Answer.area_id == area_id, Answer.photos.is_not(None)))
    return any(sha256 in (photos or ()) for photos in lists.scalars())


@bp.get("/<slug>/photos/<sha256>")
@allow("coordinator")
def photo(slug, sha256):
    """A photo's bytes, for coordinators of an area where the uploading volunteer works."""
    area = area_or_404(slug)
    blob = db.session.get(Blob, sha256.lower())
    if blob is None:
        abort(404)
    if blob.device_id:
        device = db.session.get(Device, blob.device_id)
        in_area = db.session.execute(select(Role.id).where(Role.person_id == device.person_id,
                                                           Role.area_id == area.id)).first()
        if in_area is None:
            abort(404)
    elif not _shown_in_area(blob.sha256, area.id):
        # No uploader to go by (an erased volunteer's photo): only an area whose visits show it.
        abort(404)
    try:
        reader = blobs.store().stream(blob.stored_as)
    except blobs.BlobMissing:
        abort(404)
    # Streamed from the store a chunk at a time (a local file or an S3 object's body), never read
    # whole into the worker; werkzeug closes the reader when the answer is sent or dropped.
    # direct_passthrough keeps compression and other after-request handlers off the body.
    response = Response(reader, mimetype=blob.content_type, direct_passthrough=True)
    response.content_length = reader.size
    response.headers["Cache-Control"] = "private, max-age=86400, immutable"
    return response
