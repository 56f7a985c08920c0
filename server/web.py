"""Signing in and out, and the front page."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from server import audit, auth
from server.auth import allow, csrf_protected
from server.extensions import db
from server.models import Area

bp = Blueprint("auth", __name__)


@bp.get("/")
@allow("public")
def index():
    """The front page: each area's public page, the field app, and signing in."""
    areas = db.session.execute(select(Area).order_by(Area.name)).scalars().all()
    return render_template("index.html", areas=areas)


@bp.route("/login", methods=["GET", "POST"])
@allow("public")
@csrf_protected
def login():
    """Coordinators and partners sign in with email and password."""
    error = None
    if request.method == "POST":
        email = request.form.get("email", "")
        person = auth.person_by_email(email)
        if person is not None and auth.check_password(person, request.form.get("password", "")):
            auth.sign_in(person)
            audit.record("sign_in", record_type="person", record_id=person.id, person_id=person.id)
            db.session.commit()
            target = request.args.get("next") or ""
            # Only ever return to a path on this site.
            if not target.startswith("/") or target.startswith("//"):
                target = url_for("auth.index")
            return redirect(target)
        # A known account is named by its id; for an unknown one only a keyed hash of what was typed.
        if person is not None:
            audit.record("sign_in.failed", record_type="person", record_id=person.id, person_id=person.id)
        else:
            audit.record("sign_in.failed", person_id=None, details={"email_key": audit.email_key(email)})
        db.session.commit()
        error = _("That email and password do not match. Check them and try again.")
    return render_template("login.html", error=error), (401 if error else 200)


@bp.post("/logout")
@allow("public")
@csrf_protected
def logout():
    person = auth.load_signed_in_person()
    if person is not None:
        audit.record("sign_out", record_type="person", record_id=person.id, person_id=person.id)
        db.session.commit()
    auth.sign_out()
    flash(_("You are signed out."))
    return redirect(url_for("auth.index"))


@bp.app_context_processor
def person_in_templates():
    return {"signed_in": getattr(g, "person", None) if not getattr(g, "device", None) else None,
            "has_role": auth.has_role}
