"""Two hosts behind a load balancer: two gunicorn servers (`kerbside serve`), each with its own
instance folder, sharing one PostgreSQL, one S3-compatible store and one Redis.

A phone (the reference client, sync/client.py) sends every request to the next host in turn,
as a load balancer without sticky sessions would: it enrols on one, uploads a photo to one and
pushes the visit showing it on the other, loses an answer and sends again on the other host,
and its pushes are sent again to both. Each visit is stored once; the photo is one object in
the bucket, which a coordinator signed in on the other host sees; the device's sync rate is
counted over both hosts together.

PostgreSQL only (TEST_DATABASE_URL; .ci/run sets it): SQLite cannot be shared by two hosts.
The store is moto's standalone server on loopback (bench/hosts.py), never an in-process mock.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass

import pytest
import requests

from bench.hosts import GunicornServer, MotoS3
from server import operations
from server.extensions import db
from server.models import Answer, Blob, MutationLog, Submission
from sync.client import SYNC_PATH, Client
from sync.transport import TransportError, UrllibTransport
from tests.conftest import TEST_DATABASE_URL, is_postgres, street_answers, visit
from tests.server.test_photos import photo_with_gps

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not is_postgres(), reason="needs PostgreSQL (TEST_DATABASE_URL); CI runs it")]

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/2")
BUCKET = "kerbside-two-hosts"
SECRET = "two-hosts-test-secret"
PASSWORD = "correct horse battery"
# The device's sync requests a minute, over both hosts (KERBSIDE_SYNC_RATE_PER_MINUTE): more
# than the scenario needs before its last part spends the rest.
LIMIT = 24


@dataclass
class Hosts:
    urls: list[str]
    instances: list[str]
    store: MotoS3
    prefix: str


@pytest.fixture
def redis_prefix():
    """A Redis key prefix of this test's own (other runs share the Redis); skip if Redis is down."""
    import redis
    from limits.storage import RedisStorage

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        pytest.skip(f"needs Redis at {REDIS_URL}")
    prefix = f"kerbside-two-hosts-{uuid.uuid4().hex}"
    yield prefix
    RedisStorage(REDIS_URL, key_prefix=prefix).reset()


@pytest.fixture
def two_hosts(app, redis_prefix):
    """Two `kerbside serve` hosts on the test database, moto's S3 and Redis; all stopped and removed after."""
    folder = tempfile.mkdtemp(prefix="kerbside-two-hosts-")
    servers: list[GunicornServer] = []
    logs = []
    store = MotoS3(buckets=(BUCKET,), log_path=os.path.join(folder, "moto.log"))
    prefix = f"run-{uuid.uuid4().hex}"
    try:
        store.start()
        settings = {
            **store.environment(),
            "SECRET_KEY": SECRET,  # the same on every host: web sessions signed on one are read on the other
            "KERBSIDE_BLOB_URL": f"s3://{BUCKET}/{prefix}",
            "KERBSIDE_BLOB_ENDPOINT_URL": store.endpoint,
            "KERBSIDE_REDIS_URL": REDIS_URL,
            "KERBSIDE_REDIS_PREFIX": redis_prefix,
            "KERBSIDE_SYNC_RATE_PER_MINUTE": str(LIMIT),
        }
        for name in ("a", "b"):
            instance = os.path.join(folder, f"host-{name}")
            os.makedirs(instance)
            log = open(os.path.join(folder, f"host-{name}.log"), "wb")  # noqa: SIM115 - closed below
            logs.append(log)
            servers.append(GunicornServer(TEST_DATABASE_URL, instance, workers=2, settings=settings, serve=True,
                                          ready_path="/readyz").launch(stdout=log))
        for server in servers:  # both build their field app at once, each into its own instance folder
            server.wait(timeout=60)
        yield Hosts([s.base_url for s in servers], [s.instance for s in servers], store, prefix)
    finally:
        for server in servers:
            server.stop()
        store.stop()
        for log in logs:
            log.close()
        for log in logs:  # shown by pytest only when the test failed
            with open(log.name, "rb") as handle:
                print(f"--- {os.path.basename(log.name)} (last lines) ---")
                print(b"\n".join(handle.read().splitlines()[-30:]).decode(errors="replace"))
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Sent:
    host: int
    method: str
    path: str
    status: int
    at: float  # time.monotonic() when it was answered


class LoadBalancer:
    """A transport for the reference client that sends each request to the next host in turn.

    Every request is noted (host, method, path, status). `lose_next_sync_answer` drops the
    answer of the next sync POST after the host has answered it, as a connection cut between
    the load balancer and the phone would: the host applied the push, the phone never heard.
    """

    def __init__(self, urls: list[str]):
        self.hosts = [UrllibTransport(url) for url in urls]
        self.turn = 0
        self.log: list[Sent] = []
        self.lose_next_sync_answer = False

    def __call__(self, method, path, **kwargs):
        host = self.turn % len(self.hosts)
        self.turn += 1
        response = self.hosts[host](method, path, **kwargs)
        self.log.append(Sent(host, method, path, response.status, time.monotonic()))
        if self.lose_next_sync_answer and method == "POST" and path == SYNC_PATH:
            self.lose_next_sync_answer = False
            raise TransportError("the connection was cut after the host answered")
        return response

    def counted(self) -> list[Sent]:
        """The requests the device's sync rate counts (everything but enrolment)."""
        return [sent for sent in self.log if not sent.path.endswith("/enrol")]


def _kind(sent: Sent) -> tuple[str, str, int]:
    kind = "enrol" if sent.path.endswith("/enrol") else "blob" if "/blobs/" in sent.path else "sync"
    return sent.method, kind, sent.host


def _sign_in(url: str) -> requests.Session:
    browser = requests.Session()
    page = browser.get(url + "/login", timeout=30).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = browser.post(url + "/login", data={"email": "cora@example.org", "password": PASSWORD, "csrf_token": token},
                          allow_redirects=False, timeout=30)
    assert answer.status_code == 302, answer.text
    return browser


def _count(model) -> int:
    db.session.rollback()  # see what the hosts committed
    return db.session.query(model).count()


def test_a_phone_moving_between_two_hosts_keeps_exactly_once_its_photo_and_its_rate(
        app, two_hosts, make_area, make_site, publish_forms, tmp_path):
    area = make_area("millbrook", "Millbrook")
    site = make_site(area)
    publish_forms()
    code = operations.issue_invite(area, "street_rep", display_name="Robin")
    operations.create_person("Cora", email="cora@example.org", password=PASSWORD, roles=[("coordinator", area)])
    db.session.commit()
    lines = len(street_answers())
    A, B = 0, 1  # noqa: N806 - the hosts, as the log names them

    balancer = LoadBalancer(two_hosts.urls)
    phone = Client(str(tmp_path / "phone.sqlite"), balancer)
    try:
        # Enrol on A; the photo's HEAD (404) goes to B, its PUT to A, and the push showing it to B:
        # B finds the photo in the shared bucket, not on its own disk.
        phone.enrol(code, "Robin's phone")
        photo = photo_with_gps()
        sha256 = phone.add_blob(photo)
        first = [visit(site, answers=street_answers(litter={"grade": "C", "photos": [sha256]})), visit(site),
                 visit(site, answers=street_answers("D"))]
        for data in first:
            phone.queue_submission(data)
        report = phone.sync_once()
        assert report.status == "ok", report
        assert [_kind(s) for s in balancer.log[:4]] == [("POST", "enrol", A), ("HEAD", "blob", B),
                                                       ("PUT", "blob", A), ("POST", "sync", B)]
        assert [s.status for s in balancer.log[:4]] == [201, 404, 201, 200]
        assert phone.outbox() == [] and [item["result"]["status"] for item in phone.sent()] == ["applied"] * 3

        # The photo is one object in the bucket, and on neither host's disk.
        db.session.rollback()  # see what the hosts committed
        stored = db.session.get(Blob, sha256)
        assert stored is not None
        assert two_hosts.store.keys(BUCKET, two_hosts.prefix + "/") == [f"{two_hosts.prefix}/{stored.stored_as}"]
        for instance in two_hosts.instances:
            assert not os.path.exists(os.path.join(instance, "blobs"))

        # A coordinator signs in on B (where the photo was not uploaded) and sees it there; the same
        # session, signed with the shared secret and kept in the database, sees it on A too.
        browser = _sign_in(two_hosts.urls[B])
        for url in (two_hosts.urls[B], two_hosts.urls[A]):
            seen = browser.get(f"{url}/coordinator/{area.slug}/photos/{sha256}", timeout=30)
            assert seen.status_code == 200 and seen.headers["Content-Type"] == "image/jpeg"
            assert hashlib.sha256(seen.content).hexdigest() == stored.stored_as  # as stored: location taken out

        # An answer lost on the way back: the host applied the push, the phone keeps the visits and
        # sends them again, to the other host, which answers duplicate.
        second = [visit(site), visit(site, answers=street_answers("A"))]
        for data in second:
            phone.queue_submission(data)
        balancer.lose_next_sync_answer = True
        before = len(balancer.log)
        assert phone.sync_once().status == "offline"
        lost = balancer.log[before]
        assert (lost.method, lost.path, lost.status) == ("POST", SYNC_PATH, 200)
        assert len(phone.outbox()) == 2
        assert phone.sync_once(force=True).status == "ok"
        again = [s for s in balancer.log[before + 1:] if s.method == "POST" and s.path == SYNC_PATH]
        assert again and again[0].host != lost.host
        assert phone.outbox() == [] and phone.attention() == []
        results = {item["data"]["id"]: item["result"]["status"] for item in phone.sent()}
        assert results == {**{d["id"]: "applied" for d in first}, **{d["id"]: "duplicate" for d in second}}

        # Every mutation sent again to each host, as a phone does when it sees a new server epoch
        # (a restore): all duplicates.
        mutations = [{key: item[key] for key in ("mid", "seq", "type", "payload_hash", "data")} for item in phone.sent()]
        auth = phone._auth()  # the phone's own bearer token, for the plain requests below
        body = {"protocol": 1, "cursor": None, "limit": 1, "mutations": mutations}
        hosts_sent_to = set()
        for _ in range(2):
            answer = balancer("POST", SYNC_PATH, json=body, headers=auth)
            hosts_sent_to.add(balancer.log[-1].host)
            assert answer.status == 200, answer.json
            assert [r["status"] for r in answer.json["results"]] == ["duplicate"] * 5
        assert hosts_sent_to == {A, B}

        # Exactly once, counted in the shared database.
        assert _count(Submission) == 5
        assert _count(Answer) == 5 * lines
        assert _count(MutationLog) == 5
        assert _count(Blob) == 1
        # The phone's own replica, pulled page by page from either host with one cursor, has each visit once.
        assert phone.sync_once().status == "ok"
        assert set(phone.replica("my_submissions")) == {d["id"] for d in first + second}

        # The device's rate counts its requests to A and B together: it made `used` so far; up to
        # LIMIT pass, then the next is refused on whichever host it reaches, and on the other too.
        assert all(s.status < 500 for s in balancer.log), balancer.log
        used = len(balancer.counted())
        assert used < LIMIT, f"the scenario used {used} requests; raise LIMIT"
        assert {s.host for s in balancer.counted()} == {A, B}
        # The window runs a minute from the device's first counted request: still inside it, so what
        # refuses below is the count, not a window's edge.
        assert time.monotonic() - balancer.counted()[0].at < 50
        pull = {"protocol": 1, "cursor": phone.cursor, "limit": 10, "mutations": []}
        statuses = [balancer("POST", SYNC_PATH, json=pull, headers=auth).status for _ in range(LIMIT - used)]
        assert statuses == [200] * (LIMIT - used)
        refused = [balancer("POST", SYNC_PATH, json=pull, headers=auth) for _ in range(2)]
        assert [r.status for r in refused] == [429, 429]
        assert {s.host for s in balancer.log[-2:]} == {A, B}
        for answer in refused:
            assert answer.json["code"] == "too_many_requests" and int(answer.header("Retry-After")) >= 1
    finally:
        phone.close()
