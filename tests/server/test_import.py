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
from tests.conftest import mutation, sign_in, street_answers, visit

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
        "drafts": [{"id": "draft-1", "answers": {}}],
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
    assert "too large" in response.get_data(as_text=True)
    assert db.session.query(Submission).count() == 0
