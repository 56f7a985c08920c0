"""The reference client over real HTTP: the urllib transport, against a stub and the real app."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from server import operations
from server.extensions import db
from server.models import Blob, Submission
from sync.client import Client
from sync.transport import TransportError, UrllibTransport
from bench.faults import png
from tests.conftest import visit


class Stub(BaseHTTPRequestHandler):
    """Answers from a script: path -> (status, headers, body, delay)."""

    script: dict = {}
    seen: list = []

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        Stub.seen.append((self.path, self.headers.get("Authorization"), json.loads(self.rfile.read(length) or b"null")))
        status, headers, body, delay = self.script[self.path]
        if delay:
            threading.Event().wait(delay)
        raw = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass  # keep test output quiet

    def handle(self):
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting, which is what the timeout test wants


@pytest.fixture
def stub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    Stub.script, Stub.seen = {}, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Stub
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_http_error_is_a_response_with_its_json_and_retry_after(stub):
    url, handler = stub
    handler.script["/busy"] = (503, {"Retry-After": "17"}, {"code": "unavailable"}, 0)
    response = UrllibTransport(url)("POST", "/busy", json={"protocol": 1, "note": "é"})
    assert response.status == 503 and response.json == {"code": "unavailable"}
    assert response.retry_after() == 17.0 and response.header("retry-after") == "17"
    assert handler.seen == [("/busy", None, {"protocol": 1, "note": "é"})]


def test_non_json_error_body_gives_no_json(stub):
    url, handler = stub
    handler.script["/html"] = (502, {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, None, 0)
    response = UrllibTransport(url)("POST", "/html", json={})
    assert response.status == 502 and response.json is None and response.retry_after() is None


def test_timeout_raises_transport_error(stub):
    url, handler = stub
    handler.script["/slow"] = (200, {}, {}, 2)
    with pytest.raises(TransportError):
        UrllibTransport(url, timeout=0.3)("POST", "/slow", json={})


def test_refused_connection_raises_transport_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the probe closes
    with pytest.raises(TransportError):
        UrllibTransport(f"http://127.0.0.1:{port}", timeout=2)("POST", "/api/sync/v1", json={})


def test_a_timed_out_request_keeps_its_item_backs_off_and_blames_no_one(tmp_path, stub):
    url, handler = stub
    handler.script["/api/sync/v1/enrol"] = (201, {}, {"device_id": "d1", "token": "kbd_secret", "areas": [],
                                                      "person": {"id": "p1"}, "server_epoch": "ep_1"}, 0)
    handler.script["/api/sync/v1"] = (200, {}, {}, 2)
    phone = Client(str(tmp_path / "phone.sqlite"), UrllibTransport(url, timeout=0.3))
    phone.enrol("ABCD-EFGH-JKLM", "phone")
    mid = phone.queue("site.update", {"id": "s1", "base_version": 1, "patch": {"notes": "x"}})
    report = phone.sync_once()
    assert report.status == "offline"
    (item,) = phone.outbox()
    assert item["mid"] == mid and item["attempts"] == 1 and item["last_error"] == "timeout"
    # A slow link splits the next batch but is no evidence against the item itself.
    assert item["failures"] == 1 and item["alone_failures"] == 0
    assert handler.seen[-1][1] == "Bearer kbd_secret"
    phone.close()


def test_client_syncs_with_the_real_server_over_http(app, tmp_path, make_area, make_site, publish_forms):
    area = make_area()
    site = make_site(area)
    street = publish_forms()["street"].version
    code = operations.issue_invite(area, "street_rep")
    data, site_id = visit(site, form_version=street), site.id
    photo = png(3, 2, (200, 40, 90))
    db.session.commit()  # on SQLite an open transaction here would hold the write lock the server needs
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        phone = Client(str(tmp_path / "phone.sqlite"), f"http://127.0.0.1:{http.server_port}")
        phone.enrol(code, "phone")
        # A photo goes up as the body of a PUT, as urllib sends it: that body must reach the server whole.
        data["answers"]["litter"] = {"grade": "C", "photos": [phone.add_blob(photo)]}
        phone.queue_submission(data)
        report = phone.sync_once()
        assert report.status == "ok" and report.applied == 1 and report.photos_uploaded == 1
        assert phone.outbox() == [] and phone.attention() == []
        assert site_id in phone.replica("sites")
        phone.close()
    finally:
        http.shutdown()
        thread.join(5)
    assert db.session.execute(select(func.count()).select_from(Submission)).scalar_one() == 1
    assert db.session.get(Blob, hashlib.sha256(photo).hexdigest()) is not None


def test_client_corrects_a_flagged_visit_over_http(app, tmp_path, make_area, make_site, publish_forms):
    area = make_area()
    site = make_site(area)
    street = publish_forms()["street"].version
    code = operations.issue_invite(area, "street_rep")
    coordinator = operations.create_person("Coordinator", roles=[("coordinator", area)])
    data = visit(site, form_version=street)
    data["answers"]["litter"] = {"grade": "D"}
    db.session.commit()
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        phone = Client(str(tmp_path / "phone.sqlite"), f"http://127.0.0.1:{http.server_port}")
        phone.enrol(code, "phone")
        phone.queue_submission(data)
        assert phone.sync_once().applied == 1
        operations.review_submission(db.session.get(Submission, data["id"]), "flagged", coordinator, "Wrong street")
        db.session.commit()
        phone.sync_once(force=True)
        (flagged,) = phone.needs_correcting()
        assert (flagged["id"], flagged["review_reason"], flagged["answers"]["litter"]) == (data["id"], "Wrong street",
                                                                                           {"grade": "D"})
        fixed = {key: data[key] for key in ("form", "site_id", "observed_at")}
        fixed["answers"] = {**flagged["answers"], "litter": {"grade": "B"}}
        phone.queue_correction(flagged["id"], fixed)
        report = phone.sync_once(force=True)
        assert report.applied == 1 and phone.attention() == []
        assert phone.needs_correcting() == []
        assert phone.replica("my_submissions")[data["id"]]["superseded_by"] is not None
        phone.close()
    finally:
        http.shutdown()
        thread.join(5)
    db.session.expire_all()
    original = db.session.get(Submission, data["id"])
    correction = db.session.get(Submission, original.superseded_by_id)
    assert (correction.supersedes_id, correction.review_status) == (original.id, "pending")
