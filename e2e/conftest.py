"""End-to-end fixtures: a live Kerbside server in a thread, and a real Chromium.

The server runs with the demo data loaded (a known coordinator password), on 127.0.0.1
with a free port, from werkzeug's `make_server`: on SQLite in a temporary folder, or on
TEST_DATABASE_URL's database when it is set (CI's PostgreSQL pass), emptied first. The
browser reaches it through a TCP relay (`e2e/relay.py`) that a test can cut to take the
signal away from everything in the browser, service worker included.
Chromium is the system one (Debian's package) when present, else Playwright's own.
"""

from __future__ import annotations

import gc
import os
import shutil
import threading
import time
from dataclasses import dataclass

import pytest
from werkzeug.serving import make_server

from e2e.relay import Relay
from server import create_app, operations
from server.cli import drop_all_tables
from server.demo import load_demo
from server.extensions import db
from server.models import Area

CHROMIUM = os.environ.get("KERBSIDE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
DEMO_PASSWORD = "demo-password-for-tests"
PHONE = {"width": 360, "height": 740}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    # The machines have no internet: stop Chromium phoning home at every start.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    args = {**browser_type_launch_args, "args": CHROMIUM_ARGS}
    if CHROMIUM:
        args["executable_path"] = CHROMIUM
    return args


@dataclass
class LiveServer:
    app: object
    details: dict
    relay: Relay

    @property
    def url(self) -> str:
        """Where the browser reaches the server: through the relay, which `cut()` can take away."""
        return self.relay.url

    def invite(self, role: str = "street_rep", name: str = "E2E volunteer") -> str:
        """A fresh invite code for the demo area."""
        with self.app.app_context():
            area = db.session.query(Area).filter_by(slug=self.details["area"]).one()
            code = operations.issue_invite(area, role, display_name=name)
            db.session.commit()
            return code

    def run(self, work):
        """Run `work()` inside the server's app context (to inspect or change the database)."""
        with self.app.app_context():
            try:
                return work()
            finally:
                db.session.remove()


class ClosesWhatTheServerDrops:
    """WSGI wrapper: an answer's body is closed even when werkzeug's server forgets to.

    After sending an answer, werkzeug's development server drains the request socket before
    closing the body; when the browser has already reset the connection (a test ending while
    a page still loads its icons), the drain raises and the body, an open file for a static
    answer, is never closed. Its ResourceWarning then surfaces in whichever test runs next.
    gunicorn, which Kerbside runs on, closes the body in a `finally` of its own.
    """

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        return _ClosingBody(self.app(environ, start_response))


class _ClosingBody:
    def __init__(self, body):
        self.body = body

    def __iter__(self):
        return iter(self.body)

    def close(self):
        if hasattr(self.body, "close"):
            self.body.close()

    __del__ = close


def start_live_server(tmp_path_factory, name: str = "live") -> tuple[LiveServer, object]:
    folder = tmp_path_factory.mktemp(name)
    database_url = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{folder / 'kerbside.sqlite'}"
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "e2e-secret",
        "BLOB_DIR": str(folder / "blobs"),
        # The browser tests sync often; the production rate limit would get in their way.
        "SYNC_RATE_PER_MINUTE": 10_000,
    })
    with app.app_context():
        drop_all_tables()
        db.create_all()
        operations.init_state()
        db.session.commit()
        details = load_demo(coordinator_password=DEMO_PASSWORD, months=3)
        db.session.remove()
    server = make_server("127.0.0.1", 0, ClosesWhatTheServerDrops(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    relay = Relay("127.0.0.1", server.server_port)
    return LiveServer(app=app, details=details, relay=relay), server


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """A live server with the demo data, fresh for each test module."""
    live, server = start_live_server(tmp_path_factory)
    yield live
    live.relay.close()
    server.shutdown()
    with live.app.app_context():
        dispose_when_idle(db.engine)
    # A connection left open would warn whenever the collector next runs, in whichever test
    # that is; collecting here makes it this module's teardown that fails.
    gc.collect()


def dispose_when_idle(engine, timeout_s: float = 15) -> None:
    """Close the engine's connections once the server's request threads have given theirs back.

    `server.shutdown()` stops accepting requests but does not wait for the threads still
    answering one (a page's last fetches as its browser context closes). A connection such a
    thread returns after `dispose()` goes back to the discarded pool and is garbage collected
    still open: psycopg's ResourceWarning, raised as an error in some later test.
    """
    deadline = time.monotonic() + timeout_s
    while engine.pool.checkedout() and time.monotonic() < deadline:
        time.sleep(0.05)
    if engine.pool.checkedout():
        raise AssertionError(f"{engine.pool.checkedout()} database connection(s) still held by the live server")
    engine.dispose()


@pytest.fixture(autouse=True)
def _signal_back_after_each_test(request):
    """A test that failed while "offline" must not leave the next one without a signal."""
    yield
    if "live_server" in request.fixturenames:
        request.getfixturevalue("live_server").relay.restore()
