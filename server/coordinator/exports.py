"""Exports for the partners' own tools: street visits, mystery shops and checklists as CSV, the
same three in one XLSX workbook, actions as CSV, sites as GeoJSON; all filtered by period.

Streamed: each response is a generator that reads the database a page at a time
(keyset paging on the submission index) and writes as it goes, so memory stays flat
however large the area is. Every row carries both the key a program matches on
(`line_key`, `kept`) and the words a person reads (`line_label`, `kept_label`), in the
coordinator's language. Every text cell is formula-safe (server.csvsafe; in the workbook,
such a cell is stored as text).

Volunteers are never named: the files leave the system for partners (docs/privacy.md). A
street visit or checklist carries the volunteer's pseudonym ("Volunteer 1A2B3C"), a mystery
shop the shopper's ("Shopper 7F3A9C", the one partners already see on actions): keyed hashes,
stable from one export to the next but not reversible without the server's secret key, so a
partner can tell that two visits were made by the same person and never who it was.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import tempfile
from functools import lru_cache

from flask import Response, current_app, render_template, request, stream_with_context
from flask_babel import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy import and_, or_, select

from server import audit, csvsafe, privacy
from server.auth import allow
from server import reporting
from server.coordinator import bp
from server.coordinator.common import MAX_PERIOD_DAYS, area_or_404, requested_period
from server.coordinator.views import answer_value_label, review_status_label
from server.extensions import db
from server.models import Action, Answer, FormVersion, Site, Submission
from server.reporting import Period
from sync.validation import parse_datetime

PAGE = 250
# Rows written before a chunk is handed to the server: large enough to keep writes few.
CHUNK_ROWS = 2000
# Bytes per chunk when a finished workbook is sent.
FILE_CHUNK = 64 * 1024
# Excel's and LibreOffice's limit of rows in one sheet, the header row included.
MAX_SHEET_ROWS = 1_048_576
SHEET_TITLE = 31

VISIT_COLUMNS = ("submission_id", "form_id", "form_version", "kind", "site_id", "site_name", "volunteer",
                 "observed_at", "received_at", "review_status", "review_status_label", "visit_notes")
SUBMISSION_COLUMNS = VISIT_COLUMNS + ("line_key", "line_label", "theme", "grade", "grade_wording", "note", "photos")
# The shopper by the pseudonym partners see on actions: the services tested never learn who it was.
SHOP_VISIT_COLUMNS = tuple("shopper" if c == "volunteer" else c for c in VISIT_COLUMNS) + (
    "scenario", "channel", "channel_label", "contacted_at", "answered_at", "resolved_at", "minutes_to_answer",
    "treated_well", "treated_well_label", "what_happened")
SHOP_COLUMNS = SHOP_VISIT_COLUMNS + ("standard_key", "standard_label", "kept", "kept_label", "comment")
CHECKLIST_COLUMNS = VISIT_COLUMNS + ("part", "part_label", "promise_key", "promise_label", "kept", "kept_label",
                                     "comment")
ACTION_COLUMNS = ("action_id", "site_id", "site_name", "line_key", "title", "description", "assigned_to", "status",
                  "reason", "public_note", "created_at", "updated_at")
# The mystery shop's own questions; its other kept lines are the agreement's standards.
SHOP_QUESTIONS = ("scenario", "channel", "contacted_at", "answered_at", "resolved_at", "treated_well", "what_happened")


def column_meanings() -> dict[str, str]:
    """What each exported column holds, in words (the workbook's "Columns" sheet)."""
    return {
        "submission_id": _("The visit's id: every row of one visit has the same one."),
        "form_id": _("The form filled in."),
        "form_version": _("The version of the form filled in."),
        "kind": _("The kind of form: street, checklist or mystery_shop."),
        "site_id": _("The site's id (empty when no site was chosen)."),
        "site_name": _("The site's name."),
        "volunteer": _("The volunteer's pseudonym: the same person has the same one in every export. Never their name."),
        "shopper": _("The mystery shopper's pseudonym, as on actions: the same in every export. Never their name."),
        "observed_at": _("When the visit was made, as the volunteer's phone said (UTC, ISO 8601)."),
        "received_at": _("When the server received it (UTC, ISO 8601)."),
        "review_status": _("The coordinator's review: pending, accepted or flagged."),
        "review_status_label": _("The review in words."),
        "visit_notes": _("The notes written for the whole visit."),
        "line_key": _("The graded line's key, the same in every version of the form."),
        "line_label": _("The graded line's words on the form filled in."),
        "theme": _("The theme the line belongs to."),
        "grade": _("The grade letter: A no problem, B acceptable, C becoming unacceptable, D unacceptable."),
        "grade_wording": _("What that grade means for this line, as the form put it."),
        "note": _("The volunteer's note on this line."),
        "photos": _("The photos taken for this line, by their SHA-256, separated by spaces."),
        "scenario": _("The scenario the mystery shopper tested."),
        "channel": _("How contact was made: phone, online or in_person."),
        "channel_label": _("How contact was made, in words."),
        "contacted_at": _("When contact was made."),
        "answered_at": _("When an answer came (empty if none did)."),
        "resolved_at": _("When the problem was sorted (empty if it was not)."),
        "minutes_to_answer": _("Minutes from contact to answer."),
        "treated_well": _("Whether the shopper was treated in a friendly and helpful way: yes, partly or no."),
        "treated_well_label": _("The same, in words."),
        "what_happened": _("What happened, in the shopper's words."),
        "standard_key": _("The service standard's key in the agreement (empty when the shop graded none)."),
        "standard_label": _("The service standard's words."),
        "part": _("Which part of the agreement the promise is in: our_part or your_part."),
        "part_label": _("The part of the agreement, in words."),
        "promise_key": _("The promise's line key on the checklist."),
        "promise_label": _("The promise's words."),
        "kept": _("Whether it was kept: kept, partly, not_kept or cant_tell."),
        "kept_label": _("Whether it was kept, in words."),
        "comment": _("The volunteer's comment on this line."),
    }


# -- reading visits a page at a time -----------------------------------------------------------


def _iso(moment) -> str:
    return moment.isoformat() if moment else ""


def _csv_line(values) -> str:
    return csvsafe.csv_line(values)


class _Lines:
    """Each form version's lines by key, read once per export (visits name their version)."""

    def __init__(self, session):
        self.session = session
        self.versions: dict[tuple, dict] = {}

    def in_order(self, form_id: str, version: int, answers: dict) -> list:
        """The answers as (key, answer), in the form's order of lines (lines it no longer has last)."""
        lines = self.of(form_id, version)
        place = {key: n for n, key in enumerate(lines)}
        return sorted(answers.items(), key=lambda item: (place.get(item[0], len(place)), item[0]))

    def of(self, form_id: str, version: int) -> dict:
        key = (form_id, version)
        if key not in self.versions:
            found = self.session.get(FormVersion, key)
            lines = {}
            for section in (found.definition.get("sections", []) if found else []):
                for line in section.get("lines", []):
                    lines[line.get("key")] = {**line, "_part": section.get("part")}
            self.versions[key] = lines
        return self.versions[key]


def _visits(session, area_id: str, kind: str, period: Period | None, page: int):
    """The area's visits of one kind in the period, oldest first, each with its answers by line key.

    Read `page` visits at a time, by keyset on (observed_at, id); nothing accumulates in the
    session between pages (rows are plain tuples).
    """
    after = None
    while True:
        query = (select(Submission.id, Submission.form_id, Submission.form_version, Submission.kind,
                        Submission.site_id, Submission.person_id, Submission.observed_at, Submission.received_at,
                        Submission.review_status, Submission.notes)
                 .where(Submission.area_id == area_id, Submission.kind == kind,
                        # A visit its volunteer corrected is left out: the correction is its latest word.
                        reporting.latest_only())
                 .order_by(Submission.observed_at, Submission.id).limit(page))
        if period is not None:
            query = query.where(Submission.observed_at >= period.start, Submission.observed_at < period.end)
        if after is not None:
            query = query.where(or_(Submission.observed_at > after[0],
                                    and_(Submission.observed_at == after[0], Submission.id > after[1])))
        visits = session.execute(query).all()
        if not visits:
            return
        after = (visits[-1].observed_at, visits[-1].id)
        answers: dict[str, dict] = {}
        for row in session.execute(
            select(Answer.submission_id, Answer.line_key, Answer.theme, Answer.grade, Answer.value, Answer.note,
                   Answer.photos)
            .where(Answer.submission_id.in_([v.id for v in visits]))
            .order_by(Answer.submission_id, Answer.line_key)
        ):
            answers.setdefault(row.submission_id, {})[row.line_key] = row
        for v in visits:
            yield v, answers.get(v.id, {})
        if len(visits) < page:
            return


class _Words:
    """A label function remembered for one export: the same few keys are put in words on every row."""

    def __init__(self, words):
        self.words, self.known = words, {}

    def __call__(self, key):
        if key not in self.known:
            self.known[key] = self.words(key) if key else ""
        return self.known[key]


def _names(session, area_id: str) -> dict[str, str]:
    return dict(session.execute(select(Site.id, Site.name).where(Site.area_id == area_id)).all())


@lru_cache(maxsize=4096)
def _volunteer_code(key: bytes, person_id: str) -> str:
    return hmac.new(key, b"volunteer:" + person_id.encode(), hashlib.sha256).hexdigest()[:6].upper()


def volunteer_pseudonym(person_id: str) -> str:
    """A street rep's name in exports: "Volunteer 1A2B3C", a keyed hash of their id as privacy.pseudonym makes
    a shopper's (another prefix, so a rep's and a shopper's codes cannot be matched)."""
    return _("Volunteer %(code)s", code=_volunteer_code(current_app.config["SECRET_KEY"].encode(), person_id or ""))


def _volunteer(person_id: str, kind: str) -> str:
    """Who made a visit, as an export names them: a pseudonym, or "Erased volunteer".

    An erased person's visits are credited to one shared record: they are exported as that,
    not under a pseudonym, so nothing links them to each other or to the person any more.
    """
    if person_id == privacy.ERASED_PERSON_ID:
        return _("Erased volunteer")
    return privacy.pseudonym(person_id) if kind == "mystery_shop" else volunteer_pseudonym(person_id)


def _visit_columns(v, names, words: _Words) -> tuple:
    who = _volunteer(v.person_id, v.kind)
    return ((v.id, v.form_id, v.form_version, v.kind, v.site_id or "", names.get(v.site_id, ""), who,
             _iso(v.observed_at), _iso(v.received_at), v.review_status, words(v.review_status), v.notes or ""))


def street_visits(session, area_id: str, period: Period | None = None, page: int = PAGE):
    """Each street visit that graded a line, as (its visit columns, its graded lines' columns)."""
    names, book, status = _names(session, area_id), _Lines(session), _Words(review_status_label)
    for v, answers in _visits(session, area_id, "street", period, page):
        lines = book.of(v.form_id, v.form_version)
        graded = []
        for key, a in book.in_order(v.form_id, v.form_version, answers):
            if a.grade is None:
                continue
            line = lines.get(key, {})
            graded.append((key, line.get("label", key), a.theme, a.grade, (line.get("grades") or {}).get(a.grade, ""),
                           a.note or "", " ".join(a.photos or ())))
        if graded:
            yield _visit_columns(v, names, status), graded


def _minutes(contacted, answered):
    start, end = parse_datetime(contacted), parse_datetime(answered)
    return round((end - start).total_seconds() / 60, 1) if start and end else ""


def mystery_shop_visits(session, area_id: str, period: Period | None = None, page: int = PAGE):
    """Each mystery shop, as (its columns, one row per standard it graded; one empty row when it graded none)."""
    names, book, status = _names(session, area_id), _Lines(session), _Words(review_status_label)
    value_words = _Words(answer_value_label)
    for v, answers in _visits(session, area_id, "mystery_shop", period, page):
        lines = book.of(v.form_id, v.form_version)

        def value(key):
            return answers[key].value or "" if key in answers else ""

        shared = _visit_columns(v, names, status) + (
            value("scenario"), value("channel"), value_words(value("channel")),
            value("contacted_at"), value("answered_at"), value("resolved_at"),
            _minutes(value("contacted_at"), value("answered_at")),
            value("treated_well"), value_words(value("treated_well")), value("what_happened"))
        graded = []
        for key, a in book.in_order(v.form_id, v.form_version, answers):
            if key in SHOP_QUESTIONS or a.value is None:
                continue
            line = lines.get(key, {})
            if line and line.get("type") != "kept":
                continue
            graded.append((line.get("standard") or key.removeprefix("std_"), line.get("label", key), a.value,
                           value_words(a.value), a.note or ""))
        yield shared, graded or [("", "", "", "", "")]


def checklist_visits(session, area_id: str, period: Period | None = None, page: int = PAGE):
    """Each agreement checklist, as (its visit columns, one row per promise answered)."""
    names, book, status = _names(session, area_id), _Lines(session), _Words(review_status_label)
    value_words = _Words(answer_value_label)
    part_labels = {"our_part": _("Our part"), "your_part": _("Your part")}
    for v, answers in _visits(session, area_id, "checklist", period, page):
        lines = book.of(v.form_id, v.form_version)
        rows = []
        for key, a in book.in_order(v.form_id, v.form_version, answers):
            if a.value is None:
                continue
            line = lines.get(key, {})
            part = line.get("_part") or next((p for p in part_labels if key.startswith(p + "_")), "")
            rows.append((part, part_labels.get(part, ""), key, line.get("label", key), a.value,
                         value_words(a.value), a.note or ""))
        if rows:
            yield _visit_columns(v, names, status), rows


def submission_rows(session, area_id: str, page: int = PAGE, period: Period | None = None):
    """Every graded line of the area's street visits, oldest visit first, read `page` visits at a time."""
    for shared, lines in street_visits(session, area_id, period, page):
        for line in lines:
            yield shared + line


# -- CSV ---------------------------------------------------------------------------------------


def _grouped_csv_chunks(columns, grouped):
    """A CSV of visits and their lines, a few thousand rows per chunk.

    Each visit's columns are written once and put before each of its lines. CSV quotes each
    field on its own, so this is the text writing whole rows gives, unless a line holds a
    line break of its own: then its rows are written whole.
    """
    yield _csv_line(columns)
    buffer, scratch = io.StringIO(), io.StringIO()
    writer, line_writer = csvsafe.writer(buffer), csvsafe.writer(scratch)
    count = 0
    for shared, lines in grouped:
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
        if count >= CHUNK_ROWS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            count = 0
    yield buffer.getvalue()


def submissions_csv_chunks(session, area_id: str, period: Period | None = None):
    """The street visits CSV: one row per graded line."""
    return _grouped_csv_chunks(SUBMISSION_COLUMNS, street_visits(session, area_id, period))


def mystery_shops_csv_chunks(session, area_id: str, period: Period | None = None):
    """The mystery shops CSV: one row per standard graded."""
    return _grouped_csv_chunks(SHOP_COLUMNS, mystery_shop_visits(session, area_id, period))


def checklists_csv_chunks(session, area_id: str, period: Period | None = None):
    """The agreement checklists CSV: one row per promise answered."""
    return _grouped_csv_chunks(CHECKLIST_COLUMNS, checklist_visits(session, area_id, period))


def actions_csv_chunks(session, area_id: str):
    """The actions CSV."""
    names = _names(session, area_id)
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


# -- XLSX --------------------------------------------------------------------------------------


def xlsx_cell(sheet, value):
    """`value` as a workbook cell that a spreadsheet shows literally.

    Text that starts like a formula (csvsafe.FORMULA_STARTS) is stored as text and marked
    with Excel's own "quote prefix", so it is never evaluated, even after an edit; unlike the
    CSV, the cell keeps the volunteer's words exactly. Characters XML cannot hold are dropped.
    """
    if not isinstance(value, str):
        return value
    if not value:
        return None  # an empty cell is not written at all: smaller and quicker than an empty string
    value = ILLEGAL_CHARACTERS_RE.sub("", value)
    if not value.startswith(csvsafe.FORMULA_STARTS):
        return value
    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"
    cell.quotePrefix = True
    return cell


def workbook_sheets():
    """The workbook's sheets of records: (title, columns, visits function)."""
    # A sheet's title has at most 31 characters (Excel's rule; a translation may be longer).
    return [
        (_("Street visits")[:SHEET_TITLE], SUBMISSION_COLUMNS, street_visits),
        (_("Mystery shops")[:SHEET_TITLE], SHOP_COLUMNS, mystery_shop_visits),
        (_("Checklists")[:SHEET_TITLE], CHECKLIST_COLUMNS, checklist_visits),
    ]


def write_workbook(session, area_id: str, period: Period | None, path: str) -> None:
    """Write the workbook to `path`: a sheet per kind of visit and a "Columns" sheet saying what each column holds.

    openpyxl's write-only mode keeps each sheet in a temporary file as its rows are added, so
    memory stays flat however many visits there are.
    """
    book = Workbook(write_only=True)
    meanings = column_meanings()
    described = []
    for title, columns, visits in workbook_sheets():
        sheet, rows, part = book.create_sheet(title), 1, 1
        sheet.append(list(columns))
        for shared, lines in visits(session, area_id, period):
            for line in lines:
                if rows == MAX_SHEET_ROWS:
                    # A spreadsheet holds at most this many rows a sheet: carry on in the next one.
                    part += 1
                    suffix = f" ({part})"
                    sheet, rows = book.create_sheet(title[:SHEET_TITLE - len(suffix)] + suffix), 1
                    sheet.append(list(columns))
                sheet.append([xlsx_cell(sheet, value) for value in shared + line])
                rows += 1
        described += [(title, column, meanings.get(column, "")) for column in columns]
    sheet = book.create_sheet(_("Columns")[:SHEET_TITLE])
    sheet.append([_("Sheet"), _("Column"), _("What it holds")])
    for row in described:
        sheet.append([xlsx_cell(sheet, value) for value in row])
    book.save(path)


def workbook_chunks(session, area_id: str, period: Period | None):
    """The workbook's bytes, a chunk at a time.

    An XLSX file is a zip whose directory is written last, so it cannot be sent while it is
    being made: it is written to a temporary file (in write-only mode, so memory stays flat)
    and that file is then streamed and removed, whether or not the download completes.
    """
    handle, path = tempfile.mkstemp(prefix="kerbside-export-", suffix=".xlsx")
    os.close(handle)
    try:
        write_workbook(session, area_id, period, path)
        with open(path, "rb") as file:
            while chunk := file.read(FILE_CHUNK):
                yield chunk
    finally:
        os.unlink(path)


# -- GeoJSON -----------------------------------------------------------------------------------


def sites_geojson_chunks(session, area_id: str, period: Period | None = None):
    """A GeoJSON FeatureCollection: each site with the worst grade of its latest visit and its latest grade per line.

    With a period, "latest" means the latest in the period, and a site not visited in it has no grades.
    """
    per_line = reporting.latest_line_grades(session, area_id, period=period)
    yield '{"type":"FeatureCollection","features":['
    first = True
    for site in reporting.latest_worst_grades(session, area_id, period=period):
        geometry = {"type": "Point", "coordinates": [site.lng, site.lat]} if site.lat is not None and site.lng is not None else None
        feature = {"type": "Feature", "id": site.site_id, "geometry": geometry,
                   "properties": {"name": site.name, "worst_grade": site.worst,
                                  "latest_visit": _iso(site.observed_at) or None,
                                  "grades": per_line.get(site.site_id, {})}}
        yield ("" if first else ",") + json.dumps(feature, ensure_ascii=False)
        first = False
    yield "]}"


# -- pages and downloads -----------------------------------------------------------------------


def export_period() -> Period | None:
    """The period asked for with ?from=&to= (the other pages' rules), or None for the whole history.

    Only "from" given: from that day to today. Only "to": everything up to that day.
    """
    if not request.args.get("from", "").strip() and not request.args.get("to", "").strip():
        return None
    # Only "to" given: everything up to that day (as far back as a period may reach).
    return requested_period(MAX_PERIOD_DAYS)


def _record_export(area, export: str, period: Period | None):
    """Which export of which area and period, by whom: files leave the system, so each download is logged."""
    details = {"export": export}
    if period is not None:
        details |= {"from": period.start.date().isoformat(), "to": period.last_day.date().isoformat()}
    audit.record_and_commit("export.download", record_type="area", record_id=area.id, area_id=area.id,
                            details=details)


def _filename(area, name: str, period: Period | None) -> str:
    stem, _dot, extension = name.rpartition(".")
    within = f"-{period.start.date().isoformat()}-to-{period.last_day.date().isoformat()}" if period else ""
    return f"{area.slug}-{stem}{within}.{extension}"


def _download(chunks, mimetype: str, filename: str) -> Response:
    response = Response(stream_with_context(chunks), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<slug>/exports")
@allow("coordinator")
def exports(slug):
    """What can be downloaded, for which period, and in which format."""
    area = area_or_404(slug)
    period = export_period()
    return render_template("coordinator/exports.html", area=area, period=period,
                           start=period.start.date().isoformat() if period else "",
                           end=period.last_day.date().isoformat() if period else "")


def _export(slug, name: str, mimetype: str, make):
    area = area_or_404(slug)
    period = export_period()
    _record_export(area, name, period)
    return _download(make(db.session, area.id, period), mimetype, _filename(area, name, period))


@bp.get("/<slug>/exports/submissions.csv")
@allow("coordinator")
def export_submissions(slug):
    """CSV: one row per graded line of every street visit in the area and period."""
    return _export(slug, "submissions.csv", "text/csv", submissions_csv_chunks)


@bp.get("/<slug>/exports/mystery-shops.csv")
@allow("coordinator")
def export_mystery_shops(slug):
    """CSV: one row per standard graded in every mystery shop of the area and period."""
    return _export(slug, "mystery-shops.csv", "text/csv", mystery_shops_csv_chunks)


@bp.get("/<slug>/exports/checklists.csv")
@allow("coordinator")
def export_checklists(slug):
    """CSV: one row per promise answered in every agreement checklist of the area and period."""
    return _export(slug, "checklists.csv", "text/csv", checklists_csv_chunks)


@bp.get("/<slug>/exports/kerbside.xlsx")
@allow("coordinator")
def export_workbook(slug):
    """XLSX: street visits, mystery shops and checklists, a sheet each, and a sheet describing the columns."""
    return _export(slug, "kerbside.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                   workbook_chunks)


@bp.get("/<slug>/exports/actions.csv")
@allow("coordinator")
def export_actions(slug):
    """CSV: every action of the area with its status and reasons (whatever the period: actions outlive it)."""
    area = area_or_404(slug)
    _record_export(area, "actions.csv", None)
    return _download(actions_csv_chunks(db.session, area.id), "text/csv", f"{area.slug}-actions.csv")


@bp.get("/<slug>/exports/sites.geojson")
@allow("coordinator")
def export_sites(slug):
    """GeoJSON: the area's sites with their latest grades in the period."""
    return _export(slug, "sites.geojson", "application/geo+json", sites_geojson_chunks)
