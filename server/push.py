"""The push half of a sync: apply a batch of mutations exactly once, in one transaction.

The shape of one push, and why:
1. Every item is checked on its own (schema, payload hash, form version, scope, blobs)
   with set-based reads; a bad item gets its own result and never blocks the others.
2. The mutation log rows are inserted with ON CONFLICT DO NOTHING RETURNING: the unique
   key decides which items are new (no check-then-insert). On PostgreSQL a concurrent
   push of the same `mid` waits on the key and then sees the row.
3. Effects of the new items are inserted set-based (executemany), then the change rows,
   with seqs from the counter row taken last so its lock is held briefly.
4. Commit, and only then answer: every `applied` is in the database when it leaves.
Items whose photos are missing are `deferred` and leave no row, so they are judged afresh.
"""

from __future__ import annotations

import math
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy import insert, select

from server import audit, blobs, bulk, changes, grade_counts, schemas
from server.extensions import db
from server.models import (
    Action,
    Answer,
    Device,
    Form,
    FormVersion,
    MutationAudit,
    MutationLog,
    Person,
    Site,
    SiteEdit,
    Submission,
    utcnow,
)
from server.operations import transition_message
from server.schema_messages import translated
from sync.merge import action_transition_error, merge_patch
from sync.protocol import (
    FORM_ROLES,
    MAX_DATA_DEPTH,
    MAX_SAFE_INTEGER,
    MUTATION_TYPES,
    OBSERVED_AT_MAX_AHEAD_S,
    OBSERVED_AT_MAX_BEFORE_PUBLISHED_DAYS,
    STAFF_ROLES,
    payload_hash,
)
from sync.validation import ContentProblem, FormValidator, compile_form, content_problem, parse_datetime

# Published form versions never change, so one validator per version serves every push.
_validators: dict[tuple[str, str, int], FormValidator] = {}
_validators_lock = threading.Lock()
_NO_ROLES: frozenset = frozenset()


@dataclass
class NewVisit:
    """The rows a new visit adds: its submission, one row per answered line, and the site it proposed."""

    submission: dict
    answers: list[dict]
    site: dict | None = None

    def changes(self) -> list[changes.PendingChange]:
        """What devices pull about it: the proposed site (for its proposer alone), the visit (for its volunteer)."""
        pending = []
        if self.site:
            pending.append(changes.PendingChange("sites", self.site["id"], data=_site_record(self.site),
                                                 person_id=self.site["proposed_by"]))
        pending.append(changes.PendingChange("my_submissions", self.submission["id"],
                                             data=changes.my_submission_record(self.submission),
                                             person_id=self.submission["person_id"]))
        return pending


@dataclass
class RecordState:
    """An editable record's values as a patch leaves them, with the version of the record and of each field."""

    values: dict
    version: int
    field_versions: dict


@dataclass
class EditedRecord:
    """A site or an action, and the state an accepted patch gives it."""

    record: Site | Action
    state: RecordState
    collection: str

    def apply(self, now: datetime) -> changes.PendingChange:
        """Give the record its new state; the change row devices pull."""
        for key, value in self.state.values.items():
            setattr(self.record, key, value)
        self.record.version = self.state.version
        self.record.field_versions = self.state.field_versions
        self.record.updated_at = now
        if self.collection == "sites":
            # A proposed site edited by its proposer stays on that phone alone.
            return changes.site_change(self.record)
        return changes.PendingChange(self.collection, self.record.id, data=self.record.to_sync(),
                                     area_id=self.record.area_id)


@dataclass
class HeldSiteEdit:
    """A street rep's edit of an approved site: stored for a coordinator, not applied.

    The rep's own phone is sent the site with the edit laid over (`pending_edit`), so it shows
    what they entered until a coordinator decides; no other phone, page or figure sees it.
    """

    site: Site
    row: dict
    values: dict

    def apply(self, now: datetime) -> changes.PendingChange:
        db.session.execute(insert(SiteEdit.__table__), [self.row | {"created_at": now}])
        return changes.PendingChange("sites", self.site.id, data=changes.site_record_for(self.site, self.values),
                                     person_id=self.row["person_id"])


@dataclass
class Item:
    """One mutation of the batch and what became of it."""

    index: int
    raw: dict
    mid: str | None = None
    seq: int | None = None
    type: str | None = None
    hash: str | None = None
    data: dict | None = None
    result: dict | None = None
    # What the item writes if its claim succeeds, and the change rows that follow from it.
    effect: NewVisit | CorrectedVisit | EditedRecord | HeldSiteEdit | None = None
    pending: list = field(default_factory=list)
    # Set when the same mid appeared earlier in this batch.
    first: Item | None = None

    def finish(self, status: str, **rest):
        self.result = {"mid": self.mid, "status": status, **rest}

    def reject(self, code: str, message: str, errors=None):
        self.finish("rejected", code=code, message=message, errors=translated(errors or {}))

    def apply(self, effect: NewVisit | EditedRecord | HeldSiteEdit):
        """Accepted: `effect` is written once the mid is claimed."""
        self.effect = effect
        self.finish("applied")


@dataclass
class Context:
    """What the device may touch, loaded once per batch."""

    device: Device
    person: Person
    area_ids: set
    roles_by_area: dict

    def may(self, area_id: str | None, roles) -> bool:
        """Whether the person holds one of `roles` in `area_id` (a role without an area counts everywhere); staff always may."""
        held = self.roles_by_area.get(area_id, _NO_ROLES) | self.roles_by_area.get(None, _NO_ROLES)
        return not held.isdisjoint(roles) or not held.isdisjoint(STAFF_ROLES)


def push(device: Device, person: Person, raw_mutations: list, area_ids: set, roles_by_area: dict) -> list[dict]:
    """Apply `raw_mutations` for `device`; commit; return one result per item, in order."""
    ctx = Context(device, person, area_ids, roles_by_area)
    items = [Item(index=i, raw=raw) for i, raw in enumerate(raw_mutations)]
    _parse(items)
    _repeated_in_batch(items)
    _check_by_type(ctx, [item for item in items if item.result is None])

    claimable = [i for i in items if i.mid and i.first is None and i.result["status"] != "deferred"]
    claimed = _claim(ctx, claimable)
    _answer_known(ctx, [item for item in claimable if item.mid not in claimed])
    mine = [item for item in claimable if item.mid in claimed]
    _insert_effects(mine)
    _mark_superseded(mine)
    _write_changes_and_results(mine)
    _count_grades(mine)
    _record_corrections(ctx, mine)
    db.session.commit()
    _answer_repeats(items)
    return [item.result for item in items]


def _check_by_type(ctx: Context, items: list[Item]):
    """Each mutation type's items go to its checker (CHECKERS), which gives every one of them a result."""
    by_type: dict[str, list[Item]] = {}
    for item in items:
        by_type.setdefault(item.type, []).append(item)
    for kind, check in CHECKERS.items():
        check(ctx, by_type.pop(kind, []))
    # A type the protocol lists but no checker handles is refused here rather than left without
    # an answer; tests/server/test_push_pipeline.py ties CHECKERS to MUTATION_TYPES.
    for left in by_type.values():
        for item in left:
            item.reject("type_unsupported", _("Kerbside cannot save this kind of change yet. Export it from the app and show it to your coordinator."),
                        {"type": [_("Kerbside cannot save this yet.")]})


# -- 1. parse and check each item ---------------------------------------------------------


# marshmallow costs more than the rest of a push's checks together, so the common,
# well-formed item is checked by the two functions below. They accept only what the schema
# accepts and return what it would load; anything else (None) goes through the schema,
# which alone words the errors.

_MUTATION_KEYS = frozenset(schemas.MutationSchema().fields)
_SUBMISSION_KEYS = frozenset(schemas.SubmissionCreateSchema().fields)
_PAYLOAD_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")


def quick_mutation(raw) -> dict | None:
    """What MutationSchema loads from a well-formed mutation, or None to ask the schema."""
    if type(raw) is not dict or raw.keys() != _MUTATION_KEYS:
        return None
    mid, seq, kind, digest, data = raw["mid"], raw["seq"], raw["type"], raw["payload_hash"], raw["data"]
    if not (type(mid) is str and schemas.UUID_LIKE.match(mid) and type(seq) is int and 0 <= seq <= MAX_SAFE_INTEGER
            and type(kind) is str and kind in MUTATION_TYPES and type(digest) is str
            and _PAYLOAD_HASH.match(digest) and type(data) is dict):
        return None
    return {"mid": mid, "seq": seq, "type": kind, "payload_hash": digest, "data": dict(data)}


def _number(value, low, high) -> float | None:
    if type(value) not in (int, float) or not math.isfinite(value) or not low <= value <= high:
        return None
    return float(value)


def quick_submission(data: dict) -> dict | None:
    """What SubmissionCreateSchema loads from a visit at a known site, or None to ask the schema."""
    if not (data.keys() <= _SUBMISSION_KEYS and data.get("new_site") is None):
        return None
    sub_id, form, site_id, observed_at, answers = (data.get("id"), data.get("form"), data.get("site_id"),
                                                   data.get("observed_at"), data.get("answers"))
    area_id, notes, location = data.get("area_id"), data.get("notes", ""), data.get("location")
    if not (type(sub_id) is str and schemas.VISIT_ID.match(sub_id)
            and type(form) is dict and form.keys() == {"id", "version"}
            and type(form["id"]) is str and 1 <= len(form["id"]) <= 64
            and type(form["version"]) is int and 1 <= form["version"] <= MAX_SAFE_INTEGER
            and type(site_id) is str and site_id
            and (area_id is None or type(area_id) is str)
            and type(observed_at) is str and parse_datetime(observed_at) is not None
            and type(answers) is dict and all(type(key) is str for key in answers)
            and type(notes) is str and len(notes) <= 4000):
        return None
    if location is not None:
        if type(location) is not dict or not {"lat", "lng"} <= location.keys() <= {"lat", "lng", "accuracy_m"}:
            return None
        lat, lng = _number(location["lat"], -90, 90), _number(location["lng"], -180, 180)
        accuracy = location.get("accuracy_m")
        if accuracy is not None:
            accuracy = _number(accuracy, 0, math.inf)
            if accuracy is None:
                return None
        if lat is None or lng is None:
            return None
        location = {"lat": lat, "lng": lng, "accuracy_m": accuracy}
    return {"id": sub_id, "form": {"id": form["id"], "version": form["version"]}, "site_id": site_id,
            "new_site": None, "area_id": area_id, "observed_at": observed_at, "answers": dict(answers),
            "notes": notes, "location": location}


def _mid_of(raw) -> str | None:
    """The item's mid when it is one a client could have made: only such a mid is echoed and logged."""
    mid = raw.get("mid") if type(raw) is dict else None
    return mid if type(mid) is str and schemas.UUID_LIKE.match(mid) else None


def content_refusal(raw) -> ContentProblem | None:
    """What in a raw mutation the server could not keep (sync.validation.content_problem), or None.

    The envelope's own fields are named as they are ("seq"); inside `data`, fields are named
    from `data` as every other field error is ("answers.litter.note").
    """
    if type(raw) is not dict:
        return None
    envelope = {key: value for key, value in raw.items() if key != "data"}
    return content_problem(envelope) or content_problem(raw.get("data"))


def _refuse_content(item: Item, problem: ContentProblem):
    message, detail = {
        "too_deep": (_("This is not shaped like a visit or an edit, so Kerbside cannot save it. "
                       "Export it from the app and show it to your coordinator."),
                     _("Has more than %(depth)s levels, one inside another.", depth=MAX_DATA_DEPTH)),
        "invalid_text": (_("Some text in this has a hidden or broken character, so Kerbside cannot save it. "
                           "Export it from the app and show it to your coordinator."),
                         _("Has a hidden or broken character.")),
        "out_of_range": (_("A number in this is too big, or is not a real number, so Kerbside cannot save it. "
                           "Export it from the app and show it to your coordinator."),
                         _("Use a number no bigger than %(largest)s.", largest=MAX_SAFE_INTEGER)),
    }[problem.code]
    item.reject(problem.code, message, {problem.path: [detail]})


def _parse(items: list[Item]):
    envelope = schemas.MutationSchema()
    for item in items:
        raw = item.raw
        item.mid = _mid_of(raw)
        loaded = quick_mutation(raw)
        # Before anything reads the item further: text the database refuses, nesting the JSON
        # writer refuses and numbers no column holds would otherwise fail the whole batch.
        problem = content_problem(loaded["data"]) if loaded is not None else content_refusal(raw)
        if problem is not None:
            # Logged under its mid and the hash it claims (never with its data), so the same
            # item sent again is a duplicate of this refusal.
            digest = raw.get("payload_hash") if type(raw) is dict else None
            item.hash = digest if type(digest) is str and _PAYLOAD_HASH.match(digest) else None
            _refuse_content(item, problem)
            continue
        try:
            loaded = loaded or envelope.load(raw if type(raw) is dict else {})
        except ValidationError as exc:
            item.reject("validation_failed", _("Kerbside cannot read this change. Update the app, then show this to your coordinator."), exc.messages)
            continue
        item.mid, item.seq, item.type, item.hash, item.data = (
            loaded["mid"], loaded["seq"], loaded["type"], loaded["payload_hash"], loaded["data"],
        )
        if payload_hash(item.data) != item.hash:
            item.reject(
                "payload_hash_invalid",
                _("This was damaged on the way to Kerbside. Export it from the app and show it to your coordinator."),
                {"payload_hash": [_("Damaged on the way.")]},
            )


def _repeated_in_batch(items: list[Item]):
    """A mid sent twice in one batch is judged once; the repeat gets the first one's answer."""
    first: dict[str, Item] = {}
    for item in items:
        if not item.mid:
            continue
        if item.mid in first:
            item.first = first[item.mid]
            item.result = {"mid": item.mid, "status": "pending"}
        else:
            first[item.mid] = item


@dataclass(frozen=True)
class AcceptedVersion:
    """A published or retired form version, as a push needs it (not its definition)."""

    form_id: str
    version: int
    kind: str
    area_id: str | None
    published_at: datetime | None
    validator: FormValidator


def _validator(form_id: str, version: int, published_at) -> FormValidator:
    key = (form_id, str(published_at), version)
    found = _validators.get(key)
    if found is None:
        definition = db.session.execute(
            select(FormVersion.definition).where(FormVersion.form_id == form_id, FormVersion.version == version)
        ).scalar_one()
        with _validators_lock:
            found = _validators.setdefault(key, compile_form(definition))
    return found


@dataclass
class VisitToCheck:
    """A `submission.create` item whose data loaded, with what its checks need."""

    item: Item
    data: dict
    observed: datetime
    version: AcceptedVersion | None = None


def _check_submissions(ctx: Context, items: list[Item], schema=None):
    """submission.create: the form version, the visit's time, its answers, its site and area, its photos.

    `schema` loads the data (submission.correct's adds the visit it supersedes).
    """
    if not items:
        return
    # The quick check knows submission.create's fields only: another schema loads every item itself.
    quick = quick_submission if schema is None else (lambda _data: None)
    schema = schema or schemas.SubmissionCreateSchema()
    visits: list[VisitToCheck] = []
    for item in items:
        try:
            data = quick(item.data) or schema.load(item.data)
        except ValidationError as exc:
            item.reject("validation_failed", _("Kerbside cannot accept some answers in this visit. The notes below say which. Fill in the visit again with them changed."), exc.messages)
            continue
        visits.append(VisitToCheck(item, data, parse_datetime(data["observed_at"])))

    versions = _form_versions({(v.data["form"]["id"], v.data["form"]["version"]) for v in visits})
    site_ids = {v.data["site_id"] for v in visits if v.data.get("site_id")}
    sites = _visit_sites(site_ids)
    ids = {v.data["id"] for v in visits}
    existing = dict(
        db.session.execute(select(Submission.id, Submission.payload_hash).where(Submission.id.in_(ids))).all()
    ) if ids else {}
    photos_wanted = set()
    now = utcnow()
    checked: list[VisitToCheck] = []
    for visit in visits:
        item, data = visit.item, visit.data
        visit.version = version = versions.get((data["form"]["id"], data["form"]["version"]))
        if version is None:
            item.reject(
                "form_version_unknown",
                _("Kerbside does not have version %(version)s of the form “%(form)s”. Export the visit and show it to your coordinator.",
                  version=data["form"]["version"], form=data["form"]["id"]),
                {"form": [_("Unknown form version.")]},
            )
            continue
        late = _observed_at_problem(visit.observed, version, now)
        if late:
            item.reject("observed_at_out_of_range", late, {"observed_at": [late]})
            continue
        problems = version.validator.validate(data["answers"], _)
        if problems:
            item.reject("validation_failed", _("Kerbside cannot accept some answers in this visit. The notes below say which. Fill in the visit again with them changed."), problems)
            continue
        if data["id"] in existing:
            # Another mid for a visit the server already holds (say, re-imported from an export).
            if existing[data["id"]] == item.hash:
                item.finish("duplicate", change_seq=None)
            else:
                item.reject("submission_exists", _("Kerbside already has a different visit with the same reference. Export this one and show it to your coordinator."),
                            {"id": [_("Another visit already uses this reference.")]})
            continue
        existing[data["id"]] = item.hash
        photos_wanted |= version.validator.photos(data["answers"])
        checked.append(visit)

    # A photo counts as here when its bytes are in the store, not only its row in the table: with
    # several hosts, or a store that lost an object, the row alone could apply a visit whose photo
    # no coordinator can open. Such a visit is deferred, and the device sends the photo again.
    present = blobs.stored_of(photos_wanted)
    for visit in checked:
        item, data, version = visit.item, visit.data, visit.version
        site = sites.get(data.get("site_id")) if data.get("site_id") else None
        area_id = _submission_area(ctx, item, data, site, version)
        if area_id is None:
            continue
        missing = sorted(version.validator.photos(data["answers"]) - present)
        if missing:
            item.finish("deferred", code="attachment_missing", retry_after_s=30, missing=missing,
                        message=_("The photos for this visit are still being sent. Your phone will send the visit again after them."))
            continue
        item.apply(_new_visit(ctx, visit, site, area_id, now))


def _observed_at_problem(observed: datetime, version: AcceptedVersion, now: datetime) -> str | None:
    """Why a visit's time cannot be true, or None: the volunteer's word is kept, within reason."""
    if observed > now + timedelta(seconds=OBSERVED_AT_MAX_AHEAD_S):
        return _("This visit's date is more than a day in the future. Check the date and time "
                 "on your phone, then fill in the visit again.")
    if version.published_at is not None and \
            observed < version.published_at - timedelta(days=OBSERVED_AT_MAX_BEFORE_PUBLISHED_DAYS):
        return _("This visit's date is long before its form existed. Check the date and time on your "
                 "phone, then fill in the visit again.")
    return None


def _form_versions(keys) -> dict[tuple[str, int], AcceptedVersion]:
    """The accepted versions among `keys`, read without their definitions (validators are cached)."""
    if not keys:
        return {}
    rows = db.session.execute(
        select(FormVersion.form_id, FormVersion.version, FormVersion.published_at, Form.kind, Form.area_id)
        .join(Form, Form.id == FormVersion.form_id)
        .where(FormVersion.form_id.in_({form_id for form_id, _v in keys}),
               FormVersion.status.in_(("published", "retired")))
    )
    return {
        (row.form_id, row.version): AcceptedVersion(row.form_id, row.version, row.kind, row.area_id, row.published_at,
                                                    _validator(row.form_id, row.version, row.published_at))
        for row in rows if (row.form_id, row.version) in keys
    }


@dataclass(frozen=True)
class VisitSite:
    """Where a visit naming a site lands: the site itself, the site it was merged into, or no site."""

    id: str | None
    area_id: str
    status: str
    proposed_by: str | None


def _visit_sites(site_ids: set) -> dict[str, VisitSite]:
    """The sites visits name, each resolved to where its visits go now.

    A phone that was offline while its proposed site was merged still sends visits naming
    it: they join the site it was merged into (followed along a chain of merges). A rejected
    site's visits are kept with no site, as the ones already stored were.
    """
    if not site_ids:
        return {}
    columns = (Site.id, Site.area_id, Site.status, Site.proposed_by, Site.merged_into_id)
    found = {row.id: row for row in db.session.execute(select(*columns).where(Site.id.in_(site_ids)))}
    targets = {row.merged_into_id for row in found.values() if row.status == "merged"}
    # A chain is as long as the merges a coordinator made one after another; a handful at most.
    for _hop in range(10):
        wanted = targets - found.keys()
        if not wanted:
            break
        found.update({row.id: row for row in db.session.execute(select(*columns).where(Site.id.in_(wanted)))})
        targets = {found[t].merged_into_id for t in targets if t in found and found[t].status == "merged"}
    resolved = {}
    for site_id in site_ids:
        row, seen = found.get(site_id), set()
        while row is not None and row.status == "merged" and row.id not in seen:
            seen.add(row.id)
            row = found.get(row.merged_into_id)
        if row is None or row.status == "merged":
            continue
        if row.status == "rejected":
            resolved[site_id] = VisitSite(None, row.area_id, row.status, row.proposed_by)
        else:
            resolved[site_id] = VisitSite(row.id, row.area_id, row.status, row.proposed_by)
    return resolved


def _submission_area(ctx: Context, item: Item, data: dict, site, version: AcceptedVersion) -> str | None:
    """The area the visit belongs to, after checking the volunteer may report there."""
    if data.get("site_id"):
        # A site still waiting for a coordinator is on its proposer's phone alone: nobody else can name it.
        waiting_for_other = site is not None and site.status == "proposed" and site.proposed_by != ctx.person.id
        if site is None or site.area_id not in ctx.area_ids or waiting_for_other:
            item.reject("site_unknown", _("That site is not in your area. Choose another site, or ask your coordinator."), {"site_id": [_("Unknown site.")]})
            return None
        area_id = site.area_id
    else:
        area_id = data.get("area_id") or (next(iter(ctx.area_ids)) if len(ctx.area_ids) == 1 else None)
        if area_id not in ctx.area_ids:
            item.reject("area_required", _("Say which of your areas the new site is in."), {"area_id": [_("Choose one of your areas.")]})
            return None
    if version.area_id not in (None, area_id):
        item.reject("form_not_for_area", _("This form is not used in that area. Choose that area's form, or ask your coordinator."), {"form": [_("Not a form of this area.")]})
        return None
    if not ctx.may(area_id, FORM_ROLES[version.kind]):
        item.reject("role_not_allowed", _("You cannot fill in this kind of form in this area. If you think you should, ask your coordinator."))
        return None
    return area_id


def _new_visit(ctx: Context, visit: VisitToCheck, site, area_id: str, now: datetime) -> NewVisit:
    """The rows of an accepted visit."""
    data, version, observed = visit.data, visit.version, visit.observed
    kind, lines = version.kind, version.validator.lines
    new_site_row = None
    if site is None:
        new_site = data["new_site"]
        new_site_row = {
            "id": proposed_site_id(data["id"]),
            "area_id": area_id,
            "name": new_site["name"].strip(),
            "lat": new_site.get("lat"),
            "lng": new_site.get("lng"),
            "notes": "",
            "status": "proposed",
            "proposed_by": ctx.person.id,
            "merged_into_id": None,
            "version": 1,
            "field_versions": {},
            "created_at": now,
            "updated_at": now,
        }
    site_id = site.id if site else new_site_row["id"]  # None: a rejected site's visit, kept with no site
    location = data.get("location") or {}
    submission = {
        "id": data["id"],
        "form_id": version.form_id,
        "form_version": version.version,
        "kind": kind,
        "area_id": area_id,
        "site_id": site_id,
        "person_id": ctx.person.id,
        "device_id": ctx.device.id,
        "observed_at": observed,
        "observed_offset": _offset_text(observed),
        "received_at": now,
        "notes": data.get("notes") or "",
        "lat": location.get("lat"),
        "lng": location.get("lng"),
        "accuracy_m": location.get("accuracy_m"),
        "payload_hash": visit.item.hash,
        "data": visit.item.data,
        "review_status": "pending",
        # Set by _check_corrections for a correction; every row of one insert has the same keys.
        "supersedes_id": None,
    }
    answers = [
        {
            "submission_id": data["id"],
            "line_key": key,
            "theme": lines[key].theme,
            "grade": answer.get("grade"),
            "value": _answer_value(answer),
            "note": answer.get("note") or None,
            "photos": answer.get("photos") or None,
            "area_id": area_id,
            "site_id": site_id,
            "kind": kind,
            "observed_at": observed,
        }
        # An optional line sent as null was left unanswered: it has no row.
        for key, answer in data["answers"].items() if answer is not None
    ]
    return NewVisit(submission=submission, answers=answers, site=new_site_row)


def proposed_site_id(submission_id: str) -> str:
    """The id of a site proposed with a visit: the same on every retry of that visit."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "kerbside:proposed-site:" + submission_id))


def _answer_value(answer: dict):
    value = answer.get("value")
    return None if value is None else str(value)


def _offset_text(moment: datetime) -> str:
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _site_record(row: dict) -> dict:
    return {k: row[k] for k in ("id", "area_id", "name", "lat", "lng", "notes", "status", "version")} | {
        "line": None, "photo": None, "proposed": row["status"] == "proposed",
    }


def _check_site_updates(ctx: Context, items: list[Item]):
    """site.update: a versioned patch of a site of the device's areas, by a street rep or staff."""
    _check_updates(ctx, items, Site, schemas.SiteUpdateSchema(), _site_update_allowed, "sites")


def _check_action_updates(ctx: Context, items: list[Item]):
    """action.update: a versioned patch of an action, by the partner it is assigned to or by staff."""
    _check_updates(ctx, items, Action, schemas.ActionUpdateSchema(), _action_update_allowed, "actions")


def _site_update_allowed(ctx: Context, site: Site, patch: dict):
    if site.status != "approved" and not (site.status == "proposed" and site.proposed_by == ctx.person.id):
        # Waiting on someone else's phone, or merged or rejected: not a site this device has.
        return "not_found", _("Kerbside cannot find what you changed. It may have been removed. Ask your coordinator if you need it."), {"id": [_("Not found.")]}
    if not ctx.may(site.area_id, ("street_rep",)):
        return "role_not_allowed", _("Only street reps and coordinators can change sites.")
    return None


def _site_edit_held(ctx: Context, site: Site) -> bool:
    """Whether a site edit waits for a coordinator: a street rep's edit of an approved site does.

    A coordinator's own edit applies at once; so does a proposer's edit of the site they
    proposed, which is still waiting for a coordinator as a whole.
    """
    held = ctx.roles_by_area.get(site.area_id, _NO_ROLES) | ctx.roles_by_area.get(None, _NO_ROLES)
    return site.status == "approved" and held.isdisjoint(STAFF_ROLES)


def _action_update_allowed(ctx: Context, action: Action, patch: dict):
    assigned_here = bool(action.assigned_to) and action.assigned_to == ctx.person.organisation
    if not (ctx.may(action.area_id, STAFF_ROLES) or (assigned_here and ctx.may(action.area_id, ("partner",)))):
        return "role_not_allowed", _("Only the partner the action is assigned to, or a coordinator, can update it.")
    return None


def _check_updates(ctx: Context, items: list[Item], model, schema, allowed, collection: str):
    """site.update and action.update: versioned patches merged field by field.

    Records are not touched here: each item's outcome is worked out on a copy, and only
    items whose mid is claimed write their new state (several items may patch one record,
    in order).
    """
    if not items:
        return
    loaded = []
    for item in items:
        try:
            loaded.append((item, schema.load(item.data)))
        except ValidationError as exc:
            item.reject("validation_failed", _("Some of this change needs fixing. The notes below say what."), exc.messages)
    ids = {data["id"] for _i, data in loaded}
    # Locked until commit (FOR UPDATE, in id order so two pushes cannot deadlock): otherwise two
    # pushes editing one record both read version n and both write n + 1, and the first edit is
    # lost while both are answered `applied` (seen by bench/faults.py on PostgreSQL). SQLite
    # needs no lock: its write transactions already run one at a time.
    records = {r.id: r for r in db.session.execute(
        select(model).where(model.id.in_(ids)).order_by(model.id).with_for_update()).scalars()} if ids else {}
    working = {
        r.id: RecordState({k: getattr(r, k) for k in model.EDITABLE}, r.version, dict(r.field_versions or {}))
        for r in records.values()
    }
    for item, data in loaded:
        record = records.get(data["id"])
        if record is None or record.area_id not in ctx.area_ids:
            item.reject("not_found", _("Kerbside cannot find what you changed. It may have been removed. Ask your coordinator if you need it."), {"id": [_("Not found.")]})
            continue
        refusal = allowed(ctx, record, data["patch"])
        if refusal:
            item.reject(*refusal)
            continue
        state = working[record.id]
        merged = merge_patch(state.values, state.version, state.field_versions, data["base_version"], data["patch"])
        if merged.outcome == "conflict":
            current = {"id": record.id} | record.to_sync() | state.values | {"version": state.version}
            item.finish("conflict", entity_version=state.version, server_value=current,
                        message=_("Someone else changed this first. Check the current details and try again."))
            continue
        if model is Action:
            problem = action_transition_error(state.values["status"], merged.values["status"], merged.values.get("reason"))
            if problem:
                item.reject(problem, transition_message(problem), {"patch.status": [transition_message(problem)]})
                continue
        if model is Site and _site_edit_held(ctx, record):
            # Judged against the site as it is (a stale edit is a conflict now, not at review),
            # but the site keeps its values: the edit waits in site_edit.
            row = {"id": str(uuid.uuid4()), "site_id": record.id,
                   "area_id": record.area_id, "person_id": ctx.person.id, "device_id": ctx.device.id,
                   "base_version": data["base_version"], "patch": data["patch"], "status": "pending"}
            item.apply(HeldSiteEdit(record, row, merged.values))
            item.result["pending_review"] = True
            continue
        working[record.id] = RecordState(merged.values, merged.version, merged.field_versions)
        item.apply(EditedRecord(record, working[record.id], collection))


@dataclass
class CorrectedVisit(NewVisit):
    """A correction: a new visit (pending review) and the flagged visit it supersedes, which is kept."""

    superseded: dict = field(default_factory=dict)  # the flagged visit's my_submissions fields

    def changes(self) -> list[changes.PendingChange]:
        """The new visit's records, then the flagged one's: it now names its correction."""
        row = self.superseded | {"superseded_by_id": self.submission["id"]}
        return super().changes() + [changes.PendingChange(
            "my_submissions", row["id"], data=changes.my_submission_record(row), person_id=row["person_id"])]


def _check_corrections(ctx: Context, items: list[Item]):
    """submission.correct: checked as a new visit, then against the visit it supersedes.

    That visit must be one of the volunteer's own, of the same form and area, flagged, and
    not already corrected (then `conflict`). Its row is locked until commit (FOR UPDATE, in
    id order), so of two pushes correcting it, the second sees the first's correction.
    """
    if not items:
        return
    _check_submissions(ctx, items, schemas.SubmissionCorrectSchema())
    judged = [item for item in items if item.result["status"] in ("applied", "deferred")
              and isinstance(item.data, dict) and isinstance(item.data.get("supersedes"), str)]
    target_ids = {item.data["supersedes"] for item in judged}
    columns = [getattr(Submission, name) for name in changes.MY_SUBMISSION_FIELDS + ("person_id", "area_id")]
    targets = {row.id: row._asdict() for row in db.session.execute(
        select(*columns).where(Submission.id.in_(target_ids)).order_by(Submission.id).with_for_update())
    } if target_ids else {}
    corrected_here: dict[str, str] = {}  # flagged visit -> the correction this batch applies to it
    for item in judged:
        target_id = item.data["supersedes"]
        target = targets.get(target_id)
        visit = item.effect.submission if isinstance(item.effect, NewVisit) else None
        if target is None or target["person_id"] != ctx.person.id:
            # Someone else's visit is answered as an unknown one: its existence is not told.
            item.reject("correction_target_unknown", _("Kerbside cannot find the visit you are correcting among your visits. Ask your coordinator."),
                        {"supersedes": [_("Not one of your visits.")]})
        elif target["form_id"] != item.data["form"]["id"] or (visit is not None and visit["area_id"] != target["area_id"]):
            item.reject("correction_form_differs",
                        _("Use the same form, in the same area, as the visit you are correcting."),
                        {"supersedes": [_("Not the same form or area as the visit you are correcting.")]})
        elif target["superseded_by_id"] is not None or target_id in corrected_here:
            current = target | {"superseded_by_id": target["superseded_by_id"] or corrected_here[target_id]}
            item.finish("conflict", code="visit_already_corrected", server_value=changes.my_submission_record(current),
                        message=_("This visit was already corrected from another phone or an earlier save. "
                                  "Look under My visits before correcting it again."))
        elif target["review_status"] != "flagged":
            item.reject("correction_not_flagged",
                        _("You can only correct a visit your coordinator has flagged. This visit is not flagged now, so you do not need to correct it."),
                        {"supersedes": [_("Not flagged.")]})
        elif visit is not None:
            corrected_here[target_id] = visit["id"]
            visit["supersedes_id"] = target_id
            item.apply(CorrectedVisit(visit, item.effect.answers, item.effect.site, superseded=target))
        if item.result["status"] not in ("applied", "deferred"):
            item.effect = None


def _mark_superseded(items: list[Item]):
    """The flagged visits that claimed corrections replace: kept, each naming its correction."""
    superseded = {item.effect.superseded["id"]: item.effect.submission["id"] for item in items
                  if item.result["status"] == "applied" and isinstance(item.effect, CorrectedVisit)}
    bulk.update_column(db.session, Submission.__table__, "id", "superseded_by_id", superseded)


def _count_grades(items: list[Item]):
    """The new visits' street grades join the kept counts (after the change counter, as every writer of them).

    A correction's new visit counts; the visit it supersedes was flagged (checked under its
    lock), so it had already left the counts.
    """
    grade_counts.apply(db.session, grade_counts.answer_deltas(
        answer for item in items if item.result["status"] == "applied" and isinstance(item.effect, NewVisit)
        for answer in item.effect.answers))


def _record_corrections(ctx: Context, items: list[Item]):
    """An audit entry per applied correction: a visit left the figures because its volunteer replaced it.

    Written after the change rows, as every other writer takes the change counter before the audit head.
    """
    for item in items:
        if item.result["status"] == "applied" and isinstance(item.effect, CorrectedVisit):
            visit = item.effect.submission
            audit.record("submission.correct", record_type="submission", record_id=visit["id"], area_id=visit["area_id"],
                         details={"supersedes": visit["supersedes_id"]}, person_id=ctx.person.id,
                         device_id=ctx.device.id)


# Every mutation type and the function that checks its items: each item it is given leaves
# with a result. tests/server/test_push_pipeline.py checks it covers sync.protocol.MUTATION_TYPES.
CHECKERS = {
    "submission.create": _check_submissions,
    "submission.correct": _check_corrections,
    "site.update": _check_site_updates,
    "action.update": _check_action_updates,
}


# -- 2. claim the mids ----------------------------------------------------------------------


def _claim(ctx: Context, items: list[Item]) -> set[str]:
    """Insert log rows for items; those the unique key accepts are ours to apply."""
    if not items:
        return set()
    now = utcnow()
    rows = []
    # Sorted, so two pushes of overlapping mids lock them in one order and cannot deadlock.
    for item in sorted(items, key=lambda i: i.mid):
        result = dict(item.result or {})
        rows.append({
            "mid": item.mid,
            "device_id": ctx.device.id,
            "seq": item.seq if item.seq is not None else -1,
            "type": item.type or "unknown",
            "payload_hash": item.hash or "",
            "status": result.get("status", "rejected"),
            "change_seq": None,
            "result": {k: v for k, v in result.items() if k not in ("mid", "status")},
            "data": item.data if result.get("status") != "applied" else None,
            "received_at": now,
        })
    return set(bulk.insert_new(db.session, MutationLog.__table__, rows, "mid"))


def _answer_known(ctx: Context, items: list[Item]):
    """Items whose mid the log already holds: the first answer again, or a hash mismatch."""
    if not items:
        return
    known = {
        row.mid: row
        for row in db.session.execute(select(MutationLog).where(MutationLog.mid.in_([i.mid for i in items]))).scalars()
    }
    audits = []
    for item in items:
        row = known.get(item.mid)
        if row is not None and row.payload_hash == (item.hash or ""):
            item.result = {"mid": item.mid, "status": "duplicate", "change_seq": row.change_seq,
                           "first": {"status": row.status, **row.result}}
        else:
            item.reject("payload_hash_mismatch",
                        _("Kerbside already had a different change with the same reference. It kept this one for your coordinator to check. You do not need to do anything."),
                        {"payload_hash": [_("Not the same as the first change with this reference.")]})
            audits.append({"mid": item.mid, "device_id": ctx.device.id, "payload_hash": item.hash or "",
                           "data": item.data, "reason": "payload_hash_mismatch", "received_at": utcnow()})
    if audits:
        db.session.execute(insert(MutationAudit.__table__), audits)


# -- 3. effects, changes, results -------------------------------------------------------------


def _insert_effects(items: list[Item]):
    """Write what the claimed items change: new rows set-based, edited records in order."""
    sites, submissions, answers = [], [], []
    now = utcnow()
    for item in items:
        effect = item.effect
        if item.result["status"] != "applied":
            continue
        if isinstance(effect, NewVisit):
            if effect.site:
                sites.append(effect.site)
            submissions.append(effect.submission)
            answers.extend(effect.answers)
            item.pending = effect.changes()
        else:
            item.pending = [effect.apply(now)]
    if sites:
        db.session.execute(insert(Site.__table__), sites)
    bulk.insert_rows(db.session, Submission.__table__, submissions)
    bulk.insert_rows(db.session, Answer.__table__, answers)
    db.session.flush()


def _write_changes_and_results(items: list[Item]):
    applied = [item for item in items if item.result["status"] == "applied"]
    pending = [change for item in applied for change in item.pending]
    seqs = iter(changes.write_changes(pending))
    change_seqs = {}
    for item in applied:
        item_seqs = [next(seqs) for _change in item.pending]
        item.result["change_seq"] = change_seqs[item.mid] = item_seqs[-1]
    bulk.update_column(db.session, MutationLog.__table__, "mid", "change_seq", change_seqs)


def _answer_repeats(items: list[Item]):
    """A mid repeated inside one batch gets the answer its first appearance got."""
    for item in items:
        if item.first is None:
            continue
        first = item.first.result
        if item.hash != item.first.hash:
            item.reject("payload_hash_mismatch", _("Your phone sent two different changes with the same reference. Update the app, then show this to your coordinator."),
                        {"payload_hash": [_("Not the same as the first change with this reference.")]})
        elif first["status"] == "deferred":
            item.result = {**first, "mid": item.mid}
        else:
            item.result = {"mid": item.mid, "status": "duplicate", "change_seq": first.get("change_seq"),
                           "first": {k: v for k, v in first.items() if k != "mid"}}
