"""Volunteers as people: readable device names, re-join codes, signing a device out, rename,
deactivate and merge.

A person is one record however many phones they use: a re-invite or a re-join code adds a
device to the same person, so their visits stay one history. Each function works in the
current session and leaves the commit to the caller.
"""

from __future__ import annotations

import hashlib
import secrets

from babel.dates import format_skeleton
from flask_babel import get_locale, gettext as _, to_user_timezone
from sqlalchemy import func, select, update

from server import changes
from server.extensions import db
from server.models import (
    Action,
    ActionComment,
    Blob,
    Change,
    Device,
    Invite,
    Person,
    Role,
    Site,
    SiteEdit,
    Submission,
    WebSession,
    utcnow,
)

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # as invite codes: no 0/O or 1/I
HANDLE_LENGTH = 4
SECRET_LENGTH = 12
# A re-join code is 16 characters (an invite code 12), so the two are told apart by length.
REJOIN_LENGTH = HANDLE_LENGTH + SECRET_LENGTH


class PeopleError(Exception):
    """A rule refused the change; `code` for machines, `message` for people."""

    def __init__(self, code: str, message: str):
        super().__init__(code)
        self.code = code
        self.message = message


# -- device names -----------------------------------------------------------------------------


def device_kind(user_agent: str) -> str:
    """What sort of device a User-Agent header describes, in words ("Android phone")."""
    ua = user_agent or ""
    if "iPhone" in ua:
        return _("iPhone")
    if "iPad" in ua:
        return _("iPad")
    if "Android" in ua:
        return _("Android phone") if "Mobile" in ua else _("Android tablet")
    if "CrOS" in ua:
        return _("Chromebook")
    if "Windows" in ua:
        return _("Windows computer")
    if "Macintosh" in ua or "Mac OS X" in ua:
        return _("Mac")
    if "Linux" in ua:
        return _("Linux computer")
    return _("Phone or computer")


def short_date(moment) -> str:
    """"3 Dec": day and month in the reader's language and order."""
    return format_skeleton("dMMM", to_user_timezone(moment), locale=get_locale())


def readable_device_name(user_agent: str, joined) -> str:
    """A name for a device the volunteer did not name: "Android phone, joined 3 Dec"."""
    return _("%(kind)s, joined %(date)s", kind=device_kind(user_agent), date=short_date(joined))


def looks_like_user_agent(name: str) -> bool:
    # Older field apps sent the browser's user-agent string as the name when none was typed.
    return name.startswith("Mozilla/") or "AppleWebKit/" in name or "Gecko/" in name


def device_label(device: Device) -> str:
    """The device's name as a coordinator reads it: never a raw user-agent string."""
    if looks_like_user_agent(device.name):
        return readable_device_name(device.name, device.created_at)
    return device.name


# -- signing devices out --------------------------------------------------------------------------


def revoke_device(device: Device) -> bool:
    """Refuse the device's next sync; True when it was signed in until now."""
    if device.revoked_at is not None:
        return False
    device.revoked_at = utcnow()
    db.session.flush()
    return True


def revoke_all(person: Person) -> int:
    """Sign out every device of the person; how many were signed in."""
    devices = db.session.execute(
        select(Device).where(Device.person_id == person.id, Device.revoked_at.is_(None))).scalars().all()
    for device in devices:
        device.revoked_at = utcnow()
    db.session.flush()
    return len(devices)


# -- re-join codes -------------------------------------------------------------------------------


def _normalised(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def is_rejoin_code(code: str) -> bool:
    return len(_normalised(code)) == REJOIN_LENGTH


def split_rejoin_code(code: str) -> tuple[str, str]:
    """The handle (names the person, so wrong tries are counted per person) and the secret."""
    raw = _normalised(code)
    return raw[:HANDLE_LENGTH], raw[HANDLE_LENGTH:]


def reset_rejoin_code(person: Person) -> str:
    """A new personal re-join code; the old one stops working. Only hashes are kept: show it now."""
    if person.rejoin_handle is None:
        while True:
            handle = "".join(secrets.choice(CODE_ALPHABET) for _ in range(HANDLE_LENGTH))
            taken = db.session.execute(select(Person.id).where(Person.rejoin_handle == handle)).first()
            if taken is None:
                break
        person.rejoin_handle = handle
    secret = "".join(secrets.choice(CODE_ALPHABET) for _ in range(SECRET_LENGTH))
    person.rejoin_hash = secret_hash(secret)
    db.session.flush()
    raw = person.rejoin_handle + secret
    return "-".join(raw[i : i + 4] for i in range(0, REJOIN_LENGTH, 4))


def person_for_rejoin(code: str) -> Person | None:
    """The person whose re-join code this is, or None (wrong code, or no code set)."""
    handle, secret = split_rejoin_code(code)
    person = db.session.execute(select(Person).where(Person.rejoin_handle == handle)).scalar_one_or_none()
    if person is None or person.rejoin_hash is None:
        return None
    if not secrets.compare_digest(person.rejoin_hash, secret_hash(secret)):
        return None
    return person


# -- rename, deactivate -----------------------------------------------------------------------


def rename(person: Person, name: str) -> None:
    person.display_name = name
    person.name_given = True
    db.session.flush()


def deactivate(person: Person) -> int:
    """Devices signed out, web sessions ended, no joining; how many devices were signed out."""
    person.deactivated_at = utcnow()
    db.session.execute(WebSession.__table__.delete().where(WebSession.person_id == person.id))
    return revoke_all(person)


def reactivate(person: Person) -> None:
    person.deactivated_at = None
    db.session.flush()


# -- merge ----------------------------------------------------------------------------------


# Every column that refers to a person, and what a merge does with it (a test compares this
# with the models, so a new reference cannot be forgotten: the removed row would be pointed at).
MERGE_HANDLES = {
    ("role", "person_id"): "copied to the kept person unless held already; removed with the other",
    ("invite", "person_id"): "moved",
    ("invite", "created_by"): "moved",
    ("device", "person_id"): "moved (with the photos they sent)",
    ("submission", "person_id"): "moved",
    ("submission", "reviewed_by"): "moved",
    ("action", "created_by"): "moved",
    ("action_comment", "author_id"): "moved",
    ("site", "proposed_by"): "moved",
    ("site_edit", "person_id"): "moved",
    ("site_edit", "decided_by"): "moved",
    ("web_session", "person_id"): "ended",
}


def merge_counts(person: Person) -> dict[str, int]:
    """What moves when `person` is merged into another: shown on the confirmation page."""
    def count(model, column):
        return db.session.execute(select(func.count()).select_from(model).where(column == person.id)).scalar_one()

    return {
        "visits": count(Submission, Submission.person_id),
        "devices": count(Device, Device.person_id),
        "roles": len(person.roles),
        "actions": count(Action, Action.created_by),
        "comments": count(ActionComment, ActionComment.author_id),
        "invites": count(Invite, Invite.person_id) + count(Invite, Invite.created_by),
        "photos": db.session.execute(select(func.count()).select_from(Blob).join(Device, Blob.device_id == Device.id)
                                     .where(Device.person_id == person.id)).scalar_one(),
    }


def merge(keep: Person, other: Person) -> dict[str, int]:
    """Move everything of `other` onto `keep`, then remove `other`; what moved.

    Visits, devices (and with them their photos), roles, actions raised, comments, sites
    proposed and site edits, invites, and the change log's per-person rows, so `keep`'s phones receive `other`'s visits too. The audit
    log names people by id only and is append-only: it keeps `other`'s id, and the merge
    entry says which id it became.
    """
    if keep.id == other.id:
        raise PeopleError("same_person", _("Choose two different people to merge."))
    moved = merge_counts(other)
    db.session.execute(update(Submission).where(Submission.person_id == other.id).values(person_id=keep.id))
    db.session.execute(update(Device).where(Device.person_id == other.id).values(person_id=keep.id))
    db.session.execute(update(Action).where(Action.created_by == other.id).values(created_by=keep.id))
    db.session.execute(update(ActionComment).where(ActionComment.author_id == other.id).values(author_id=keep.id))
    db.session.execute(update(Site).where(Site.proposed_by == other.id).values(proposed_by=keep.id))
    db.session.execute(update(SiteEdit).where(SiteEdit.person_id == other.id).values(person_id=keep.id))
    db.session.execute(update(SiteEdit).where(SiteEdit.decided_by == other.id).values(decided_by=keep.id))
    db.session.execute(update(Invite).where(Invite.person_id == other.id).values(person_id=keep.id))
    db.session.execute(update(Invite).where(Invite.created_by == other.id).values(created_by=keep.id))
    db.session.execute(update(Change).where(Change.person_id == other.id).values(person_id=keep.id))
    db.session.execute(update(Submission).where(Submission.reviewed_by == other.id).values(reviewed_by=keep.id))
    held = {(r.role, r.area_id) for r in keep.roles}
    for role in list(other.roles):
        if (role.role, role.area_id) not in held:
            keep.roles.append(Role(role=role.role, area_id=role.area_id))
            held.add((role.role, role.area_id))
    if not keep.email and other.email:
        email, other.email = other.email, None
        db.session.flush()
        keep.email, keep.password_hash = email, other.password_hash
    if not keep.name_given and other.name_given:
        keep.display_name, keep.name_given = other.display_name, True
    db.session.execute(WebSession.__table__.delete().where(WebSession.person_id == other.id))
    db.session.flush()
    # The person's own records (visits) are pulled by person: their phones see them again.
    visits = db.session.execute(select(Submission).where(Submission.person_id == keep.id)).scalars().all()
    db.session.delete(other)
    db.session.flush()
    if visits:
        changes.write_changes([changes.submission_change(submission) for submission in visits])
    return moved


def may_merge(actor: Person, people: list[Person], coordinated: set[str] | None) -> bool:
    """A coordinator merges only people whose roles are all volunteer roles in their own area(s);
    anyone else (a coordinator, a partner, someone elsewhere) is an admin's to merge."""
    if coordinated is None:  # an admin
        return True
    for person in people:
        for role in person.roles:
            if role.role not in ("street_rep", "mystery_shopper") or role.area_id not in coordinated:
                return False
    return True
