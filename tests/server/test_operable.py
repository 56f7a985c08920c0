"""Health, readiness, Prometheus metrics and JSON logs (docs/deployment.md "Health, metrics and logs")."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.exc import OperationalError

from server import blobs, create_app, logs, operations
from server.extensions import db
from server.models import Blob
from tests.conftest import mutation, sign_in, street_answers, visit
from tests.server.test_photos import photo_with_gps

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def value(name, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# -- health and readiness -----------------------------------------------------------------------


def test_healthz_answers_without_touching_the_database(app, client, monkeypatch):
    def no_database(*_args, **_kwargs):
        raise AssertionError("healthz must not touch the database")

    monkeypatch.setattr(db.session, "execute", no_database)
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_is_ok_when_the_database_and_the_blob_store_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {"database": "ok", "blob_store": "ok"}}


def test_readyz_names_the_database_when_it_does_not_answer_and_tells_no_secret(app, client, monkeypatch):
    def broken(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, Exception('connection to "db.internal" failed: password=hunter2'))

    monkeypatch.setattr(db.session, "execute", broken)
    response = client.get("/readyz")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    body = response.get_json()
    assert body["code"] == "not_ready" and set(body["errors"]) == {"database"}
    assert "hunter2" not in response.get_data(as_text=True) and "db.internal" not in response.get_data(as_text=True)


def test_readyz_names_the_blob_store_when_it_does_not_answer(app, client, monkeypatch):
    class Unreachable:
        def exists(self, _sha256):
            raise OSError("/srv/secret-mount is gone")

    monkeypatch.setattr(blobs, "store", lambda: Unreachable())
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert set(body["errors"]) == {"blob_store"} and "secret-mount" not in response.get_data(as_text=True)


def test_readyz_uses_the_store_s_ping_when_it_has_one(app, client, monkeypatch):
    pinged = []

    class Pinging:
        def ping(self):
            pinged.append(True)

        def exists(self, _sha256):
            raise AssertionError("ping is the cheaper check")

    monkeypatch.setattr(blobs, "store", lambda: Pinging())
    assert client.get("/readyz").status_code == 200 and pinged == [True]


# -- metrics --------------------------------------------------------------------------------------


def test_metrics_are_off_unless_switched_on(client):
    assert client.get("/metrics").status_code == 404


def test_metrics_with_a_token_are_only_for_its_bearer(app, client):
    app.config.update(METRICS=True, METRICS_TOKEN="s3cret-metrics-token")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-metrics-token"},
                    {"Authorization": "Bearer s3cret-metrics-token-and-more"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
        assert "s3cret" not in response.get_data(as_text=True)
    response = client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token"})
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert response.headers["Cache-Control"] == "no-store"
    assert "kerbside_sync_requests_total" in response.get_data(as_text=True)


def test_sync_round_trips_items_latencies_unsent_age_and_blob_bytes_are_counted(
        app, client, make_area, make_site, publish_forms, enrol):
    app.config["METRICS"] = True
    publish_forms()
    area = make_area("millbrook", "Millbrook")
    site = make_site(area)
    token, _ = enrol(area)
    before = {
        "ok": value("kerbside_sync_requests_total", status="200"),
        "refused": value("kerbside_sync_requests_total", status="401"),
        "applied": value("kerbside_sync_items_total", status="applied", type="submission.create"),
        "rejected": value("kerbside_sync_items_total", status="rejected", type="other"),
        "push": value("kerbside_sync_push_seconds_count"),
        "pull": value("kerbside_sync_pull_seconds_count"),
        "unsent": value("kerbside_device_oldest_unsent_age_seconds_count"),
        "unsent_day": value("kerbside_device_oldest_unsent_age_seconds_bucket", le="86400.0"),
        "blob_bytes": value("kerbside_blob_bytes_stored_total"),
        "blobs": value("kerbside_blobs_stored_total"),
    }
    headers = {"Authorization": f"Bearer {token}"}
    good = mutation(visit(site, answers=street_answers("B")))
    odd = {"mid": "m-odd", "seq": 2, "type": "no.such.type", "payload_hash": "x", "data": {}}
    answer = client.post("/api/sync/v1", headers=headers, json={
        "protocol": 1, "cursor": None, "limit": 500, "mutations": [good, odd], "oldest_unsent_age_s": 7200})
    assert [r["status"] for r in answer.get_json()["results"]] == ["applied", "rejected"]
    # Hints that are not a plausible age are ignored, and never refuse the sync.
    for hint in (-5, "soon", True, 1e300, None):
        assert client.post("/api/sync/v1", headers=headers, json={
            "protocol": 1, "cursor": None, "mutations": [], "oldest_unsent_age_s": hint}).status_code == 200
    assert client.post("/api/sync/v1", json={"protocol": 1}).status_code == 401
    photo = photo_with_gps()
    sha = hashlib.sha256(photo).hexdigest()
    assert client.put(f"/api/sync/v1/blobs/{sha}", data=photo, headers=headers).status_code == 201
    assert client.put(f"/api/sync/v1/blobs/{sha}", data=photo, headers=headers).status_code == 200  # not again
    stored = db.session.get(Blob, sha).size

    assert value("kerbside_sync_requests_total", status="200") - before["ok"] == 6
    assert value("kerbside_sync_requests_total", status="401") - before["refused"] == 1
    assert value("kerbside_sync_items_total", status="applied", type="submission.create") - before["applied"] == 1
    assert value("kerbside_sync_items_total", status="rejected", type="other") - before["rejected"] == 1
    assert value("kerbside_sync_push_seconds_count") - before["push"] == 6
    assert value("kerbside_sync_pull_seconds_count") - before["pull"] == 6
    assert value("kerbside_device_oldest_unsent_age_seconds_count") - before["unsent"] == 1
    assert value("kerbside_device_oldest_unsent_age_seconds_bucket", le="86400.0") - before["unsent_day"] == 1
    assert value("kerbside_blobs_stored_total") - before["blobs"] == 1
    assert value("kerbside_blob_bytes_stored_total") - before["blob_bytes"] == stored > 0
    page = client.get("/metrics").get_data(as_text=True)
    assert 'kerbside_sync_items_total{status="applied",type="submission.create"}' in page
    assert token not in page and sha not in page


def test_multiprocess_mode_adds_up_every_worker_s_counts(tmp_path):
    """Two processes (as two gunicorn workers) count; /metrics in a third sees the sum."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder), "PYTHONPATH": ROOT}
    count = "from server import metrics; metrics.sync_answered(200); metrics.blob_stored(1000)"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, check=True, cwd=ROOT, timeout=120)
    show = textwrap.dedent("""
        from server import metrics
        body, kind = metrics.exposition()
        print(body.decode())
    """)
    out = subprocess.run([sys.executable, "-c", show], env=env, check=True, cwd=ROOT, timeout=120,
                         capture_output=True, text=True).stdout
    assert 'kerbside_sync_requests_total{status="200"} 2.0' in out
    assert "kerbside_blob_bytes_stored_total 2000.0" in out


# -- logs -----------------------------------------------------------------------------------------


@pytest.fixture
def json_app(tmp_path):
    root = logging.getLogger()
    level = root.level
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'k.sqlite'}",
                      "SECRET_KEY": "test-secret", "BLOB_DIR": str(tmp_path / "blobs"), "LOG_FORMAT": "json"})
    with app.app_context():
        db.create_all()
        operations.init_state()
        db.session.commit()
        yield app
        db.session.remove()
        db.engine.dispose()
    root.removeHandler(logs._installed.pop("json"))
    root.setLevel(level)
    logging.getLogger(logs.REQUEST_LOGGER).setLevel(logging.NOTSET)


def _lines(captured: str) -> list[dict]:
    return [json.loads(line) for line in captured.splitlines() if line.strip()]


def test_json_logs_are_one_object_a_line_with_the_request_id_echoed(json_app, capsys):
    client = json_app.test_client()
    capsys.readouterr()
    response = client.get("/healthz?token=kbd_in_a_link", headers={"X-Request-Id": "lb-1234-abcd"})
    assert response.headers["X-Request-Id"] == "lb-1234-abcd"
    (line,) = [line for line in _lines(capsys.readouterr().err) if line["logger"] == "kerbside.request"]
    assert {"time", "level", "logger", "message", "request_id", "method", "path"} <= set(line)
    assert line["request_id"] == "lb-1234-abcd" and line["method"] == "GET" and line["path"] == "/healthz"
    assert line["status"] == 200 and line["level"] == "INFO"
    assert "kbd_in_a_link" not in json.dumps(line)


@pytest.mark.parametrize("sent", ["has space", "x" * 129, "tab\there", "nul\x00", "é"])
def test_an_unsafe_request_id_is_replaced_by_a_new_one(json_app, capsys, sent):
    client = json_app.test_client()
    capsys.readouterr()
    response = client.get("/healthz", headers={"X-Request-Id": sent})
    echoed = response.headers["X-Request-Id"]
    assert echoed != sent and len(echoed) == 32
    (line,) = [line for line in _lines(capsys.readouterr().err) if line["logger"] == "kerbside.request"]
    assert line["request_id"] == echoed


def test_no_token_password_or_cookie_ever_reaches_the_log(json_app, capsys):
    from server.models import Area

    client = json_app.test_client()
    area = operations.create_area("millbrook", "Millbrook")
    db.session.commit()
    password = "correct horse battery"
    operations.create_person("Cora", email="cora@example.org", password=password, roles=[("coordinator", area)])
    code = operations.issue_invite(db.session.get(Area, area.id), "street_rep", display_name="Rita")
    db.session.commit()
    capsys.readouterr()
    enrolled = client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": code, "device_name": "Phone"})
    token = enrolled.get_json()["token"]
    client.post("/api/sync/v1", json={"protocol": 1, "mutations": []}, headers={"Authorization": f"Bearer {token}"})
    client.post("/api/sync/v1", json={"protocol": 1}, headers={"Authorization": f"Bearer {token}x"})  # refused
    client.get(f"/healthz?token={token}&password={password}")
    sign_in(client, "cora@example.org", password)
    client.post("/login", data={"email": "cora@example.org", "password": password + "!", "csrf_token": "wrong"})
    client.get("/coordinator/")
    cookie = client.get_cookie("session")
    logging.getLogger("server").warning("A line a module writes itself")
    captured = capsys.readouterr().err
    lines = _lines(captured)
    assert len([line for line in lines if line["logger"] == "kerbside.request"]) >= 7
    assert any(line["message"] == "A line a module writes itself" for line in lines)
    for secret in (token, password, code, cookie.value if cookie else "no-cookie-set"):
        assert secret not in captured
    assert "Bearer" not in captured and "Authorization" not in captured
