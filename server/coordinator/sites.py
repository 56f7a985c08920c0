"""Sites proposed in the field, and street reps' edits of sites, waiting for a coordinator.

A proposed site is on its proposer's phone alone until a coordinator approves it (perhaps
renamed), merges it into an existing site (its visits move there) or rejects it (its visits
stay, with no site). A street rep's edit of a site waits in `SiteEdit` until it is accepted or
refused. Each decision writes the changes phones pull and an audit entry, in one transaction.

The rules are the functions at the top (a test calls them without a request); the views
below check the area, the form and the confirmation, then call one of them.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass

from flask import abort, flash, g, has_request_context, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select, update

from server import audit, changes
from server.auth import allow
from server.coordinator import bp
from server.coordinator.common import area_or_404, in_area_or_404, page_number
from server.extensions import db
from server.models import Action, Answer, Area, Person, Site, SiteEdit, Submission, utcnow
from server.operations import OperationError
from sync.validation import content_problem

QUEUE_PAGE = 20
_WORD = re.compile(r"\w+")
NAME_MAX = 200
REASON_MAX = 1000


# -- the rules -------------------------------------------------------------------------------


def waiting_counts(session, area_id: str) -> tuple[int, int]:
    """How many proposed sites and how many site edits wait for a coordinator in the area."""
    sites = session.execute(select(func.count()).select_from(Site).where(
        Site.area_id == area_id, Site.status == "proposed")).scalar_one()
    edits = session.execute(select(func.count()).select_from(SiteEdit).where(
        SiteEdit.area_id == area_id, SiteEdit.status == "pending")).scalar_one()
    return sites, edits


def _clean_text(value: str, limit: int, field: str) -> str:
    text = (value or "").strip()
    if len(text) > limit:
        raise OperationError("too_long", _("Use at most %(n)s characters.", n=limit), {field: [_("Too long.")]})
    if content_problem(text) is not None:
        raise OperationError("invalid_text", _("This holds control characters or a broken symbol. Type it again."),
                             {field: [_("Type it again.")]})
    return text


def _waiting(site: Site):
    if site.status != "proposed":
        raise OperationError("already_decided", _("A coordinator has already decided about this site."))


def _visits_of(session, site_id: str) -> list[Submission]:
    return session.execute(select(Submission).where(Submission.site_id == site_id)).scalars().all()


def _refuse_open_edits(session, site: Site, why: str, now) -> None:
    session.execute(update(SiteEdit).where(SiteEdit.site_id == site.id, SiteEdit.status == "pending")
                    .values(status="refused", reason=why, decided_by=_decider(), decided_at=now))


def _decider() -> str | None:
    """The signed-in coordinator deciding (none outside a request, as from the CLI)."""
    person = g.get("person") if has_request_context() else None
    return person.id if person is not None else None


def approve_site(session, site: Site, name: str | None = None) -> None:
    """Approve a proposed site, under a new name if given: from now on every phone of the area has it."""
    _waiting(site)
    before = {"status": site.status, "name": site.name}
    name = _clean_text(name, NAME_MAX, "name") if name is not None else site.name
    if not name:
        raise OperationError("name_required", _("Give the site a name."), {"name": [_("Give the site a name.")]})
    site.status = "approved"
    if name != site.name:
        site.name = name
        site.version += 1
        site.field_versions = {**(site.field_versions or {}), "name": site.version}
    site.updated_at = utcnow()
    session.flush()
    audit.record("site.approve", record_type="site", record_id=site.id, area_id=site.area_id,
                 before=before, after={"status": site.status, "name": site.name})
    changes.write_changes([changes.site_change(site)], session)


def merge_site(session, site: Site, target: Site) -> int:
    """Merge a proposed site into an approved one of the same area; its visits and actions move there.

    The proposer's phone drops the proposed site, and each moved visit's record there names
    the target. Returns how many visits moved.
    """
    _waiting(site)
    if target.id == site.id or target.area_id != site.area_id or target.status != "approved":
        raise OperationError("target_invalid", _("Choose an approved site of this area to merge into."),
                             {"target_id": [_("Choose an approved site of this area.")]})
    now = utcnow()
    visits = _visits_of(session, site.id)
    for visit in visits:
        visit.site_id = target.id
    session.execute(update(Answer).where(Answer.site_id == site.id).values(site_id=target.id))
    session.execute(update(Action).where(Action.site_id == site.id).values(site_id=target.id))
    site.status, site.merged_into_id, site.updated_at = "merged", target.id, now
    _refuse_open_edits(session, site, _("The site was merged into %(target)s.", target=target.name), now)
    session.flush()
    audit.record("site.merge", record_type="site", record_id=site.id, area_id=site.area_id,
                 before={"status": "proposed"}, after={"status": "merged", "merged_into_id": target.id},
                 details={"name": site.name, "target_name": target.name, "visits_moved": len(visits)})
    pending = [changes.site_change(site)] + [changes.submission_change(visit) for visit in visits]
    if site.proposed_by:
        pending.append(changes.device_message(
            f"site-merged:{site.id}",
            _("The site you proposed, “%(name)s”, is the same as “%(target)s”: your visits there now count for it.",
              name=site.name, target=target.name),
            person_id=site.proposed_by,
            data={"code": "site_merged", "site_name": site.name, "target_name": target.name, "target_id": target.id}))
    changes.write_changes(pending, session)
    return len(visits)


def reject_site(session, site: Site, reason: str) -> int:
    """Reject a proposed site with a reason its proposer is told; its visits stay, with no site.

    Returns how many visits it had.
    """
    _waiting(site)
    reason = _clean_text(reason, REASON_MAX, "reason")
    if not reason:
        raise OperationError("reason_required", _("Say why, for the volunteer who proposed it."),
                             {"reason": [_("Say why.")]})
    now = utcnow()
    visits = _visits_of(session, site.id)
    for visit in visits:
        visit.site_id = None
    session.execute(update(Answer).where(Answer.site_id == site.id).values(site_id=None))
    session.execute(update(Action).where(Action.site_id == site.id).values(site_id=None))
    site.status, site.updated_at = "rejected", now
    _refuse_open_edits(session, site, reason, now)
    session.flush()
    audit.record("site.reject", record_type="site", record_id=site.id, area_id=site.area_id,
                 before={"status": "proposed"}, after={"status": "rejected"},
                 details={"name": site.name, "reason": reason, "visits_kept": len(visits)})
    pending = [changes.site_change(site)] + [changes.submission_change(visit) for visit in visits]
    if site.proposed_by:
        pending.append(changes.device_message(
            f"site-rejected:{site.id}",
            _("The site you proposed, “%(name)s”, was not added: %(reason)s Your visits there are kept, with no site.",
              name=site.name, reason=reason),
            person_id=site.proposed_by,
            data={"code": "site_rejected", "site_name": site.name, "reason": reason}))
    changes.write_changes(pending, session)
    return len(visits)


def accept_edit(session, edit: SiteEdit) -> None:
    """Apply a street rep's edit to its site: every phone of the area and the public page see it."""
    if edit.status != "pending":
        raise OperationError("already_decided", _("A coordinator has already decided about this change."))
    site = session.get(Site, edit.site_id)
    if site.status != "approved":
        raise OperationError("already_decided", _("A coordinator has already decided about this site."))
    before = {key: getattr(site, key) for key in edit.patch}
    site.version += 1
    versions = dict(site.field_versions or {})
    for key, value in edit.patch.items():
        setattr(site, key, value)
        versions[key] = site.version
    site.field_versions = versions
    now = utcnow()
    site.updated_at = now
    edit.status, edit.decided_by, edit.decided_at = "accepted", _decider(), now
    session.flush()
    audit.record("site.edit_accept", record_type="site", record_id=site.id, area_id=site.area_id,
                 before=before, after={key: getattr(site, key) for key in edit.patch},
                 details={"edit_id": edit.id, "proposed_by": edit.person_id})
    changes.write_changes([changes.site_change(site)], session)


def refuse_edit(session, edit: SiteEdit, reason: str) -> None:
    """Refuse a street rep's edit: the site stays as it is, and the rep's phone shows it so again."""
    if edit.status != "pending":
        raise OperationError("already_decided", _("A coordinator has already decided about this change."))
    reason = _clean_text(reason, REASON_MAX, "reason")
    site = session.get(Site, edit.site_id)
    now = utcnow()
    edit.status, edit.reason, edit.decided_by, edit.decided_at = "refused", reason or None, _decider(), now
    session.flush()
    audit.record("site.edit_refuse", record_type="site", record_id=site.id, area_id=site.area_id,
                 details={"edit_id": edit.id, "proposed_by": edit.person_id, "patch": edit.patch, "reason": reason})
    # The rep's phone had the site with their edit laid over: it gets the site as it is.
    pending = [changes.PendingChange("sites", site.id, data=site.to_sync(), person_id=edit.person_id)]
    if site.status != "approved":
        pending = []
    message = (_("Your change to “%(name)s” was not made: %(reason)s", name=site.name, reason=reason) if reason
               else _("Your change to “%(name)s” was not made.", name=site.name))
    pending.append(changes.device_message(
        f"site-edit-refused:{edit.id}", message, person_id=edit.person_id,
        data={"code": "site_edit_refused", "site_name": site.name, "reason": reason}))
    changes.write_changes(pending, session)


# -- helping to decide: what is near, what is alike -------------------------------------------


def metres_between(a_lat, a_lng, b_lat, b_lng) -> float:
    """Great-circle distance in metres (haversine): enough to tell neighbouring streets apart."""
    radians = math.pi / 180
    d_lat, d_lng = (b_lat - a_lat) * radians, (b_lng - a_lng) * radians
    x = math.sin(d_lat / 2) ** 2 + math.cos(a_lat * radians) * math.cos(b_lat * radians) * math.sin(d_lng / 2) ** 2
    return 6371000 * 2 * math.atan2(math.sqrt(x), math.sqrt(1 - x))


@dataclass
class Nearby:
    site: Site
    metres: float | None
    likeness: float


def nearest_sites(proposed: Site, approved: list[Site], count: int = 3) -> list[Nearby]:
    """The approved sites most likely to be the same place: nearest first where both have a point,
    then the most alike by name (a typo of an existing name is the commonest duplicate)."""
    name = proposed.name.casefold()
    words = set(_WORD.findall(name))
    scored = []
    for site in approved:
        metres = (metres_between(proposed.lat, proposed.lng, site.lat, site.lng)
                  if None not in (proposed.lat, proposed.lng, site.lat, site.lng) else None)
        other = site.name.casefold()
        # Letters alike (a typo), and words shared ("Towpath steps" and "Towpath (Lock 4 to Lock 6)").
        shared = len(words & set(_WORD.findall(other))) / len(words) if words else 0
        likeness = difflib.SequenceMatcher(None, name, other).ratio() + shared / 2
        scored.append(Nearby(site, metres, likeness))
    by_distance = sorted((n for n in scored if n.metres is not None), key=lambda n: n.metres)[:count]
    chosen = {n.site.id for n in by_distance}
    by_name = sorted((n for n in scored if n.site.id not in chosen), key=lambda n: (-n.likeness, n.site.name))
    return by_distance + by_name[:count]


# -- the pages -----------------------------------------------------------------------------------


@bp.app_template_global()
def sites_waiting_counts(area_id: str) -> tuple[int, int]:
    """For the dashboard's queue block: proposed sites and site edits waiting in the area."""
    return waiting_counts(db.session, area_id)


@dataclass
class WaitingSite:
    site: Site
    proposer: str
    visits: int
    nearby: list


@dataclass
class WaitingEdit:
    edit: SiteEdit
    site: Site
    proposer: str


def _approved_sites(area: Area) -> list[Site]:
    return db.session.execute(select(Site).where(Site.area_id == area.id, Site.status == "approved")
                              .order_by(Site.name)).scalars().all()


@bp.get("/<slug>/sites-waiting")
@allow("coordinator")
def sites_waiting(slug):
    """Proposed sites and street reps' site edits waiting for a decision, oldest first."""
    area = area_or_404(slug)
    return _queue_page(area)


def _queue_page(area: Area, errors: dict | None = None, status: int = 200):
    session = db.session
    page = page_number()
    waiting_sites, waiting_edits = waiting_counts(session, area.id)
    proposed = session.execute(
        select(Site, Person.display_name).outerjoin(Person, Person.id == Site.proposed_by)
        .where(Site.area_id == area.id, Site.status == "proposed")
        .order_by(Site.created_at, Site.id).offset((page - 1) * QUEUE_PAGE).limit(QUEUE_PAGE)
    ).all()
    visits = dict(session.execute(
        select(Submission.site_id, func.count()).where(Submission.site_id.in_([s.id for s, _n in proposed]))
        .group_by(Submission.site_id)).all()) if proposed else {}
    approved = _approved_sites(area)
    sites = [WaitingSite(site, name or _("Someone no longer known"), visits.get(site.id, 0),
                         nearest_sites(site, approved)) for site, name in proposed]
    edit_rows = session.execute(
        select(SiteEdit, Site, Person.display_name).join(Site, Site.id == SiteEdit.site_id)
        .outerjoin(Person, Person.id == SiteEdit.person_id)
        .where(SiteEdit.area_id == area.id, SiteEdit.status == "pending")
        .order_by(SiteEdit.created_at, SiteEdit.id).limit(QUEUE_PAGE)
    ).all()
    edits = [WaitingEdit(edit, site, name or _("Someone no longer known")) for edit, site, name in edit_rows]
    pages = max(1, -(-waiting_sites // QUEUE_PAGE))
    return render_template("coordinator/sites_waiting.html", area=area, sites=sites, edits=edits,
                           waiting_sites=waiting_sites, waiting_edits=waiting_edits, approved=approved,
                           page=page, pages=pages, errors=errors or {}, field_label=_field_label,
                           listed={row.site.id for row in sites} | {row.edit.id for row in edits}), status


def _field_label(key: str) -> str:
    return {"name": _("Name"), "lat": _("Latitude"), "lng": _("Longitude"), "notes": _("Notes")}.get(key, key)


@bp.post("/<slug>/sites-waiting/sites/<site_id>")
@allow("coordinator")
def decide_site(slug, site_id):
    """Approve (perhaps renamed), merge or reject one proposed site; merging and rejecting need the box ticked."""
    area = area_or_404(slug)
    site = in_area_or_404(Site, site_id, area)
    decision = request.form.get("decision", "")
    if decision not in ("approve", "merge", "reject"):
        abort(400, description=_("Choose approve, merge or reject."))
    if decision in ("merge", "reject") and request.form.get("confirm") != "yes":
        return _queue_page(area, {site.id: {"confirm": _("Tick the box to confirm: this cannot be undone here.")},
                                  "decision": decision}, 400)
    name = site.name
    try:
        if decision == "approve":
            approve_site(db.session, site, request.form.get("name", site.name))
            message = _("“%(name)s” is approved: every phone of the area gets it on its next sync.", name=site.name)
        elif decision == "merge":
            target = db.session.get(Site, request.form.get("target_id", "")) if request.form.get("target_id") else None
            if target is None:
                raise OperationError("target_invalid", _("Choose an approved site of this area to merge into."),
                                     {"target_id": [_("Choose a site.")]})
            moved = merge_site(db.session, site, target)
            message = _("“%(name)s” is merged into “%(target)s”; %(n)s visits moved.", name=name, target=target.name,
                        n=moved)
        else:
            kept = reject_site(db.session, site, request.form.get("reason", ""))
            message = _("“%(name)s” is rejected; its %(n)s visits are kept with no site, and the volunteer is told.",
                        name=name, n=kept)
        db.session.commit()
    except OperationError as problem:
        db.session.rollback()
        site = db.session.get(Site, site_id)
        return _queue_page(area, {site_id: {"problem": problem.message}, "decision": decision}, 400)
    flash(message)
    return redirect(url_for("coordinator.sites_waiting", slug=area.slug))


@bp.post("/<slug>/sites-waiting/edits/<edit_id>")
@allow("coordinator")
def decide_site_edit(slug, edit_id):
    """Accept or refuse one street rep's edit of a site."""
    area = area_or_404(slug)
    edit = in_area_or_404(SiteEdit, edit_id, area)
    decision = request.form.get("decision", "")
    if decision not in ("accept", "refuse"):
        abort(400, description=_("Choose accept or refuse."))
    try:
        if decision == "accept":
            accept_edit(db.session, edit)
            message = _("The change is made: every phone of the area and the public page show it.")
        else:
            refuse_edit(db.session, edit, request.form.get("reason", ""))
            message = _("The change is refused; the volunteer is told.")
        db.session.commit()
    except OperationError as problem:
        db.session.rollback()
        return _queue_page(area, {edit_id: {"problem": problem.message}}, 400)
    flash(message)
    return redirect(url_for("coordinator.sites_waiting", slug=area.slug))
