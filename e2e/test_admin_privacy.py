"""An admin in a real browser, under the strict CSP: read and filter the audit log, export and erase a volunteer.

No Content Security Policy violation is logged on any of these pages, and axe-core finds no
serious or critical problem.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select

from e2e.conftest import DEMO_PASSWORD
from e2e.test_coordinator_flow import assert_accessible
from server import operations
from server.extensions import db
from server.models import Person

ADMIN_EMAIL = "ada.admin@example.org"


def _add_admin():
    operations.create_person("Ada Admin", email=ADMIN_EMAIL, password=DEMO_PASSWORD, roles=[("admin", None)])
    db.session.commit()


def _a_volunteer():
    person = db.session.execute(select(Person).where(Person.email.is_(None)).order_by(Person.display_name)).scalars().first()
    return person.id, person.display_name


def test_admin_reads_the_audit_log_then_exports_and_erases_a_volunteer(page, live_server):
    violations = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    live_server.run(_add_admin)
    person_id, name = live_server.run(_a_volunteer)

    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.goto(live_server.url + "/admin/audit")
    expect(page.get_by_role("heading", level=1, name="Audit log")).to_be_visible()
    expect(page.get_by_role("cell", name=re.compile("Signed in")).first).to_be_visible()
    assert_accessible(page, "audit log")
    page.get_by_label("Action").select_option("sign_in")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"action=sign_in"))

    page.get_by_role("link", name="Personal data").first.click()
    expect(page.get_by_role("heading", level=1, name="Personal data")).to_be_visible()
    page.get_by_label("Name, email or id").fill(name)
    page.get_by_role("button", name="Find").click()
    page.get_by_role("link", name=name).first.click()
    expect(page.get_by_role("heading", level=1, name=name)).to_be_visible()
    assert_accessible(page, "person")
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Download everything held")).click()
    assert download.value.suggested_filename == f"kerbside-person-{person_id}.json"

    page.get_by_role("link", name="Erase this person").click()
    expect(page.get_by_text("Erasing cannot be undone.")).to_be_visible()
    assert_accessible(page, "erase")
    page.get_by_label("Yes, erase this person").check()
    page.get_by_role("button", name="Erase").click()
    expect(page.get_by_role("status")).to_contain_text("The person is erased")

    page.goto(live_server.url + "/admin/audit?action=person.erase")
    expect(page.get_by_role("cell", name=person_id)).to_be_visible()
    assert violations == []

    # Negative control: an inline style, which the CSP refuses, is seen by the listener above.
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\"color: red\">x</p>')")
    page.wait_for_timeout(200)
    assert violations, "the CSP listener saw nothing"
