"""Personal data for admins (UK GDPR): find a person, download all that is held about them, erase them.

The work is done by server.privacy; these pages only choose the person, confirm and record.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from server import audit, privacy
from server.auth import allow
from server.extensions import db
from server.models import Area, Device, Person, Submission

bp = Blueprint("admin_privacy", __name__, url_prefix="/admin/privacy")


def _person_or_404(person_id: str) -> Person:
    person = db.session.get(Person, person_id) if len(person_id) <= 36 else None
    if person is None or person.id == privacy.ERASED_PERSON_ID:
        abort(404)
    return person


@bp.get("")
@allow("admin")
def people():
    """Pick a person by name, email or id."""
    search = request.args.get("q", "").strip()[:200]
    return render_template("admin/privacy.html", search=search, people=privacy.people(search))


@bp.get("/<person_id>")
@allow("admin")
def person(person_id):
    """What is held about one person, with the export and erase buttons."""
    found = _person_or_404(person_id)
    areas = dict(db.session.execute(select(Area.id, Area.name)).all())
    devices = db.session.execute(select(Device).where(Device.person_id == found.id)
                                 .order_by(Device.created_at)).scalars().all()
    visits = db.session.execute(select(func.count()).select_from(Submission)
                                .where(Submission.person_id == found.id)).scalar_one()
    return render_template("admin/privacy_person.html", person=found, areas=areas, devices=devices, visits=visits)


@bp.get("/<person_id>/export.json")
@allow("admin")
def export(person_id):
    """Everything held about the person as JSON (a subject access request); the download is logged."""
    found = _person_or_404(person_id)
    document = privacy.export_person(found.id)
    audit.record_and_commit("person.export", record_type="person", record_id=person_id)
    response = Response(json.dumps(document, ensure_ascii=False, indent=2), mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="kerbside-person-{person_id}.json"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<person_id>/erase", methods=["GET", "POST"])
@allow("admin")
def erase(person_id):
    """Confirm, then erase: identity and devices go, visits stay de-identified."""
    found = _person_or_404(person_id)
    error = None
    if found.id == g.person.id:
        error = _("You cannot erase yourself here. Ask another admin, or use “kerbside person erase”.")
    elif request.method == "POST":
        if request.form.get("confirm") != "erase":
            error = _("Tick the box to confirm that this person is to be erased.")
        else:
            report = privacy.erase_person(found.id, via="web")
            db.session.commit()
            flash(_("The person is erased: %(visits)s visits kept without their name, device or position; "
                    "%(devices)s devices removed.", visits=report.counts["visits_de_identified"],
                    devices=report.counts["devices_removed"]))
            return redirect(url_for("admin_privacy.people"))
    return render_template("admin/privacy_erase.html", person=found, error=error), (400 if error else 200)
