"""Importing a device's "Export unsent" file: a coordinator pushes its outbox for a volunteer.

When a phone cannot reach the server (or is being handed back, or is broken), the volunteer
downloads their unsent work as a JSON file in the one format both clients write
(`sync/export_format.schema.json`, checked by `sync.export`). A coordinator uploads it here:
the photos are stored like uploaded blobs and the outbox items go through the normal push
path (`server.push.push`) as the device that made them, so an item that also arrives later
from the phone itself is a harmless `duplicate`. The file's drafts (unfinished forms) and its
"Needs attention" items are listed so the coordinator sees the phone's unfinished work; they
are not sent in (a draft is not finished, and the server already refused the others). The
volunteer can bring them back on a new phone (field app, Settings, "Move to a new phone").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from babel.dates import format_date, format_time
from flask import Blueprint, g, render_template, request
from flask_babel import get_locale, gettext as _

from server import audit, auth, blobs, operations, photo_location, push
from server.auth import allow
from server.limits import body_limit
from server.extensions import db
from server.models import Device, FormVersion, Site
from sync import export
from sync.protocol import MAX_MUTATIONS_PER_REQUEST

bp = Blueprint("imports", __name__)

# A phone that was offline for weeks may export many photos (each up to about 500 KB once
# resized), so the import takes far more than the 8 MB any other request may carry.
MAX_IMPORT_BYTES = 100 * 1024 * 1024


class ImportProblem(Exception):
    """The file cannot be imported; the message says why in plain English."""


@dataclass
class UnfinishedWork:
    """One draft or "Needs attention" item of a file, as a coordinator reads it."""

    site: str
    form: str
    when: str  # the visit's date and time as the phone gave it
    answered: int
    lines: int | None  # lines of its form version; None when this server does not know the version
    message: str = ""  # for an attention item: what the server said


@dataclass
class ImportReport:
    """What became of an imported file."""

    device_name: str
    person_name: str
    results: list = field(default_factory=list)
    photos_stored: int = 0
    drafts: list = field(default_factory=list)
    attention: list = field(default_factory=list)
    # When the phone was signed out: then only visits made before that were sent in.
    revoked_on: str | None = None

    def count(self, status: str) -> int:
        return sum(1 for result in self.results if result.get("status") == status)


def _refusal(problem: export.ExportFileError) -> str:
    """What to tell the coordinator about a file the format check refused."""
    if problem.reason == "not_json":
        return _("This is not an export file from the field app (it is not JSON).")
    if problem.reason == "not_export":
        return _("This is not an export file from the field app.")
    if problem.reason == "newer_version":
        return _("This export file comes from a newer app. Update the server, then import it.")
    if problem.reason == "unknown_version":
        return _("This export file does not say which format version it is in. "
                 "Ask the volunteer to update the app and export again.")
    return _("This export file is damaged (at %(where)s). Ask the volunteer to export again.", where=problem.where)


def read_export(raw: bytes) -> dict:
    """The parsed export file, checked against the format's schema, or ImportProblem."""
    try:
        return export.read_export(raw)
    except export.ExportFileError as problem:
        raise ImportProblem(_refusal(problem)) from None


def _phone_time(text) -> str:
    """A time as the phone wrote it, in the reader's language."""
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return ""
    # The phone's wall clock, as the volunteer saw it: not converted to the reader's zone.
    locale = get_locale()
    return _("%(date)s, %(time)s", date=format_date(moment.date(), "long", locale=locale),
             time=format_time(moment.time(), "short", locale=locale))


def _answered(answers: dict) -> int:
    """Lines with an answer (a grade, or a value that is not blank), counted as the field app counts them."""
    count = 0
    for answer in answers.values():
        if not isinstance(answer, dict):
            continue
        value = answer.get("value")
        if answer.get("grade") or (value is not None and str(value).strip()):
            count += 1
    return count


class _Lookup:
    """Site names and form versions for the listing, each read once."""

    def __init__(self):
        self._sites: dict = {}
        self._forms: dict = {}

    def site(self, site_id) -> Site | None:
        if site_id not in self._sites:
            self._sites[site_id] = db.session.get(Site, str(site_id)) if isinstance(site_id, str) else None
        return self._sites[site_id]

    def form(self, reference) -> FormVersion | None:
        if not isinstance(reference, dict) or type(reference.get("version")) is not int:
            return None
        key = (str(reference.get("id")), reference["version"])
        if key not in self._forms:
            self._forms[key] = db.session.get(FormVersion, key)
        return self._forms[key]

    def lines(self, reference) -> int | None:
        version = self.form(reference)
        if version is None:
            return None
        return sum(len(section.get("lines", [])) for section in version.definition.get("sections", []))

    def form_title(self, reference) -> str:
        version = self.form(reference)
        if version is not None:
            return version.definition.get("title") or version.form_id
        return str(reference.get("id", "")) if isinstance(reference, dict) else ""

    def site_of_draft(self, draft: dict) -> str:
        site = draft["site"]
        if site.get("mode") == "new":
            return _("%(name)s (new site)", name=site.get("new_name") or _("no name yet"))
        known = self.site(site.get("site_id"))
        if known is not None:
            return known.name
        return site.get("site_name") or _("No site chosen yet")

    def site_of_visit(self, data: dict) -> str:
        if isinstance(data.get("new_site"), dict):
            return _("%(name)s (new site)", name=data["new_site"].get("name") or _("no name yet"))
        known = self.site(data.get("site_id"))
        return known.name if known is not None else _("Unknown site")


def unfinished_work(document: dict) -> tuple[list, list]:
    """The file's drafts and "Needs attention" items, readable: site, form, time, lines answered."""
    lookup = _Lookup()
    drafts = [
        UnfinishedWork(site=lookup.site_of_draft(draft), form=lookup.form_title(draft["form"]),
                       when=_phone_time(draft.get("observed_local")), answered=_answered(draft["answers"]),
                       lines=lookup.lines(draft["form"]))
        for draft in document["drafts"]
    ]
    attention = []
    for item in document["attention"]:
        data, result = item["mutation"]["data"], item["result"]
        answers = data.get("answers") if isinstance(data.get("answers"), dict) else {}
        attention.append(UnfinishedWork(
            site=lookup.site_of_visit(data), form=lookup.form_title(data.get("form")),
            when=_phone_time(data.get("observed_at")), answered=_answered(answers), lines=lookup.lines(data.get("form")),
            message=str(result.get("message") or result.get("code") or result["status"])))
    return drafts, attention


def _store_photos(photos: dict, device: Device) -> int:
    """Keep the file's photos as blobs (checked like uploads, location stripped alike); returns how many were new."""
    stored = 0
    keep_location = blobs.keeps_location(device.person_id)
    # One photo at a time: decoded, stored and let go (its base64 dropped from the document too),
    # so the import holds at most one decoded photo however many the file has. blobs.keep hands
    # those bytes to the store as they are, with no further copy.
    for sha256 in list(photos):
        photo = photos.pop(sha256)
        try:
            data = base64.b64decode(photo["base64"], validate=True)
        except (binascii.Error, ValueError):
            raise ImportProblem(_("This export file is damaged: a photo cannot be read.")) from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ImportProblem(_("This export file is damaged: a photo does not match its name."))
        content_type = blobs.image_type(data)
        if content_type is None:
            raise ImportProblem(_("This export file holds a photo that is not a JPEG, PNG or WebP image."))
        try:
            if blobs.keep(sha256, data, content_type, device.id, keep_location=keep_location):
                stored += 1
        except photo_location.LocationNotRemovable:
            raise ImportProblem(_("This export file holds a photo whose location cannot be taken out of it. "
                                  "Ask the volunteer to remove that photo from the visit and export again.")) from None
    db.session.commit()
    return stored


def import_unsent(document: dict, coordinator) -> ImportReport:
    """Push a checked export file's outbox as the device that made it; the coordinator must cover its areas."""
    device = db.session.get(Device, document["device_id"] or "")
    if device is None:
        raise ImportProblem(_("The phone that made this file is not known to this server."))
    person = device.person
    if document["person"]["id"] != person.id:
        raise ImportProblem(_("This export file names another volunteer than the one its phone belongs to."))
    area_ids, _roles = operations.device_scope(person)
    if not any(auth.has_role(coordinator, "coordinator", area_id) for area_id in area_ids):
        raise ImportProblem(_("This volunteer is not in an area you coordinate."))
    drafts, attention = unfinished_work(document)
    report = ImportReport(device_name=device.name, person_name=person.display_name, drafts=drafts, attention=attention)
    mutations = [export.pushable(entry) for entry in document["outbox"]]
    photos = document["photos"]
    if device.revoked_at is not None:
        mutations, photos = _made_before_sign_out(report, device, mutations, photos)
    report.photos_stored = _store_photos(photos, device)
    roles_by_area = operations.roles_by_area(person)
    for start in range(0, len(mutations), MAX_MUTATIONS_PER_REQUEST):
        batch = mutations[start:start + MAX_MUTATIONS_PER_REQUEST]
        report.results.extend(push.push(device, person, batch, set(area_ids), roles_by_area))
    return report


def _made_before_sign_out(report: ImportReport, device: Device, mutations: list, photos: dict):
    """A signed-out phone's file: the visits it made before it was signed out go in; the rest are refused.

    Signing a phone out means nothing more is accepted from the phone itself (a lost or stolen
    phone may still hold its token). A file a coordinator chose to import is another matter:
    the volunteer handed it over, and the revoke confirmation tells them to. What the phone
    says it made after it was signed out, and edits (which carry no time), stay refused.
    Only the photos of the visits let in are stored.
    """
    report.revoked_on = format_date(device.revoked_at.date(), "long", locale=get_locale())
    message = _("Not sent in: this phone was signed out on %(date)s, and this was made after that, or is not a visit.",
                date=report.revoked_on)
    kept, refused = [], []
    for mutation in mutations:
        observed = _observed_at(mutation)
        (kept if observed is not None and observed <= device.revoked_at else refused).append(mutation)
    report.results.extend({"mid": m["mid"], "status": "rejected", "code": "device_revoked", "message": message}
                          for m in refused)
    wanted = {sha for m in kept for sha in _photo_hashes(m.get("data"))}
    return kept, {sha: photo for sha, photo in photos.items() if sha in wanted}


def _observed_at(mutation: dict) -> datetime | None:
    """When a visit in the file says it was made (aware), or None for anything else."""
    data = mutation.get("data")
    if mutation.get("type") != "submission.create" or not isinstance(data, dict):
        return None
    try:
        moment = datetime.fromisoformat(str(data.get("observed_at")))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _photo_hashes(data) -> set[str]:
    answers = data.get("answers") if isinstance(data, dict) else None
    found = set()
    for answer in (answers.values() if isinstance(answers, dict) else ()):
        if isinstance(answer, dict) and isinstance(answer.get("photos"), list):
            found.update(sha for sha in answer["photos"] if isinstance(sha, str))
    return found


@bp.route("/coordinator/import", methods=["GET", "POST"])
@allow("coordinator")
@body_limit(MAX_IMPORT_BYTES)
def upload():
    """Upload a volunteer's "Export unsent" file and send its items in."""
    if request.method == "GET":
        return _upload_page()
    upload_file = request.files.get("file")
    if upload_file is None or not upload_file.filename:
        return _upload_page(_("Choose the file the volunteer downloaded.")), 400
    # A large upload is spooled to a temporary file: read it, then let the file go at once.
    try:
        raw = upload_file.read()
    finally:
        upload_file.close()
    try:
        document = read_export(raw)
        report = import_unsent(document, g.person)
    except ImportProblem as problem:
        db.session.rollback()
        return _upload_page(str(problem)), 400
    # The items were committed as the volunteer's device; the entry says which coordinator sent them in.
    statuses = {}
    for result in report.results:
        statuses[result.get("status", "?")] = statuses.get(result.get("status", "?"), 0) + 1
    audit.record("import.unsent", record_type="device", record_id=document["device_id"],
                 details={"items": statuses, "photos_stored": report.photos_stored})
    db.session.commit()
    return render_template("imports/result.html", report=report)


def _upload_page(error: str | None = None) -> str:
    return render_template("imports/upload.html", max_megabytes=MAX_IMPORT_BYTES // (1024 * 1024), error=error)
