"""Publishing forms and agreements, and the area's settings (people are in server/coordinator/people.py)."""

from __future__ import annotations

import json

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import or_, select

from server import audit, auth, form_lifecycle, operations, reporting
from server.auth import allow
from server.coordinator import bp, wording
from server.coordinator.common import MAX_VERSION, area_or_404
from server.extensions import db
from server.models import Agreement, AgreementVersion, Form, FormVersion
from sync.validation import content_problem


def _forms_of(area):
    return db.session.execute(
        select(Form).where(or_(Form.area_id.is_(None), Form.area_id == area.id)).order_by(Form.kind, Form.id)
    ).scalars().all()


def _form_version_or_404(area, form_id: str, version: int) -> FormVersion:
    # An address may carry any number; beyond the column's range no version can have it.
    found = db.session.get(FormVersion, (form_id, version)) if version <= MAX_VERSION else None
    if found is None or found.form.area_id not in (None, area.id):
        abort(404)
    return found


def _may_change(form: Form):
    """A shared form belongs to admins: a coordinator changes only their area's own forms.

    403 rather than 404: the coordinator can see the shared form, and is told what to do instead.
    """
    if form.is_shared and not auth.has_role(g.person, "admin"):
        abort(403, description=_("Only an admin can change a form that every area uses. "
                                 "Make your area's own copy of it on the forms page instead."))


def _parse_definition(text: str) -> tuple[dict | None, dict]:
    try:
        definition = json.loads(text)
    except RecursionError:
        return None, {"definition": [_("This is nested too deeply to be a form or an agreement.")]}
    except ValueError as problem:
        return None, {"definition": [_("This is not valid JSON: %(problem)s", problem=str(problem))]}
    if not isinstance(definition, dict):
        return None, {"definition": [_("The definition must be a JSON object.")]}
    # Whatever is saved here is stored as JSON and sent to every phone: it must be storable.
    problem = content_problem(definition)
    if problem is not None:
        message = {
            "too_deep": _("This is nested too deeply to be a form or an agreement."),
            "invalid_text": _("The text at %(where)s holds control characters or a broken symbol. Type it again.",
                              where=problem.path),
            "out_of_range": _("The number at %(where)s is too large, or not a number. Use a smaller one.",
                              where=problem.path),
        }[problem.code]
        return None, {"definition": [message]}
    return definition, {}


def _pretty(definition: dict) -> str:
    return json.dumps(definition, indent=2, ensure_ascii=False)


# -- forms -------------------------------------------------------------------------------------


@bp.get("/<slug>/forms")
@allow("coordinator")
def forms(slug):
    """Every form the area uses with its versions: drafts, the published one, retired ones."""
    area = area_or_404(slug)
    forms = _forms_of(area)
    copies = {form.copy_of: form for form in forms if form.copy_of}
    return render_template("coordinator/forms.html", area=area, forms=forms, copies=copies,
                           replaced=operations.replaced_shared_forms(area.id),
                           is_admin=auth.has_role(g.person, "admin"))


@bp.post("/<slug>/forms/<form_id>/drafts")
@allow("coordinator")
def new_form_draft(slug, form_id):
    """Start a new draft version from the newest version's definition."""
    area = area_or_404(slug)
    form = db.session.get(Form, form_id)
    if form is None or form.area_id not in (None, area.id) or not form.versions:
        abort(404)
    _may_change(form)
    source = form.versions[-1].version
    # A new version starts with the translations of the one it copies: its texts read as before.
    draft = operations.draft_form_version(form.id, form.versions[-1].definition,
                                          translations=form.versions[-1].translations,
                                          language=form.versions[-1].language)
    audit.record("form.draft", record_type="form_version", record_id=draft.sync_id, area_id=area.id,
                 details={"copied_from": source})
    db.session.commit()
    flash(_("Draft version %(version)s created. Change it, preview it, then publish it.", version=draft.version))
    return redirect(url_for("coordinator.form_version", slug=slug, form_id=form.id, version=draft.version))


@bp.post("/<slug>/forms/<form_id>/copy")
@allow("coordinator")
def copy_form(slug, form_id):
    """Make the area's own copy of a shared form, as a draft to change, preview and publish."""
    area = area_or_404(slug)
    shared = db.session.get(Form, form_id)
    if shared is None or not shared.is_shared:
        abort(404)
    try:
        draft = operations.copy_shared_form(shared, area)
        audit.record("form.copy", record_type="form_version", record_id=draft.sync_id, area_id=area.id,
                     details={"copy_of": shared.id})
        db.session.commit()
    except operations.OperationError as problem:
        db.session.rollback()
        flash(problem.message)
        return redirect(url_for("coordinator.forms", slug=slug))
    flash(_("This is %(area)s's own copy. Change it, preview it, then publish it: from then on the area's phones "
            "and public page use it instead of the shared form.", area=area.name))
    return redirect(url_for("coordinator.form_version", slug=slug, form_id=draft.form_id, version=draft.version))


@bp.route("/<slug>/forms/<form_id>/<int:version>", methods=["GET", "POST"])
@allow("coordinator")
def form_version(slug, form_id, version):
    """A form version: its definition (editable while a draft) and a preview as the phone shows it."""
    area = area_or_404(slug)
    if request.method == "POST":
        _may_change(_form_version_or_404(area, form_id, version).form)
    return _edit_draft(
        area, lambda: _form_version_or_404(area, form_id, version), operations.update_form_draft,
        wording.form_with_wording, "coordinator/form_version.html",
        url_for("coordinator.form_version", slug=slug, form_id=form_id, version=version),
    )


@bp.post("/<slug>/forms/<form_id>/<int:version>/publish")
@allow("coordinator")
def publish_form(slug, form_id, version):
    """Publish a draft: devices pick it up on their next sync."""
    area = area_or_404(slug)
    found = _form_version_or_404(area, form_id, version)
    _may_change(found.form)
    try:
        before = found.status
        operations.publish_form_version(found)
        audit.record("form.publish", record_type="form_version", record_id=found.sync_id, area_id=area.id,
                     before={"status": before}, after={"status": found.status})
        db.session.commit()
        flash(_("Version %(version)s published. Phones get it on their next sync.", version=version))
    except operations.OperationError as problem:
        db.session.rollback()
        flash(problem.message)
    return redirect(url_for("coordinator.forms", slug=slug))


@bp.get("/<slug>/forms/<form_id>/<int:version>/retire")
@allow("coordinator")
def confirm_retire_form(slug, form_id, version):
    """Before retiring: how many phones still use the version, and whether it may be retired at all."""
    area = area_or_404(slug)
    found = _form_version_or_404(area, form_id, version)
    check = form_lifecycle.check_retire(found) if found.status == "published" else None
    may_change = auth.has_role(g.person, "admin") or not found.form.is_shared
    return render_template("coordinator/form_retire.html", area=area, version=found, check=check,
                           may_change=may_change)


@bp.post("/<slug>/forms/<form_id>/<int:version>/retire")
@allow("coordinator")
def retire_form(slug, form_id, version):
    """Retire a published version (posted from its confirmation page); what was filled in on it offline is
    still accepted. The only published version of a form that phones use is refused: publish a successor first."""
    area = area_or_404(slug)
    found = _form_version_or_404(area, form_id, version)
    _may_change(found.form)
    try:
        before = found.status
        operations.retire_form_version(found)
        audit.record("form.retire", record_type="form_version", record_id=found.sync_id, area_id=area.id,
                     before={"status": before}, after={"status": found.status})
        db.session.commit()
        flash(_("Version %(version)s retired. Visits filled in on it are still accepted.", version=version))
    except operations.OperationError as problem:
        db.session.rollback()
        if problem.code != "last_published":  # the confirmation page says that one itself
            flash(problem.message)
        return redirect(url_for("coordinator.confirm_retire_form", slug=slug, form_id=form_id, version=version))
    return redirect(url_for("coordinator.forms", slug=slug))


# -- agreements -----------------------------------------------------------------------------------


def _agreements_of(area):
    return db.session.execute(select(Agreement).where(Agreement.area_id == area.id).order_by(Agreement.id)).scalars().all()


def _agreement_version_or_404(area, agreement_id: str, version: int) -> AgreementVersion:
    found = db.session.get(AgreementVersion, (agreement_id, version)) if version <= MAX_VERSION else None
    if found is None or found.agreement.area_id != area.id:
        abort(404)
    return found


@bp.get("/<slug>/agreement")
@allow("coordinator")
def agreements(slug):
    """The area's agreement and its versions."""
    area = area_or_404(slug)
    return render_template("coordinator/agreements.html", area=area, agreements=_agreements_of(area))


@bp.post("/<slug>/agreement/<agreement_id>/drafts")
@allow("coordinator")
def new_agreement_draft(slug, agreement_id):
    """Start a new draft of the agreement from its newest version."""
    area = area_or_404(slug)
    agreement = db.session.get(Agreement, agreement_id)
    if agreement is None or agreement.area_id != area.id or not agreement.versions:
        abort(404)
    source = agreement.versions[-1].version
    draft = operations.draft_agreement_version(agreement.id, area, agreement.versions[-1].definition,
                                               translations=agreement.versions[-1].translations,
                                               language=agreement.versions[-1].language)
    audit.record("agreement.draft", record_type="agreement_version", record_id=draft.sync_id, area_id=area.id,
                 details={"copied_from": source})
    db.session.commit()
    flash(_("Draft version %(version)s created.", version=draft.version))
    return redirect(url_for("coordinator.agreement_version", slug=slug, agreement_id=agreement.id,
                            version=draft.version))


@bp.route("/<slug>/agreement/<agreement_id>/<int:version>", methods=["GET", "POST"])
@allow("coordinator")
def agreement_version(slug, agreement_id, version):
    """An agreement version: editable while a draft, with a preview of our part and your part."""
    area = area_or_404(slug)
    return _edit_draft(
        area, lambda: _agreement_version_or_404(area, agreement_id, version), operations.update_agreement_draft,
        wording.agreement_with_wording, "coordinator/agreement_version.html",
        url_for("coordinator.agreement_version", slug=slug, agreement_id=agreement_id, version=version),
        # The lines a service standard can name, as boxes to tick in the wording editor.
        extra={"street_lines": reporting.street_lines(db.session, area.id)},
    )


def _edit_draft(area, load, update, with_wording, template: str, here: str, extra: dict | None = None):
    """Show a form or agreement version; on POST, save its edited definition while it is a draft.

    The definition comes from the wording editor (`with_wording`) or from the JSON editor. When
    it has problems, the page shows what was sent, not the saved draft, so no edit is lost.
    """
    found = load()
    errors, shown = {}, found.definition
    text = _pretty(shown)
    if request.method == "POST":
        if request.form.get("editor") == "wording":
            definition = with_wording(found.definition, request.form)
            text = _pretty(definition)
        else:
            text = request.form.get("definition", "")
            definition, errors = _parse_definition(text)
        if definition is not None:
            try:
                before = dict(found.definition)
                update(found, definition)
                kind = "form" if isinstance(found, FormVersion) else "agreement"
                # Only the definition's top-level parts that changed (a section, the title) are kept.
                audit.record(f"{kind}.edit_draft", record_type=f"{kind}_version", record_id=found.sync_id,
                             area_id=area.id, before=before, after=dict(found.definition))
                db.session.commit()
                flash(_("Draft saved."))
                return redirect(here)
            except operations.OperationError as problem:
                db.session.rollback()
                found = load()  # the rollback expired it
                errors = problem.errors or {"definition": [problem.message]}
            shown = definition
    # Only admins change shared forms; agreements always belong to one area.
    may_change = not getattr(getattr(found, "form", None), "is_shared", False) or auth.has_role(g.person, "admin")
    return render_template(template, area=area, version=found, shown=shown, text=text, errors=errors,
                           may_change=may_change, **(extra or {})), (400 if errors else 200)


@bp.post("/<slug>/agreement/<agreement_id>/<int:version>/publish")
@allow("coordinator")
def publish_agreement(slug, agreement_id, version):
    """Publish a draft agreement; the one it replaces is retired."""
    area = area_or_404(slug)
    found = _agreement_version_or_404(area, agreement_id, version)
    try:
        operations.publish_agreement_version(found)
        audit.record("agreement.publish", record_type="agreement_version", record_id=found.sync_id,
                     area_id=area.id, before={"status": "draft"}, after={"status": found.status})
        db.session.commit()
        flash(_("Agreement version %(version)s published.", version=version))
    except operations.OperationError as problem:
        db.session.rollback()
        flash(problem.message)
    return redirect(url_for("coordinator.agreements", slug=slug))


# -- people: see server/coordinator/people.py ----------------------------------------------------


@bp.route("/<slug>/settings", methods=["GET", "POST"])
@allow("coordinator")
def area_settings(slug):
    """The area's own settings: for now, whether photos keep where they were taken."""
    area = area_or_404(slug)
    if request.method == "POST":
        before = {"keep_photo_location": area.keep_photo_location}
        operations.set_photo_location_kept(area, request.form.get("keep_photo_location") == "yes")
        audit.record("area.settings", record_type="area", record_id=area.id, area_id=area.id,
                     before=before, after={"keep_photo_location": area.keep_photo_location})
        db.session.commit()
        flash(_("Settings saved."))
        return redirect(url_for("coordinator.area_settings", slug=slug))
    return render_template("coordinator/settings.html", area=area)
