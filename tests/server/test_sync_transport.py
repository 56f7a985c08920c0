"""Enrolment, tokens, blobs and the transport rules of the sync API."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from server import operations
from server.extensions import db
from server.models import Device, Invite, utcnow
from tests.conftest import mutation, visit

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_enrol_turns_an_invite_into_a_device_token_stored_only_as_a_hash(client, make_area):
    area = make_area()
    code = operations.issue_invite(area, "street_rep", display_name="Ann")
    db.session.commit()
    response = client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": code.lower(), "device_name": "Ann's phone"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["person"]["display_name"] == "Ann"
    assert body["person"]["roles"] == [{"role": "street_rep", "area_id": area.id}]
    assert [a["id"] for a in body["areas"]] == [area.id]
    assert body["protocol"] == 1 and body["server_epoch"].startswith("ep_")
    device = db.session.get(Device, body["device_id"])
    assert device.token_hash != body["token"] and body["token"] not in device.token_hash
    assert hashlib.sha256(body["token"].encode()).hexdigest() == device.token_hash
    # The invite code itself is not stored either.
    assert db.session.execute(select(Invite.code_hash)).scalar_one() != code


def test_wrong_used_and_expired_codes_are_refused_clearly(client, make_area):
    area = make_area()
    wrong = client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": "AAAA-BBBB-CCCC"})
    assert wrong.status_code == 400 and wrong.get_json()["code"] == "invite_invalid"
    code = operations.issue_invite(area, "street_rep")
    db.session.commit()
    assert client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": code}).status_code == 201
    used = client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": code})
    assert used.status_code == 400 and used.get_json()["code"] == "invite_used"
    old = operations.issue_invite(area, "street_rep")
    db.session.execute(Invite.__table__.update().where(Invite.used_at.is_(None)).values(expires_at=utcnow() - timedelta(days=1)))
    db.session.commit()
    expired = client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": old})
    assert expired.status_code == 400 and expired.get_json()["code"] == "invite_expired"
    assert "coordinator" in expired.get_json()["message"]


def test_enrol_without_a_code_names_the_field(client):
    response = client.post("/api/sync/v1/enrol", json={"protocol": 1})
    body = response.get_json()
    assert response.status_code == 422 and body["code"] == "validation_failed"
    assert "code" in body["errors"]


def test_revoked_token_gets_401_token_revoked(make_area, enrol, sync):
    area = make_area()
    token, body = enrol(area)
    assert sync(token).status_code == 200
    operations.revoke_device(db.session.get(Device, body["device_id"]))
    db.session.commit()
    response = sync(token)
    assert response.status_code == 401 and response.get_json()["code"] == "token_revoked"
    assert "join again" in response.get_json()["message"]


def test_missing_and_unknown_tokens_get_401(client, sync):
    assert client.post("/api/sync/v1", json={"protocol": 1}).get_json()["code"] == "token_missing"
    assert sync("kbd_not-a-real-token").get_json()["code"] == "token_invalid"


def test_unsupported_protocol_gets_426_with_the_supported_list(make_area, enrol, sync):
    area = make_area()
    token, _ = enrol(area)
    response = sync(token, protocol=2)
    assert response.status_code == 426
    body = response.get_json()
    assert body["code"] == "protocol_unsupported" and body["supported"] == [1]
    assert body["protocol"] == 1 and "server_epoch" in body and "server_time" in body


def test_more_than_200_mutations_gets_413(make_area, make_site, enrol, sync):
    area = make_area()
    site = make_site(area)
    token, _ = enrol(area)
    response = sync(token, [mutation(visit(site), seq=n) for n in range(201)])
    assert response.status_code == 413 and response.get_json()["code"] == "too_many_mutations"


def test_body_over_2_mb_gets_413(client, make_area, enrol):
    area = make_area()
    token, _ = enrol(area)
    huge = b'{"protocol": 1, "mutations": [], "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = client.post("/api/sync/v1", data=huge, content_type="application/json",
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 413 and response.get_json()["code"] == "too_large"


def test_rate_limit_answers_429_with_retry_after(app, make_area, enrol, sync):
    app.config["SYNC_RATE_PER_MINUTE"] = 3
    area = make_area()
    token, _ = enrol(area)
    statuses = [sync(token).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = sync(token)
    assert int(response.headers["Retry-After"]) >= 1 and response.get_json()["code"] == "too_many_requests"


def test_blob_put_checks_hash_and_type_and_head_tells_presence(client, make_area, enrol):
    area = make_area()
    token, _ = enrol(area)
    auth = {"Authorization": f"Bearer {token}"}
    sha = hashlib.sha256(PNG).hexdigest()
    assert client.head(f"/api/sync/v1/blobs/{sha}", headers=auth).status_code == 404
    wrong = client.put(f"/api/sync/v1/blobs/{'0' * 64}", data=PNG, headers=auth)
    assert wrong.status_code == 400 and wrong.get_json()["code"] == "hash_mismatch"
    text = b"not an image at all"
    not_image = client.put(f"/api/sync/v1/blobs/{hashlib.sha256(text).hexdigest()}", data=text, headers=auth)
    assert not_image.status_code == 415 and not_image.get_json()["code"] == "not_an_image"
    assert client.put(f"/api/sync/v1/blobs/{sha}", data=PNG, headers=auth).status_code == 201
    again = client.put(f"/api/sync/v1/blobs/{sha}", data=PNG, headers=auth)
    assert again.status_code == 200 and again.get_json()["content_type"] == "image/png"
    assert client.head(f"/api/sync/v1/blobs/{sha}", headers=auth).status_code == 200


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                          "application/octet-stream", "image/png"])
def test_a_photo_is_stored_whatever_content_type_labels_it(client, make_area, enrol, content_type):
    # urllib labels any PUT body a form; the page-wide check for unreadable form fields must not eat it.
    token, _ = enrol(make_area())
    sha = hashlib.sha256(PNG).hexdigest()
    answer = client.put(f"/api/sync/v1/blobs/{sha}", data=PNG, content_type=content_type,
                        headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 201, answer.get_json()


def test_api_errors_are_json_envelopes_never_html(client):
    for response in (client.get("/api/nothing-here"), client.get("/api/sync/v1"),
                     client.post("/api/sync/v1/enrol", data="{not json", content_type="application/json")):
        body = response.get_json()
        assert response.is_json and set(body) >= {"code", "message", "errors"}, response.data[:200]
        assert "<html" not in response.get_data(as_text=True).lower()


def test_openapi_document_describes_the_sync_api(client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert {"/api/sync/v1", "/api/sync/v1/enrol", "/api/sync/v1/blobs/{sha256}"} <= set(spec["paths"])
    request_schema = spec["paths"]["/api/sync/v1"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert request_schema["$ref"].endswith("/SyncRequest")
    assert "426" in spec["paths"]["/api/sync/v1"]["post"]["responses"]
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and b"/api/sync/v1/enrol" in docs.data


def test_pages_carry_a_strict_content_security_policy(client):
    policy = client.get("/").headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
