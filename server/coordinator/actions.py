""""You said, we did": the actions board, raising an action, and moving it through its lifecycle.

Coordinators see every action of their area; partners see and update only the actions
assigned to their organisation.
"""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from server import audit, mail, operations, privacy
from server.auth import allow
from server import reporting
from server.coordinator import bp
from server.coordinator.common import area_or_404, in_area_or_404, is_coordinator
from server.extensions import db
from server.models import Action, ActionComment, Person, Site, Submission
from sync.merge import ACTION_TRANSITIONS

STATUSES = ("open", "acknowledged", "in_progress", "done", "not_doing")
PARTNER_AREA_ROLES = ("coordinator", "partner", "admin")
MAX_COMMENT = 5000


def status_label(status: str) -> str:
    """A status in words."""
    return {
        "open": _("Open"),
        "acknowledged": _("Acknowledged"),
        "in_progress": _("In progress"),
        "done": _("Done"),
        "not_doing": _("Not doing"),
    }.get(status, status)


@bp.app_template_global()
def action_status_label(status: str) -> str:
    return status_label(status)


def _visible_actions(area):
    query = select(Action).where(Action.area_id == area.id)
    if not is_coordinator(area):
        query = query.where(Action.assigned_to == _organisation())
    return query


def _organisation() -> str:
    # A partner without an organisation sees nothing rather than everything unassigned.
    return g.person.organisation or "\x00"


def _action_or_404(area, action_id) -> Action:
    action = in_area_or_404(Action, action_id, area)
    if not is_coordinator(area) and action.assigned_to != _organisation():
        abort(404)
    return action


def organisations(area) -> list[str]:
    """Services and partners known here: partners' organisations and names already assigned."""
    # A deactivated partner is not offered (actions already assigned to their organisation keep it).
    names = set(db.session.execute(select(Person.organisation).where(
        Person.organisation.is_not(None), Person.deactivated_at.is_(None))).scalars())
    names |= set(db.session.execute(select(Action.assigned_to).where(
        Action.area_id == area.id, Action.assigned_to.is_not(None))).scalars())
    return sorted(n for n in names if n)


@bp.get("/<slug>/actions")
@allow("partner", "coordinator")
def actions_board(slug):
    """Actions by status; partners see the ones assigned to them."""
    area = area_or_404(slug, PARTNER_AREA_ROLES)
    actions = db.session.execute(_visible_actions(area).order_by(Action.updated_at.desc())).scalars().all()
    sites = {s.id: s.name for s in db.session.execute(select(Site).where(Site.area_id == area.id)).scalars()}
    columns = [(status, [a for a in actions if a.status == status]) for status in STATUSES]
    return render_template("coordinator/actions.html", area=area, columns=columns, sites=sites,
                           lines=reporting.street_lines(db.session, area.id), coordinating=is_coordinator(area))


@bp.route("/<slug>/actions/new", methods=["GET", "POST"])
@allow("coordinator")
def new_action(slug):
    """Raise an action from a C/D grade (site, line and visit filled in) or by hand."""
    area = area_or_404(slug)
    source = request.values
    site = db.session.get(Site, source.get("site_id", "")) if source.get("site_id") else None
    if site is not None and site.area_id != area.id:
        abort(404)
    if site is not None and site.status != "approved":
        # A proposed site is not on the action form until it is approved (sites waiting page).
        site = None
    submission = db.session.get(Submission, source.get("submission_id", "")) if source.get("submission_id") else None
    if submission is not None and submission.area_id != area.id:
        abort(404)
    lines = reporting.street_lines(db.session, area.id)
    line_key = source.get("line_key") or None
    if line_key not in lines:
        line_key = None
    errors = {}
    if request.method == "POST":
        try:
            action = operations.raise_action(
                area, request.form.get("title", ""), created_by=g.person, site=site, line_key=line_key,
                submission=submission, description=request.form.get("description", ""),
                assigned_to=_assignee(request.form))
            audit.record("action.create", record_type="action", record_id=action.id, area_id=area.id,
                         after={k: getattr(action, k) for k in ("title", "site_id", "line_key", "submission_id",
                                                                 "assigned_to", "status")})
            db.session.commit()
            flash(_("Action raised."))
            if action.assigned_to:
                _tell_partner(area, action, mail.notify_assigned(area, action))
            return redirect(url_for("coordinator.action", slug=slug, action_id=action.id))
        except operations.OperationError as problem:
            db.session.rollback()
            errors = problem.errors or {"title": [problem.message]}
    suggestion = ""
    if site is not None and line_key:
        grade = ""
        if submission is not None:
            grade = (submission.data.get("answers", {}).get(line_key) or {}).get("grade") or ""
        suggestion = _("%(line)s at %(site)s", line=lines[line_key]["label"], site=site.name)
        if grade:
            suggestion += f" ({grade})"
    sites = db.session.execute(select(Site).where(Site.area_id == area.id, Site.status == "approved")
                               .order_by(Site.name)).scalars().all()
    return render_template("coordinator/action_new.html", area=area, site=site, submission=submission,
                           line_key=line_key, lines=lines, title=request.form.get("title", suggestion),
                           description=request.form.get("description", ""), errors=errors,
                           organisations=organisations(area), sites=sites, mail_set_up=mail.is_set_up()), \
        (400 if errors else 200)


def _raised_from(action: Action) -> dict | None:
    """The visit an action came from, as partners may see it: its kind, its day and, for a mystery shop,
    the shopper's pseudonym (never their name: shoppers test the partners' own services)."""
    if not action.submission_id:
        return None
    visit = db.session.get(Submission, action.submission_id)
    if visit is None:
        return None
    by = privacy.pseudonym(visit.person_id) if visit.kind == "mystery_shop" else None
    return {"id": visit.id, "kind": visit.kind, "observed_at": visit.observed_at, "by": by}


def _assignee(form) -> str | None:
    """The chosen organisation, or the one typed in when it is not in the list."""
    typed = form.get("assigned_to_other", "").strip()
    chosen = form.get("assigned_to", "").strip()
    return typed or chosen or None


@bp.route("/<slug>/actions/<action_id>", methods=["GET", "POST"])
@allow("partner", "coordinator")
def action(slug, action_id):
    """An action in full, and moving it on: acknowledged, in progress, done, or not doing (with a reason)."""
    area = area_or_404(slug, PARTNER_AREA_ROLES)
    found = _action_or_404(area, action_id)
    coordinating = is_coordinator(area)
    errors = {}
    if request.method == "POST":
        patch = {"status": request.form.get("status", found.status),
                 "public_note": request.form.get("public_note", found.public_note or "").strip()}
        reason = request.form.get("reason", "").strip()
        if patch["status"] == "not_doing" or reason:
            patch["reason"] = reason or None
        if coordinating and "assigned_to" in request.form:
            patch["assigned_to"] = _assignee(request.form)
        try:
            before = {k: getattr(found, k) for k in Action.EDITABLE}
            operations.update_action(found, patch)
            audit.record("action.update", record_type="action", record_id=found.id, area_id=area.id,
                         before=before, after={k: getattr(found, k) for k in Action.EDITABLE})
            db.session.commit()
            flash(_("Action updated."))
            if found.assigned_to and found.assigned_to != before["assigned_to"]:
                _tell_partner(area, found, mail.notify_assigned(area, found))
            return redirect(url_for("coordinator.action", slug=slug, action_id=found.id))
        except operations.OperationError as problem:
            db.session.rollback()
            found = _action_or_404(area, action_id)
            errors = problem.errors or {"status": [problem.message]}
    return _action_page(area, found, errors=errors, form=request.form if errors else None)


def _action_page(area, found: Action, *, errors=None, form=None, comment_errors=None, comment=""):
    """The action's page, with its comments; 400 when a form on it was refused."""
    errors, comment_errors = errors or {}, comment_errors or {}
    coordinating = is_coordinator(area)
    site = db.session.get(Site, found.site_id) if found.site_id else None
    lines = reporting.street_lines(db.session, area.id)
    choices = [found.status] + sorted(ACTION_TRANSITIONS.get(found.status, ()), key=STATUSES.index)
    comments = db.session.execute(
        select(ActionComment, Person.display_name).outerjoin(Person, Person.id == ActionComment.author_id)
        .where(ActionComment.action_id == found.id).order_by(ActionComment.created_at, ActionComment.id)).all()
    return render_template("coordinator/action.html", area=area, action=found, site=site, lines=lines,
                           choices=choices, errors=errors, coordinating=coordinating, raised_from=_raised_from(found),
                           organisations=organisations(area), form=form, comments=comments,
                           comment_errors=comment_errors, comment=comment, mail_set_up=mail.is_set_up()), \
        (400 if errors or comment_errors else 200)


@bp.post("/<slug>/actions/<action_id>/comments")
@allow("partner", "coordinator")
def action_comment(slug, action_id):
    """Add a comment to an action; a coordinator's is emailed to the partner it is assigned to."""
    area = area_or_404(slug, PARTNER_AREA_ROLES)
    found = _action_or_404(area, action_id)
    text = request.form.get("comment", "").strip()
    problem = None
    if not text:
        problem = _("Write the comment first.")
    elif len(text) > MAX_COMMENT:
        problem = _("Keep the comment to %(n)s characters.", n=MAX_COMMENT)
    if problem:
        return _action_page(area, found, comment_errors={"comment": [problem]}, comment=text)
    comment = ActionComment(action_id=found.id, author_id=g.person.id, body=text)
    db.session.add(comment)
    db.session.flush()
    # The audit log says who commented on what, not what was said (that stays with the action).
    audit.record("action.comment", record_type="action", record_id=found.id, area_id=area.id,
                 details={"comment_id": comment.id})
    db.session.commit()
    flash(_("Comment added."))
    if is_coordinator(area) and found.assigned_to:
        _tell_partner(area, found, mail.notify_comment(area, found, text, g.person))
    return redirect(url_for("coordinator.action", slug=slug, action_id=found.id) + "#comments")


def _tell_partner(area, found: Action, outcome: mail.Outcome):
    """After the change is committed: say on the page, and in the audit log, whether the partner was emailed."""
    flash(outcome.message())
    if outcome.status == "not_set_up":
        return
    audit.record("action.email", record_type="action", record_id=found.id, area_id=area.id,
                 details=outcome.audit_details())
    db.session.commit()
