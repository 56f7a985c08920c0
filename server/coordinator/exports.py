"""Exports for the partners' own tools: CSV of graded lines and of actions, GeoJSON of sites.

Streamed: each response is a generator that reads the database a page at a time
(keyset paging on the submission index) and writes as it goes, so memory stays flat
however large the area is.
"""

from __future__ import annotations

import io
import json

from flask import Response, render_template, stream_with_context
from sqlalchemy import and_, or_, select

from server import audit, csvsafe
from server.auth import allow
from server import reporting
from server.coordinator import bp
from server.coordinator.common import area_or_404
from server.extensions import db
from server.models import Action, Answer, Site, Submission

PAGE = 250

SUBMISSION_COLUMNS = ("submission_id", "form_id", "form_version", "kind", "site_id", "site_name", "observed_at",
                      "received_at", "review_status", "line_key", "theme", "grade", "note", "photos")
ACTION_COLUMNS = ("action_id", "site_id", "site_name", "line_key", "title", "description", "assigned_to", "status",
                  "reason", "public_note", "created_at", "updated_at")


@bp.get("/<slug>/exports")
@allow("coordinator")
def exports(slug):
    """What can be downloaded, and in which format."""
    area = area_or_404(slug)
    return render_template("coordinator/exports.html", area=area)


def _csv_line(values) -> str:
    return csvsafe.csv_line(values)


def _iso(moment) -> str:
    return moment.isoformat() if moment else ""


def _visits_with_lines(session, area_id: str, page: int):
    """Each of the area's visits that graded a line, oldest first, as (its shared columns, its graded lines).

    Read `page` visits at a time. The shared columns are formatted once per visit, not once per line.
    """
    names = dict(session.execute(select(Site.id, Site.name).where(Site.area_id == area_id)).all())
    after = None
    while True:
        query = (select(Submission.id, Submission.form_id, Submission.form_version, Submission.kind,
                        Submission.site_id, Submission.observed_at, Submission.received_at, Submission.review_status)
                 # A visit its volunteer corrected is left out: the correction is its latest word.
                 .where(Submission.area_id == area_id, reporting.latest_only())
                 .order_by(Submission.observed_at, Submission.id).limit(page))
        if after is not None:
            query = query.where(or_(Submission.observed_at > after[0],
                                    and_(Submission.observed_at == after[0], Submission.id > after[1])))
        visits = session.execute(query).all()
        if not visits:
            return
        after = (visits[-1].observed_at, visits[-1].id)
        lines: dict[str, list] = {}
        for submission_id, line_key, theme, grade, note, photos in session.execute(
            select(Answer.submission_id, Answer.line_key, Answer.theme, Answer.grade, Answer.note, Answer.photos)
            .where(Answer.submission_id.in_([v.id for v in visits]), Answer.grade.is_not(None))
            .order_by(Answer.submission_id, Answer.line_key)
        ):
            lines.setdefault(submission_id, []).append((line_key, theme, grade, note or "", " ".join(photos or ())))
        for v in visits:
            if v.id in lines:
                yield ((v.id, v.form_id, v.form_version, v.kind, v.site_id or "", names.get(v.site_id, ""),
                        _iso(v.observed_at), _iso(v.received_at), v.review_status), lines[v.id])
        # Rows were read as plain tuples; nothing accumulates in the session between pages.
        if len(visits) < page:
            return


def submission_rows(session, area_id: str, page: int = PAGE):
    """Every graded line of the area's submissions, oldest visit first, read `page` visits at a time."""
    for shared, lines in _visits_with_lines(session, area_id, page):
        for line in lines:
            yield shared + line


def submissions_csv_chunks(session, area_id: str):
    """The submissions CSV, a page of rows per chunk."""
    yield _csv_line(SUBMISSION_COLUMNS)
    buffer, scratch = io.StringIO(), io.StringIO()
    writer, line_writer = csvsafe.writer(buffer), csvsafe.writer(scratch)
    count = 0
    for shared, lines in _visits_with_lines(session, area_id, PAGE):
        # The visit's columns are written once and put before each of its lines. CSV quotes
        # each field on its own, so this is the text writing whole rows gives, unless a line
        # holds a line break of its own: then its rows are written whole.
        scratch.seek(0)
        scratch.truncate()
        line_writer.writerows(lines)
        text = scratch.getvalue()
        if text.count("\n") == len(lines) and text.count("\r") == len(lines):
            prefix = _csv_line(shared)[:-2] + ","
            buffer.write(prefix + ("\r\n" + prefix).join(text.split("\r\n")[:-1]) + "\r\n")
        else:
            writer.writerows([shared + line for line in lines])
        count += len(lines)
        if count >= 2000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            count = 0
    yield buffer.getvalue()


def actions_csv_chunks(session, area_id: str):
    """The actions CSV."""
    names = dict(session.execute(select(Site.id, Site.name).where(Site.area_id == area_id)).all())
    yield _csv_line(ACTION_COLUMNS)
    rows = session.execute(
        select(Action.id, Action.site_id, Action.line_key, Action.title, Action.description, Action.assigned_to,
               Action.status, Action.reason, Action.public_note, Action.created_at, Action.updated_at)
        .where(Action.area_id == area_id).order_by(Action.created_at, Action.id)
        .execution_options(yield_per=PAGE)
    )
    for a in rows:
        yield _csv_line((a.id, a.site_id or "", names.get(a.site_id, ""), a.line_key or "", a.title, a.description,
                         a.assigned_to or "", a.status, a.reason or "", a.public_note or "", _iso(a.created_at),
                         _iso(a.updated_at)))


def sites_geojson_chunks(session, area_id: str):
    """A GeoJSON FeatureCollection: each site with the worst grade of its latest visit and its latest grade per line."""
    per_line = reporting.latest_line_grades(session, area_id)
    yield '{"type":"FeatureCollection","features":['
    first = True
    for site in reporting.latest_worst_grades(session, area_id):
        geometry = {"type": "Point", "coordinates": [site.lng, site.lat]} if site.lat is not None and site.lng is not None else None
        feature = {"type": "Feature", "id": site.site_id, "geometry": geometry,
                   "properties": {"name": site.name, "worst_grade": site.worst,
                                  "latest_visit": _iso(site.observed_at) or None,
                                  "grades": per_line.get(site.site_id, {})}}
        yield ("" if first else ",") + json.dumps(feature, ensure_ascii=False)
        first = False
    yield "]}"


def _record_export(area, export: str):
    """Which export of which area, by whom: files leave the system, so each download is logged."""
    audit.record_and_commit("export.download", record_type="area", record_id=area.id, area_id=area.id,
                            details={"export": export})


def _download(chunks, mimetype: str, filename: str) -> Response:
    response = Response(stream_with_context(chunks), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<slug>/exports/submissions.csv")
@allow("coordinator")
def export_submissions(slug):
    """CSV: one row per graded line of every submission in the area."""
    area = area_or_404(slug)
    _record_export(area, "submissions.csv")
    return _download(submissions_csv_chunks(db.session, area.id), "text/csv", f"{area.slug}-submissions.csv")


@bp.get("/<slug>/exports/actions.csv")
@allow("coordinator")
def export_actions(slug):
    """CSV: every action of the area with its status and reasons."""
    area = area_or_404(slug)
    _record_export(area, "actions.csv")
    return _download(actions_csv_chunks(db.session, area.id), "text/csv", f"{area.slug}-actions.csv")


@bp.get("/<slug>/exports/sites.geojson")
@allow("coordinator")
def export_sites(slug):
    """GeoJSON: the area's sites with their latest grades."""
    area = area_or_404(slug)
    _record_export(area, "sites.geojson")
    return _download(sites_geojson_chunks(db.session, area.id), "application/geo+json", f"{area.slug}-sites.geojson")


