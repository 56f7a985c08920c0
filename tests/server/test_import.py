"""Importing a phone's "Export unsent" file through the normal push path."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from server import operations
from server.blobs import store
from server.extensions import db
from server.models import Blob, Submission
from sync.client import Client
from sync.transport import Response, TransportError
from tests.conftest import mutation, recently, sign_in, street_answers, visit

PASSWORD = "correct horse battery"
PHOTO = b"\x89PNG\r\n\x1a\n" + b"\x01" * 40
PHOTO_SHA = hashlib.sha256(PHOTO).hexdigest()


def upload(client, csrf, document, name="kerbside-unsent.json"):
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    # Encoded in memory: the test client would spool a large body to a file it never closes.
    boundary, body = encode_multipart({"csrf_token": csrf, "file": FileStorage(io.BytesIO(raw), filename=name)})
    return client.post("/coordinator/import", data=body, content_type=f"multipart/form-data; boundary={boundary}")


@pytest.fixture
def phone(client, make_area, make_site, publish_forms, enrol):
    """A rep's phone with two visits waiting (one with a photo), as its export file holds them."""
    publish_forms()
    area = make_area("millbrook", "Millbrook")
    other = make_area("elsewhere", "Elsewhere")
    site = make_site(area)
    operations.create_person("Cora", email="cora@example.org", password=PASSWORD, roles=[("coordinator", area)])
    operations.create_person("Otto", email="otto@example.org", password=PASSWORD, roles=[("coordinator", other)])
    db.session.commit()
    _token, body = enrol(area, name="Rep Export")
    with_photo = visit(site, answers=street_answers(litter={"grade": "C", "photos": [PHOTO_SHA]}))
    plain = visit(site, answers=street_answers("A"))
    document = {
        "format": "kerbside-unsent",
        "format_version": 1,
        "exported_at": "2026-11-22T10:00:00.000Z",
        "device_id": body["device_id"],
        "person": {"id": body["person"]["id"], "display_name": "Rep Export"},
        "outbox": [mutation(with_photo, seq=1), mutation(plain, seq=2)],
        "attention": [],
        "drafts": [{"id": "draft-1", "form": {"id": "street", "version": 1}, "kind": "street",
                    "title": "Neighbourhood Agreement Monitoring Form",
                    "site": {"mode": "list", "site_id": site.id, "site_name": site.name, "new_name": ""},
                    "observed_local": "2026-11-22T09:30",
                    "answers": {"litter": {"grade": "B"}, "graffiti": {"note": "tag on the bridge"}},
                    "notes": "", "location": None, "created_at": 1795337400000, "updated_at": 1795337700000}],
        "photos": {PHOTO_SHA: {"type": "image/png", "base64": base64.b64encode(PHOTO).decode()}},
    }
    return document


def test_import_stores_the_waiting_visits_and_their_photos(client, phone):
    csrf = sign_in(client, "cora@example.org")
    response = upload(client, csrf, phone)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "New visits stored: 2" in page
    assert "Unfinished drafts, not imported: 1" in page
    assert db.session.query(Submission).count() == 2
    assert db.session.get(Blob, PHOTO_SHA).content_type == "image/png"
    assert store().get(PHOTO_SHA) == PHOTO


def test_importing_twice_or_after_the_phone_sent_is_a_duplicate(client, phone):
    csrf = sign_in(client, "cora@example.org")
    upload(client, csrf, phone)
    page = upload(client, csrf, phone).get_data(as_text=True)
    assert "New visits stored: 0" in page
    assert "Already here (not counted twice): 2" in page
    assert db.session.query(Submission).count() == 2


def test_a_coordinator_of_another_area_cannot_import(client, phone):
    csrf = sign_in(client, "otto@example.org")
    response = upload(client, csrf, phone)
    assert response.status_code == 400
    assert "not in an area you coordinate" in response.get_data(as_text=True)
    assert db.session.query(Submission).count() == 0


@pytest.mark.parametrize("change, message", [
    (lambda d: b"not json", "it is not JSON"),
    (lambda d: {**d, "format": "something-else"}, "not an export file"),
    (lambda d: {**d, "format_version": 2}, "newer app"),
    (lambda d: {**d, "device_id": "no-such-device"}, "not known to this server"),
    (lambda d: {**d, "photos": {PHOTO_SHA: {"type": "image/png", "base64": base64.b64encode(b"other").decode()}}},
     "does not match its name"),
])
def test_a_damaged_or_foreign_file_is_refused_with_a_reason(client, phone, change, message):
    csrf = sign_in(client, "cora@example.org")
    response = upload(client, csrf, change(phone))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.query(Submission).count() == 0


def test_import_needs_a_signed_in_coordinator_and_the_forms_token(client, phone):
    response = upload(client, "", phone)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    sign_in(client, "cora@example.org")
    assert upload(client, "wrong", phone).status_code == 400
    assert db.session.query(Submission).count() == 0


def test_the_upload_page_explains_itself(client, phone):
    sign_in(client, "cora@example.org")
    page = client.get("/coordinator/import").get_data(as_text=True)
    assert 'type="file"' in page and 'name="csrf_token"' in page


def photos_of(count: int, size: int) -> dict:
    """`count` different PNG-signed photos of `size` bytes, as an export file holds them."""
    photos = {}
    for n in range(count):
        data = b"\x89PNG\r\n\x1a\n" + n.to_bytes(4, "big") * (size // 4)
        photos[hashlib.sha256(data).hexdigest()] = {"type": "image/png", "base64": base64.b64encode(data).decode()}
    return photos


def test_an_export_larger_than_other_requests_may_be_imports(client, app, phone):
    """A phone offline for weeks exports many photos: more than the 8 MB any other request may carry."""
    phone["photos"].update(photos_of(20, 500_000))  # 10 MB of photos, about 13 MB as base64
    raw = json.dumps(phone).encode()
    assert len(raw) > app.config["MAX_CONTENT_LENGTH"]
    csrf = sign_in(client, "cora@example.org")
    response = upload(client, csrf, raw)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert "New visits stored: 2" in response.get_data(as_text=True)
    assert db.session.query(Blob).count() == 21


def test_an_export_over_the_import_limit_is_refused_before_it_is_read(client, app, phone, monkeypatch):
    monkeypatch.setattr(app.view_functions["imports.upload"], "kerbside_max_bytes", 1_000_000)
    phone["photos"].update(photos_of(4, 500_000))
    csrf = sign_in(client, "cora@example.org")
    response = upload(client, csrf, phone)
    assert response.status_code == 413
    assert "too big to send in one go" in response.get_data(as_text=True)
    assert db.session.query(Submission).count() == 0


# -- one format: what each client really exports, and what the page shows of it -------------------


def test_the_result_lists_the_files_drafts_readably(client, phone):
    csrf = sign_in(client, "cora@example.org")
    page = upload(client, csrf, phone).get_data(as_text=True)
    drafts = page[page.index("Drafts in the file"):page.index("</table>", page.index("Drafts in the file"))]
    # Site, the visit's time on the phone's clock, and lines answered of the form's 12
    # (a note alone is not an answer).
    assert "Canal Street" in drafts and "22 November 2026, 09:30" in drafts and "1 of 12" in drafts
    assert "Neighbourhood Agreement Monitoring Form" in drafts


def test_the_result_lists_what_needed_attention_with_the_servers_reason(client, phone):
    refused = phone["outbox"].pop()
    phone["attention"] = [{"mutation": refused, "noted_at": 1795337800000,
                           "result": {"status": "rejected", "code": "validation_failed",
                                      "message": "Some answers are not valid."}}]
    csrf = sign_in(client, "cora@example.org")
    page = upload(client, csrf, phone).get_data(as_text=True)
    assert "New visits stored: 1" in page and "Refused earlier, not sent again: 1" in page
    listed = page[page.index("Refused visits in the file"):]
    assert "Canal Street" in listed and "Some answers are not valid." in listed and "12 of 12" in listed
    assert db.session.query(Submission).count() == 1  # a refused item is shown, not sent again


@pytest.mark.parametrize("change, message", [
    # The reference client once wrote "version" instead of "format_version".
    (lambda d: {**{k: v for k, v in d.items() if k != "format_version"}, "version": 1}, "does not say which format version"),
    (lambda d: {**d, "outbox": [{**d["outbox"][0], "payload_hash": "abc"}]}, "damaged (at outbox[0].payload_hash)"),
    (lambda d: {**d, "drafts": [{"id": "draft-1", "answers": {}}]}, "damaged (at drafts[0])"),
    (lambda d: {**d, "person": {"id": "someone-else", "display_name": "Rep Export"}}, "names another volunteer"),
])
def test_a_file_not_in_the_one_format_is_refused_with_what_is_wrong(client, phone, change, message):
    csrf = sign_in(client, "cora@example.org")
    response = upload(client, csrf, change(phone))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.query(Submission).count() == 0


class _TestClientTransport:
    """The reference client's transport over a Flask test client of its own (no coordinator cookie)."""

    def __init__(self, test_client):
        self.test_client = test_client
        self.offline = False

    def __call__(self, method, path, *, json=None, body=None, headers=None):
        if self.offline:
            raise TransportError("no signal")
        kwargs = {"headers": headers or {}}
        if json is not None:
            kwargs["json"] = json
        if body is not None:
            kwargs["data"], kwargs["content_type"] = body, "application/octet-stream"
        answer = self.test_client.open(path, method=method, **kwargs)
        return Response(answer.status_code, dict(answer.headers), answer.get_json(silent=True))


def test_the_reference_clients_own_export_imports_once(app, client, tmp_path, make_area, make_site, publish_forms):
    """Not a hand-made file: what `Client.export_unsent()` writes is what the import reads."""
    versions = publish_forms()
    area = make_area("millbrook", "Millbrook")
    site = make_site(area, name="Hope Street")
    operations.create_person("Cora", email="cora@example.org", password=PASSWORD, roles=[("coordinator", area)])
    code = operations.issue_invite(area, "street_rep", display_name="Rep Python")
    db.session.commit()
    transport = _TestClientTransport(app.test_client())
    device = Client(str(tmp_path / "phone.sqlite"), transport)
    try:
        device.enrol(code, "Reference phone")
        form_version = versions["street"].version
        # One visit the server refuses (a grade that does not exist), heard before the signal went.
        device.queue_submission(visit(site, form_version=form_version, answers=street_answers(noise={"grade": "E"})))
        assert device.sync_once().attention == 1
        transport.offline = True
        photo = device.add_blob(PHOTO)
        device.queue_submission(visit(site, form_version=form_version,
                                      answers=street_answers(litter={"grade": "D", "photos": [photo]})))
        device.queue_submission(visit(site, form_version=form_version))
        assert device.sync_once().status == "offline"
        exported = json.dumps(device.export_unsent()).encode()
    finally:
        device.close()

    csrf = sign_in(client, "cora@example.org")
    first = upload(client, csrf, exported)
    page = first.get_data(as_text=True)
    assert first.status_code == 200, page[:500]
    assert "New visits stored: 2" in page and "Photos stored: 1" in page
    assert "Refused earlier, not sent again: 1" in page and "Hope Street" in page
    assert db.session.query(Submission).count() == 2
    assert store().get(PHOTO_SHA) == PHOTO

    again = upload(client, csrf, exported).get_data(as_text=True)
    assert "New visits stored: 0" in again and "Already here (not counted twice): 2" in again
    assert db.session.query(Submission).count() == 2


def test_a_signed_out_phones_file_brings_in_only_what_it_made_before_the_sign_out(client, phone):
    """The revoke confirmation tells the volunteer to export and the coordinator to import: the
    visits made before the sign-out go in; what the phone says it made later (and its photos) do not."""
    from datetime import datetime, timedelta, timezone

    from server.models import Device, Site

    device = db.session.get(Device, phone["device_id"])
    operations.revoke_device(device)
    device.revoked_at = datetime.now(timezone.utc) - timedelta(minutes=30)
    db.session.commit()
    site = db.session.execute(db.select(Site)).scalars().first()
    # The visit with the photo is dated after the sign-out; the plain one (an hour ago) before it.
    later = visit(site, observed_at=recently(minutes=-50), answers=street_answers(litter={"grade": "C", "photos": [PHOTO_SHA]}))
    phone["outbox"][0] = mutation(later, seq=1)
    csrf = sign_in(client, "cora@example.org")
    response = upload(client, csrf, phone)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "This phone was signed out" in page and "Invite again / new phone" in page
    assert "New visits stored: 1" in page and "Not accepted: 1" in page
    stored = db.session.execute(db.select(Submission)).scalars().all()
    assert [s.id for s in stored] == [phone["outbox"][1]["data"]["id"]]
    assert db.session.get(Blob, PHOTO_SHA) is None  # only the photos of visits let in are kept
    again = upload(client, csrf, phone).get_data(as_text=True)
    assert "New visits stored: 0" in again and "Already here (not counted twice): 1" in again


def test_a_live_phones_file_still_goes_in_when_another_phone_is_signed_out(client, phone, enrol):
    from server.models import Area, Device

    area = db.session.execute(db.select(Area).where(Area.slug == "millbrook")).scalar_one()
    _token, other = enrol(area, name="Rep Other")
    operations.revoke_device(db.session.get(Device, other["device_id"]))
    db.session.commit()
    csrf = sign_in(client, "cora@example.org")
    page = upload(client, csrf, phone).get_data(as_text=True)
    assert "New visits stored: 2" in page and "This phone was signed out" not in page


def test_imported_photos_lose_their_location_like_uploaded_ones(client, phone):
    from PIL import ExifTags, Image

    from tests.server.test_photos import exif_of, photo_with_gps

    camera = photo_with_gps()
    camera_sha = hashlib.sha256(camera).hexdigest()
    phone["photos"] = {camera_sha: {"type": "image/jpeg", "base64": base64.b64encode(camera).decode()}}
    phone["outbox"][0]["data"]["answers"]["litter"]["photos"] = [camera_sha]
    phone["outbox"][0] = mutation(phone["outbox"][0]["data"], seq=1)
    csrf = sign_in(client, "cora@example.org")
    page = upload(client, csrf, phone).get_data(as_text=True)
    assert "New visits stored: 2" in page
    stored = store().get(db.session.get(Blob, camera_sha).stored_as)
    assert not exif_of(stored).get_ifd(ExifTags.IFD.GPSInfo)
    assert Image.open(io.BytesIO(stored)).size == (64, 32)
