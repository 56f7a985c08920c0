"""A signed-in person's own account: changing their password."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from server import audit, passwords, throttle
from server.auth import allow
from server.extensions import db

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.route("/password", methods=["GET", "POST"])
@allow("coordinator", "partner", "admin")
def password():
    """Change one's password (current, new, confirm); one's other sessions end."""
    person = g.person
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        # Guessing the current password from a borrowed session counts like guessing at sign-in.
        counted = (current_app.config["SIGNIN_LIMIT_ACCOUNT"], "signin-account", person.email or person.id)
        wait = throttle.wait(*counted)
        if wait:
            message = _("Too many attempts. Wait %(wait)s, then try again.", wait=throttle.describe_wait(wait))
            return render_template("account/password.html", errors={"current_password": [message]}), 429, \
                {"Retry-After": str(wait)}
        try:
            passwords.change_password(person, request.form.get("current_password", ""),
                                      request.form.get("new_password", ""), request.form.get("confirm_password", ""))
        except passwords.PasswordError as error:
            db.session.rollback()
            if error.field == "current_password":
                throttle.hit(*counted)
            errors[error.field] = [error.message]
        else:
            audit.record("password.change", record_type="person", record_id=person.id)
            db.session.commit()
            flash(_("Your password is changed. Anywhere else you were signed in, you are now signed out."))
            return redirect(url_for("web.index"))
    return render_template("account/password.html", errors=errors), (400 if errors else 200)
