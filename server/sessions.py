"""Web sessions held on the server, so that ending one takes effect at once.

Flask's signed cookie carries a random secret (`sid`) and the form token (`csrf`); the
`web_session` table holds only the secret's SHA-256, the person, and when the session began
and was last used. A session ends when its row goes: on signing out, on a password change
(the person's other sessions), on an admin's "sign out everywhere", after
`SESSION_IDLE_MINUTES` without a request, and `SESSION_MAX_HOURS` after signing in. A copy
of the cookie is then worth nothing.

The cookie is `Secure` whenever the request came over HTTPS (as ProxyFix reports it behind a
trusted proxy), `HttpOnly` and `SameSite=Lax`.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask import current_app, has_request_context, request, session
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import delete, or_, update

from server.extensions import db
from server.models import WebSession, utcnow

# The last-seen time is written at most this often: a page view is otherwise a pure read.
TOUCH_EVERY = timedelta(minutes=1)


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure when the request itself was HTTPS."""

    def get_cookie_secure(self, app) -> bool:
        if app.config.get("SESSION_COOKIE_SECURE"):
            return True
        return has_request_context() and request.is_secure


def secret_hash(secret: str) -> str:
    """The secret is 256 random bits, so a plain SHA-256 is enough to store it safely."""
    return hashlib.sha256(secret.encode()).hexdigest()


def idle_limit() -> timedelta:
    return timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])


def lifetime() -> timedelta:
    return timedelta(hours=current_app.config["SESSION_MAX_HOURS"])


def is_over(row: WebSession, now: datetime) -> bool:
    """Whether `row` has been idle too long or has outlived its absolute lifetime."""
    return now - row.last_seen_at >= idle_limit() or now - row.created_at >= lifetime()


def open_for(person_id: str) -> str:
    """A session row for `person_id`; returns the secret its cookie must carry as `sid`."""
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    db.session.add(WebSession(secret_hash=secret_hash(secret), person_id=person_id, created_at=now, last_seen_at=now))
    return secret


def start(person_id: str) -> str:
    """A new session for `person_id`: a fresh cookie (no value carried over) and its row.

    A session the cookie already named ends: signing in again must not leave a copy of the
    old cookie working.
    """
    old = current_key()
    if old:
        db.session.execute(delete(WebSession).where(WebSession.secret_hash == old))
    secret = open_for(person_id)
    session.clear()
    session["sid"] = secret
    session["csrf"] = secrets.token_urlsafe(24)
    session.permanent = True
    return secret


def current_person_id() -> str | None:
    """The person whose live session the request's cookie names; ends it when it is over."""
    secret = session.get("sid")
    if not secret:
        return None
    key = secret_hash(secret)
    row = db.session.get(WebSession, key)
    if row is None:
        session.pop("sid", None)
        return None
    now = utcnow()
    person_id = row.person_id
    if is_over(row, now):
        _write(delete(WebSession).where(WebSession.secret_hash == key))
        session.pop("sid", None)
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        _write(update(WebSession).where(WebSession.secret_hash == key).values(last_seen_at=now))
    return person_id


def current_key() -> str | None:
    secret = session.get("sid")
    return secret_hash(secret) if secret else None


def end_current():
    """Sign out: the row goes, so this cookie (and any copy of it) no longer signs anyone in."""
    key = current_key()
    if key:
        db.session.execute(delete(WebSession).where(WebSession.secret_hash == key))
    session.clear()


def end_all(person_id: str, keep_current: bool = False) -> int:
    """End every session of `person_id` (but the request's own, with `keep_current`)."""
    statement = delete(WebSession).where(WebSession.person_id == person_id)
    key = current_key() if keep_current and has_request_context() else None
    if key:
        statement = statement.where(WebSession.secret_hash != key)
    return db.session.execute(statement).rowcount


def purge_over() -> int:
    """Remove the rows of sessions that are over but were never presented again."""
    now = utcnow()
    return db.session.execute(delete(WebSession).where(or_(
        WebSession.last_seen_at <= now - idle_limit(), WebSession.created_at <= now - lifetime()))).rowcount


def _write(statement):
    """Run one small write in a transaction of its own.

    On SQLite a page view's transaction begins deferred and has already read; turning it
    into a writer could fail at once if another request wrote meanwhile. Ending the read
    first makes the write the first statement of a new transaction, which waits its turn.
    """
    db.session.rollback()
    db.session.execute(statement)
    db.session.commit()
