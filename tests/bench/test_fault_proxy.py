"""The fault proxy (bench/fault_proxy.py) over real sockets: each fault does what it says."""

from __future__ import annotations

import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from bench.fault_proxy import FaultProxy, FaultRates
from server import operations
from server.extensions import db
from server.models import Submission
from sync.client import Client
from sync.transport import TransportError, UrllibTransport
from tests.conftest import visit


class Upstream(BaseHTTPRequestHandler):
    """A server that answers every request with what it received, and counts them."""

    protocol_version = "HTTP/1.1"
    seen: list = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        Upstream.seen.append((self.command, self.path, body))
        raw = json.dumps({"method": self.command, "path": self.path, "body": body.decode()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)

    do_GET = do_POST = do_PUT = do_HEAD = _answer

    def log_message(self, *args):
        pass  # keep test output quiet


@pytest.fixture
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    Upstream.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def proxy_for(upstream):
    proxies = []

    def make(rates=None, **kwargs):
        proxy = FaultProxy(upstream, rates, seed=1, **kwargs)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


def post(proxy, path="/api/sync/v1", body=b'{"protocol": 1}'):
    return UrllibTransport(proxy.url, timeout=5)("POST", path, body=body, headers={"Content-Type": "application/json"})


def test_requests_pass_unchanged_and_the_connection_stays_open(proxy_for):
    proxy = proxy_for()
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    connection.request("POST", "/api/sync/v1", body=b'{"a": "\xc3\xa9"}', headers={"Content-Type": "application/json"})
    first = connection.getresponse()
    assert first.status == 200 and json.loads(first.read())["body"] == '{"a": "é"}'
    connection.request("HEAD", "/api/sync/v1/blobs/abc")
    second = connection.getresponse()
    assert second.status == 200 and second.read() == b""
    connection.request("GET", "/app/")
    assert json.loads(connection.getresponse().read())["path"] == "/app/"
    connection.close()
    assert [method for method, _p, _b in Upstream.seen] == ["POST", "HEAD", "GET"]
    assert proxy.counts()["forwarded"] == 3


def test_drop_resets_the_connection_before_the_server_sees_anything(proxy_for):
    proxy = proxy_for(FaultRates(drop=1.0))
    with pytest.raises(TransportError) as caught:
        post(proxy)
    assert not caught.value.timed_out
    assert Upstream.seen == [] and proxy.counts()["drop"] == 1


def test_cut_resets_the_connection_after_the_server_answered(proxy_for):
    proxy = proxy_for(FaultRates(cut=1.0))
    with pytest.raises(TransportError):
        post(proxy)
    assert len(Upstream.seen) == 1 and proxy.counts()["cut"] == 1


def test_busy_is_a_503_with_retry_after_from_the_proxy_itself(proxy_for):
    proxy = proxy_for(FaultRates(busy=1.0), retry_after_s=7)
    response = post(proxy)
    assert response.status == 503 and response.retry_after() == 7.0 and response.json["code"] == "unavailable"
    assert Upstream.seen == []


def test_delay_waits_then_forwards(proxy_for):
    proxy = proxy_for(FaultRates(delay=1.0), delay_s=(0.3, 0.3))
    started = time.monotonic()
    assert post(proxy).status == 200
    assert time.monotonic() - started >= 0.3 and proxy.counts()["delay"] == 1 and len(Upstream.seen) == 1


def test_poison_marker_gets_500_every_time_even_with_faults_paused(proxy_for):
    proxy = proxy_for(FaultRates(), poison_marker=b"poison-here")
    proxy.pause()
    assert post(proxy, body=b'{"notes": "poison-here"}').status == 500
    assert post(proxy, body=b'{"notes": "poison-here"}').status == 500
    assert post(proxy, body=b'{"notes": "fine"}').status == 200
    assert proxy.counts()["poison"] == 2 and len(Upstream.seen) == 1


def test_pause_stops_random_faults_and_resume_brings_them_back(proxy_for):
    proxy = proxy_for(FaultRates(drop=1.0))
    proxy.pause()
    assert post(proxy).status == 200
    proxy.resume()
    with pytest.raises(TransportError):
        post(proxy)


def test_paths_outside_the_fault_paths_are_never_faulted(proxy_for):
    proxy = proxy_for(FaultRates(drop=1.0))
    assert post(proxy, path="/app/sw.js").status == 200
    assert proxy.counts()["drop"] == 0


def test_server_down_resets_the_device_connection(upstream):
    with FaultProxy(("127.0.0.1", 1), FaultRates()) as proxy:  # nothing listens on port 1
        with pytest.raises(TransportError):
            post(proxy)
        assert proxy.counts()["down"] == 1


def test_reference_client_through_a_cut_answer_sends_its_visit_exactly_once(app, tmp_path, make_area, make_site,
                                                                             publish_forms):
    area = make_area()
    site = make_site(area)
    data = visit(site, form_version=publish_forms()["street"].version)
    code = operations.issue_invite(area, "street_rep")
    db.session.commit()  # on SQLite an open transaction here would hold the write lock the server needs
    http_server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http_server.serve_forever, daemon=True)
    thread.start()
    try:
        with FaultProxy(("127.0.0.1", http_server.server_port)) as proxy:
            phone = Client(str(tmp_path / "phone.sqlite"), proxy.url)
            phone.enrol(code, "phone")
            phone.queue_submission(data)
            proxy.set_rates(FaultRates(cut=1.0))
            assert phone.sync_once().status == "offline" and len(phone.outbox()) == 1
            proxy.set_rates(FaultRates())
            report = phone.sync_once(force=True)
            assert report.status == "ok" and report.duplicate == 1 and phone.outbox() == []
            assert proxy.counts()["cut"] == 1
            phone.close()
    finally:
        http_server.shutdown()
        thread.join(5)
    assert db.session.execute(select(func.count()).select_from(Submission)).scalar_one() == 1
