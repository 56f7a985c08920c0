"""Changing one's password, and an admin's one-time passwords that must be changed at sign-in."""

from __future__ import annotations

import logging
import re

import pytest

from server import operations
from server.auth import check_password, person_by_email
from server.extensions import db
from tests.conftest import sign_in

PASSWORD = "correct horse battery"
NEW = "a brand new passphrase"


@pytest.fixture
def sam(make_area):
    area = make_area()
    person = operations.create_person("Sam", email="sam@example.org", password=PASSWORD,
                                      roles=[("coordinator", area)])
    db.session.commit()
    return person


@pytest.fixture
def ada(app):
    person = operations.create_person("Ada", email="ada@example.org", password=PASSWORD, roles=[("admin", None)])
    db.session.commit()
    return person


def _change(client, csrf, current=PASSWORD, new=NEW, confirm=None):
    confirm = new if confirm is None else confirm
    return client.post("/account/password", data={"csrf_token": csrf, "current_password": current,
                                                  "new_password": new, "confirm_password": confirm})


@pytest.mark.parametrize("current, new, confirm, message", [
    ("not my password", NEW, NEW, "That is not your current password."),
    (PASSWORD, "too short", "too short", "Use at least 12 characters."),
    (PASSWORD, NEW, NEW + "!", "The two new passwords are not the same."),
    (PASSWORD, PASSWORD, PASSWORD, "Choose a password different from the current one."),
])
def test_a_password_change_that_cannot_be_made_says_why(client, sam, current, new, confirm, message):
    csrf = sign_in(client, "sam@example.org")
    response = _change(client, csrf, current, new, confirm)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    db.session.expire_all()
    assert check_password(person_by_email("sam@example.org"), PASSWORD)


def test_a_changed_password_is_the_one_that_signs_in(app, client, sam):
    csrf = sign_in(client, "sam@example.org")
    assert _change(client, csrf).status_code == 302
    db.session.expire_all()
    person = person_by_email("sam@example.org")
    assert check_password(person, NEW) and not check_password(person, PASSWORD)


def test_the_change_form_needs_its_token(client, sam):
    sign_in(client, "sam@example.org")
    assert _change(client, "not-the-token").status_code == 400


def test_an_admin_sees_who_signs_in_and_others_may_not(app, client, sam, ada):
    csrf = sign_in(client, "sam@example.org")
    assert client.get("/admin/people").status_code == 403
    client.post("/logout", data={"csrf_token": csrf})
    sign_in(client, "ada@example.org")
    page = client.get("/admin/people").get_data(as_text=True)
    assert "sam@example.org" in page and "ada@example.org" in page and "Set a one-time password" in page


def test_a_one_time_password_is_shown_once_and_never_logged_or_kept_in_the_cookie(app, client, sam, ada, caplog):
    sam_browser = app.test_client()
    sign_in(sam_browser, "sam@example.org")
    csrf = sign_in(client, "ada@example.org")
    with caplog.at_level(logging.DEBUG):
        response = client.post(f"/admin/people/{sam.id}/one-time-password", data={"csrf_token": csrf})
    assert response.status_code == 200
    shown = re.search(r'<p class="invite-code">([^<]+)</p>', response.get_data(as_text=True)).group(1)
    assert len(shown) >= 12
    assert shown not in caplog.text
    assert shown not in (response.headers.get("Set-Cookie") or "")
    assert response.headers["Cache-Control"] == "no-store"
    assert shown not in client.get("/admin/people").get_data(as_text=True)
    # Sam's old session is over, and the one-time password is now the one that works.
    assert sam_browser.get("/account/password").status_code == 302
    db.session.expire_all()
    person = person_by_email("sam@example.org")
    assert check_password(person, shown) and person.must_change_password


def test_after_a_one_time_password_every_page_leads_to_the_change_page_until_it_is_changed(app, client, sam, ada):
    admin = app.test_client()
    csrf = sign_in(admin, "ada@example.org")
    page = admin.post(f"/admin/people/{sam.id}/one-time-password", data={"csrf_token": csrf}).get_data(as_text=True)
    one_time = re.search(r'<p class="invite-code">([^<]+)</p>', page).group(1)
    csrf = sign_in(client, "sam@example.org", password=one_time)
    for path in ("/", "/coordinator/", "/app/", "/login"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"] == "/account/password", path
    assert "one-time password" in client.get("/account/password").get_data(as_text=True)
    stylesheet = client.get("/static/kerbside.css")
    stylesheet.close()
    assert stylesheet.status_code == 200
    assert _change(client, csrf, current=one_time).status_code == 302
    assert client.get("/coordinator/").headers.get("Location") != "/account/password"
    db.session.expire_all()
    assert not person_by_email("sam@example.org").must_change_password


def test_an_admin_cannot_set_their_own_one_time_password(client, ada):
    csrf = sign_in(client, "ada@example.org")
    response = client.post(f"/admin/people/{ada.id}/one-time-password", data={"csrf_token": csrf})
    assert response.status_code == 302
    db.session.expire_all()
    assert check_password(person_by_email("ada@example.org"), PASSWORD)


def test_admin_actions_on_someone_who_does_not_sign_in_are_not_found(client, ada, make_area):
    volunteer = operations.create_person("Rae", roles=[("street_rep", make_area())])
    db.session.commit()
    csrf = sign_in(client, "ada@example.org")
    for path in (f"/admin/people/{volunteer.id}/one-time-password", "/admin/people/nobody/sign-out"):
        assert client.post(path, data={"csrf_token": csrf}).status_code == 404


# -- the command line ---------------------------------------------------------------------


def test_add_admin_creates_an_admin_who_can_sign_in(app, client):
    result = app.test_cli_runner().invoke(args=["add-admin", "--email", "Root@Example.org", "--name", "Root",
                                                "--password", "a long admin passphrase"])
    assert result.exit_code == 0, result.output
    sign_in(client, "root@example.org", password="a long admin passphrase")
    assert client.get("/admin/people").status_code == 200


def test_the_command_line_refuses_a_short_password(app, make_area):
    make_area(slug="millbrook")
    for args in (["add-admin", "--email", "a@example.org", "--name", "A", "--password", "short"],
                 ["add-coordinator", "--area", "millbrook", "--email", "b@example.org", "--name", "B",
                  "--password", "short"]):
        result = app.test_cli_runner().invoke(args=args)
        assert result.exit_code != 0 and "at least 12 characters" in result.output


def test_one_time_password_command_prints_one_that_must_be_changed(app, client, sam):
    result = app.test_cli_runner().invoke(args=["one-time-password", "--email", "sam@example.org"])
    assert result.exit_code == 0, result.output
    one_time = result.output.strip()
    sign_in(client, "sam@example.org", password=one_time)
    assert client.get("/").headers["Location"] == "/account/password"


def test_sign_out_everywhere_command_ends_the_sessions(app, client, sam):
    sign_in(client, "sam@example.org")
    result = app.test_cli_runner().invoke(args=["sign-out-everywhere", "--email", "sam@example.org"])
    assert result.exit_code == 0 and "1 sessions ended" in result.output
    assert client.get("/account/password").status_code == 302
