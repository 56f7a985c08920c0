"""The last-resort error handler: it rolls back, answers without a stack trace, and can be watched."""

from __future__ import annotations

from tests.conftest import ServerErrorWatch


def test_the_error_watch_sees_what_reaches_the_error_handler(app, client):
    """Negative control: without it, every test using `no_server_errors` could pass for the wrong reason."""
    from server.auth import allow

    @app.get("/api/boom-for-test")
    @allow("public")
    def boom():
        raise RuntimeError("a bug")

    @app.get("/boom-page-for-test")
    @allow("public")
    def boom_page():
        raise KeyError("another bug")

    with ServerErrorWatch(app) as watch:
        api = client.get("/api/boom-for-test")
        page = client.get("/boom-page-for-test")
    assert api.status_code == 500 and api.get_json()["code"] == "server_error"
    assert page.status_code == 500 and "Traceback" not in page.text
    assert [type(e) for e in watch.exceptions] == [RuntimeError, KeyError]
    assert watch.statuses == [("/api/boom-for-test", 500), ("/boom-page-for-test", 500)]
    assert len(watch.seen) == 4


def test_a_watch_that_saw_nothing_says_so(app, client):
    with ServerErrorWatch(app) as watch:
        assert client.get("/").status_code == 200
    assert watch.seen == []


def test_a_database_error_is_logged_without_the_values_it_carried(app, client, caplog):
    """A bug that breaks a statement logs the statement's shape, never the names or emails in it."""
    from flask import request
    from sqlalchemy import text

    from server.auth import allow
    from server.extensions import db

    @app.get("/boom-db-for-test")
    @allow("public")
    def boom_db():
        # display_name may not be empty: an IntegrityError whose statement holds an email. (The
        # traceback shows source lines, so the email is not written on the line that fails.)
        email = request.args["email"]
        db.session.execute(text("INSERT INTO person (id, email) VALUES ('p1', :email)"), {"email": email})

    with ServerErrorWatch(app) as watch, caplog.at_level("ERROR"):
        assert client.get("/boom-db-for-test", query_string={"email": "ada@example.org"}).status_code == 500
    assert len(watch.exceptions) == 1 and "INSERT INTO person" in caplog.text
    assert "ada@example.org" not in caplog.text
