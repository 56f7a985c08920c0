"""Admins look after the people who sign in on the web: one-time passwords, signing out everywhere.

A one-time password is made here, shown once on the page that answers the admin's post,
and never emailed, logged or kept in the cookie (a flash message would keep it there).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from server import audit, passwords, sessions
from server.auth import allow
from server.extensions import db
from server.models import Area, Person, WebSession, utcnow

bp = Blueprint("admin_people", __name__, url_prefix="/admin/people")


def web_people() -> list[tuple[Person, int, object]]:
    """Everyone who signs in with an email: with their live sessions and when last seen."""
    cutoff = utcnow() - sessions.idle_limit()
    live = (select(WebSession.person_id, func.count().label("live"), func.max(WebSession.last_seen_at).label("seen"))
            .where(WebSession.last_seen_at > cutoff, WebSession.created_at > utcnow() - sessions.lifetime())
            .group_by(WebSession.person_id).subquery())
    rows = db.session.execute(
        select(Person, live.c.live, live.c.seen).outerjoin(live, live.c.person_id == Person.id)
        .where(Person.email.is_not(None)).options(selectinload(Person.roles)).order_by(Person.display_name)
    ).all()
    return [(person, count or 0, seen) for person, count, seen in rows]


def _web_person_or_404(person_id: str) -> Person:
    person = db.session.get(Person, person_id)
    if person is None or not person.email:
        abort(404)
    return person


def role_labels() -> dict[str, str]:
    """Each web role in the reader's language."""
    return {"coordinator": _("Coordinator"), "partner": _("Partner"), "admin": _("Admin"),
            "street_rep": _("Street rep"), "mystery_shopper": _("Mystery shopper")}


def _page(shown=None):
    areas = dict(db.session.execute(select(Area.id, Area.name)).all())
    return render_template("admin/people.html", people=web_people(), shown=shown, areas=areas,
                           role_labels=role_labels())


@bp.get("")
@allow("admin")
def people():
    """The list of web users, each with "set a one-time password" and "sign out everywhere"."""
    return _page()


@bp.post("/<person_id>/one-time-password")
@allow("admin")
def one_time_password(person_id):
    """Set a one-time password and show it once; the person changes it when they next sign in."""
    person = _web_person_or_404(person_id)
    if person.id == g.person.id:
        flash(_("To change your own password, use “Change password”."))
        return redirect(url_for("admin_people.people"))
    password = passwords.set_one_time_password(person)
    # That a one-time password was set, never the password.
    audit.record("person.one_time_password", record_type="person", record_id=person.id)
    db.session.commit()
    return _page(shown={"person": person, "password": password})


@bp.post("/<person_id>/sign-out")
@allow("admin")
def sign_out_everywhere(person_id):
    """End every web session of the person, wherever they are signed in."""
    person = _web_person_or_404(person_id)
    ended = sessions.end_all(person.id)
    audit.record("person.sign_out_everywhere", record_type="person", record_id=person.id, details={"sessions": ended})
    db.session.commit()
    if person.id == g.person.id:
        return redirect(url_for("signin.login"))
    flash(_("%(name)s is signed out everywhere (%(count)d sessions ended).", name=person.display_name, count=ended))
    return redirect(url_for("admin_people.people"))
