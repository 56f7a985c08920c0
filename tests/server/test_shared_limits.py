"""A device's sync rate is one rate wherever its requests land: counted in the database, or in Redis.

Two app instances on one database (or one Redis) stand for two hosts behind a load balancer;
a device alternating between them gets its limit once, not once per host. The negative
control counts in each process's memory and lets the device through twice over.
"""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest
from sqlalchemy import delete, select

from server import create_app, operations, throttle
from server.extensions import db
from server.models import ThrottleCounter
from tests.conftest import ServerErrorWatch

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/1")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
RATE = 4


def _settings(app, **overrides) -> dict:
    shared = {key: app.config[key] for key in ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "BLOB_DIR")}
    return {"TESTING": True, **shared, "SYNC_RATE_PER_MINUTE": RATE, **overrides}


def _use(app, **settings):
    """Apply settings to the fixture's app and forget the counter store it made from the old ones."""
    app.config.update(settings)
    for name in ("kerbside_throttle_storage", "kerbside_throttle", "kerbside_device_throttle"):
        app.extensions.pop(name, None)


@pytest.fixture
def second_host(app):
    """Another app instance on the same database: another host behind the same load balancer."""
    made = []

    def make(**overrides):
        other = create_app(_settings(app, **overrides))
        made.append(other)
        return other

    yield make
    for other in made:
        with other.app_context():
            db.engine.dispose()


def _enrol_and_let_go(enrol, area) -> str:
    """Enrol through the fixture's app, then end the transaction its session keeps open.

    The test's app context outlives each of its requests, so its session would otherwise
    hold SQLite's write lock and the other hosts would wait for it.
    """
    token, _ = enrol(area)
    db.session.commit()
    return token


def _sync(client, token):
    return client.post("/api/sync/v1", json={"protocol": 1, "cursor": None, "limit": 500, "mutations": []},
                       headers={"Authorization": f"Bearer {token}"})


def _alternate(clients, token, times) -> list[int]:
    return [_sync(clients[n % 2], token).status_code for n in range(times)]


def test_a_device_gets_its_rate_once_across_two_hosts_on_one_database(app, second_host, make_area, enrol):
    token = _enrol_and_let_go(enrol, make_area())
    hosts = [second_host().test_client(), second_host().test_client()]
    assert _alternate(hosts, token, RATE + 2) == [200] * RATE + [429, 429]
    refused = _sync(hosts[1], token)
    assert refused.get_json()["code"] == "too_many_requests" and int(refused.headers["Retry-After"]) >= 1


def test_a_device_gets_its_rate_once_across_two_hosts_on_one_redis(app, second_host, make_area, enrol):
    from limits.storage import RedisStorage

    prefix = f"kerbside-test-{uuid.uuid4().hex}"  # its own keys: other test runs share this Redis
    redis = {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": prefix}
    try:
        token = _enrol_and_let_go(enrol, make_area())
        db.session.execute(delete(ThrottleCounter))  # the enrolment's own counts
        db.session.commit()
        hosts = [second_host(**redis).test_client(), second_host(**redis).test_client()]
        assert _alternate(hosts, token, RATE + 2) == [200] * RATE + [429, 429]
        # Counted in Redis, under the prefix; nothing in the database's table.
        assert db.session.execute(select(ThrottleCounter)).scalars().all() == []
    finally:
        RedisStorage(REDIS_URL, key_prefix=prefix).reset()


def test_per_process_counters_let_a_device_through_once_per_host(app, second_host, make_area, enrol):
    """Negative control: counted in each instance's memory, the device gets its rate on each host."""
    token = _enrol_and_let_go(enrol, make_area())
    hosts = [second_host(THROTTLE_STORAGE="memory").test_client(), second_host(THROTTLE_STORAGE="memory").test_client()]
    assert _alternate(hosts, token, 2 * RATE) == [200] * (2 * RATE)
    assert _sync(hosts[0], token).status_code == 429  # each host did count its own half


def _closed_redis() -> str:
    """A Redis URL on loopback where nothing listens: a Redis that is down."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{probe.getsockname()[1]}/0"


def test_a_redis_that_is_down_is_503_with_retry_after_never_500(app, client, make_area, enrol):
    """Every host shares the Redis; when it goes, devices are told to come back, and nobody is let in uncounted."""
    area = make_area()
    token, _ = enrol(area)
    code = operations.issue_invite(area, "street_rep")
    operations.create_person("Sam", email="sam@example.org", password="correct horse battery")
    db.session.commit()
    _use(app, REDIS_URL=_closed_redis())
    auth = {"Authorization": f"Bearer {token}"}
    with ServerErrorWatch(app) as watch:
        answers = [_sync(client, token),
                   client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": code, "device_name": "Phone"}),
                   client.head(f"/api/sync/v1/blobs/{hashlib.sha256(PNG).hexdigest()}", headers=auth),
                   client.put(f"/api/sync/v1/blobs/{hashlib.sha256(PNG).hexdigest()}", data=PNG, headers=auth)]
        client.get("/login")
        with client.session_transaction() as session:
            csrf = session["csrf"]
        page = client.post("/login", data={"email": "sam@example.org", "password": "wrong", "csrf_token": csrf})
    assert watch.exceptions == []  # none reached the last-resort handler (a 500)
    assert [a.status_code for a in answers] == [503] * 4
    assert all(int(a.headers["Retry-After"]) >= 1 for a in answers)
    assert [a.get_json()["code"] for a in answers if a.request.method != "HEAD"] == ["unavailable"] * 3
    assert page.status_code == 503  # a sign-in is never tried uncounted
    # Redis back (here: the database's counters): the invite was not spent by the refused enrolment.
    _use(app, REDIS_URL=None)
    assert client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": code, "device_name": "Phone"}).status_code == 201


def test_the_sliding_window_is_used_where_the_store_keeps_one(app):
    from limits.strategies import (
        FixedWindowRateLimiter,
        SlidingWindowCounterRateLimiter,
    )

    assert isinstance(throttle._device_limiter(), FixedWindowRateLimiter)  # the database
    _use(app, THROTTLE_STORAGE="memory")
    assert isinstance(throttle._device_limiter(), SlidingWindowCounterRateLimiter)


def test_photo_uploads_and_presence_checks_count_against_the_device_rate(app, client, make_area, enrol):
    _use(app, SYNC_RATE_PER_MINUTE=3)
    token, _ = enrol(make_area())
    auth = {"Authorization": f"Bearer {token}"}
    sha = hashlib.sha256(PNG).hexdigest()
    assert client.head(f"/api/sync/v1/blobs/{sha}", headers=auth).status_code == 404
    assert client.put(f"/api/sync/v1/blobs/{sha}", data=PNG, headers=auth).status_code == 201
    assert _sync(client, token).status_code == 200
    refused = client.put(f"/api/sync/v1/blobs/{sha}", data=PNG, headers=auth)
    assert refused.status_code == 429 and refused.get_json()["code"] == "too_many_requests"
    assert int(refused.headers["Retry-After"]) >= 1
    head = client.head(f"/api/sync/v1/blobs/{sha}", headers=auth)
    assert head.status_code == 429 and int(head.headers["Retry-After"]) >= 1
    signed_out = client.post("/api/sync/v1/device/sign-out", json={"protocol": 1}, headers=auth)
    assert signed_out.status_code == 429


def test_one_device_over_its_rate_does_not_hold_up_another(app, client, make_area, enrol):
    _use(app, SYNC_RATE_PER_MINUTE=2)
    area = make_area()
    first, _ = enrol(area)
    second, _ = enrol(area)
    assert [_sync(client, first).status_code for _ in range(3)] == [200, 200, 429]
    assert _sync(client, second).status_code == 200


def test_a_spent_window_starts_again_and_is_purged_from_the_database(app, client, make_area, enrol):
    _use(app, SYNC_RATE_PER_MINUTE=1)
    token, _ = enrol(make_area())
    assert [_sync(client, token).status_code for _ in range(2)] == [200, 429]
    # The device's window is one row named by a keyed hash of the device, never its id.
    key = f"device/{throttle.subject(_device_id(token))}"
    (row,) = [row for row in db.session.execute(select(ThrottleCounter)).scalars() if key in row.key]
    row.expires_at = 0  # the minute is over
    db.session.commit()
    assert _sync(client, token).status_code == 200  # a new window, counted in the same row
    db.session.expire_all()
    db.session.execute(select(ThrottleCounter).where(ThrottleCounter.key == row.key)).scalar_one().expires_at = 0
    db.session.commit()
    assert throttle.purge_expired() >= 1
    db.session.commit()
    assert [r.key for r in db.session.execute(select(ThrottleCounter)).scalars() if key in r.key] == []


def _device_id(token: str) -> str:
    from server.auth import token_hash
    from server.models import Device

    return db.session.execute(select(Device.id).where(Device.token_hash == token_hash(token))).scalar_one()


def test_behind_one_trusted_proxy_enrolment_is_counted_per_forwarded_address(app):
    settings = _settings(app, TRUSTED_PROXIES=1, ENROL_LIMIT_ADDRESS="2 per minute")
    proxied = create_app(settings)
    try:
        client = proxied.test_client()

        def enrol_from(forwarded):
            return client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": "NOT-A-CODE"},
                               headers={"X-Forwarded-For": forwarded}).status_code

        assert [enrol_from("203.0.113.7") for _ in range(2)] == [400, 400]
        assert enrol_from("203.0.113.7") == 429
        assert enrol_from("198.51.100.2") == 400  # another client behind the same proxy
        # A client cannot choose its address: only the hop the proxy appended is believed.
        assert enrol_from("198.51.100.99, 203.0.113.7") == 429
    finally:
        with proxied.app_context():
            db.engine.dispose()
