"""A volunteer is one person however many phones they use.

The coordinator invites a new volunteer without a name; the volunteer gives theirs on the
phone. Later the coordinator invites them again for a new phone (a second browser profile):
the new phone joins the same person, and the coordinator finds one history with both phones.
Signing out on a phone without a signal revokes it on the server once the signal is back,
after a reload. The People page and the revoke confirmation are captured at 1280 and 375 px
(into KERBSIDE_SCREENSHOTS_DIR when set, docs/screenshots/ holds the committed ones).
"""

from __future__ import annotations

import os
import re
import time

from playwright.sync_api import expect

from e2e.conftest import DEMO_PASSWORD
from e2e.test_coordinator_flow import assert_accessible
from e2e.test_pwa_field import (
    SYNC_TIMEOUT_MS,
    fill_street_visit,
    go_offline,
    go_online,
    launch,
    new_volunteer,
    wait_until_offline_ready,
    waiting_count,
)
from server.extensions import db
from server.models import AuditEntry, Device, Person, Submission

DESK = {"width": 1280, "height": 900}
NARROW = {"width": 375, "height": 800}


def _sign_in_coordinator(page, live):
    page.goto(live.url + "/login")
    page.get_by_label("Email").fill(live.details["email"])
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name=re.compile("^Sign out"))).to_be_visible()


def _join_phone(page, live, code, name=""):
    page.goto(f"{live.url}/app/")
    page.get_by_label("Invite code").fill(code)
    if name:
        page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Join").click()
    expect(page.get_by_role("link", name="Street monitoring visit")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
    # Tests here go offline right after joining: the app must be able to start with no signal.
    wait_until_offline_ready(page)


def _capture(page, name: str, tmp_path):
    folder = os.environ.get("KERBSIDE_SCREENSHOTS_DIR") or str(tmp_path)
    os.makedirs(folder, exist_ok=True)
    for width_name, viewport in (("desk", DESK), ("phone", NARROW)):
        page.set_viewport_size(viewport)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} scrolls sideways at {viewport['width']} px"
        target = os.path.join(folder, f"{name}-{width_name}.png")
        page.screenshot(path=target, full_page=True)
        assert os.path.getsize(target) > 5_000
    page.set_viewport_size(DESK)


def _history(live, name):
    def work():
        people = db.session.query(Person).filter_by(display_name=name).all()
        return [(p.id, sorted(d.name for d in db.session.query(Device).filter_by(person_id=p.id)),
                 db.session.query(Submission).filter_by(person_id=p.id).count()) for p in people]

    return live.run(work)


def test_a_new_phone_joins_the_same_person_and_the_coordinator_finds_one_history(live_server, browser, playwright,
                                                                                   tmp_path):
    desk = browser.new_context(viewport=DESK)
    coordinator = desk.new_page()
    _sign_in_coordinator(coordinator, live_server)
    area = live_server.details["area"]
    coordinator.goto(f"{live_server.url}/coordinator/{area}/people")
    coordinator.get_by_role("button", name="Make an invite code").click()  # no name: the volunteer gives it
    first_code = coordinator.locator(".invite-code").inner_text()

    old_phone, old_page = launch(playwright, tmp_path / "old-phone")
    _join_phone(old_page, live_server, first_code, name="Nia Newcomer")
    expect(old_page.get_by_role("heading", level=1, name="Hello, Nia Newcomer")).to_be_visible()
    fill_street_visit(old_page, "Canal Street")
    expect(waiting_count(old_page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)

    coordinator.goto(f"{live_server.url}/coordinator/{area}/people")
    coordinator.get_by_role("button", name="Invite Nia Newcomer again for a new phone").click()
    expect(coordinator.get_by_role("heading", name=re.compile("New phone for Nia Newcomer"))).to_be_visible()
    second_code = coordinator.locator(".invite-code").inner_text()
    assert second_code != first_code

    new_phone, new_page = launch(playwright, tmp_path / "new-phone")
    _join_phone(new_page, live_server, second_code)
    expect(new_page.get_by_role("heading", level=1, name="Hello, Nia Newcomer")).to_be_visible()
    fill_street_visit(new_page, "Mill Lane")
    expect(waiting_count(new_page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)

    # One person, both phones named readably (nobody typed a phone name), both visits.
    [(person_id, devices, visits)] = _history(live_server, "Nia Newcomer")
    assert visits == 2 and len(devices) == 2
    assert all(re.match(r"^(Linux computer|Android phone|Phone or computer), joined ", d) for d in devices), devices

    coordinator.goto(f"{live_server.url}/coordinator/{area}/people")
    row = coordinator.get_by_role("link", name="Nia Newcomer", exact=True)
    expect(row).to_have_count(1)
    _capture(coordinator, "coordinator-people", tmp_path)
    assert_accessible(coordinator, "people")
    row.click()
    expect(coordinator.get_by_role("heading", level=1, name="Nia Newcomer")).to_be_visible()
    facts = coordinator.locator("dl.facts")
    expect(facts).to_contain_text("Visits sent")
    expect(facts.locator("dd").nth(1)).to_have_text("2")
    expect(coordinator.get_by_role("link", name=re.compile("^Sign out “"))).to_have_count(2)

    coordinator.get_by_role("link", name=re.compile("^Sign out “")).first.click()
    expect(coordinator.get_by_role("heading", level=1, name=re.compile("^Sign out “.*”\\?$"))).to_be_visible()
    expect(coordinator.get_by_text("Visits the phone has not sent yet are refused by the server")).to_be_visible()
    _capture(coordinator, "coordinator-device-revoke", tmp_path)
    assert_accessible(coordinator, "revoke confirmation")
    coordinator.get_by_role("button", name="Sign out this device").click()
    expect(coordinator.get_by_text(re.compile("is signed out"))).to_be_visible()

    # The signed-out phone is told on its next sync; the other phone still works.
    old_page.reload()  # it syncs as it starts
    expect(old_page.get_by_text("This phone needs to join again")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
    fill_street_visit(new_page, "Canal Street")
    expect(waiting_count(new_page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)
    assert _history(live_server, "Nia Newcomer")[0][2] == 3
    old_phone.close()
    new_phone.close()
    desk.close()


def test_signing_out_offline_revokes_the_phone_once_the_signal_is_back(live_server, playwright, tmp_path):
    code = new_volunteer(live_server, "Rep Leaving", roles=("street_rep",))
    phone, page = launch(playwright, tmp_path / "phone")
    _join_phone(page, live_server, code)
    device_id = page.evaluate("""() => new Promise((resolve) => {
        const open = indexedDB.open("kerbside");
        open.onsuccess = () => {
            const request = open.result.transaction("meta").objectStore("meta").get("device_id");
            request.onsuccess = () => resolve(request.result);
        };
    })""")
    go_offline(phone, live_server)
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_text("as soon as it has a signal")).to_be_visible()
    expect(page.get_by_role("heading", level=1, name="Join")).to_be_visible()

    def revoked():
        return live_server.run(lambda: db.session.get(Device, device_id).revoked_at is not None)

    assert not revoked()
    page.reload()  # offline: the service worker serves the app, and the sign-out still waits
    expect(page.get_by_role("heading", level=1, name="Join")).to_be_visible()
    assert not revoked()
    go_online(phone, live_server)
    deadline = time.monotonic() + SYNC_TIMEOUT_MS / 1000
    while not revoked() and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert revoked()
    entries = live_server.run(lambda: [e.action for e in db.session.query(AuditEntry).filter_by(device_id=device_id)])
    assert entries.count("device.signed_out") == 1
    phone.close()


def test_the_next_volunteer_takes_over_a_shared_phone_with_their_rejoin_code(live_server, browser, playwright,
                                                                              tmp_path):
    first_code = new_volunteer(live_server, "Rep Morning", roles=("street_rep",))
    new_volunteer(live_server, "Rep Evening", roles=("street_rep",))
    desk = browser.new_context(viewport=DESK)
    coordinator = desk.new_page()
    _sign_in_coordinator(coordinator, live_server)
    evening_id = live_server.run(lambda: db.session.query(Person).filter_by(display_name="Rep Evening").one().id)
    coordinator.goto(f"{live_server.url}/coordinator/{live_server.details['area']}/people/{evening_id}")
    coordinator.get_by_role("button", name="Make a re-join code").click()
    rejoin = coordinator.locator(".invite-code").inner_text()
    assert len(rejoin.replace("-", "")) == 16

    phone, page = launch(playwright, tmp_path / "shared-phone")
    _join_phone(page, live_server, first_code)
    expect(page.get_by_role("heading", level=1, name="Hello, Rep Morning")).to_be_visible()
    morning_device = page.evaluate("""() => new Promise((resolve) => {
        const open = indexedDB.open("kerbside");
        open.onsuccess = () => {
            const request = open.result.transaction("meta").objectStore("meta").get("device_id");
            request.onsuccess = () => resolve(request.result);
        };
    })""")
    # While Rep Morning is signed in, the join screen says to sign out first.
    page.goto(f"{live_server.url}/app/#/join")
    expect(page.get_by_text("Rep Morning is still signed in on this phone")).to_be_visible()
    expect(page.get_by_role("button", name="Join")).to_have_count(0)
    page.get_by_role("link", name="Settings").first.click()
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("heading", level=1, name="Join")).to_be_visible()
    _join_phone(page, live_server, rejoin)
    expect(page.get_by_role("heading", level=1, name="Hello, Rep Evening")).to_be_visible()

    def devices():
        return [(d.person.display_name, d.revoked_at is not None)
                for d in db.session.query(Device).join(Person).filter(Person.display_name.like("Rep %ing"))]

    found = live_server.run(devices)
    assert ("Rep Morning", True) in found and ("Rep Evening", False) in found
    assert live_server.run(lambda: db.session.get(Device, morning_device).revoked_at is not None)
    phone.close()
    desk.close()


def test_a_volunteer_who_gives_no_name_is_greeted_with_just_hello(live_server, browser):
    from server import operations
    from server.models import Area

    def nameless_invite():
        area = db.session.query(Area).filter_by(slug=live_server.details["area"]).one()
        code = operations.issue_invite(area, "street_rep")
        db.session.commit()
        return code

    context = browser.new_context(viewport=NARROW)
    page = context.new_page()
    _join_phone(page, live_server, live_server.run(nameless_invite))
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello")
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_text(re.compile(r"^Signed in on (Linux computer|Android phone|Phone or computer), joined "))).to_be_visible()
    context.close()
