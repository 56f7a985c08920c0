"""Before a form version is retired: which phones still use it, and whether retiring it would
take the form off the phones altogether.

"Phones in the form's scope" are devices that are not revoked, of people who fill this kind
of form (FORM_ROLES, or a coordinator or admin) in an area that uses the form: the form's own
area, or for a shared form every area that has not replaced it with a published copy.

"Phones using the version" are those of them that synced in the last ACTIVE_DAYS days, after
the version was published (so they have it) and not after a newer published version of the
form was (which they would offer instead). A phone that has not synced for longer may still
use it, and is counted among the phones in scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, func, or_, select

from server.extensions import db
from server.models import Area, Device, Form, FormVersion, Role, utcnow
from sync.protocol import FORM_ROLES, STAFF_ROLES

ACTIVE_DAYS = 30


@dataclass
class RetireCheck:
    version: FormVersion
    newer: FormVersion | None  # the newest published version after this one: phones move to it
    other_published: FormVersion | None  # another published version of the form, phones fall back to it
    fallback: FormVersion | None  # for an area's copy: the shared form's published version it gives way to
    phones_in_scope: int
    phones_using: int
    active_days: int = ACTIVE_DAYS

    @property
    def blocked(self) -> bool:
        """Retiring would leave phones without the form: no other published version, nothing to fall back to."""
        return self.other_published is None and self.fallback is None and self.phones_in_scope > 0


def areas_using(form: Form) -> list[str]:
    """The areas whose phones are offered `form`: its own, or for a shared form every area that
    has not replaced it by a published copy of its own."""
    if form.area_id is not None:
        return [form.area_id]
    replaced = set(db.session.execute(
        select(Form.area_id).join(FormVersion, FormVersion.form_id == Form.id)
        .where(Form.copy_of == form.id, FormVersion.status == "published")
    ).scalars())
    return [area_id for area_id in db.session.execute(select(Area.id)).scalars() if area_id not in replaced]


def _phones(form: Form, version: FormVersion, newer: FormVersion | None) -> tuple[int, int]:
    areas = areas_using(form)
    roles = tuple(FORM_ROLES.get(form.kind, ())) + STAFF_ROLES
    fills = select(Role.person_id).where(
        Role.role.in_(roles), or_(Role.area_id.in_(areas), and_(Role.area_id.is_(None), Role.role == "admin")))
    in_scope = and_(Device.revoked_at.is_(None), Device.person_id.in_(fills))
    total = db.session.execute(select(func.count()).select_from(Device).where(in_scope)).scalar_one()
    recent = [in_scope, Device.last_sync_at >= utcnow() - timedelta(days=ACTIVE_DAYS)]
    if version.published_at is not None:
        recent.append(Device.last_sync_at >= version.published_at)
    if newer is not None and newer.published_at is not None:
        recent.append(Device.last_sync_at < newer.published_at)
    using = db.session.execute(select(func.count()).select_from(Device).where(*recent)).scalar_one()
    return total, using


def check_retire(version: FormVersion) -> RetireCheck:
    form = version.form
    published = [v for v in form.versions if v.status == "published" and v.version != version.version]
    newer = max((v for v in published if v.version > version.version), key=lambda v: v.version, default=None)
    other = max(published, key=lambda v: v.version, default=None)
    fallback = None
    if form.copy_of:
        shared = db.session.get(Form, form.copy_of)
        fallback = max((v for v in shared.versions if v.status == "published"), key=lambda v: v.version,
                       default=None) if shared else None
    total, using = _phones(form, version, newer)
    return RetireCheck(version=version, newer=newer, other_published=other, fallback=fallback,
                       phones_in_scope=total, phones_using=using)
