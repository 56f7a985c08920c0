"""Web sessions live on the server: a copied cookie stops working when the session ends."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from server import operations
from server.extensions import db
from server.models import WebSession, utcnow
from tests.conftest import sign_in

PASSWORD = "correct horse battery"
PAGE = "/account/password"


def _coordinator(area, email="sam@example.org", name="Sam"):
    person = operations.create_person(name, email=email, password=PASSWORD, roles=[("coordinator", area)])
    db.session.commit()
    return person


def _admin(email="ada@example.org"):
    person = operations.create_person("Ada", email=email, password=PASSWORD, roles=[("admin", None)])
    db.session.commit()
    return person


def _session_cookie(client) -> str:
    return client.get_cookie("session").value


def _copy_of(app, client):
    """A second browser holding a copy of `client`'s cookie, as a thief would."""
    thief = app.test_client()
    thief.set_cookie("session", _session_cookie(client))
    return thief


def _signed_in(client) -> bool:
    response = client.get(PAGE)
    return response.status_code == 200


def _rows(person_id):
    return db.session.execute(select(WebSession).where(WebSession.person_id == person_id)).scalars().all()


def _age_sessions(person_id, *, idle=None, age=None):
    """Move the session's clock: as if it was last used `idle` ago, or began `age` ago."""
    for row in _rows(person_id):
        if idle is not None:
            row.last_seen_at = utcnow() - idle
        if age is not None:
            row.created_at = utcnow() - age
    db.session.commit()


def test_a_copied_cookie_works_until_sign_out_then_is_refused(app, client, make_area):
    person = _coordinator(make_area())
    csrf = sign_in(client, "sam@example.org")
    thief = _copy_of(app, client)
    assert _signed_in(thief)
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 302
    assert not _signed_in(thief)
    assert thief.get(PAGE).headers["Location"].startswith("/login")
    assert _rows(person.id) == []


def test_the_cookie_holds_a_secret_and_the_table_only_its_hash(app, client, make_area):
    person = _coordinator(make_area())
    sign_in(client, "sam@example.org")
    data = app.session_interface.get_signing_serializer(app).loads(_session_cookie(client))
    assert "person_id" not in data and person.id not in str(data)
    (row,) = _rows(person.id)
    assert row.secret_hash != data["sid"] and len(data["sid"]) >= 40


def test_a_session_idle_for_longer_than_the_timeout_is_ended(app, client, make_area):
    person = _coordinator(make_area())
    sign_in(client, "sam@example.org")
    thief = _copy_of(app, client)
    _age_sessions(person.id, idle=timedelta(minutes=29))
    assert _signed_in(client), "29 minutes idle is still within the default 30"
    _age_sessions(person.id, idle=timedelta(minutes=31))
    assert not _signed_in(thief)
    assert not _signed_in(client)
    assert _rows(person.id) == []


def test_the_idle_timeout_is_configurable(app, client, make_area):
    app.config["SESSION_IDLE_MINUTES"] = 5
    person = _coordinator(make_area())
    sign_in(client, "sam@example.org")
    _age_sessions(person.id, idle=timedelta(minutes=6))
    assert not _signed_in(client)


def test_a_session_in_use_ends_at_its_absolute_lifetime(app, client, make_area):
    person = _coordinator(make_area())
    sign_in(client, "sam@example.org")
    thief = _copy_of(app, client)
    _age_sessions(person.id, age=timedelta(hours=11, minutes=50))
    assert _signed_in(client)
    _age_sessions(person.id, age=timedelta(hours=12, minutes=1), idle=timedelta(seconds=5))
    assert not _signed_in(thief)
    assert not _signed_in(client)


def test_last_seen_is_written_at_most_once_a_minute(app, client, make_area):
    person = _coordinator(make_area())
    sign_in(client, "sam@example.org")
    (row,) = _rows(person.id)
    first = row.last_seen_at
    assert _signed_in(client) and _signed_in(client)
    db.session.expire_all()
    assert _rows(person.id)[0].last_seen_at == first
    _age_sessions(person.id, idle=timedelta(minutes=2))
    assert _signed_in(client)
    db.session.expire_all()
    assert utcnow() - _rows(person.id)[0].last_seen_at < timedelta(seconds=30)


def test_a_password_change_ends_the_other_sessions_but_not_this_one(app, client, make_area):
    person = _coordinator(make_area())
    csrf = sign_in(client, "sam@example.org")
    other_browser = app.test_client()
    sign_in(other_browser, "sam@example.org")
    thief = _copy_of(app, other_browser)
    response = client.post("/account/password", data={
        "csrf_token": csrf, "current_password": PASSWORD,
        "new_password": "a new and longer passphrase", "confirm_password": "a new and longer passphrase"})
    assert response.status_code == 302
    assert _signed_in(client)
    assert not _signed_in(other_browser) and not _signed_in(thief)
    assert len(_rows(person.id)) == 1


def test_an_admins_sign_out_everywhere_ends_every_session_of_the_person(app, client, make_area):
    person = _coordinator(make_area())
    first, second = app.test_client(), app.test_client()
    sign_in(first, "sam@example.org")
    sign_in(second, "sam@example.org")
    thief = _copy_of(app, first)
    _admin()
    csrf = sign_in(client, "ada@example.org")
    response = client.post(f"/admin/people/{person.id}/sign-out", data={"csrf_token": csrf})
    assert response.status_code == 302
    assert not _signed_in(first) and not _signed_in(second) and not _signed_in(thief)
    assert _rows(person.id) == []
    assert client.get("/admin/people").status_code == 200, "the admin's own session goes on"


def test_signing_in_again_replaces_the_cookie_chosen_before(app, client, make_area):
    """Session fixation: a cookie planted before signing in is not the one that ends up signed in."""
    _coordinator(make_area())
    client.get("/login")
    planted = _session_cookie(client)
    sign_in(client, "sam@example.org")
    victim_cookie = _session_cookie(client)
    assert victim_cookie != planted
    attacker = app.test_client()
    attacker.set_cookie("session", planted)
    assert not _signed_in(attacker)


def test_session_cookie_is_httponly_and_lax_and_secure_only_over_https(app, make_area):
    _coordinator(make_area())
    plain = app.test_client()
    plain.get("/login")
    cookie = plain.get_cookie("session")
    assert cookie.http_only and cookie.same_site == "Lax" and not cookie.secure
    secure = app.test_client()
    response = secure.get("/login", base_url="https://kerbside.example")
    header = response.headers["Set-Cookie"]
    assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header


def test_signing_in_again_in_the_same_browser_ends_the_session_it_had(app, client, make_area):
    person = _coordinator(make_area())
    sign_in(client, "sam@example.org")
    thief = _copy_of(app, client)
    sign_in(client, "sam@example.org")
    assert _signed_in(client) and not _signed_in(thief)
    assert len(_rows(person.id)) == 1
