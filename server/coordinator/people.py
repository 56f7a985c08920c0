"""Looking after the area's volunteers: invites (code and QR), a new phone for the same person,
devices and signing one out, re-join codes for shared phones, rename, deactivate and merge.

A person stays one record however many phones they use: "Invite again / new phone" and the
re-join code add a device to that person, so their visits stay one history.
"""

from __future__ import annotations

import io
import secrets

import segno
from flask import Response, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from server import audit, auth, operations, people as volunteers, reporting
from server.auth import allow
from server.coordinator import bp
from server.coordinator.common import area_or_404
from server.extensions import db
from server.models import VOLUNTEER_ROLES, Device, Invite, Person

INVITE_ROLES = VOLUNTEER_ROLES
# Invite codes shown this session, so the QR image can be drawn without putting the code in a URL.
SHOWN_INVITES = "shown_invites"
MAX_NAME = 200


def role_label(role: str) -> str:
    return {"street_rep": _("Street rep"), "mystery_shopper": _("Mystery shopper")}.get(role, role)


@bp.app_template_global()
def volunteer_role_label(role: str) -> str:
    return role_label(role)


@bp.app_template_global()
def device_label(device: Device) -> str:
    return volunteers.device_label(device)


def _volunteer_or_404(area, person_id: str) -> Person:
    """A street rep or mystery shopper of this area; 404 for anyone else (a coordinator, another area's)."""
    person = db.session.get(Person, person_id)
    if person is None or not any(r.area_id == area.id and r.role in INVITE_ROLES for r in person.roles):
        abort(404)
    return person


def _device_or_404(area, device_id: str) -> Device:
    device = db.session.get(Device, device_id)
    if device is None:
        abort(404)
    _volunteer_or_404(area, device.person_id)
    return device


def _name_errors(name: str, *, required: bool) -> list[str]:
    if not name:
        return [_("Give the volunteer's name, as the coordinator will see it.")] if required else []
    if len(name) > MAX_NAME:
        return [_("Keep the name to 200 characters.")]
    return []


def _show_invite(code: str, role: str, name: str, person: Person | None = None) -> dict:
    key = secrets.token_urlsafe(8)
    # Only the latest few, to keep the session cookie small.
    shown = dict(list(session.get(SHOWN_INVITES, {}).items())[-4:])
    shown[key] = code
    session[SHOWN_INVITES] = shown
    return {"code": code, "key": key, "role": role, "name": name, "link": _join_link(code), "person": person}


def _people_page(area, *, invite=None, errors=None, status=200):
    return render_template("coordinator/people.html", area=area,
                           volunteers=reporting.volunteer_devices(db.session, area.id), invite=invite,
                           errors=errors or {}, roles=INVITE_ROLES), status


@bp.route("/<slug>/people", methods=["GET", "POST"])
@allow("coordinator")
def people(slug):
    """Volunteers with their devices and last sync; invite a new street rep or mystery shopper."""
    area = area_or_404(slug)
    if request.method == "GET":
        return _people_page(area)
    errors = {}
    role = request.form.get("role", "")
    name = request.form.get("display_name", "").strip()
    if role not in INVITE_ROLES:
        errors["role"] = [_("Choose street rep or mystery shopper.")]
    # A name is optional: without one, the volunteer is asked for theirs when they join.
    if _name_errors(name, required=False):
        errors["display_name"] = _name_errors(name, required=False)
    if errors:
        return _people_page(area, errors=errors, status=400)
    code = operations.issue_invite(area, role, created_by=g.person, display_name=name or None)
    invite_id = db.session.execute(select(Invite.id).where(Invite.code_hash == operations.invite_hash(code))).scalar_one()
    # The invite's id and role, never its code or the volunteer's name.
    audit.record("invite.create", record_type="invite", record_id=invite_id, area_id=area.id, details={"role": role})
    db.session.commit()
    return _people_page(area, invite=_show_invite(code, role, name))


@bp.post("/<slug>/people/<person_id>/invite")
@allow("coordinator")
def reinvite(slug, person_id):
    """Invite again / new phone: a code that adds a device to this same person, never a new person."""
    area = area_or_404(slug)
    person = _volunteer_or_404(area, person_id)
    if person.deactivated_at is not None:
        flash(_("%(name)s is deactivated. Reactivate them first.", name=person.display_name))
        return redirect(url_for("coordinator.person", slug=slug, person_id=person.id))
    held = sorted(r.role for r in person.roles if r.area_id == area.id and r.role in INVITE_ROLES)
    role = request.form.get("role") if request.form.get("role") in held else held[0]
    code = operations.issue_invite(area, role, created_by=g.person, display_name=None, person=person)
    invite_id = db.session.execute(select(Invite.id).where(Invite.code_hash == operations.invite_hash(code))).scalar_one()
    audit.record("invite.create", record_type="invite", record_id=invite_id, area_id=area.id,
                 details={"role": role, "person_id": person.id})
    db.session.commit()
    return _people_page(area, invite=_show_invite(code, role, person.display_name, person))


def _join_link(code: str) -> str | None:
    """The field app's address with the code after '#', so the app can fill it in; None without the app."""
    if "pwa.shell" not in current_app.view_functions:
        return None
    return url_for("pwa.shell", _external=True) + "#invite=" + code


@bp.get("/<slug>/people/invites/<key>.svg")
@allow("coordinator")
def invite_qr(slug, key):
    """The QR image of an invite shown in this session: the join link, or the bare code."""
    area_or_404(slug)
    code = session.get(SHOWN_INVITES, {}).get(key)
    if code is None:
        abort(404)
    qr = segno.make(_join_link(code) or code, error="m")
    image = io.BytesIO()
    qr.save(image, kind="svg", scale=6, border=4, dark="#000", light="#fff", title=_("Invite code"))
    response = Response(image.getvalue(), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "no-store"
    return response


# -- one person -------------------------------------------------------------------------------


def _person_page(area, person: Person, *, rejoin_code=None, errors=None, status=200):
    devices = db.session.execute(
        select(Device).where(Device.person_id == person.id).order_by(Device.created_at)).scalars().all()
    others = [p for p, _roles, _devices in reporting.volunteer_devices(db.session, area.id) if p.id != person.id]
    return render_template("coordinator/person.html", area=area, person=person, devices=devices,
                           roles=sorted(r.role for r in person.roles if r.area_id == area.id and r.role in INVITE_ROLES),
                           visits=volunteers.merge_counts(person)["visits"], others=others,
                           rejoin_code=rejoin_code, errors=errors or {}), status


@bp.get("/<slug>/people/<person_id>")
@allow("coordinator")
def person(slug, person_id):
    """A volunteer: their devices, name, re-join code, and whether they are active."""
    area = area_or_404(slug)
    return _person_page(area, _volunteer_or_404(area, person_id))


@bp.post("/<slug>/people/<person_id>/rename")
@allow("coordinator")
def rename_person(slug, person_id):
    area = area_or_404(slug)
    person = _volunteer_or_404(area, person_id)
    name = request.form.get("display_name", "").strip()
    problems = _name_errors(name, required=True)
    if problems:
        return _person_page(area, person, errors={"display_name": problems}, status=400)
    before = person.display_name
    volunteers.rename(person, name)
    audit.record("person.rename", record_type="person", record_id=person.id, area_id=area.id,
                 before={"display_name": before}, after={"display_name": name})
    db.session.commit()
    flash(_("The name is now “%(name)s”.", name=name))
    return redirect(url_for("coordinator.person", slug=slug, person_id=person.id))


@bp.post("/<slug>/people/<person_id>/deactivate")
@allow("coordinator")
def deactivate_person(slug, person_id):
    """Signs out every device; the person cannot join or sign in until reactivated. Their visits stay."""
    area = area_or_404(slug)
    person = _volunteer_or_404(area, person_id)
    if person.deactivated_at is None:
        signed_out = volunteers.deactivate(person)
        audit.record("person.deactivate", record_type="person", record_id=person.id, area_id=area.id,
                     details={"devices_signed_out": signed_out})
        db.session.commit()
        flash(_("%(name)s is deactivated: their devices are signed out and they cannot join again until you "
                "reactivate them.", name=person.display_name))
    return redirect(url_for("coordinator.person", slug=slug, person_id=person.id))


@bp.post("/<slug>/people/<person_id>/reactivate")
@allow("coordinator")
def reactivate_person(slug, person_id):
    area = area_or_404(slug)
    person = _volunteer_or_404(area, person_id)
    if person.deactivated_at is not None:
        volunteers.reactivate(person)
        audit.record("person.reactivate", record_type="person", record_id=person.id, area_id=area.id)
        db.session.commit()
        flash(_("%(name)s is active again. Give them a new invite code (“Invite again / new phone”) or their "
                "re-join code to use a phone.", name=person.display_name))
    return redirect(url_for("coordinator.person", slug=slug, person_id=person.id))


@bp.post("/<slug>/people/<person_id>/rejoin-code")
@allow("coordinator")
def reset_rejoin_code(slug, person_id):
    """A new personal re-join code, shown once on this answer; the old one stops working."""
    area = area_or_404(slug)
    person = _volunteer_or_404(area, person_id)
    if person.deactivated_at is not None:
        flash(_("%(name)s is deactivated. Reactivate them first.", name=person.display_name))
        return redirect(url_for("coordinator.person", slug=slug, person_id=person.id))
    code = volunteers.reset_rejoin_code(person)
    # That a code was made, never the code.
    audit.record("person.rejoin_code_reset", record_type="person", record_id=person.id, area_id=area.id)
    db.session.commit()
    return _person_page(area, person, rejoin_code=code)


# -- merging two records of one person ---------------------------------------------------------


def _coordinated_areas():
    return auth.area_ids_for(g.person, ("coordinator",))


@bp.route("/<slug>/people/<person_id>/merge", methods=["GET", "POST"])
@allow("coordinator")
def merge_person(slug, person_id):
    """Merge two records of one volunteer: GET asks which to keep and shows what moves; POST merges."""
    area = area_or_404(slug)
    person = _volunteer_or_404(area, person_id)
    other_id = request.values.get("with", "")
    if not other_id:
        return _person_page(area, person)
    other = _volunteer_or_404(area, other_id)
    if other.id == person.id:
        abort(404)
    pair = db.session.execute(select(Person).where(Person.id.in_([person.id, other.id]))
                              .options(selectinload(Person.roles))).scalars().all()
    allowed = volunteers.may_merge(g.person, pair, _coordinated_areas())
    keep_id = request.values.get("keep", person.id)
    if keep_id not in (person.id, other.id):
        keep_id = person.id
    keep, gone = (person, other) if keep_id == person.id else (other, person)
    if request.method == "GET" or not allowed:
        return render_template("coordinator/person_merge.html", area=area, person=person, other=other, keep=keep,
                               gone=gone, allowed=allowed,
                               counts={p.id: volunteers.merge_counts(p) for p in (person, other)}), \
            (200 if allowed else 403)
    if request.form.get("confirm") != "merge":
        flash(_("Tick “Yes, merge them” to merge the two records."))
        return redirect(url_for("coordinator.merge_person", slug=slug, person_id=person.id, **{"with": other.id},
                                keep=keep.id))
    kept_id, gone_id = keep.id, gone.id
    moved = volunteers.merge(keep, gone)
    audit.record("person.merged", record_type="person", record_id=kept_id, area_id=area.id,
                 details={"kept": kept_id, "merged": gone_id, "moved": moved})
    db.session.commit()
    flash(_("The two records are one now: %(visits)d visits and %(devices)d devices moved to %(name)s.",
            visits=moved["visits"], devices=moved["devices"], name=keep.display_name))
    return redirect(url_for("coordinator.person", slug=slug, person_id=kept_id))


# -- devices ------------------------------------------------------------------------------------


@bp.route("/<slug>/devices/<device_id>/revoke", methods=["GET", "POST"])
@allow("coordinator")
def revoke_device(slug, device_id):
    """Sign a device out: GET says what happens to what is still on it; POST signs it out."""
    area = area_or_404(slug)
    device = _device_or_404(area, device_id)
    if request.method == "GET":
        return render_template("coordinator/device_revoke.html", area=area, device=device, person=device.person)
    if volunteers.revoke_device(device):
        audit.record("device.revoke", record_type="device", record_id=device.id, area_id=area.id,
                     details={"person_id": device.person_id})
        db.session.commit()
        flash(_("“%(device)s” is signed out. To use a new phone, give %(name)s a code with “Invite again / new "
                "phone”.", device=volunteers.device_label(device), name=device.person.display_name))
    return redirect(url_for("coordinator.people", slug=slug))

