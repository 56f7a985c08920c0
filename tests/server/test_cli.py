"""The `kerbside` command's admin tasks."""

from __future__ import annotations

import re

from sqlalchemy import select

from server import operations
from server.extensions import db
from server.models import Invite, ServerState


def test_invite_prints_a_one_time_code_that_enrols(app, client, make_area):
    area = make_area(slug="millbrook")
    result = app.test_cli_runner().invoke(args=["invite", "--area", "millbrook", "--role", "mystery_shopper", "--name", "Eve"])
    assert result.exit_code == 0, result.output
    code = result.output.strip()
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", code)
    db.session.expire_all()
    assert db.session.execute(select(Invite.role)).scalar_one() == "mystery_shopper"
    body = client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": code}).get_json()
    assert body["person"]["display_name"] == "Eve" and body["areas"][0]["id"] == area.id


def test_invite_for_an_unknown_area_says_so(app):
    result = app.test_cli_runner().invoke(args=["invite", "--area", "nowhere", "--role", "street_rep"])
    assert result.exit_code != 0 and "No area with slug 'nowhere'" in result.output


def test_new_epoch_changes_the_epoch(app):
    before = operations.server_state().epoch
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["new-epoch"])
    assert result.exit_code == 0
    db.session.expire_all()
    assert db.session.get(ServerState, 1).epoch != before


def test_add_coordinator_creates_a_person_who_can_sign_in(app, make_area):
    make_area(slug="millbrook")
    result = app.test_cli_runner().invoke(args=["add-coordinator", "--area", "millbrook", "--email", "Jo@Example.org",
                                                "--name", "Jo", "--password", "a long passphrase"])
    assert result.exit_code == 0, result.output
    from server.auth import check_password, has_role, person_by_email

    db.session.expire_all()
    person = person_by_email("jo@example.org")
    assert check_password(person, "a long passphrase") and has_role(person, "coordinator")
