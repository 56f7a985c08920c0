"""Business rules for the canonical records, callable without a request.

Each function does its work in the current session and leaves the commit to the caller
unless it says otherwise; change rows are written last so the counter lock is short.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask_babel import gettext as _, ngettext
from sqlalchemy import func, select

from server import audit, changes, form_lifecycle, grade_counts, reporting
from server.auth import hash_password, new_device_token, token_hash
from server.extensions import db
from server.models import (
    LAST_SYNC_PRECISION,
    Action,
    Agreement,
    AgreementVersion,
    Area,
    ChangeCounter,
    Device,
    Form,
    FormVersion,
    Invite,
    Person,
    Role,
    ServerState,
    Site,
    Submission,
    utcnow,
)
from sync import content
from sync.merge import action_transition_error
from sync.validation import definition_errors

INVITE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read aloud, typed on a phone
INVITE_DAYS = 14


class OperationError(Exception):
    """A business rule refused the request; `code` for machines, `message` for people."""

    def __init__(self, code: str, message: str, errors=None):
        super().__init__(code)
        self.code = code
        self.message = message
        self.errors = errors or {}


# -- server state ----------------------------------------------------------------------


def new_epoch() -> str:
    return "ep_" + secrets.token_hex(8)


def init_state(session=None):
    """Create the epoch and counter rows if they are missing (a fresh database)."""
    session = session or db.session
    if session.get(ServerState, 1) is None:
        session.add(ServerState(id=1, epoch=new_epoch(), changes_kept_from=1))
    if session.get(ChangeCounter, 1) is None:
        session.add(ChangeCounter(id=1, value=0))
    audit.init_head(session)
    session.flush()


def server_state() -> ServerState:
    return db.session.get(ServerState, 1)


def start_new_epoch() -> str:
    """After a restore from backup: devices will push again what they sent recently."""
    state = server_state()
    state.epoch = new_epoch()
    db.session.commit()
    return state.epoch


# -- areas, sites ------------------------------------------------------------------------


def create_area(slug: str, name: str, description: str = "") -> Area:
    area = Area(slug=slug, name=name, description=description)
    db.session.add(area)
    db.session.flush()
    changes.write_changes([changes.area_change(area)])
    return area


def create_sites(area: Area, rows: list[dict]) -> list[Site]:
    """Add sites (name, lat, lng, line, notes) to an area with one change row each."""
    sites = [Site(area_id=area.id, field_versions={}, **row) for row in rows]
    db.session.add_all(sites)
    db.session.flush()
    changes.write_changes([changes.site_change(site) for site in sites])
    return sites


# -- agreements and forms ------------------------------------------------------------------


def _next_version(model, key_column, key) -> int:
    current = db.session.execute(select(func.max(model.version)).where(key_column == key)).scalar()
    return (current or 0) + 1


def draft_form_version(form_id: str, definition: dict, *, kind: str | None = None, area_id=None,
                       translations: dict | None = None, language: str = "en") -> FormVersion:
    """A new draft version of a form (the form is created on first use), with the translations it starts from."""
    form = db.session.get(Form, form_id)
    if form is None:
        form = Form(id=form_id, kind=kind or definition.get("kind"), area_id=area_id)
        db.session.add(form)
        db.session.flush()
    definition = {**definition, "kind": form.kind}
    problems = definition_errors(definition, _)
    if problems:
        raise OperationError("definition_invalid", _("The form has problems to fix before it can be saved."), problems)
    version = FormVersion(
        form_id=form.id, version=_next_version(FormVersion, FormVersion.form_id, form.id), status="draft",
        definition=definition, language=language,
        translations=_carried_translations("form", definition, translations),
    )
    db.session.add(version)
    db.session.flush()
    return version


def update_form_draft(version: FormVersion, definition: dict) -> FormVersion:
    """Change a draft's definition; published versions are immutable. Drafts are not pulled, so no change row."""
    if version.status != "draft":
        raise OperationError("not_draft", _("Only a draft can be changed."))
    definition = {**definition, "kind": version.form.kind}
    problems = definition_errors(definition, _)
    if problems:
        raise OperationError("definition_invalid", _("The form has problems to fix before it can be saved."), problems)
    version.translations = _translations_after_edit("form", version.definition, definition, version.translations)
    version.definition = definition
    db.session.flush()
    return version


def publish_form_version(version: FormVersion) -> FormVersion:
    """Publish a draft: from now on it is immutable and devices receive it."""
    if version.status != "draft":
        raise OperationError("not_draft", _("Only a draft can be published."))
    version.status = "published"
    version.published_at = utcnow()
    db.session.flush()
    changes.write_changes([changes.form_change(version)])
    return version


def retire_form_version(version: FormVersion) -> FormVersion:
    """Retire a version: devices stop offering it, and what was filled offline is still accepted."""
    if version.status != "published":
        raise OperationError("not_published", _("Only a published version can be retired."))
    check = form_lifecycle.check_retire(version)
    if check.blocked:
        # Phones would lose the form's button (the street form's "Street monitoring visit") at their next sync.
        raise OperationError("last_published", ngettext(
            "Version %(version)s is the only published version of “%(title)s”, and %(num)s phone uses the form: "
            "retiring it would take the form off it. Publish a new version first; then retire this one.",
            "Version %(version)s is the only published version of “%(title)s”, and %(num)s phones use the form: "
            "retiring it would take the form off them. Publish a new version first; then retire this one.",
            check.phones_in_scope, version=version.version, title=version.definition.get("title", version.form_id)))
    version.status = "retired"
    version.retired_at = utcnow()
    db.session.flush()
    message = changes.device_message(
        f"form-retired-{version.sync_id}",
        _("Version %(version)s of “%(title)s” was retired. Anything you filled in on it will still be accepted.",
          version=version.version, title=version.definition.get("title", version.form_id)),
        area_id=version.form.area_id,
        data={"form": {"id": version.form_id, "version": version.version}},
    )
    changes.write_changes([changes.form_change(version), message])
    return version


def latest_published(form: Form) -> FormVersion | None:
    """The form's newest published version, or None."""
    published = [v for v in form.versions if v.status == "published"]
    return published[-1] if published else None


def area_copy(shared: Form, area_id: str) -> Form | None:
    """The area's own copy of a shared form, if it has made one."""
    return db.session.execute(
        select(Form).where(Form.copy_of == shared.id, Form.area_id == area_id)
    ).scalar_one_or_none()


def _copy_id(shared: Form, area: Area) -> str:
    """A form id for the area's copy: readable, within the column's 64 characters, unused."""
    base = f"{shared.id}-{area.slug}"[:60]
    candidate, n = base, 1
    while db.session.get(Form, candidate) is not None:
        n += 1
        candidate = f"{base[:57]}-{n}"
    return candidate


def copy_shared_form(shared: Form, area: Area) -> FormVersion:
    """Make `area`'s own copy of a shared form: a draft holding its latest published definition.

    Until the copy is published the area keeps using the shared form; from then on its
    phones and public page use the copy. Line keys are copied, so figures compare like with
    like across the switch and with other areas, as long as a line that means the same keeps
    its key.
    """
    if not shared.is_shared:
        raise OperationError("not_shared", _("Only a form that every area uses can be copied."))
    if area_copy(shared, area.id) is not None:
        raise OperationError("copy_exists", _("This area already has its own copy of this form."))
    source = latest_published(shared)
    if source is None:
        raise OperationError("not_published", _("This form has no published version to copy."))
    form = Form(id=_copy_id(shared, area), kind=shared.kind, area_id=area.id, copy_of=shared.id)
    db.session.add(form)
    db.session.flush()
    return draft_form_version(form.id, source.definition, translations=source.translations, language=source.language)


def replaced_shared_forms(area_id: str) -> set[str]:
    """Ids of the shared forms `area_id` has replaced by a published copy of its own."""
    return set(db.session.execute(
        select(Form.copy_of).join(FormVersion, FormVersion.form_id == Form.id)
        .where(Form.area_id == area_id, Form.copy_of.is_not(None), FormVersion.status == "published")
    ).scalars())


def draft_agreement_version(agreement_id: str, area: Area, definition: dict, *, translations: dict | None = None,
                            language: str = "en") -> AgreementVersion:
    """A new draft version of an agreement (created on first use), with the translations it starts from."""
    agreement = db.session.get(Agreement, agreement_id)
    if agreement is None:
        agreement = Agreement(id=agreement_id, area_id=area.id)
        db.session.add(agreement)
        db.session.flush()
    problems = agreement_errors(definition, street_line_keys(area.id))
    if problems:
        raise OperationError("definition_invalid", _("The agreement has problems to fix before it can be saved."), problems)
    version = AgreementVersion(
        agreement_id=agreement.id,
        version=_next_version(AgreementVersion, AgreementVersion.agreement_id, agreement.id),
        status="draft",
        definition=definition,
        language=language,
        translations=_carried_translations("agreement", definition, translations),
    )
    db.session.add(version)
    db.session.flush()
    return version


def update_agreement_draft(version: AgreementVersion, definition: dict) -> AgreementVersion:
    """Change a draft agreement's definition; published versions are immutable."""
    if version.status != "draft":
        raise OperationError("not_draft", _("Only a draft can be changed."))
    problems = agreement_errors(definition, street_line_keys(version.agreement.area_id))
    if problems:
        raise OperationError("definition_invalid", _("The agreement has problems to fix before it can be saved."), problems)
    version.translations = _translations_after_edit("agreement", version.definition, definition, version.translations)
    version.definition = definition
    db.session.flush()
    return version


def agreement_errors(definition: dict, line_keys: set[str] | None = None) -> dict:
    """What must be fixed before the agreement can be saved; `line_keys`: the street form's, to check standards' lines."""
    errors = {}
    if not str(definition.get("title") or "").strip():
        errors["title"] = [_("Give the agreement a title.")]
    for part in ("our_part", "your_part"):
        items = definition.get(part)
        if not isinstance(items, list) or not items or not all(
            isinstance(item, dict) and str(item.get("text") or "").strip() for item in items
        ):
            errors[part] = [_("List at least one commitment, each with its text.")]
    for standard in definition.get("standards") or []:
        days = standard.get("days") if isinstance(standard, dict) else None
        if days is not None and (type(days) is not int or days < 0):
            errors[f"standards.{standard.get('key')}"] = [_("A service standard's days are a whole number, like 5.")]
        problem = _standard_lines_problem(standard, line_keys) if isinstance(standard, dict) else None
        if problem:
            errors.setdefault(f"standards.{standard.get('key')}", []).append(problem)
    return errors


def _standard_lines_problem(standard: dict, line_keys) -> str | None:
    """What is wrong with a standard's `lines` (the street-form lines it concerns), if anything.

    `line_keys` are the keys of the area's street forms; None when the area has none yet
    (an agreement may be drafted before any form), and then only the shape is checked.
    """
    lines = standard.get("lines")
    if lines is None:
        return None
    if not isinstance(lines, list) or not all(isinstance(line, str) and line for line in lines) \
            or len(set(lines)) != len(lines):
        return _("A service standard's lines are a list of different street-form line keys, like [\"litter\"].")
    unknown = [line for line in lines if line_keys is not None and line not in line_keys]
    if unknown:
        return _("The street form has no line called %(keys)s.", keys=", ".join(unknown))
    return None


def street_line_keys(area_id: str) -> set[str] | None:
    """The line keys of the street forms `area_id` uses (shared or its own), or None when there are none."""
    keys = set(reporting.street_lines(db.session, area_id))
    return keys or None


def publish_agreement_version(version: AgreementVersion) -> AgreementVersion:
    if version.status != "draft":
        raise OperationError("not_draft", _("Only a draft can be published."))
    superseded = db.session.execute(
        select(AgreementVersion).where(
            AgreementVersion.agreement_id == version.agreement_id, AgreementVersion.status == "published"
        )
    ).scalars().all()
    for older in superseded:
        older.status = "retired"
    version.status = "published"
    version.published_at = utcnow()
    db.session.flush()
    changes.write_changes(
        [changes.PendingChange("agreements", o.sync_id, op="delete", area_id=o.agreement.area_id) for o in superseded]
        + [changes.agreement_change(version)]
    )
    return version


# -- translations of forms and agreements -----------------------------------------------------


def _carried_translations(kind: str, definition: dict, translations: dict | None) -> dict:
    """The translations a new draft starts with: those of the version it copies, for the texts it has."""
    source = content.texts_of(kind, definition)
    carried = {}
    for language, texts in (translations or {}).items():
        kept = {key: text for key, text in content.cleaned(texts or {}).items() if key in source}
        if kept:
            carried[language] = kept
    return carried


def _translations_after_edit(kind: str, before: dict, after: dict, translations: dict | None) -> dict:
    """A draft's translations once its definition changed: a text whose source changed reads in the source again."""
    old, new = content.texts_of(kind, before), content.texts_of(kind, after)
    kept = {}
    for language, texts in (translations or {}).items():
        remaining = content.kept_after_edit(old, new, texts or {})
        if remaining:
            kept[language] = remaining
    return kept


def translation_errors(kind: str, version, language: str, texts, *, choices) -> dict:
    """What is wrong with `texts` as the `language` translation of `version`, as field errors.

    The posted texts must be exactly the version's own (a translation adds none and drops none:
    a page opened before the draft changed is refused rather than half-applied); empty ones fall back.
    """
    errors: dict = {}
    if content.primary_language(language) not in choices:
        errors["language"] = [_("Choose one of the languages offered.")]
        return errors
    source = content.texts_of(kind, version.definition)
    if not isinstance(texts, dict):
        return {"texts": [_("A translation is a set of texts, each named by the text it translates.")]}
    added = [key for key in texts if key not in source]
    dropped = [key for key in source if key not in texts]
    if added or dropped:
        errors["texts"] = [_("The translation does not match this version's texts any more (it was changed "
                             "meanwhile). Open the translation again and redo your changes.")]
    messages = {
        "not_text": _("Type this text again: it holds control characters or a broken symbol."),
        "too_long": _("Keep this text within %(count)s characters.", count=content.MAX_TRANSLATED_TEXT),
    }
    for key, code in content.translation_problems(source, texts).items():
        if code in messages:
            errors[f"texts.{key}"] = [messages[code]]
    return errors


def set_translation(kind: str, version, language: str, texts: dict, *, choices) -> tuple[dict, dict]:
    """Keep `texts` as `version`'s translation into `language` (empty texts fall back); returns (before, after).

    Not a new version: the definition stays as it is, published or draft. A published version's
    record changes in the change log, so phones get the translation at their next sync. All texts
    empty removes the translation.
    """
    errors = translation_errors(kind, version, language, texts, choices=choices)
    if errors:
        raise OperationError("translation_invalid", _("The translation has problems to fix before it can be saved."),
                             errors)
    language = content.primary_language(language)
    before = dict((version.translations or {}).get(language) or {})
    after = content.cleaned(texts)
    translations = {key: value for key, value in (version.translations or {}).items() if key != language}
    if after:
        translations[language] = after
    version.translations = translations
    db.session.flush()
    if before != after:
        change = _translation_change(kind, version)
        if change is not None:
            changes.write_changes([change])
    return before, after


def _translation_change(kind: str, version):
    """The record phones hold of `version`, rewritten: drafts are not pulled, nor agreements no longer current."""
    if kind == "form":
        return changes.form_change(version) if version.status in ("published", "retired") else None
    return changes.agreement_change(version) if version.status == "published" else None


# -- people, invites and devices -----------------------------------------------------------


def create_person(display_name: str, *, email=None, password=None, organisation=None, roles=()) -> Person:
    """A person with roles: `roles` is a list of (role, area or None)."""
    person = Person(
        display_name=display_name,
        email=email.strip().lower() if email else None,
        password_hash=hash_password(password) if password else None,
        organisation=organisation,
    )
    for role, area in roles:
        person.roles.append(Role(role=role, area_id=area.id if area else None))
    db.session.add(person)
    db.session.flush()
    return person


def invite_hash(code: str) -> str:
    normalised = "".join(ch for ch in code.upper() if ch.isalnum())
    return hashlib.sha256(normalised.encode()).hexdigest()


def issue_invite(area: Area, role: str, *, created_by=None, display_name=None, person=None, days=INVITE_DAYS) -> str:
    """A one-time invite code; only its hash is stored, so the caller must show it now."""
    if role not in ("street_rep", "mystery_shopper"):
        raise OperationError("role_invalid", _("Invites are for street reps and mystery shoppers."))
    raw = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(12))
    code = "-".join(raw[i : i + 4] for i in range(0, 12, 4))
    db.session.add(
        Invite(
            code_hash=invite_hash(code),
            area_id=area.id,
            role=role,
            display_name=display_name,
            person_id=person.id if person else None,
            created_by=created_by.id if created_by else None,
            expires_at=utcnow() + timedelta(days=days),
        )
    )
    db.session.flush()
    return code


def enrol_device(code: str, device_name: str, *, user_agent: str = "", display_name: str = "") -> tuple[Device, str]:
    """Use an invite code or a personal re-join code: a device (and a person, for a new volunteer)
    and its token, shown once.

    A re-invite (the invite names a person) and a re-join code add a device to that person, so
    their history stays one. `display_name` is the volunteer's own, used when the invite had none.
    """
    from server import people

    if people.is_rejoin_code(code):
        person = people.person_for_rejoin(code)
        if person is None:
            raise OperationError("rejoin_invalid", _("That re-join code is not recognised. Check it, or ask your "
                                                     "coordinator to show you a new one."))
        _refuse_deactivated(person)
    else:
        invite = db.session.execute(
            select(Invite).where(Invite.code_hash == invite_hash(code)).with_for_update()
        ).scalar_one_or_none()
        if invite is None:
            raise OperationError("invite_invalid", _("That invite code is not recognised. Check it and try again."))
        if invite.used_at is not None:
            raise OperationError("invite_used", _("That invite code has already been used. Ask your coordinator for a new one."))
        if invite.expires_at < utcnow():
            raise OperationError("invite_expired", _("That invite code has expired. Ask your coordinator for a new one."))
        person = db.session.get(Person, invite.person_id) if invite.person_id else None
        if person is not None:
            _refuse_deactivated(person)
        else:
            given = (invite.display_name or "").strip() or display_name.strip()
            # A placeholder only coordinators read; the phone is told no name was given.
            person = Person(display_name=given or _("Volunteer (no name given)"), name_given=bool(given))
            db.session.add(person)
            db.session.flush()
        invite.used_at = utcnow()
        if not any(r.role == invite.role and r.area_id == invite.area_id for r in person.roles):
            person.roles.append(Role(role=invite.role, area_id=invite.area_id))
    token = new_device_token()
    joined = utcnow()
    name = device_name.strip() or people.readable_device_name(user_agent, joined)
    device = Device(person_id=person.id, name=name[:200], token_hash=token_hash(token), created_at=joined)
    db.session.add(device)
    db.session.flush()
    return device, token


def _refuse_deactivated(person: Person):
    if person.deactivated_at is not None:
        raise OperationError("person_deactivated", _("Your coordinator has paused your account, so you cannot join "
                                                     "now. Ask them about it."))


def set_photo_location_kept(area: Area, keep: bool):
    """Whether photos from this area's volunteers keep their location; only photos uploaded from now on change."""
    area.keep_photo_location = keep


def revoke_device(device: Device):
    from server import people

    people.revoke_device(device)


def roles_by_area(person: Person) -> dict[str | None, set[str]]:
    """The person's roles in each area; the key None holds roles that count in every area (an admin's)."""
    found: dict[str | None, set[str]] = {}
    for role in person.roles:
        found.setdefault(role.area_id, set()).add(role.role)
    return found


def note_sync(device: Device, now):
    """Record that `device` synced at `now`, to within LAST_SYNC_PRECISION."""
    # The syncs of a phone in one minute (its outbox sent in pages, then its pulls) write it
    # once, not each a row update and a commit (see models.LAST_SYNC_PRECISION). A form version
    # published since the stored time is written at once: the retire check (form_lifecycle)
    # counts the phones that synced before and after a publication, to the second.
    last = device.last_sync_at
    if last is None or now - last >= LAST_SYNC_PRECISION or _form_published_since(last):
        device.last_sync_at = now


def _form_published_since(moment) -> bool:
    return db.session.execute(
        select(FormVersion.published_at).where(FormVersion.published_at > moment).limit(1)
    ).first() is not None


def device_scope(person: Person) -> tuple[list[str], list[str]]:
    """The areas and roles whose records a person's devices receive."""
    areas = sorted({r.area_id for r in person.roles if r.area_id})
    roles = sorted({r.role for r in person.roles})
    if any(r.role == "admin" and r.area_id is None for r in person.roles):
        areas = sorted(db.session.execute(select(Area.id)).scalars())
    return areas, roles


# -- review and actions ----------------------------------------------------------------------


def review_submission(submission: Submission, status: str, reviewer: Person, reason: str | None = None):
    """Accept or flag a visit; the volunteer sees the status after their next sync."""
    if status not in ("accepted", "flagged", "pending"):
        raise OperationError("status_invalid", _("Choose accepted or flagged."))
    if status == "flagged" and not (reason or "").strip():
        raise OperationError("reason_required", _("Say why the visit is flagged."), {"reason": [_("Give a reason.")]})
    was_flagged = submission.review_status == "flagged"
    submission.review_status = status
    submission.review_reason = (reason or "").strip() or None
    submission.reviewed_by = reviewer.id
    submission.reviewed_at = utcnow()
    db.session.flush()
    changes.write_changes([changes.submission_change(submission)])
    # Flagging takes the visit out of every figure, un-flagging puts it back: so too its kept grade counts.
    if was_flagged != (status == "flagged"):
        (grade_counts.visits_left_out if status == "flagged" else grade_counts.visits_counted)(db.session, [submission.id])


def raise_action(area: Area, title: str, *, created_by=None, site=None, line_key=None, submission=None,
                 description="", assigned_to=None) -> Action:
    """Raise an action ("you said") from a C/D grade or by hand."""
    if not title.strip():
        raise OperationError("title_required", _("Give the action a title."), {"title": [_("Give a title.")]})
    if len(title.strip()) > 300:
        raise OperationError("title_too_long", _("Keep the title to 300 characters."),
                             {"title": [_("Keep the title to 300 characters.")]})
    if len((assigned_to or "").strip()) > 200:
        raise OperationError("assignee_too_long", _("Keep the name of who it is assigned to within 200 characters."),
                             {"assigned_to": [_("Keep it within 200 characters.")]})
    action = Action(
        area_id=area.id,
        site_id=site.id if site else None,
        line_key=line_key,
        submission_id=submission.id if submission else None,
        title=title.strip(),
        description=description.strip(),
        assigned_to=(assigned_to or "").strip() or None,
        status="open",
        field_versions={},
        created_by=created_by.id if created_by else None,
    )
    db.session.add(action)
    db.session.flush()
    changes.write_changes([changes.action_change(action)])
    return action


def update_action(action: Action, patch: dict) -> Action:
    """Change an action's status, reason, note or assignee ("we did"), following the lifecycle."""
    unknown = set(patch) - set(Action.EDITABLE)
    if unknown:
        raise OperationError("field_not_editable", _("These fields cannot be changed."), {k: [_("Not editable.")] for k in unknown})
    if len(patch.get("assigned_to") or "") > 200:
        raise OperationError("assignee_too_long", _("Keep the name of who it is assigned to within 200 characters."),
                             {"assigned_to": [_("Keep it within 200 characters.")]})
    new_status = patch.get("status", action.status)
    reason = patch.get("reason", action.reason)
    problem = action_transition_error(action.status, new_status, reason)
    if problem:
        raise OperationError(problem, transition_message(problem), {"status" if problem != "reason_required" else "reason": [transition_message(problem)]})
    version = action.version + 1
    for key, value in patch.items():
        if getattr(action, key) != value:
            setattr(action, key, value)
            action.field_versions = {**action.field_versions, key: version}
    action.version = version
    db.session.flush()
    changes.write_changes([changes.action_change(action)])
    return action


def transition_message(problem: str) -> str:
    return {
        "unknown_status": _("That is not a status an action can have."),
        "transition_not_allowed": _("An action cannot move to that status from where it is now."),
        "reason_required": _("Say why this is not being done: residents will see the reason."),
    }[problem]
