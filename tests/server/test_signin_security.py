"""Signing in: CSRF for real, only local `next` paths, throttling, and nothing that tells who has an account."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from server import operations, passwords, throttle
from server.extensions import db
from server.models import ThrottleCounter
from server.signin import local_path

PASSWORD = "correct horse battery"


def _csrf(client, path="/login"):
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


@pytest.fixture
def sam(make_area):
    person = operations.create_person("Sam", email="sam@example.org", password=PASSWORD,
                                      roles=[("coordinator", make_area())])
    db.session.commit()
    return person


def _attempt(client, email="sam@example.org", password="wrong password", path="/login", **headers):
    return client.post(path, data={"email": email, "password": password, "csrf_token": _csrf(client)},
                       headers=headers)


# -- CSRF ------------------------------------------------------------------------------


def test_sign_in_post_with_no_cookie_and_no_token_is_refused_with_a_clear_page(client, sam):
    response = client.post("/login", data={"email": "sam@example.org", "password": PASSWORD})
    assert response.status_code == 400
    assert "Allow cookies for this site" in response.get_data(as_text=True)
    assert client.get_cookie("session") is None or "sid" not in client.get_cookie("session").value


def test_sign_in_post_with_a_cookie_but_an_empty_token_is_refused(client, sam):
    client.get("/login")
    response = client.post("/login", data={"email": "sam@example.org", "password": PASSWORD, "csrf_token": ""})
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)


def test_sign_in_post_with_another_browsers_token_is_refused(app, client, sam):
    other = app.test_client()
    token = _csrf(other)
    client.get("/login")
    response = client.post("/login", data={"email": "sam@example.org", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 400


# -- next ------------------------------------------------------------------------------

NASTY_NEXT = [
    "//evil.example/", "/%09/evil.example/", "/%0a/evil.example/", "%0a", "/%0d%0aSet-Cookie:x=1",
    "/\\evil.example", "\\\\evil.example", "/%5cevil.example", "https://evil.example/", "http:evil.example",
    "javascript:alert(1)", "%20//evil.example", "/%20/evil.example", "///evil.example", "/%00", "evil.example",
    "/%e2%80%a8/evil.example", "", "%09//evil.example",
]


@pytest.mark.parametrize("target", NASTY_NEXT)
def test_sign_in_never_redirects_off_site_or_fails(client, sam, no_server_errors, target):
    response = client.post(f"/login?next={target}", data={
        "email": "sam@example.org", "password": PASSWORD, "csrf_token": _csrf(client)})
    assert response.status_code in (302, 400), response.status_code
    if response.status_code == 302:
        # An unsafe `next` is ignored: Sam lands on their own work, their area's dashboard.
        assert response.headers["Location"] == "/coordinator/area-1/"


def test_sign_in_returns_to_a_local_path_with_its_query(client, sam):
    target = "/coordinator/area-1/trends?from=2026-01-01&to=2026-02-01"
    response = client.post(f"/login?next={quote(target)}", data={
        "email": "sam@example.org", "password": PASSWORD, "csrf_token": _csrf(client)})
    assert response.headers["Location"] == target


def _as_a_browser_reads_it(target: str) -> str:
    """What a browser makes of a Location: tabs and newlines dropped, backslashes as slashes."""
    return re.sub(r"[\t\n\r]", "", target).replace("\\", "/").strip(" \x00-\x1f")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("/\\\t\n\r :.@%?#ae\x00\x0b\u2028\u3000")) | st.characters(),
               max_size=12))
def test_a_local_path_is_never_read_as_another_site(target):
    kept = local_path(target)
    if kept is None:
        return
    seen = _as_a_browser_reads_it(kept)
    parts = urlsplit(seen)
    assert parts.scheme == "" and parts.netloc == "" and seen.startswith("/") and not seen.startswith("//")


# -- who has an account --------------------------------------------------------------------


def test_known_and_unknown_emails_get_the_same_answer(client, sam):
    known = _attempt(client, "sam@example.org")
    unknown = _attempt(client, "nobody@example.org")
    assert known.status_code == unknown.status_code == 401
    message = "That email and password do not match"
    assert message in known.get_data(as_text=True) and message in unknown.get_data(as_text=True)


class CountingHasher:
    """Wraps the real argon2 hasher and counts its verifications."""

    def __init__(self, real):
        self.real = real
        self.verified = []

    def verify(self, stored, password):
        self.verified.append(stored)
        return self.real.verify(stored, password)

    def hash(self, password):
        return self.real.hash(password)


def test_argon2_runs_for_an_unknown_email_and_for_a_person_without_a_password(client, sam, monkeypatch, make_area):
    counting = CountingHasher(passwords._hasher)
    monkeypatch.setattr(passwords, "_hasher", counting)
    operations.create_person("Pat", email="pat@example.org", roles=[("partner", make_area())])
    db.session.commit()
    for email in ("nobody@example.org", "pat@example.org", "sam@example.org"):
        assert _attempt(client, email, password="").status_code == 401
    assert counting.verified[:2] == [passwords.dummy_hash()] * 2
    assert counting.verified[2] != passwords.dummy_hash() and len(counting.verified) == 3


def test_the_dummy_hash_has_the_parameters_of_a_real_one(sam):
    real = passwords.hash_password("anything at all")
    assert passwords.dummy_hash().rsplit("$", 2)[0] == real.rsplit("$", 2)[0]
    assert not passwords.verify(None, "") and not passwords.verify(None, "x" * 5000)


def test_a_password_longer_than_any_allowed_is_refused_even_if_it_starts_with_the_right_one(client, sam):
    assert _attempt(client, password=PASSWORD + "x" * passwords.MAX_LENGTH).status_code == 401


# -- throttling ----------------------------------------------------------------------------


def test_repeated_wrong_passwords_lock_the_account_even_for_the_right_one(app, client, sam):
    app.config["SIGNIN_LIMIT_ACCOUNT"] = "3 per 15 minutes"
    for _ in range(3):
        assert _attempt(client).status_code == 401
    response = _attempt(client, password=PASSWORD)
    assert response.status_code == 429
    assert 840 <= int(response.headers["Retry-After"]) <= 900
    assert "Wait 15 minutes, then try again" in response.get_data(as_text=True)


def test_an_unknown_email_is_throttled_just_like_a_known_one(app, client, sam):
    app.config["SIGNIN_LIMIT_ACCOUNT"] = "2 per 15 minutes"
    answers = [[_attempt(client, email).status_code for _ in range(3)]
               for email in ("sam@example.org", "nobody@example.org")]
    assert answers[0] == answers[1] == [401, 401, 429]


def test_the_throttle_counts_only_the_window_and_lets_the_right_password_in_after(app, client, sam):
    app.config["SIGNIN_LIMIT_ACCOUNT"] = "2 per 15 minutes"
    _attempt(client), _attempt(client)
    assert _attempt(client, password=PASSWORD).status_code == 429
    # Move the window's end into the past rather than wait 15 minutes.
    db.session.execute(update(ThrottleCounter).values(expires_at=ThrottleCounter.expires_at - 901))
    db.session.commit()
    assert _attempt(client, password=PASSWORD).status_code == 302


def test_a_successful_sign_in_starts_the_accounts_count_again(app, client, sam):
    app.config["SIGNIN_LIMIT_ACCOUNT"] = "3 per 15 minutes"
    _attempt(client), _attempt(client)
    assert _attempt(client, password=PASSWORD).status_code == 302
    other = app.test_client()
    assert [_attempt(other).status_code for _ in range(4)] == [401, 401, 401, 429]


def test_one_address_trying_many_emails_is_throttled(app, client, sam):
    app.config["SIGNIN_LIMIT_ADDRESS"] = "3 per 15 minutes"
    codes = [_attempt(client, f"guess{n}@example.org").status_code for n in range(4)]
    assert codes == [401, 401, 401, 429]
    assert _attempt(client, password=PASSWORD).status_code == 429


def test_wrong_invite_codes_are_throttled_per_address(app, client, make_area):
    app.config["ENROL_FAILURE_LIMIT_ADDRESS"] = "2 per 15 minutes"
    area = make_area()
    good = operations.issue_invite(area, "street_rep", display_name="Rae")
    db.session.commit()
    body = {"protocol": 1, "device_name": "Phone"}
    for _ in range(2):
        assert client.post("/api/sync/v1/enrol", json={**body, "code": "AAAA-BBBB-CCCC"}).status_code == 400
    response = client.post("/api/sync/v1/enrol", json={**body, "code": good})
    assert response.status_code == 429
    assert response.get_json()["code"] == "too_many_requests" and int(response.headers["Retry-After"]) > 800
    assert "Wait 15 minutes" in response.get_json()["message"]


def test_enrolments_are_limited_per_address_however_many_succeed(app, client, make_area):
    app.config["ENROL_LIMIT_ADDRESS"] = "2 per minute"
    area = make_area()
    codes = [operations.issue_invite(area, "street_rep", display_name=f"Rep {n}") for n in range(3)]
    db.session.commit()
    answers = [client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": code, "device_name": "Phone"}).status_code
               for code in codes]
    assert answers == [201, 201, 429]


def test_throttle_counters_hold_no_email_or_address(app, client, sam):
    _attempt(client, "sam@example.org")
    keys = " ".join(db.session.execute(db.select(ThrottleCounter.key)).scalars())
    assert keys and "sam" not in keys and "example" not in keys and "127.0.0.1" not in keys
    assert throttle.subject("sam@example.org") in keys


def test_the_database_counter_counts_every_hit_made_at_once(app):
    """Eight threads counting at the same moment: every hit counted once (the upsert is atomic)."""
    import threading

    from server.throttle import DatabaseStorage

    seen, errors = [], []

    def count():
        with app.app_context():
            try:
                for _ in range(5):
                    seen.append(DatabaseStorage().incr("concurrent", 60))
            except Exception as error:  # reported below, with the counts
                errors.append(repr(error))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=count) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(seen) == list(range(1, 41))
    assert DatabaseStorage().get("concurrent") == 40
