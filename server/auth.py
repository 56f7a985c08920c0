"""Who may use what: one place for every route's access rule.

Every view states its audience with `@allow(...)`; endpoints owned by extensions are
listed in `EXTENSION_ENDPOINTS`. `enforce` runs before every request and refuses any
endpoint without a rule, so a route cannot be added without saying who may use it, and
a test can walk the whole URL map.

Audiences:
- "public": anyone, signed in or not.
- "device": a volunteer's device, by `Authorization: Bearer <device token>`.
- "coordinator", "partner", "admin": a person signed in with email and password who
  holds that role in at least one area (an admin may do what a coordinator may).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets

from flask import abort, current_app, g, redirect, request, session, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from server import passwords, sessions
from server.extensions import db
from server.models import Device, Person

AUDIENCES = frozenset({"public", "device", "coordinator", "partner", "admin"})
WEB_ROLES = ("coordinator", "partner", "admin")

# Endpoints registered by Flask and extensions rather than by our own views.
EXTENSION_ENDPOINTS = {
    "static": ("public",),
    "api-docs.openapi_json": ("public",),
}

# What a person who must change their password may still reach: the change page, signing
# out, and files that pages and the field app load (not pages).
WHILE_CHANGING_PASSWORD = {"account.password", "signin.logout", "static", "pwa.service_worker", "pwa.web_manifest",
                           "pwa.asset", "pwa.icon"}


def allow(*audiences: str):
    """Declare who may call a view; `enforce` checks it before the view runs."""
    unknown = set(audiences) - AUDIENCES
    if not audiences or unknown:
        raise ValueError(f"unknown audience {unknown or '(none)'}")

    def decorate(view):
        view.kerbside_access = tuple(audiences)
        return view

    return decorate


def access_rule(endpoint: str | None):
    """The audiences allowed on `endpoint`, or None when the route states none."""
    if endpoint is None:
        return None
    view = current_app.view_functions.get(endpoint)
    return getattr(view, "kerbside_access", None) or EXTENSION_ENDPOINTS.get(endpoint)


def enforce():
    """before_request: authenticate as the route's rule asks, or refuse."""
    g.person = None
    g.device = None
    g.csrf_in_page = False
    if request.endpoint is None:
        return None  # no such route: let the 404 handler answer
    rule = access_rule(request.endpoint)
    if rule is None:
        current_app.logger.error("Route %s states no access rule; refused.", request.endpoint)
        abort(403)
    if "device" in rule:
        if request.headers.get("Authorization") or "public" not in rule:
            authenticate_device()
            return None
    if "public" in rule:
        return must_change_password_first(load_signed_in_person())
    person = load_signed_in_person()
    if person is None:
        if is_api_request():
            abort(401, description=_("Sign in to use this."))
        return redirect(url_for("signin.login", next=request.full_path))
    if not any(has_role(person, role) for role in rule if role in WEB_ROLES):
        abort(403)
    check_csrf()
    return must_change_password_first(person)


def must_change_password_first(person: Person | None):
    """A person signed in with a one-time password is sent to change it before anything else."""
    if person is None or not person.must_change_password or is_api_request():
        return None
    if request.endpoint in WHILE_CHANGING_PASSWORD:
        return None
    return redirect(url_for("account.password"))


def is_api_request() -> bool:
    return request.path.startswith("/api/")


# -- devices -------------------------------------------------------------------------


def new_device_token() -> str:
    return "kbd_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Tokens are long random strings, so a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


class DeviceAuthError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(code)
        self.code = code
        self.message = message


def authenticate_device():
    """Set g.device and g.person from the bearer token, or answer 401."""
    header = request.headers.get("Authorization", "")
    scheme, _sep, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise DeviceAuthError("token_missing", _("This phone is not signed in. Join with the invite code your coordinator gave you."))
    # The person and their roles come in the same query: every sync needs them for its scope.
    device = db.session.execute(
        select(Device).where(Device.token_hash == token_hash(token.strip()))
        .options(joinedload(Device.person).joinedload(Person.roles))
    ).unique().scalar_one_or_none()
    if device is None:
        raise DeviceAuthError("token_invalid", _("Kerbside does not recognise this phone's sign-in. Ask your coordinator for a new invite code, then join again."))
    if device.revoked_at is not None and not _accepts_signed_out_devices():
        raise DeviceAuthError("token_revoked", _("A coordinator signed this phone out. Nothing on it is lost. Ask your coordinator for a new invite code, then join again."))
    g.device = device
    g.person = device.person


def accepts_signed_out_devices(view):
    """Mark a device view that a signed-out device may still call (signing out again is not an error)."""
    view.kerbside_accepts_signed_out = True
    return view


def _accepts_signed_out_devices() -> bool:
    view = current_app.view_functions.get(request.endpoint)
    return bool(getattr(view, "kerbside_accepts_signed_out", False))


# -- people signed in on the web -----------------------------------------------------


def hash_password(password: str) -> str:
    return passwords.hash_password(password)


def check_password(person: Person | None, password: str) -> bool:
    """Whether `password` is `person`'s; as slow for an unknown person as for a known one.

    A deactivated person cannot sign in: checked as if unknown, so the answer says nothing more.
    """
    if person is not None and person.deactivated_at is not None:
        passwords.verify(None, password)
        return False
    return passwords.verify(person, password)


def load_signed_in_person() -> Person | None:
    """The person whose live server-side session the cookie names (see server/sessions.py)."""
    person_id = sessions.current_person_id()
    if person_id:
        g.person = db.session.get(Person, person_id)
    return g.person


def sign_in(person: Person):
    """A new session (a fresh cookie, so none chosen before signing in is kept)."""
    sessions.start(person.id)


def sign_out():
    """End this session on the server, so a copy of the cookie is refused too."""
    sessions.end_current()


def has_role(person: Person | None, role: str, area_id: str | None = None) -> bool:
    """Whether `person` holds `role` (in `area_id`, when given); admins count as coordinators."""
    if person is None:
        return False
    wanted = {role, "admin"} if role == "coordinator" else {role}
    return any(
        r.role in wanted and (area_id is None or r.area_id in (None, area_id)) for r in person.roles
    )


def area_ids_for(person: Person, roles) -> set[str] | None:
    """Areas where `person` holds any of `roles`; None means every area (an admin)."""
    if any(r.role == "admin" and r.area_id is None for r in person.roles):
        return None
    return {r.area_id for r in person.roles if r.role in roles and r.area_id}


def person_by_email(email: str) -> Person | None:
    return db.session.execute(select(Person).where(Person.email == email.strip().lower())).scalar_one_or_none()


# -- CSRF for forms posted by signed-in people ----------------------------------------


def csrf_token() -> str:
    g.csrf_in_page = True  # the page is for this reader only (server/headers.py)
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def check_csrf():
    """Refuse a state-changing form post that did not come from our own page."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = session.get("csrf") or ""
    if not expected:
        # No cookie came with the form: blocked cookies, or a post from elsewhere.
        abort(400, description=_("Your browser did not send this site's cookie with the form. Allow cookies for "
                                 "this site, reload the page and try again."))
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, description=_("This form has expired. Go back, reload the page and try again."))


def csrf_protected(view):
    """CSRF check for public views that take form posts (the sign-in form)."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        check_csrf()
        return view(*args, **kwargs)

    return wrapped

