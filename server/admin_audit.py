"""The audit log for admins: filter by person, action, record, area and dates; newest first; CSV download."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from flask import Blueprint, Response, render_template, request, stream_with_context
from flask_babel import format_number, gettext as _, ngettext
from sqlalchemy import and_, or_, select

from server import audit, review
from server.auth import allow
from server.coordinator.common import date_arg
from server.coordinator.exports import _csv_line
from server.extensions import db
from server.models import Area, AuditEntry, Person

bp = Blueprint("admin_audit", __name__, url_prefix="/admin/audit")

PAGE = 50
CSV_PAGE = 500
CSV_COLUMNS = ("seq", "at", "action", "person_id", "device_id", "record_type", "record_id", "area_id", "address",
               "details", "prev_hash", "entry_hash")


def action_label(action: str) -> str:
    """An entry's action in words; the action's own name is shown beside it (it is what filters use)."""
    return {
        "sign_in": _("Signed in"),
        "sign_in.failed": _("Sign-in refused"),
        "sign_out": _("Signed out"),
        "device.enrol": _("Device joined"),
        "device.revoke": _("Device signed out"),
        "device.signed_out": _("Device signed out on the phone"),
        "person.rename": _("Volunteer renamed"),
        "person.deactivate": _("Volunteer deactivated"),
        "person.reactivate": _("Volunteer reactivated"),
        "person.rejoin_code_reset": _("Re-join code made"),
        "person.merged": _("Two records of a person merged"),
        "invite.create": _("Invite made"),
        "form.draft": _("Form draft started"),
        "form.copy": _("Area's own copy of a shared form made"),
        "form.edit_draft": _("Form draft edited"),
        "form.publish": _("Form published"),
        "form.retire": _("Form retired"),
        "form.translate": _("Form translated"),
        "agreement.draft": _("Agreement draft started"),
        "agreement.edit_draft": _("Agreement draft edited"),
        "agreement.publish": _("Agreement published"),
        "agreement.translate": _("Agreement translated"),
        "submission.review": _("Visit reviewed"),
        "submission.accept_selected": _("Ticked visits accepted"),
        "submission.accept_matching": _("All matching visits accepted"),
        "area.settings": _("Area settings changed"),
        "site.approve": _("Proposed site approved"),
        "site.merge": _("Proposed site merged into another"),
        "site.reject": _("Proposed site rejected"),
        "site.edit_accept": _("Change to a site accepted"),
        "site.edit_refuse": _("Change to a site refused"),
        "action.create": _("Action raised"),
        "action.update": _("Action updated"),
        "action.comment": _("Action commented on"),
        "action.email": _("Email to the partner about an action"),
        "export.download": _("Export downloaded"),
        "import.unsent": _("Device export imported"),
        "audit.export": _("Audit log downloaded"),
        "person.export": _("Personal data exported"),
        "person.erase": _("Person erased"),
        "person.one_time_password": _("One-time password set"),
        "person.sign_out_everywhere": _("Signed out everywhere"),
        "password.change": _("Password changed"),
    }.get(action, action)


@dataclass
class AuditFilter:
    person: str = ""
    action: str = ""
    record_type: str = ""
    record_id: str = ""
    area: str = ""
    start: date | None = None
    end: date | None = None

    def args(self) -> dict:
        """The query arguments that ask for this filter again (links, the CSV)."""
        found = {"person": self.person, "action": self.action, "record_type": self.record_type,
                 "record_id": self.record_id, "area": self.area,
                 "from": self.start.isoformat() if self.start else "", "to": self.end.isoformat() if self.end else ""}
        return {k: v for k, v in found.items() if v}


def requested_filter() -> AuditFilter:
    def text(name, limit=100):
        return request.args.get(name, "").strip()[:limit]

    return AuditFilter(person=text("person", 36), action=text("action", 64), record_type=text("record_type", 32),
                       record_id=text("record_id"), area=text("area", 36), start=date_arg("from"), end=date_arg("to"))


def filtered(found: AuditFilter):
    """The entries that match `found`, newest first."""
    query = select(AuditEntry)
    if found.person:
        query = query.where(AuditEntry.person_id == found.person)
    if found.action:
        query = query.where(AuditEntry.action == found.action)
    record = []
    if found.record_type:
        record.append(AuditEntry.record_type == found.record_type)
    if found.record_id:
        record.append(AuditEntry.record_id == found.record_id)
    if record:
        condition = and_(*record)
        if found.record_id and found.record_type in ("", "submission"):
            # A visit's history: its own entries, and the bulk acceptances that list it.
            condition = or_(condition, review.history_condition(found.record_id))
        query = query.where(condition)
    if found.area:
        query = query.where(AuditEntry.area_id == found.area)
    if found.start:
        query = query.where(AuditEntry.at >= datetime(found.start.year, found.start.month, found.start.day,
                                                      tzinfo=timezone.utc))
    if found.end:
        query = query.where(AuditEntry.at < datetime(found.end.year, found.end.month, found.end.day,
                                                     tzinfo=timezone.utc) + timedelta(days=1))
    return query.order_by(AuditEntry.seq.desc())


@bp.get("")
@allow("admin")
def entries():
    """The audit log, newest first, a page at a time."""
    found = requested_filter()
    page = max(1, min(100_000, request.args.get("page", 1, type=int) or 1))
    rows = db.session.execute(filtered(found).offset((page - 1) * PAGE).limit(PAGE + 1)).scalars().all()
    shown = rows[:PAGE]
    people = {p.id: p.display_name for p in db.session.execute(
        select(Person).where(Person.id.in_({e.person_id for e in shown if e.person_id}))).scalars()}
    areas = db.session.execute(select(Area).order_by(Area.name)).scalars().all()
    actions = db.session.execute(select(AuditEntry.action).distinct().order_by(AuditEntry.action)).scalars().all()
    return render_template("admin/audit.html", entries=shown, more=len(rows) > PAGE, page=page, filter=found,
                           people=people, areas=areas, area_names={a.id: a.name for a in areas}, actions=actions,
                           details_text=_details_shown, action_label=action_label,
                           bulk_visit=lambda e: _bulk_visit(e, found))


def _details_text(details: dict) -> str:
    return json.dumps(details, ensure_ascii=False, sort_keys=True) if details else ""


def _details_shown(details: dict) -> str:
    """The details as the page shows them: a bulk acceptance's lists of visits by their length (the CSV has them all)."""
    return _details_text(review.details_shown(details))


def _bulk_visit(entry: AuditEntry, found: AuditFilter) -> dict | None:
    """For a page filtered by a visit: what a bulk acceptance did to that visit (its record and details), else None."""
    if entry.action not in review.BULK_ACTIONS or not found.record_id:
        return None
    change = review.accepted_visit(entry.details, found.record_id)
    if change is None:
        return None
    others = {k: v for k, v in entry.details.items() if k != "accepted"}
    count = entry.details.get("count", 0)
    return {"record": ngettext("submission %(id)s, the only visit of this bulk acceptance",
                               "submission %(id)s, one of %(count)s visits accepted together", count,
                               id=found.record_id, count=format_number(count)),
            "details": _details_text({**others, **change})}


def _csv_chunks(found: AuditFilter):
    yield _csv_line(CSV_COLUMNS)
    before = None
    table = AuditEntry.__table__
    while True:
        # Plain rows, a page at a time (keyset on seq): memory stays flat however long the log.
        query = filtered(found).with_only_columns(*(table.c[name] for name in CSV_COLUMNS)).limit(CSV_PAGE)
        if before is not None:
            query = query.where(AuditEntry.seq < before)
        rows = db.session.execute(query).all()
        for e in rows:
            yield _csv_line((e.seq, e.at.isoformat(), e.action, e.person_id or "", e.device_id or "",
                             e.record_type or "", e.record_id or "", e.area_id or "", e.address or "",
                             _details_text(e.details), e.prev_hash, e.entry_hash))
        if len(rows) < CSV_PAGE:
            return
        before = rows[-1].seq


@bp.get("/entries.csv")
@allow("admin")
def entries_csv():
    """The filtered entries as CSV (every page), newest first; the download is itself an entry."""
    found = requested_filter()
    audit.record_and_commit("audit.export", details={"filter": found.args()})
    response = Response(stream_with_context(_csv_chunks(found)), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="kerbside-audit.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response
