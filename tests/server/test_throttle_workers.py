"""Sign-in throttling and a device's sync rate hold across worker processes: two real servers on one
database (or one Redis).

Failed sign-ins alternate between the two servers; the account locks after the limit counted
over both. The negative control runs the same sequence with per-process counters, which do
not lock it: the shared store is what makes the difference.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid

import pytest
import requests

from server import operations
from server.extensions import db
from server.throttle import REDIS_PREFIX
from tests.conftest import TEST_DATABASE_URL

PASSWORD = "correct horse battery"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/1")
LIMIT = 4

SERVE = """
import sys
from werkzeug.serving import run_simple
from server import create_app
run_simple("127.0.0.1", int(sys.argv[1]), create_app(), threaded=True)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def two_servers(app, tmp_path, make_area):
    """Start two server processes on the test database with the given throttle store."""
    operations.create_person("Sam", email="sam@example.org", password=PASSWORD, roles=[("coordinator", make_area())])
    db.session.commit()
    processes = []

    def start(**settings) -> list[str]:
        env = {**os.environ, "DATABASE_URL": TEST_DATABASE_URL or app.config["SQLALCHEMY_DATABASE_URI"],
               "SECRET_KEY": app.config["SECRET_KEY"], "KERBSIDE_INSTANCE": str(tmp_path / "instance"),
               "KERBSIDE_BLOB_DIR": app.config["BLOB_DIR"],
               "KERBSIDE_SIGNIN_LIMIT_ACCOUNT": f"{LIMIT} per 15 minutes",
               "KERBSIDE_SYNC_RATE_PER_MINUTE": str(LIMIT), **settings}
        urls = []
        for _ in range(2):
            port = _free_port()
            processes.append(subprocess.Popen([sys.executable, "-c", SERVE, str(port)], env=env,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            _wait_until_up(url)
        return urls

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=20)


def _wait_until_up(url: str):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/login", timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"the server at {url} did not start")


def _attempt(url: str, password: str) -> int:
    browser = requests.Session()
    page = browser.get(url + "/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = browser.post(url + "/login", data={"email": "sam@example.org", "password": password,
                                                  "csrf_token": token}, allow_redirects=False, timeout=30)
    return response.status_code


def _alternate(urls) -> list[int]:
    """LIMIT wrong passwords spread over both servers, then the right one on each."""
    codes = [_attempt(urls[n % 2], "wrong password") for n in range(LIMIT)]
    return codes + [_attempt(url, PASSWORD) for url in urls]


def test_throttling_holds_across_two_server_processes_on_the_database(two_servers):
    assert _alternate(two_servers()) == [401] * LIMIT + [429, 429]


@pytest.fixture
def redis_prefix():
    """A key prefix of this test's own: other test runs share the Redis."""
    from limits.storage import RedisStorage

    prefix = f"{REDIS_PREFIX}-test-{uuid.uuid4().hex}"
    yield prefix
    RedisStorage(REDIS_URL, key_prefix=prefix).reset()


def test_throttling_holds_across_two_server_processes_on_redis(two_servers, redis_prefix):
    urls = two_servers(KERBSIDE_REDIS_URL=REDIS_URL, KERBSIDE_REDIS_PREFIX=redis_prefix)
    assert _alternate(urls) == [401] * LIMIT + [429, 429]


def _device_alternates(urls, make_area) -> list[int]:
    """A phone whose syncs a load balancer sends to each server in turn: LIMIT + 2 of them."""
    code = operations.issue_invite(make_area(), "street_rep")
    db.session.commit()
    enrolled = requests.post(urls[0] + "/api/sync/v1/enrol", json={"protocol": 1, "code": code}, timeout=30)
    assert enrolled.status_code == 201, enrolled.text
    auth = {"Authorization": "Bearer " + enrolled.json()["token"]}
    body = {"protocol": 1, "cursor": None, "limit": 100, "mutations": []}
    return [requests.post(urls[n % 2] + "/api/sync/v1", json=body, headers=auth, timeout=30).status_code
            for n in range(LIMIT + 2)]


def test_a_device_sync_rate_holds_across_two_server_processes_on_the_database(two_servers, make_area):
    assert _device_alternates(two_servers(), make_area) == [200] * LIMIT + [429, 429]


def test_a_device_sync_rate_holds_across_two_server_processes_on_redis(two_servers, make_area, redis_prefix):
    urls = two_servers(KERBSIDE_REDIS_URL=REDIS_URL, KERBSIDE_REDIS_PREFIX=redis_prefix)
    assert _device_alternates(urls, make_area) == [200] * LIMIT + [429, 429]


def test_per_process_sync_rates_let_a_device_through_on_each_process(two_servers, make_area):
    """Negative control for the sync rate: each process lets the device make LIMIT requests of its own."""
    assert _device_alternates(two_servers(KERBSIDE_THROTTLE_STORAGE="memory"), make_area) == [200] * (LIMIT + 2)


def test_per_process_counters_do_not_hold_across_two_processes(two_servers):
    """Negative control: each process counts only its own half, so the right password gets in."""
    assert _alternate(two_servers(KERBSIDE_THROTTLE_STORAGE="memory")) == [401] * LIMIT + [302, 302]
