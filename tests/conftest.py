"""Fixtures shared by every server test: a fresh app and database per test, and factories.

Tests run on SQLite by default; with TEST_DATABASE_URL set they run on that database
(PostgreSQL in CI), its tables created once per session and emptied between tests.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from server import create_app, operations
from server.cli import drop_all_tables
from server.extensions import db
from server.seed_content import AGREEMENT, STREET_FORM, checklist_form, mystery_shop_form
from sync.protocol import payload_hash

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")


def is_postgres() -> bool:
    return bool(TEST_DATABASE_URL and TEST_DATABASE_URL.startswith("postgresql"))


@pytest.fixture(scope="session")
def _postgres_schema():
    """Create the schema once per session on PostgreSQL."""
    if not is_postgres():
        yield None
        return
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": TEST_DATABASE_URL, "SECRET_KEY": "test"})
    with app.app_context():
        drop_all_tables()
        db.create_all()
        yield app
        db.session.remove()
        db.engine.dispose()


def _empty_postgres():
    tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
    db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    db.session.commit()


@pytest.fixture
def app(tmp_path, _postgres_schema):
    """A fresh app with an empty database holding only the state rows."""
    url = TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'kerbside.sqlite'}"
    app = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": "test-secret",
        "BLOB_DIR": str(tmp_path / "blobs"),
    })
    with app.app_context():
        if is_postgres():
            _empty_postgres()
        else:
            db.create_all()
        operations.init_state()
        db.session.commit()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


# -- factories --------------------------------------------------------------------------


@pytest.fixture
def make_area(app):
    counter = iter(range(1, 10_000))

    def make(slug=None, name=None):
        n = next(counter)
        area = operations.create_area(slug or f"area-{n}", name or f"Area {n}")
        db.session.commit()
        return area

    return make


@pytest.fixture
def make_site(app):
    def make(area, name="Canal Street", lat=53.54, lng=-2.63):
        (site,) = operations.create_sites(area, [{"name": name, "lat": lat, "lng": lng}])
        db.session.commit()
        return site

    return make


@pytest.fixture
def publish_forms(app):
    """Publish the seed's street form, checklist and mystery shop; return the versions by id.

    `published_at` dates the versions back, for tests that push visits from long ago: the
    server refuses a visit dated long before its form version was published.
    """

    def publish(area_id=None, published_at=None):
        versions = {}
        for form_id, definition in (("street", STREET_FORM), ("checklist", checklist_form(AGREEMENT)),
                                    ("mystery_shop", mystery_shop_form(AGREEMENT))):
            version = operations.draft_form_version(form_id, definition, area_id=area_id)
            versions[form_id] = operations.publish_form_version(version)
            if published_at is not None:
                version.published_at = published_at
        db.session.commit()
        return versions

    return publish


@pytest.fixture
def enrol(client):
    """Enrol a device through the API; returns (token, response body)."""

    def do(area, role="street_rep", name="Test volunteer"):
        code = operations.issue_invite(area, role, display_name=name)
        db.session.commit()
        response = client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": code, "device_name": "Test phone"})
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        return body["token"], body

    return do


@pytest.fixture
def sync(client):
    """POST one sync request; returns the response."""

    def do(token, mutations=(), cursor=None, limit=500, protocol=1):
        return client.post(
            "/api/sync/v1",
            json={"protocol": protocol, "cursor": cursor, "limit": limit, "mutations": list(mutations)},
            headers={"Authorization": f"Bearer {token}"},
        )

    return do


def street_answers(grade="B", **overrides):
    """Answers for every line of the seed's street form."""
    keys = [line["key"] for section in STREET_FORM["sections"] for line in section["lines"]]
    answers = {key: {"grade": grade} for key in keys}
    answers.update(overrides)
    return answers


def recently(**before) -> str:
    """A moment shortly before now (or `before` earlier, as timedelta arguments), as a visit states it.

    Visits are dated relative to now: the server refuses one dated long before its form
    version was published, or more than a day ahead of its clock.
    """
    moment = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1, **before)
    return moment.isoformat()


def visit(site, *, form_version=1, answers=None, observed_at=None, submission_id=None, form_id="street"):
    """`submission.create` data for a visit to `site` (None: the caller adds `new_site`)."""
    return {
        "id": submission_id or str(uuid.uuid4()),
        "form": {"id": form_id, "version": form_version},
        **({"site_id": site.id} if site is not None else {}),
        "observed_at": observed_at or recently(),
        "answers": answers if answers is not None else street_answers(),
    }


def mutation(data, *, kind="submission.create", mid=None, seq=1, hash_of=None):
    """A mutation envelope around `data`, its hash computed the canonical way."""
    return {"mid": mid or str(uuid.uuid4()), "seq": seq, "type": kind,
            "payload_hash": payload_hash(data if hash_of is None else hash_of), "data": data}


def sign_in(client, email, password="correct horse battery"):
    """Sign in through the login form; returns the session's CSRF token for later posts."""
    client.get("/login")
    with client.session_transaction() as session:
        token = session["csrf"]
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 302
    with client.session_transaction() as session:
        return session["csrf"]


# -- no input reaches the error handler ------------------------------------------------------


class ServerErrorWatch:
    """Records what reaches the app's last-resort error handler, and every 5xx it answers.

    The handler sends Flask's `got_request_exception` (Flask itself would not: the handler
    takes every exception before Flask's own fallback runs); a 5xx from anywhere else, such
    as a busy database, shows up in `statuses`.
    """

    def __init__(self, app):
        self.app = app
        self.exceptions: list[BaseException] = []
        self.statuses: list[tuple[str, int]] = []

    def _exception(self, sender, exception, **extra):
        self.exceptions.append(exception)

    def _finished(self, sender, response, **extra):
        if response.status_code >= 500:
            from flask import request

            self.statuses.append((request.path, response.status_code))

    def __enter__(self):
        from flask import got_request_exception, request_finished

        got_request_exception.connect(self._exception, self.app)
        request_finished.connect(self._finished, self.app)
        return self

    def __exit__(self, *exc):
        from flask import got_request_exception, request_finished

        got_request_exception.disconnect(self._exception, self.app)
        request_finished.disconnect(self._finished, self.app)
        return False

    @property
    def seen(self) -> list:
        return [repr(e) for e in self.exceptions] + [f"{path}: {status}" for path, status in self.statuses]


@pytest.fixture
def no_server_errors(app):
    """Fails the test if any request reached the error handler or answered 5xx."""
    with ServerErrorWatch(app) as watch:
        yield watch
    assert watch.seen == [], watch.seen
