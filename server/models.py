"""The canonical records, in SQLAlchemy 2.0 style.

Published agreement and form versions are immutable; submissions are append-only.
Grades are stored one row per answered line (`Answer`), with the site, area, theme and
time copied onto the row, so SQL can aggregate them by site, line, theme and date without
joins over a million rows.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server import integrity
from server.extensions import db

ROLES = ("street_rep", "mystery_shopper", "coordinator", "partner", "admin")
VOLUNTEER_ROLES = ("street_rep", "mystery_shopper")
VERSION_STATUSES = ("draft", "published", "retired")
REVIEW_STATUSES = ("pending", "accepted", "flagged")
# A site proposed in the field waits for a coordinator: approved, merged into another site, or rejected.
SITE_STATUSES = ("approved", "proposed", "merged", "rejected")
SITE_EDIT_STATUSES = ("pending", "accepted", "refused")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return str(uuid.uuid4())


class UTCDateTime(db.TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime")
            value = value.astimezone(timezone.utc)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class ServerState(db.Model):
    """One row: the epoch (changed after a restore from backup) and change-log horizon."""

    __tablename__ = "server_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch: Mapped[str] = mapped_column(String(40))
    changes_kept_from: Mapped[int] = mapped_column(BigInteger, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class ChangeCounter(db.Model):
    """One row whose `value` hands out change `seq` numbers inside write transactions."""

    __tablename__ = "change_counter"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class Area(db.Model):
    __tablename__ = "area"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # Off by default: the server strips where a photo was taken (see server/photo_location.py).
    keep_photo_location: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def to_sync(self) -> dict:
        return {"id": self.id, "slug": self.slug, "name": self.name, "description": self.description}


class Site(db.Model):
    """A street, alley, park or block that reps monitor. Editable by reps (`site.update`)."""

    __tablename__ = "site"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    area_id: Mapped[str] = mapped_column(ForeignKey("area.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    # An optional line (a street's course) as GeoJSON LineString coordinates.
    line: Mapped[list | None] = mapped_column(JSON)
    notes: Mapped[str] = mapped_column(Text, default="")
    photo: Mapped[str | None] = mapped_column(String(64))
    # "proposed" in the field by a rep until a coordinator approves, merges or rejects it; only
    # approved sites reach other phones, the map, coverage, the action form and the public page.
    status: Mapped[str] = mapped_column(String(16), default="approved", server_default="approved")
    # Who proposed it (their phone alone keeps it while it waits) and, once merged, the site it joined.
    proposed_by: Mapped[str | None] = mapped_column(ForeignKey("person.id"))
    merged_into_id: Mapped[str | None] = mapped_column(ForeignKey("site.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    field_versions: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    EDITABLE = ("name", "lat", "lng", "notes")

    @property
    def proposed(self) -> bool:
        return self.status == "proposed"

    def to_sync(self) -> dict:
        """The site as phones receive it: the change carrying it names its id."""
        return {
            "area_id": self.area_id,
            "name": self.name,
            "lat": self.lat,
            "lng": self.lng,
            "line": self.line,
            "notes": self.notes,
            "photo": self.photo,
            "status": self.status,
            "version": self.version,
        }


class SiteEdit(db.Model):
    """A street rep's `site.update`, held for a coordinator to accept or refuse (never applied unseen).

    `base_version` and `patch` are the mutation's own; accepting merges the patch into the site
    as the push would have (field by field), refusing leaves the site as it is.
    """

    __tablename__ = "site_edit"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    site_id: Mapped[str] = mapped_column(ForeignKey("site.id"), index=True)
    area_id: Mapped[str] = mapped_column(ForeignKey("area.id"))
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    device_id: Mapped[str | None] = mapped_column(ForeignKey("device.id"))
    base_version: Mapped[int] = mapped_column(Integer)
    patch: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("person.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The moderation queue reads an area's pending edits.
    __table_args__ = (Index("ix_site_edit_area_status", "area_id", "status"),)


class Agreement(db.Model):
    """The Deal for one area; its content lives in immutable versions."""

    __tablename__ = "agreement"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    area_id: Mapped[str] = mapped_column(ForeignKey("area.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    versions: Mapped[list[AgreementVersion]] = relationship(
        back_populates="agreement", order_by="AgreementVersion.version"
    )


class AgreementVersion(db.Model):
    """`definition`: title, themes, our_part, your_part, standards (see the demo)."""

    __tablename__ = "agreement_version"
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreement.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    definition: Mapped[dict] = mapped_column(JSON)
    # The language `definition` is written in (its first, "source" language), and translations of its
    # texts into other languages: {"cy": {text key: text}} (see sync/content.py). Adding or changing a
    # translation makes no new version: keys, lines and grades are the definition's, unchanged.
    language: Mapped[str] = mapped_column(String(16), default="en", server_default="en")
    translations: Mapped[dict] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    agreement: Mapped[Agreement] = relationship(back_populates="versions")

    @property
    def sync_id(self) -> str:
        return f"{self.agreement_id}@{self.version}"

    def to_sync(self) -> dict:
        return {
            **self.definition,
            "id": self.agreement_id,
            "version": self.version,
            "status": self.status,
            "area_id": self.agreement.area_id,
            "language": self.language,
            "translations": self.translations or {},
        }


class Form(db.Model):
    """A monitoring form; `area_id` is empty for a form every area uses (a shared form, an admin's).

    `copy_of` names the shared form an area's own copy stands in for: once the copy has a
    published version, that area's phones and public page use it instead of the shared one.
    """

    __tablename__ = "form"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    area_id: Mapped[str | None] = mapped_column(ForeignKey("area.id"), index=True)
    copy_of: Mapped[str | None] = mapped_column(ForeignKey("form.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    versions: Mapped[list[FormVersion]] = relationship(back_populates="form", order_by="FormVersion.version")

    @property
    def is_shared(self) -> bool:
        return self.area_id is None


class FormVersion(db.Model):
    """`definition`: title, kind and sections of lines, exactly as devices receive it."""

    __tablename__ = "form_version"
    form_id: Mapped[str] = mapped_column(ForeignKey("form.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    definition: Mapped[dict] = mapped_column(JSON)
    # The language `definition` is written in (its first, "source" language), and translations of its
    # texts into other languages: {"cy": {text key: text}} (see sync/content.py). Adding or changing a
    # translation makes no new version: keys, lines and grades are the definition's, unchanged.
    language: Mapped[str] = mapped_column(String(16), default="en", server_default="en")
    translations: Mapped[dict] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    form: Mapped[Form] = relationship(back_populates="versions")

    @property
    def sync_id(self) -> str:
        return f"{self.form_id}@{self.version}"

    def to_sync(self) -> dict:
        return {
            **self.definition,
            "id": self.form_id,
            "version": self.version,
            "kind": self.form.kind,
            "status": self.status,
            "area_id": self.form.area_id,
            "copy_of": self.form.copy_of,
            "language": self.language,
            "translations": self.translations or {},
        }


class Person(db.Model):
    __tablename__ = "person"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    # The service or partner organisation a partner works for ("Street cleansing").
    organisation: Mapped[str | None] = mapped_column(String(200))
    # Set by an admin's one-time password: every page leads to the change page until it is changed.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # False when nobody gave a name (the invite had none, nor did the volunteer when joining):
    # `display_name` then holds a placeholder for coordinators, and the phone greets with no name.
    name_given: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # A deactivated volunteer's devices are signed out; they cannot join or sign in until reactivated.
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The personal re-join code for a shared phone: a public handle (to count wrong tries per
    # person) and the SHA-256 of the secret part; the code itself is shown once, never kept.
    rejoin_handle: Mapped[str | None] = mapped_column(String(8))
    rejoin_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    roles: Mapped[list[Role]] = relationship(back_populates="person", cascade="all, delete-orphan")
    # A unique index rather than a constraint: SQLite adds it without rebuilding the table.
    __table_args__ = (Index("ix_person_rejoin_handle", "rejoin_handle", unique=True),)


class Role(db.Model):
    """A person's role in one area (`area_id` empty: every area, for admins)."""

    __tablename__ = "role"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    area_id: Mapped[str | None] = mapped_column(ForeignKey("area.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    person: Mapped[Person] = relationship(back_populates="roles")
    __table_args__ = (UniqueConstraint("person_id", "area_id", "role", name="uq_role_person_area_role"),)


class WebSession(db.Model):
    """A person signed in on the web; the cookie carries the secret, this row only its SHA-256.

    Deleting the row ends the session at once, wherever the cookie was copied to.
    """

    __tablename__ = "web_session"
    secret_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ThrottleCounter(db.Model):
    """One fixed-window counter of the `limits` package (server/throttle.py), shared by every worker."""

    __tablename__ = "throttle_counter"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class Invite(db.Model):
    """A one-time code a coordinator gives a volunteer; stored only as a hash."""

    __tablename__ = "invite"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    area_id: Mapped[str] = mapped_column(ForeignKey("area.id"))
    role: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str | None] = mapped_column(String(200))
    # Set when the invite adds a device for someone who already has one.
    person_id: Mapped[str | None] = mapped_column(ForeignKey("person.id"))
    created_by: Mapped[str | None] = mapped_column(ForeignKey("person.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# A device's `last_sync_at` is written only when the one stored is at least this old, or a form
# version was published since (operations.note_sync): it is the time of a sync within this much
# of the device's latest one, and pages say "to within a minute".
LAST_SYNC_PRECISION = timedelta(minutes=1)


class Device(db.Model):
    """A phone or browser with its own revocable token (stored only as a hash)."""

    __tablename__ = "device"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    person: Mapped[Person] = relationship()


class Blob(db.Model):
    """A photo, named by the SHA-256 of the bytes the device sent; the bytes live in blob storage.

    Visits name photos by the hash the device computed. When the server changed the bytes
    (location stripped), it keeps them under their own hash, `stored_sha256`; the row's name
    stays the device's, so a visit naming it finds its photo and a second upload is a no-op.
    """

    __tablename__ = "blob"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(64))
    # The stored bytes' size (what counts against the device's quota and the disk).
    size: Mapped[int] = mapped_column(Integer)
    # Empty when the bytes are stored as they came, under `sha256` itself.
    stored_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    device_id: Mapped[str | None] = mapped_column(ForeignKey("device.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Rate and quota count a device's uploads over a period.
    __table_args__ = (Index("ix_blob_device_created", "device_id", "created_at"),)

    @property
    def stored_as(self) -> str:
        """The hash the bytes are kept under in blob storage."""
        return self.stored_sha256 or self.sha256


class Submission(db.Model):
    """One filled form, append-only. `observed_at` is the volunteer's word; `received_at` ours."""

    __tablename__ = "submission"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    form_id: Mapped[str] = mapped_column(String(64))
    form_version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    area_id: Mapped[str] = mapped_column(ForeignKey("area.id"))
    site_id: Mapped[str | None] = mapped_column(ForeignKey("site.id"))
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    device_id: Mapped[str | None] = mapped_column(ForeignKey("device.id"))
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The offset the volunteer's device wrote, so their local time can be shown as they saw it.
    observed_offset: Mapped[str] = mapped_column(String(6), default="+00:00")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    notes: Mapped[str] = mapped_column(Text, default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    payload_hash: Mapped[str] = mapped_column(String(80))
    # The submission exactly as the device sent it, for audit and raw export.
    data: Mapped[dict] = mapped_column(JSON)
    review_status: Mapped[str] = mapped_column(String(16), default="pending")
    review_reason: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[str | None] = mapped_column(ForeignKey("person.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A volunteer's correction of a flagged visit is a new submission naming the one it
    # replaces; the flagged one is kept, pointing at its correction, and no figure counts it.
    # Both links are written by one push transaction (server/push.py); no foreign key, as
    # for answers: adding one would rebuild this table on SQLite and drop its triggers.
    supersedes_id: Mapped[str | None] = mapped_column(String(36))
    superseded_by_id: Mapped[str | None] = mapped_column(String(36))
    __table_args__ = (
        Index("ix_submission_area_observed", "area_id", "observed_at"),
        Index("ix_submission_site_observed", "site_id", "observed_at"),
        # A visit is corrected at most once: a second correction of it is a conflict, and
        # this key holds that even for two pushes that race.
        Index("uq_submission_supersedes", "supersedes_id", unique=True),
        # The few visits no figure counts (flagged, or superseded by a correction): every page
        # leaves them out, and finds them here instead of reading the area's every visit.
        # The review queue: an area's visits of one review status, newest arrivals first. On
        # PostgreSQL it also carries what the queue's count and its list of senders read.
        Index("ix_submission_area_status_received", "area_id", "review_status", "received_at",
              postgresql_include=["superseded_by_id", "person_id"]),
        Index("ix_submission_left_out", "area_id",
              postgresql_where=text("review_status = 'flagged' OR superseded_by_id IS NOT NULL"),
              sqlite_where=text("review_status = 'flagged' OR superseded_by_id IS NOT NULL")),
    )


class Answer(db.Model):
    """One answered line of a submission; grades as letters that SQL can count."""

    __tablename__ = "answer"
    # Its submission must exist: enforced per statement by server.integrity, not a foreign key.
    submission_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    line_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    theme: Mapped[str] = mapped_column(String(200), default="")
    grade: Mapped[str | None] = mapped_column(String(1))
    value: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    photos: Mapped[list | None] = mapped_column(JSON)
    # Copied from the submission so aggregations need no join.
    area_id: Mapped[str] = mapped_column(String(36))
    site_id: Mapped[str | None] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(16))
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    __table_args__ = (
        CheckConstraint("grade IS NULL OR grade IN ('A','B','C','D')", name="grade_letter"),
        Index("ix_answer_site_line_observed", "site_id", "line_key", "observed_at"),
        # The area's pages filter on kind and a period (trends, coverage, mystery shops). On
        # PostgreSQL the index also carries what those pages count, so they read it alone
        # (an index-only scan) instead of fetching a twentieth of the table's pages, scattered.
        Index("ix_answer_area_kind_observed", "area_id", "kind", "observed_at",
              postgresql_include=["line_key", "theme", "grade", "submission_id"]),
    )


class StreetGradeCount(db.Model):
    """How many of an area's counted street grades (visits not flagged, not superseded) were each
    letter, per UTC day, line and theme.

    Kept in step by the transactions that write and review visits (server/grade_counts.py), so
    the trends page reads a few thousand of these rows for a year where it counted 300,000 answers
    at 1,000,000 visits. `kerbside grade-counts rebuild` counts them again from the answers.
    """

    __tablename__ = "street_grade_count"
    area_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    line_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    theme: Mapped[str] = mapped_column(String(200), primary_key=True)
    grade: Mapped[str] = mapped_column(String(1), primary_key=True)
    graded: Mapped[int] = mapped_column(Integer, default=0)


class Action(db.Model):
    """"You said, we did": raised from a C/D grade or by hand, assigned to a service or partner."""

    __tablename__ = "action"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    area_id: Mapped[str] = mapped_column(ForeignKey("area.id"), index=True)
    site_id: Mapped[str | None] = mapped_column(ForeignKey("site.id"))
    line_key: Mapped[str | None] = mapped_column(String(64))
    submission_id: Mapped[str | None] = mapped_column(ForeignKey("submission.id"))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    assigned_to: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="open")
    # Required for `not_doing`, and published: residents are told why.
    reason: Mapped[str | None] = mapped_column(Text)
    public_note: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    field_versions: Mapped[dict] = mapped_column(JSON, default=dict)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("person.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    EDITABLE = ("status", "reason", "public_note", "assigned_to")

    def to_sync(self) -> dict:
        return {
            "id": self.id,
            "area_id": self.area_id,
            "site_id": self.site_id,
            "line_key": self.line_key,
            "title": self.title,
            "description": self.description,
            "assigned_to": self.assigned_to,
            "status": self.status,
            "reason": self.reason,
            "public_note": self.public_note,
            "version": self.version,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


class ActionComment(db.Model):
    """A note on an action between the coordinators and the partner it is assigned to; never published."""

    __tablename__ = "action_comment"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    action_id: Mapped[str] = mapped_column(ForeignKey("action.id"), index=True)
    # Erasing the author keeps what was said and forgets who said it.
    author_id: Mapped[str | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MutationLog(db.Model):
    """Every final push result, keyed by the client's `mid`: the exactly-once ledger."""

    __tablename__ = "mutation_log"
    mid: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("device.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(32))
    payload_hash: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16))
    change_seq: Mapped[int | None] = mapped_column(BigInteger)
    # The rest of the answer (conflict value, rejection code and errors) as first given.
    result: Mapped[dict] = mapped_column(JSON)
    # Kept for rejected items, for audit; applied ones live on as their records.
    data: Mapped[dict | None] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MutationAudit(db.Model):
    """A payload that reused a `mid` with other content: kept, never applied."""

    __tablename__ = "mutation_audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mid: Mapped[str] = mapped_column(String(64), index=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("device.id"))
    payload_hash: Mapped[str] = mapped_column(String(80))
    data: Mapped[dict | None] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Change(db.Model):
    """One row per insert, update or delete of a pulled record, in commit order by `seq`.

    Scope: `area_id` for an area's records, `person_id` for one person's records, both
    empty for records every device receives.
    """

    __tablename__ = "change"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    collection: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[str] = mapped_column(String(100))
    op: Mapped[str] = mapped_column(String(8))
    area_id: Mapped[str | None] = mapped_column(String(36))
    person_id: Mapped[str | None] = mapped_column(String(36))
    data: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (
        Index("ix_change_area_seq", "area_id", "seq"),
        Index("ix_change_person_seq", "person_id", "seq"),
        # A first sync keeps only the latest change of each record, and compaction finds what a
        # later change replaced: both look up the changes of one record in seq order.
        Index("ix_change_record_seq", "collection", "record_id", "seq"),
    )


class AuditEntry(db.Model):
    """One entry of the audit log: who did what to which record, when and from where. Append-only.

    People and devices are named by id only (no foreign key), so erasing a person removes
    nothing here and the hash chain stays whole. `entry_hash` is the SHA-256 of the entry's
    canonical JSON together with `prev_hash` (see server.audit).
    """

    __tablename__ = "audit_entry"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str | None] = mapped_column(String(36))
    device_id: Mapped[str | None] = mapped_column(String(36))
    record_type: Mapped[str | None] = mapped_column(String(32))
    record_id: Mapped[str | None] = mapped_column(String(100))
    area_id: Mapped[str | None] = mapped_column(String(36))
    address: Mapped[str | None] = mapped_column(String(64))
    # Before and after of the changed fields, and what else says what happened (which export).
    details: Mapped[dict] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))
    __table_args__ = (
        Index("ix_audit_entry_person_seq", "person_id", "seq"),
        Index("ix_audit_entry_record", "record_type", "record_id"),
        Index("ix_audit_entry_area_seq", "area_id", "seq"),
        Index("ix_audit_entry_at", "at"),
    )


class AuditHead(db.Model):
    """One row: the last entry's seq and hash. Writers lock it, so the chain never forks."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    entry_hash: Mapped[str] = mapped_column(String(64))
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


integrity.attach(Submission.__table__)
integrity.attach(Answer.__table__)
integrity.attach_append_only(AuditEntry.__table__)
