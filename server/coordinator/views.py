"""Reading pages: dashboard, priorities, trends, site history, map, coverage, mystery shops, review."""

from __future__ import annotations

from datetime import date, datetime, timezone
from functools import lru_cache

from flask import Response, abort, current_app, flash, g, redirect, render_template, request, send_from_directory, url_for
from flask_babel import format_date, format_time, get_locale, gettext as _, ngettext, to_user_timezone
from sqlalchemy import func, select

from server import audit, auth, blobs, operations, review
from server.auth import allow
from server import charts, reporting
from server.coordinator import bp
from server.coordinator.common import MAX_PERIOD_DAYS, area_or_404, in_area_or_404, page_number, period_args, requested_period
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
    # "long": "25 August 2026" in British English, the month in words in every language.
    return format_date(day, "long")


@bp.app_template_filter("kmonth")
def kmonth(month: str) -> str:
    """'2025-12' as "Dec 2025", in the reader's language (the trend tables and charts say the same)."""
    return charts.month_label(month)


@bp.app_template_filter("kdatetime")
def kdatetime(moment) -> str:
    """A moment in the reader's language and time zone: "25 August 2026, 14:05" in British English."""
    if not moment:
        return ""
    local = to_user_timezone(moment) if isinstance(moment, datetime) and moment.tzinfo else moment
    return _("%(date)s, %(time)s", date=_medium_date(local.date(), get_locale()), time=format_time(local.time(), "short"))


@bp.app_template_filter("kwalltime")
def kwalltime(moment) -> str:
    """A wall-clock time as a phone wrote it (not moved to the reader's zone), in the reader's language."""
    if not moment:
        return ""
    return _("%(date)s, %(time)s", date=_medium_date(moment.date(), get_locale()), time=format_time(moment.time(), "short"))


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


# The overdue window: a site is overdue when it had no street visit in this many days before the period's end.
OVERDUE_DEFAULT, OVERDUE_MAX = 30, 365
TOP_PRIORITIES = 5


def overdue_window() -> tuple[int, str | None]:
    """The overdue window from ?overdue=N (whole days, 1 to 365), and the problem with what was typed, if any."""
    raw = request.args.get("overdue", "").strip()
    if not raw:
        return OVERDUE_DEFAULT, None
    try:
        days = int(raw)
    except ValueError:
        days = None
    if days is None or not 1 <= days <= OVERDUE_MAX:
        return OVERDUE_DEFAULT, _("Give the overdue window as a whole number of days from 1 to %(max)s.",
                                  max=OVERDUE_MAX)
    return days, None


@bp.get("/<slug>/")
@allow("coordinator")
def dashboard(slug):
    """One picture of the area: top priorities, coverage, what waits for review, open actions."""
    area = area_or_404(slug)
    period = requested_period(90)
    overdue_days, overdue_error = overdue_window()
    session = db.session
    # Every priority is counted (the figure is exact); the page lists the first few.
    priorities = reporting.priority_list(session, area.id, period)
    cover = reporting.coverage(session, area.id, period, overdue_days=overdue_days)
    pending = session.execute(select(func.count()).select_from(Submission).where(
        Submission.area_id == area.id, Submission.review_status == "pending")).scalar()
    open_actions = session.execute(select(func.count()).select_from(Action).where(
        Action.area_id == area.id, Action.status.not_in(("done", "not_doing")))).scalar()
    themes = reporting.grade_shares_by_theme(session, area.id, period)
    strips = {
        theme: charts.grade_strip(f"strip-{n}", _("Grades for %(theme)s", theme=theme), counts, _grades_in_words(counts))
        for n, (theme, counts) in enumerate(sorted(themes.items()))
    }
    return render_template("coordinator/dashboard.html", area=area, period=period,
                           priorities=priorities[:TOP_PRIORITIES], priority_count=len(priorities),
                           coverage=cover, pending=pending, open_actions=open_actions, themes=themes, strips=strips,
                           lines=reporting.street_lines(session, area.id), period_args=period_args(period),
                           overdue_error=overdue_error,
                           coverage_args=period_args(period) | _overdue_args(overdue_days)), \
        (400 if overdue_error else 200)


def _overdue_args(days: int) -> dict:
    """?overdue=N for links, left out when it is the default (addresses stay short)."""
    return {} if days == OVERDUE_DEFAULT else {"overdue": days}


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
    partial = charts.partial_months(by_theme.months, period.start, period.end, datetime.now(timezone.utc))
    theme_charts = [(key, _chart(f"theme-{n}", key, by_theme, partial)) for n, key in enumerate(by_theme.keys)]
    line_order = [k for k in lines if k in by_line.keys] + [k for k in by_line.keys if k not in lines]
    line_charts = [(key, _chart(f"line-{n}", lines.get(key, {}).get("label", key), by_line, partial, key))
                   for n, key in enumerate(line_order)]
    sites = reporting.street_sites(db.session, area.id)
    return render_template("coordinator/trends.html", area=area, period=period, by_theme=by_theme, by_line=by_line,
                           theme_charts=theme_charts, line_charts=line_charts, line_order=line_order, lines=lines,
                           sites=sites, period_args=period_args(period), partial=partial)


def _chart(chart_id, label, table, partial, key=None):
    key = key or label
    shares = [table.share(month, key) for month in table.months]
    words = "; ".join(
        _("%(month)s: %(share)s", month=charts.month_label(month) + (f" ({partial[month]})" if month in partial else ""),
          share=_("no grades") if share is None else f"{round(share * 100)}%")
        for month, share in zip(table.months, shares))
    return charts.share_bars(chart_id, _("Share of C or D grades for %(label)s, by month", label=label),
                             table.months, shares, words, partial=partial)


@bp.get("/<slug>/sites/<site_id>")
@allow("coordinator")
def site(slug, site_id):
    """A site's history: every street visit with its grade per line, newest first."""
    area = area_or_404(slug)
    site = in_area_or_404(Site, site_id, area)
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
    # Street tiles only from a configured server (the CSP allows its origin, and no other).
    tiles = current_app.config.get("MAP_TILES") or ""
    attribution = current_app.config.get("MAP_ATTRIBUTION") or ""
    counts = {g: sum(1 for s in grades if s.worst == g) for g in "ABCD"}
    return render_template("coordinator/map.html", area=area, grades=grades, tiles=tiles, attribution=attribution,
                           counts=counts,
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
    overdue_days, overdue_error = overdue_window()
    result = reporting.coverage(db.session, area.id, period, overdue_days=overdue_days)
    return render_template("coordinator/coverage.html", area=area, period=period, coverage=result,
                           period_args=period_args(period), overdue_error=overdue_error,
                           overdue_typed=request.args.get("overdue", "") if overdue_error else overdue_days), \
        (400 if overdue_error else 200)


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


def review_filters() -> reporting.ReviewFilters:
    """The review queue's filters from the query: status, site, volunteer, form, kind, grade, period."""
    args = request.args
    status = args.get("status", "pending")
    status = status if status in (*reporting.REVIEW_STATUSES, "all") else "pending"
    kind = args.get("kind", "")
    grade = args.get("grade", "").upper()
    period = None
    if args.get("from", "").strip() or args.get("to", "").strip():
        # Only one end given: the period runs to today, or from as far back as a page shows.
        period = requested_period(MAX_PERIOD_DAYS)
    return reporting.ReviewFilters(
        status=status, site_id=args.get("site", "")[:36], person_id=args.get("volunteer", "")[:36],
        form_id=args.get("form", "")[:64], kind=kind if kind in KINDS else "",
        grade=grade if grade in reporting.GRADES else "", period=period)


@bp.get("/<slug>/submissions")
@allow("coordinator")
def submissions(slug):
    """Synced submissions, newest arrivals first, filtered; tick some or take every match to accept at once."""
    area = area_or_404(slug)
    filters = review_filters()
    page = page_number()
    rows, more = reporting.review_page(db.session, area.id, filters, page, REVIEW_PAGE)
    total = reporting.review_count(db.session, area.id, filters)
    return render_template("coordinator/submissions.html", area=area, rows=rows, more=more, page=page,
                           filters=filters, total=total, choices=reporting.review_choices(db.session, area.id),
                           kinds=KINDS, grades=reporting.GRADES, most_selected=review.MOST_SELECTED)


@bp.post("/<slug>/submissions/accept-selected")
@allow("coordinator")
def accept_selected(slug):
    """Accept the visits ticked on a page of the queue ("select all on this page" ticks every one shown)."""
    area = area_or_404(slug)
    filters = review_filters()
    chosen = request.form.getlist("on_page") if request.form.get("all_on_page") else request.form.getlist("visit")
    if len(chosen) > review.MOST_SELECTED:
        abort(400, description=_("Tick at most %(n)s visits at a time.", n=review.MOST_SELECTED))
    result = review.accept_selected(area.id, chosen, g.person)
    db.session.commit()
    if not chosen:
        flash(_("Tick the visits to accept first."))
    else:
        flash(ngettext("%(num)s visit accepted.", "%(num)s visits accepted.", result.count))
    return redirect(url_for("coordinator.submissions", slug=slug, **filters.args()))


@bp.route("/<slug>/submissions/accept-all", methods=["GET", "POST"])
@allow("coordinator")
def accept_matching(slug):
    """Accept every visit the filters match: a page that states the count and the filters, then the post."""
    area = area_or_404(slug)
    filters = review_filters()
    changed = None
    if request.method == "POST":
        confirmed = request.form.get("count", -1, type=int)
        result = review.accept_matching(area.id, filters, confirmed, g.person)
        if result.changed:
            db.session.commit()
            flash(ngettext("%(num)s visit accepted.", "%(num)s visits accepted.", result.count))
            return redirect(url_for("coordinator.submissions", slug=slug, **filters.args()))
        db.session.rollback()
        changed = confirmed
    total = reporting.review_count(db.session, area.id, filters) if filters.bulk_acceptable else 0
    return render_template("coordinator/accept_all.html", area=area, filters=filters, total=total, changed=changed,
                           described=_described(filters, reporting.review_choices(db.session, area.id))), \
        (409 if changed is not None else 200)


def _described(filters: reporting.ReviewFilters, choices: reporting.ReviewChoices) -> list[tuple[str, str]]:
    """The filters in words, as (what, which), for the confirmation page."""
    names = {"site": dict(choices.sites), "volunteer": dict(choices.people),
             "form": {form_id: title for form_id, _kind, title in choices.forms}}
    shown = [(_("Review status"), review_status_label(filters.status))]
    if filters.site_id:
        shown.append((_("Site"), names["site"].get(filters.site_id, _("a site not in this area"))))
    if filters.person_id:
        shown.append((_("Volunteer"), names["volunteer"].get(filters.person_id, _("nobody who sent visits here"))))
    if filters.form_id:
        shown.append((_("Form"), names["form"].get(filters.form_id, filters.form_id)))
    if filters.kind:
        shown.append((_("Kind of form"), form_kind_label(filters.kind)))
    if filters.grade:
        shown.append((_("Grade"), _("any line graded %(grade)s", grade=filters.grade)))
    if filters.period is not None:
        shown.append((_("Observed"), _("%(start)s to %(end)s", start=kdate(filters.period.start.date()),
                                       end=kdate(filters.period.last_day.date()))))
    return shown


@bp.route("/<slug>/submissions/<submission_id>", methods=["GET", "POST"])
@allow("coordinator")
def submission(slug, submission_id):
    """One submission in full, as it was sent; accept it or flag it, then on to the next visit in the queue."""
    area = area_or_404(slug)
    found = in_area_or_404(Submission, submission_id, area)
    filters = review_filters()
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
            _newer, older = reporting.review_neighbours(db.session, area.id, filters, found)
            if older:
                flash(_("Review saved. The volunteer sees it after their next sync. This is the next visit."))
                return redirect(url_for("coordinator.submission", slug=slug, submission_id=older, **filters.args()))
            flash(_("Review saved. The volunteer sees it after their next sync. That was the last visit in the list."))
            return redirect(url_for("coordinator.submissions", slug=slug, **filters.args()))
        except operations.OperationError as problem:
            db.session.rollback()
            error = problem.message
    newer, older = reporting.review_neighbours(db.session, area.id, filters, found)
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
                           observed_local=_local_time(found), filters=filters, newer=newer,
                           older=older), (400 if error else 200)


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
