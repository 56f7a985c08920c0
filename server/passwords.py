"""Passwords for people who sign in on the web: argon2 hashes, changes and one-time passwords.

Checking a password costs the same whoever asks: an email nobody has, or a person with no
password, is checked against a dummy hash made with the same parameters, so the answer's
timing does not tell an attacker which emails have accounts. No password is ever emailed
or logged: a one-time password is shown once, to the admin who set it.
"""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import gettext as _

from server import sessions
from server.models import Person

MIN_LENGTH = 12
MAX_LENGTH = 1024  # argon2 takes any length; this only keeps a hostile form post cheap

_hasher = PasswordHasher()


class PasswordError(Exception):
    """A new password that cannot be used, with the reason a person reads."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@functools.cache
def dummy_hash() -> str:
    """A hash of a random password with the current parameters (made once per process)."""
    return _hasher.hash(secrets.token_urlsafe(24))


def verify(person: Person | None, password: str) -> bool:
    """Whether `password` is `person`'s; runs argon2 once whether or not there is such a person."""
    stored = person.password_hash if person is not None and person.password_hash else None
    too_long = len(password) > MAX_LENGTH  # never a real one; still checked, so it takes as long
    try:
        matches = _hasher.verify(stored if stored and not too_long else dummy_hash(), password[:MAX_LENGTH])
    except (VerificationError, InvalidHashError):
        return False
    return matches and stored is not None and not too_long


def check_new_password(new: str, confirm: str) -> None:
    """Refuse a new password that is too short, too long, or not typed the same twice."""
    if len(new) < MIN_LENGTH:
        raise PasswordError("new_password", _("Use at least %(count)d characters. A few words in a row are "
                                              "easy to remember and hard to guess.", count=MIN_LENGTH))
    if len(new) > MAX_LENGTH:
        raise PasswordError("new_password", _("Use at most %(count)d characters.", count=MAX_LENGTH))
    if new != confirm:
        raise PasswordError("confirm_password", _("The two new passwords are not the same. Type them again."))


def change_password(person: Person, current: str, new: str, confirm: str) -> None:
    """A signed-in person changes their password; their other sessions end."""
    if not verify(person, current):
        raise PasswordError("current_password", _("That is not your current password."))
    check_new_password(new, confirm)
    if new == current:
        raise PasswordError("new_password", _("Choose a password different from the current one."))
    person.password_hash = hash_password(new)
    person.must_change_password = False
    sessions.end_all(person.id, keep_current=True)


def set_one_time_password(person: Person) -> str:
    """An admin resets `person`'s password: returns it to show once; it must be changed at sign-in.

    Every session of the person ends, so whoever held their old password is signed out.
    """
    password = "-".join(secrets.token_hex(3) for _ in range(4))  # 24 hex digits, 96 bits
    person.password_hash = hash_password(password)
    person.must_change_password = True
    sessions.end_all(person.id)
    return password
