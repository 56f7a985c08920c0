"""A person's data under UK GDPR: everything held about them (a subject access request), erasure, pseudonyms.

Callable without a request: the admin pages (server/admin/privacy.py) and the CLI
(`kerbside person export|erase ID`) both call these, then commit.

Erasure keeps what the area's figures are made of and removes who made them: the person's
identity (name, email, password, organisation), roles, devices and invites go; their visits
stay, credited to one shared "erased volunteer" record with no name of their own, and lose
their device, their GPS position and the raw payload's position. Audit entries name people
by id only, so they stay as they are and the hash chain stays whole: after erasure the id
leads to nobody.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import delete, or_, select, update

from server import audit
from server.extensions import db
from server.models import (
    Action,
    ActionComment,
    Area,
    AuditEntry,
    Blob,
    Change,
    Device,
    Invite,
    MutationAudit,
    MutationLog,
    Person,
    Role,
    Site,
    SiteEdit,
    Submission,
    WebSession,
    utcnow,
)

# The one record every erased person's visits are credited to: it has no email, no password
# and no roles, so nobody can sign in as it, and it says nothing about who made the visits.
ERASED_PERSON_ID = "00000000-0000-0000-0000-000000000000"
EXPORT_FORMAT = "kerbside-subject-access/1"


# Every column that refers to a person or a device, and what erasure does with it. A table added
# with such a reference must be handled in erase_person() and listed here: a test compares this
# with the models, so a new one cannot be forgotten (the person's row could not be deleted).
ERASURE_HANDLES = {
    ("role", "person_id"): "deleted",
    ("invite", "person_id"): "deleted",
    ("invite", "created_by"): "cleared",
    ("device", "person_id"): "deleted",
    ("submission", "person_id"): "moved to the erased-volunteer record",
    ("submission", "reviewed_by"): "cleared",
    ("submission", "device_id"): "cleared",
    ("action", "created_by"): "cleared",
    ("action_comment", "author_id"): "cleared (what was said stays with the action)",
    ("blob", "device_id"): "cleared",
    ("mutation_log", "device_id"): "deleted",
    ("mutation_audit", "device_id"): "deleted",
    ("web_session", "person_id"): "deleted",
    # A site they proposed, and a change to a site they asked for, stay for the coordinator to
    # decide, as the erased volunteer's (their phone, and so the proposal's own replica, is gone).
    ("site", "proposed_by"): "moved to the erased-volunteer record",
    ("site_edit", "person_id"): "moved to the erased-volunteer record",
    ("site_edit", "device_id"): "cleared",
    ("site_edit", "decided_by"): "cleared",
}


class NoSuchPerson(Exception):
    pass


def pseudonym(person_id: str | None) -> str:
    """A stable name for a mystery shopper that partners may see: "Shopper 7F3A9C", never who they are.

    A keyed hash (HMAC with the app's secret key) of the person's id: the same shopper has the
    same pseudonym on every page and export, and it cannot be turned back into the id without the key.
    """
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, b"shopper:" + (person_id or "").encode(), hashlib.sha256).hexdigest()
    return _("Shopper %(code)s", code=digest[:6].upper())


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _person_or_raise(person_id: str) -> Person:
    person = db.session.get(Person, person_id) if person_id else None
    if person is None or person.id == ERASED_PERSON_ID:
        raise NoSuchPerson(person_id)
    return person


def people(search: str = "", limit: int = 50) -> list[Person]:
    """People whose name or email contains `search`, for the admin's pick list."""
    query = select(Person).where(Person.id != ERASED_PERSON_ID).order_by(Person.display_name, Person.id)
    if search.strip():
        pattern = f"%{search.strip().lower()}%"
        query = query.where(or_(Person.display_name.ilike(pattern), Person.email.ilike(pattern),
                                Person.id == search.strip()))
    return list(db.session.execute(query.limit(limit)).scalars())


def _audit_about(person_id: str, device_ids: list[str]):
    """Audit entries by the person, by their devices, or about them or their devices."""
    conditions = [AuditEntry.person_id == person_id,
                  (AuditEntry.record_type == "person") & (AuditEntry.record_id == person_id)]
    if device_ids:
        conditions += [AuditEntry.device_id.in_(device_ids),
                       (AuditEntry.record_type == "device") & AuditEntry.record_id.in_(device_ids)]
    return select(AuditEntry).where(or_(*conditions)).order_by(AuditEntry.seq)


def export_person(person_id: str) -> dict:
    """Everything held about a person, as plain JSON data (a subject access request)."""
    person = _person_or_raise(person_id)
    areas = dict(db.session.execute(select(Area.id, Area.name)).all())
    devices = db.session.execute(select(Device).where(Device.person_id == person.id)
                                 .order_by(Device.created_at)).scalars().all()
    device_ids = [d.id for d in devices]
    submissions = db.session.execute(select(Submission).where(Submission.person_id == person.id)
                                     .order_by(Submission.observed_at, Submission.id)).scalars().all()
    photos = set()
    for submission in submissions:
        for answer in (submission.data.get("answers") or {}).values():
            if isinstance(answer, dict):
                photos.update(p for p in answer.get("photos") or () if isinstance(p, str))
    if device_ids:
        photos.update(db.session.execute(select(Blob.sha256).where(Blob.device_id.in_(device_ids))).scalars())
    invites = db.session.execute(select(Invite).where(Invite.person_id == person.id)).scalars().all()
    assigned = []
    if person.organisation:
        assigned = db.session.execute(select(Action).where(Action.assigned_to == person.organisation)
                                      .order_by(Action.created_at)).scalars().all()
    created = db.session.execute(select(Action).where(Action.created_by == person.id)
                                 .order_by(Action.created_at)).scalars().all()
    comments = db.session.execute(select(ActionComment).where(ActionComment.author_id == person.id)
                                  .order_by(ActionComment.created_at)).scalars().all()
    proposed = db.session.execute(select(Site).where(Site.proposed_by == person.id)
                                  .order_by(Site.created_at, Site.id)).scalars().all()
    site_edits = db.session.execute(select(SiteEdit).where(SiteEdit.person_id == person.id)
                                    .order_by(SiteEdit.created_at, SiteEdit.id)).scalars().all()
    reviewed = db.session.execute(select(Submission.id).where(Submission.reviewed_by == person.id)
                                  .order_by(Submission.id)).scalars().all()
    pushes = []
    if device_ids:
        pushes = db.session.execute(select(MutationLog).where(MutationLog.device_id.in_(device_ids),
                                                              MutationLog.status == "rejected")
                                    .order_by(MutationLog.received_at)).scalars().all()
    entries = db.session.execute(_audit_about(person.id, device_ids)).scalars().all()
    return {
        "format": EXPORT_FORMAT,
        "generated_at": _iso(utcnow()),
        "person": {"id": person.id, "display_name": person.display_name, "email": person.email,
                   "organisation": person.organisation, "created_at": _iso(person.created_at),
                   # The password itself is never stored; only whether one is set.
                   "has_password": bool(person.password_hash)},
        "roles": [{"role": r.role, "area_id": r.area_id, "area": areas.get(r.area_id)} for r in person.roles],
        "devices": [{"id": d.id, "name": d.name, "created_at": _iso(d.created_at),
                     "last_sync_at": _iso(d.last_sync_at), "revoked_at": _iso(d.revoked_at)} for d in devices],
        "invites": [{"id": i.id, "area_id": i.area_id, "role": i.role, "display_name": i.display_name,
                     "created_at": _iso(i.created_at), "expires_at": _iso(i.expires_at),
                     "used_at": _iso(i.used_at)} for i in invites],
        "visits": [{"id": s.id, "form_id": s.form_id, "form_version": s.form_version, "kind": s.kind,
                    "area_id": s.area_id, "area": areas.get(s.area_id), "site_id": s.site_id,
                    "device_id": s.device_id, "observed_at": _iso(s.observed_at), "received_at": _iso(s.received_at),
                    "notes": s.notes, "lat": s.lat, "lng": s.lng, "accuracy_m": s.accuracy_m,
                    "review_status": s.review_status, "review_reason": s.review_reason,
                    "as_sent": s.data} for s in submissions],
        "photos": sorted(photos),
        "rejected_items": [{"mid": m.mid, "device_id": m.device_id, "type": m.type, "received_at": _iso(m.received_at),
                            "result": m.result, "as_sent": m.data} for m in pushes],
        "actions_assigned_to_their_organisation": [_action(a) for a in assigned],
        "actions_they_raised": [_action(a) for a in created],
        "comments_they_wrote": [{"id": c.id, "action_id": c.action_id, "text": c.body,
                                 "created_at": _iso(c.created_at)} for c in comments],
        "sites_they_proposed": [{"id": site.id, "area_id": site.area_id, "name": site.name, "status": site.status,
                                 "lat": site.lat, "lng": site.lng, "notes": site.notes,
                                 "created_at": _iso(site.created_at)} for site in proposed],
        "site_changes_they_proposed": [{"id": e.id, "site_id": e.site_id, "area_id": e.area_id, "patch": e.patch,
                                        "status": e.status, "reason": e.reason, "created_at": _iso(e.created_at),
                                        "decided_at": _iso(e.decided_at)} for e in site_edits],
        "visits_they_reviewed": list(reviewed),
        "audit_entries": [{"seq": e.seq, "at": _iso(e.at), "action": e.action, "person_id": e.person_id,
                           "device_id": e.device_id, "record_type": e.record_type, "record_id": e.record_id,
                           "area_id": e.area_id, "address": e.address, "details": e.details} for e in entries],
    }


def _action(action: Action) -> dict:
    return {"id": action.id, "area_id": action.area_id, "title": action.title, "status": action.status,
            "assigned_to": action.assigned_to, "created_at": _iso(action.created_at)}


# -- erasure ---------------------------------------------------------------------------------


@dataclass
class ErasureReport:
    person_id: str
    counts: dict = field(default_factory=dict)

    def summary(self) -> str:
        return ", ".join(f"{name.replace('_', ' ')}: {n}" for name, n in self.counts.items())


def _erased_person() -> Person:
    placeholder = db.session.get(Person, ERASED_PERSON_ID)
    if placeholder is None:
        placeholder = Person(id=ERASED_PERSON_ID, display_name=_("Erased volunteer"))
        db.session.add(placeholder)
        db.session.flush()
    return placeholder


def _deidentified(data: dict) -> dict:
    """A visit as sent, without where the volunteer stood (the site it names stays)."""
    kept = {k: v for k, v in data.items() if k != "location"}
    if isinstance(kept.get("new_site"), dict):
        kept["new_site"] = {k: v for k, v in kept["new_site"].items() if k not in ("lat", "lng", "accuracy_m")}
    return kept


def erase_person(person_id: str, *, via: str = "web") -> ErasureReport:
    """Erase a person in the current transaction; the caller commits. Returns what was removed or changed."""
    person = _person_or_raise(person_id)
    report = ErasureReport(person.id)
    device_ids = list(db.session.execute(select(Device.id).where(Device.person_id == person.id)).scalars())
    placeholder = _erased_person()

    visits = db.session.execute(select(Submission).where(Submission.person_id == person.id)).scalars().all()
    for visit in visits:
        visit.person_id = placeholder.id
        visit.device_id = None
        visit.lat = visit.lng = visit.accuracy_m = None
        visit.data = _deidentified(visit.data)
    report.counts["visits_de_identified"] = len(visits)
    report.counts["reviews_unattributed"] = db.session.execute(
        update(Submission).where(Submission.reviewed_by == person.id).values(reviewed_by=None)).rowcount
    report.counts["actions_unattributed"] = db.session.execute(
        update(Action).where(Action.created_by == person.id).values(created_by=None)).rowcount
    report.counts["comments_unattributed"] = db.session.execute(
        update(ActionComment).where(ActionComment.author_id == person.id).values(author_id=None)).rowcount
    report.counts["site_proposals_unattributed"] = db.session.execute(
        update(Site).where(Site.proposed_by == person.id).values(proposed_by=placeholder.id)).rowcount \
        + db.session.execute(update(SiteEdit).where(SiteEdit.person_id == person.id)
                             .values(person_id=placeholder.id, device_id=None)).rowcount
    db.session.execute(update(SiteEdit).where(SiteEdit.decided_by == person.id).values(decided_by=None))
    report.counts["invites_removed"] = db.session.execute(
        delete(Invite).where(Invite.person_id == person.id)).rowcount
    db.session.execute(update(Invite).where(Invite.created_by == person.id).values(created_by=None))
    # What only their own devices would pull: their visits' review status, messages to them.
    report.counts["pull_records_removed"] = db.session.execute(
        delete(Change).where(Change.person_id == person.id)).rowcount
    if device_ids:
        db.session.execute(update(Blob).where(Blob.device_id.in_(device_ids)).values(device_id=None))
        # The ledger of their devices' pushes, with the payloads kept of rejected ones.
        db.session.execute(delete(MutationAudit).where(MutationAudit.device_id.in_(device_ids)))
        db.session.execute(delete(MutationLog).where(MutationLog.device_id.in_(device_ids)))
        db.session.execute(delete(Device).where(Device.id.in_(device_ids)))
    report.counts["devices_removed"] = len(device_ids)
    db.session.execute(delete(Role).where(Role.person_id == person.id))
    # Signed out at once wherever they are signed in (the foreign key cascades too; this does not rely on it).
    db.session.execute(delete(WebSession).where(WebSession.person_id == person.id))
    db.session.expunge(person)
    db.session.execute(delete(Person).where(Person.id == person.id))
    audit.record("person.erase", record_type="person", record_id=report.person_id,
                 details={"via": via, **report.counts})
    db.session.flush()
    return report
