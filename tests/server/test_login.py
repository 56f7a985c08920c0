"""Coordinators and partners sign in with email and password (argon2 hashes)."""

from __future__ import annotations

import re

from server import operations
from server.extensions import db
from server.models import Person


def _csrf(client, path="/login"):
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _coordinator(area):
    person = operations.create_person("Sam", email="Sam@Example.org", password="correct horse battery",
                                      roles=[("coordinator", area)])
    db.session.commit()
    return person


def test_password_is_stored_as_an_argon2_hash(make_area):
    person = _coordinator(make_area())
    stored = db.session.get(Person, person.id).password_hash
    assert stored.startswith("$argon2id$") and "correct horse" not in stored


def test_sign_in_with_the_right_password_and_email_in_any_case(client, make_area):
    _coordinator(make_area())
    token = _csrf(client)
    response = client.post("/login?next=/api/docs", data={"email": "sam@example.org", "password": "correct horse battery",
                                                          "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/api/docs"
    assert "Sign out (Sam)" in client.get("/").get_data(as_text=True)


def test_wrong_password_is_refused_with_a_plain_message(client, make_area):
    _coordinator(make_area())
    response = client.post("/login", data={"email": "sam@example.org", "password": "wrong",
                                           "csrf_token": _csrf(client)})
    assert response.status_code == 401
    assert "do not match" in response.get_data(as_text=True)


def test_sign_in_form_without_its_token_is_refused(client, make_area):
    _coordinator(make_area())
    client.get("/login")
    response = client.post("/login", data={"email": "sam@example.org", "password": "correct horse battery"})
    assert response.status_code == 400


def test_sign_in_never_redirects_to_another_site(client, make_area):
    _coordinator(make_area())
    response = client.post("/login?next=//evil.example/", data={
        "email": "sam@example.org", "password": "correct horse battery", "csrf_token": _csrf(client)})
    assert response.headers["Location"] == "/coordinator/area-1/"


def test_sign_out(client, make_area):
    _coordinator(make_area())
    client.post("/login", data={"email": "sam@example.org", "password": "correct horse battery", "csrf_token": _csrf(client)})
    token = _csrf(client, "/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert "Sign in" in client.get("/").get_data(as_text=True)
