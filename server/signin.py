"""Signing in and out with email and password (coordinators, partners, admins)."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from server import audit, auth, sessions, throttle
from server.auth import allow, csrf_protected
from server.extensions import db
from server.models import Area

bp = Blueprint("signin", __name__)


@bp.route("/login", methods=["GET", "POST"])
@allow("public")
@csrf_protected
def login():
    """Coordinators and partners sign in with email and password."""
    if request.method == "GET":
        return render_template("login.html", error=None)
    email = request.form.get("email", "")
    counted = signin_throttles(email)
    wait = max(throttle.wait(limit, *what) for limit, *what in counted)
    if wait:
        return throttled(wait)
    # Unknown emails are checked against a dummy hash: same message, same time.
    person = auth.person_by_email(email)
    if auth.check_password(person, request.form.get("password", "")):
        throttle.forget(*counted[0])
        auth.sign_in(person)
        audit.record("sign_in", record_type="person", record_id=person.id, person_id=person.id)
        sessions.purge_over()
        throttle.purge_expired()
        db.session.commit()
        return redirect(local_path(request.args.get("next")) or landing_page(person))
    for limit, *what in counted:
        throttle.hit(limit, *what)
    # A known account is named by its id; for an unknown one only a keyed hash of what was typed.
    if person is not None:
        audit.record("sign_in.failed", record_type="person", record_id=person.id, person_id=person.id)
    else:
        audit.record("sign_in.failed", person_id=None, details={"email_key": audit.email_key(email)})
    db.session.commit()
    error = _("That email and password do not match. Check them and try again.")
    return render_template("login.html", error=error), 401


def landing_page(person) -> str:
    """Where a person's own work is: an admin's admin pages; a coordinator's area dashboard, a
    partner's actions (the list of areas when they work in several); the front page for anyone else."""
    if any(r.role == "admin" and r.area_id is None for r in person.roles):
        return url_for("admin_people.people")
    coordinating = {r.area_id for r in person.roles if r.role in ("coordinator", "admin") and r.area_id}
    partnering = {r.area_id for r in person.roles if r.role == "partner" and r.area_id} - coordinating
    if len(coordinating) + len(partnering) > 1:
        return url_for("coordinator.index")
    if coordinating or partnering:
        area = db.session.get(Area, next(iter(coordinating or partnering)))
        if coordinating:
            return url_for("coordinator.dashboard", slug=area.slug)
        return url_for("coordinator.actions_board", slug=area.slug)
    return url_for("web.index")


def signin_throttles(email: str) -> list[tuple[str, ...]]:
    """The counters a sign-in attempt is held to: its email (known or not) and its address."""
    config = current_app.config
    return [(config["SIGNIN_LIMIT_ACCOUNT"], "signin-account", email.strip().lower()),
            (config["SIGNIN_LIMIT_ADDRESS"], "signin-address", request.remote_addr or "")]


def throttled(wait: int):
    """The sign-in form again, saying how long to wait (429 with Retry-After)."""
    error = _("Too many attempts to sign in. Wait %(wait)s, then try again.", wait=throttle.describe_wait(wait))
    return render_template("login.html", error=error), 429, {"Retry-After": str(wait)}


def local_path(target: str | None) -> str | None:
    r"""`target` when it is a path on this site, else None.

    Browsers drop tabs and newlines from a URL and read a backslash as a slash, so
    "/\t/evil.example/" or "/\evil.example" would leave the site: anything holding a
    control character, white space or a backslash is refused, as is a scheme-relative "//".
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if any(ch == "\\" or ch.isspace() or not ch.isprintable() for ch in target):
        return None
    return target


@bp.post("/logout")
@allow("public")
@csrf_protected
def logout():
    person = auth.load_signed_in_person()
    if person is not None:
        audit.record("sign_out", record_type="person", record_id=person.id, person_id=person.id)
        db.session.commit()
    auth.sign_out()
    db.session.commit()
    flash(_("You are signed out."))
    return redirect(url_for("web.index"))
