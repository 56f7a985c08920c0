"""Importing a device's "Export unsent" file: a coordinator pushes its outbox for a volunteer.

When a phone cannot reach the server (or is being handed back), the volunteer downloads
their unsent work as a JSON file. A coordinator uploads it here; the photos are stored
like uploaded blobs and the outbox items go through the normal push path
(`server.push.push`) as the device that made them, so an item that also arrives later
from the phone itself is a harmless `duplicate`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field

from flask import Blueprint, g, render_template, request
from flask_babel import gettext as _

from server import auth, blobs, operations, push
from server.auth import allow
from server.limits import body_limit
from server.extensions import db
from server.models import Device
from sync.protocol import MAX_MUTATIONS_PER_REQUEST

bp = Blueprint("imports", __name__)

EXPORT_FORMAT = "kerbside-unsent"
# A phone that was offline for weeks may export many photos (each up to about 500 KB once
# resized), so the import takes far more than the 8 MB any other request may carry.
MAX_IMPORT_BYTES = 100 * 1024 * 1024
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ImportProblem(Exception):
    """The file cannot be imported; the message says why in plain English."""


@dataclass
class ImportReport:
    """What became of an imported file."""

    device_name: str
    person_name: str
    results: list = field(default_factory=list)
    photos_stored: int = 0
    drafts: int = 0
    attention: int = 0

    def count(self, status: str) -> int:
        return sum(1 for result in self.results if result.get("status") == status)


def read_export(raw: bytes) -> dict:
    """The parsed export file, or ImportProblem."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ImportProblem(_("This is not an export file from the field app (it is not JSON).")) from None
    if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
        raise ImportProblem(_("This is not an export file from the field app."))
    if document.get("format_version") != 1:
        raise ImportProblem(_("This export file comes from a newer app. Update the server, then import it."))
    if not isinstance(document.get("outbox"), list) or not isinstance(document.get("photos", {}), dict):
        raise ImportProblem(_("This export file is damaged: its outbox is missing."))
    return document


def _store_photos(photos: dict, device: Device) -> int:
    """Keep the file's photos as blobs (checked like uploads); returns how many were new."""
    stored = 0
    for sha256, photo in photos.items():
        if not SHA256.match(str(sha256)) or not isinstance(photo, dict):
            raise ImportProblem(_("This export file is damaged: a photo has a bad name."))
        try:
            data = base64.b64decode(str(photo.get("base64", "")), validate=True)
        except (binascii.Error, ValueError):
            raise ImportProblem(_("This export file is damaged: a photo cannot be read.")) from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ImportProblem(_("This export file is damaged: a photo does not match its name."))
        content_type = blobs.image_type(data)
        if content_type is None:
            raise ImportProblem(_("This export file holds a photo that is not a JPEG, PNG or WebP image."))
        if blobs.keep(sha256, data, content_type, device.id):
            stored += 1
    db.session.commit()
    return stored


def import_unsent(document: dict, coordinator) -> ImportReport:
    """Push an export file's outbox as the device that made it; the coordinator must cover its areas."""
    device = db.session.get(Device, str(document.get("device_id") or ""))
    if device is None:
        raise ImportProblem(_("The phone that made this file is not known to this server."))
    person = device.person
    area_ids, _roles = operations.device_scope(person)
    if not any(auth.has_role(coordinator, "coordinator", area_id) for area_id in area_ids):
        raise ImportProblem(_("This volunteer is not in an area you coordinate."))
    report = ImportReport(device_name=device.name, person_name=person.display_name,
                          drafts=len(document.get("drafts") or []), attention=len(document.get("attention") or []))
    report.photos_stored = _store_photos(document.get("photos") or {}, device)
    roles_by_area = operations.roles_by_area(person)
    mutations = document["outbox"]
    for start in range(0, len(mutations), MAX_MUTATIONS_PER_REQUEST):
        batch = mutations[start:start + MAX_MUTATIONS_PER_REQUEST]
        report.results.extend(push.push(device, person, batch, set(area_ids), roles_by_area))
    return report


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
        report = import_unsent(read_export(raw), g.person)
    except ImportProblem as problem:
        db.session.rollback()
        return _upload_page(str(problem)), 400
    return render_template("imports/result.html", report=report)


def _upload_page(error: str | None = None) -> str:
    return render_template("imports/upload.html", max_megabytes=MAX_IMPORT_BYTES // (1024 * 1024), error=error)
