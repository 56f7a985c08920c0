"""Sites proposed in the field, moderated by a coordinator while another phone syncs.

Phone A is the field app in Chromium; phone B is the Python reference client over HTTP (the
same protocol, another person in the same area); the coordinator works in a second browser
context. Each proposal is seen by phone A alone until it is decided: approved under a new
name (then phone B has it too), merged into Canal Street (its visit moves there) or rejected
(its visit stays with no site, and phone A is told why). Screenshots of the sites-waiting page
and the dashboard's queue at 1280 and 375 px wide.
"""

from __future__ import annotations

import os
import re

from playwright.sync_api import expect

from e2e.conftest import DEMO_PASSWORD
from e2e.test_coordinator_flow import assert_accessible
from e2e.test_pwa_field import SYNC_TIMEOUT_MS, idb, launch, new_volunteer, save, waiting_count
from server.extensions import db
from server.models import Person, Site, Submission
from sync.client import Client

DESK = {"width": 1280, "height": 900}
NARROW = {"width": 375, "height": 812}


def propose(page, name, grade_index=1):
    """A street visit at a place that is not a site yet."""
    page.goto(page.url.split("#")[0] + "#/")
    page.get_by_role("link", name="Street monitoring visit").click()
    page.get_by_label("A new site not on the list").check()
    page.get_by_label("Name of the new site").fill(name)
    lines = page.locator("fieldset.line:has(.grades)")
    expect(lines.first).to_be_visible()
    for index in range(lines.count()):
        lines.nth(index).locator("label.grade").nth(grade_index).click()
    save(page)
    expect(waiting_count(page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)


def replica(page, collection) -> dict:
    return {row["id"]: row["data"] for row in idb(page, "replica") if row["collection"] == collection}


def last_sync(page):
    return page.evaluate(
        """() => new Promise((resolve) => {
            const open = indexedDB.open("kerbside");
            open.onsuccess = () => {
                const request = open.result.transaction("meta").objectStore("meta").get("last_sync");
                request.onsuccess = () => { open.result.close(); resolve(request.result || 0); };
            };
        })""")


def synced_app(page):
    """Open the app again: it syncs on start; wait until that sync has stored its pages."""
    before = last_sync(page)
    page.reload()
    expect(page.get_by_role("link", name="Street monitoring visit")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
    for _attempt in range(100):
        if last_sync(page) > before:
            return
        page.wait_for_timeout(200)
    raise AssertionError("the app did not sync after it was opened again")


def site_id_named(live, name) -> str:
    return live.run(lambda: db.session.query(Site).filter_by(name=name).one().id)


def coordinator_page(browser, live, viewport=DESK):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.goto(live.url + "/login")
    page.get_by_label("Email").fill(live.details["email"])
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name=re.compile("^Sign out"))).to_be_visible()
    return context, page


def fits(page, what):
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{what} scrolls sideways"


def test_approve_rename_merge_and_reject_while_another_phone_syncs(live_server, playwright, browser, tmp_path):
    area = live_server.details["area"]
    phone_a, page_a = launch(playwright, tmp_path / "phone-a")
    code_a = new_volunteer(live_server, "Rep Proposer", roles=("street_rep",))
    page_a.goto(f"{live_server.url}/app/")
    page_a.get_by_label("Invite code").fill(code_a)
    page_a.get_by_role("button", name="Join").click()
    expect(page_a.get_by_role("link", name="Street monitoring visit")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
    phone_b = Client(str(tmp_path / "phone-b.sqlite"), live_server.url)
    phone_b.enrol(new_volunteer(live_server, "Rep Other", roles=("street_rep",)), "Phone B")
    phone_b.sync_once()

    for name in ("Towpath steps", "Canal Stret", "Skip outside number 4"):
        propose(page_a, name)
    proposed = {name: site_id_named(live_server, name) for name in ("Towpath steps", "Canal Stret",
                                                                     "Skip outside number 4")}
    canal = site_id_named(live_server, "Canal Street")

    # Phone A holds its proposals, marked as waiting; phone B, syncing meanwhile, holds none of them.
    synced_app(page_a)
    mine = replica(page_a, "sites")
    assert {mine[site_id]["status"] for site_id in proposed.values()} == {"proposed"}
    page_a.get_by_role("link", name="Street monitoring visit").click()
    page_a.get_by_label("Find a site by name").fill("Towpath")
    expect(page_a.get_by_text("Towpath steps (proposed: waiting for your coordinator)")).to_be_visible()
    phone_b.sync_once()
    assert not set(proposed.values()) & set(phone_b.replica("sites"))
    assert canal in phone_b.replica("sites")
    # Phone B's street rep corrects Canal Street: held for review, shown on phone B alone.
    version = phone_b.replica("sites")[canal]["version"]
    phone_b.queue("site.update", {"id": canal, "base_version": version, "patch": {"notes": "Gate locked after 6pm"}})
    report = phone_b.sync_once()
    assert report.results[0]["pending_review"] is True
    assert phone_b.replica("sites")[canal]["pending_edit"] is True
    synced_app(page_a)
    assert replica(page_a, "sites")[canal]["notes"] != "Gate locked after 6pm"

    # The coordinator finds the queue on the dashboard, with exact counts.
    coordinator, desk = coordinator_page(browser, live_server)
    desk.goto(f"{live_server.url}/coordinator/{area}/")
    queue = desk.locator("section.waiting-queue")
    expect(queue).to_contain_text("3 sites proposed in the field")
    expect(queue).to_contain_text("1 change to a site by a street rep")
    assert_accessible(desk, "dashboard with the sites queue")
    queue.get_by_role("link", name="3 sites proposed in the field").click()
    expect(desk.get_by_role("heading", level=1, name="Sites waiting")).to_be_visible()
    assert_accessible(desk, "sites waiting")
    towpath = desk.locator(f"#site-{proposed['Towpath steps']}")
    expect(towpath).to_contain_text("Rep Proposer")
    expect(towpath).to_contain_text("1 visit")
    typo = desk.locator(f"#site-{proposed['Canal Stret']}")
    expect(typo.locator("dd ul")).to_contain_text("Canal Street")  # the most alike by name

    # Screenshots while all three wait, at desk and narrow widths.
    folder = os.environ.get("KERBSIDE_SCREENSHOTS_DIR") or str(tmp_path)
    os.makedirs(folder, exist_ok=True)
    for label, viewport in (("desk", DESK), ("phone", NARROW)):
        desk.set_viewport_size(viewport)
        desk.goto(f"{live_server.url}/coordinator/{area}/sites-waiting")
        fits(desk, f"sites waiting at {viewport['width']} px")
        desk.screenshot(path=os.path.join(folder, f"coordinator-sites-waiting-{label}.png"), full_page=True)
        desk.goto(f"{live_server.url}/coordinator/{area}/")
        fits(desk, f"dashboard at {viewport['width']} px")
        desk.locator("section.waiting-queue").screenshot(
            path=os.path.join(folder, f"coordinator-dashboard-queue-{label}.png"))
    desk.set_viewport_size(DESK)
    desk.goto(f"{live_server.url}/coordinator/{area}/sites-waiting")

    # Rename and approve.
    towpath = desk.locator(f"#site-{proposed['Towpath steps']}")
    towpath.get_by_label("Name (change it to rename the site)").fill("Towpath steps by the lock")
    towpath.get_by_role("button", name=re.compile("^Approve")).click()
    expect(desk.get_by_text("is approved")).to_be_visible()
    phone_b.sync_once()
    assert phone_b.replica("sites")[proposed["Towpath steps"]]["name"] == "Towpath steps by the lock"

    # Merge: the box must be ticked (the browser says so before anything is sent).
    typo = desk.locator(f"#site-{proposed['Canal Stret']}")
    typo.get_by_label("Same place as an existing site? Merge into").select_option(canal)
    typo.get_by_role("button", name=re.compile("^Merge")).click()
    assert live_server.run(lambda: db.session.get(Site, proposed["Canal Stret"]).status) == "proposed"
    typo.get_by_label(re.compile("^Yes, move its 1 visit")).check()
    typo.get_by_role("button", name=re.compile("^Merge")).click()
    expect(desk.get_by_text("is merged into")).to_be_visible()
    phone_b.sync_once()

    # Reject, with a reason the volunteer reads.
    skip = desk.locator(f"#site-{proposed['Skip outside number 4']}")
    skip.get_by_label("Not a site? Reason (the volunteer is told)").fill("A skip is not a site: report it as fly-tipping.")
    skip.get_by_label(re.compile("^Yes, reject it")).check()
    skip.get_by_role("button", name=re.compile("^Reject")).click()
    expect(desk.get_by_text("is rejected")).to_be_visible()
    expect(desk.get_by_text("No proposed site is waiting.")).to_be_visible()

    # Accept the street rep's correction: now every phone has it.
    edit = desk.locator("li[id^=edit-]")
    expect(edit).to_contain_text("Gate locked after 6pm")
    expect(edit).to_contain_text("Rep Other")
    edit.get_by_role("button", name=re.compile("^Accept the change")).click()
    expect(desk.get_by_text("The change is made")).to_be_visible()
    desk.goto(f"{live_server.url}/coordinator/{area}/")
    expect(desk.locator("section.waiting-queue")).to_contain_text("Nothing waits")

    # Phone B: the approved site, never the merged or rejected ones.
    phone_b.sync_once()
    held_b = phone_b.replica("sites")
    assert proposed["Towpath steps"] in held_b
    assert proposed["Canal Stret"] not in held_b and proposed["Skip outside number 4"] not in held_b
    assert held_b[canal]["notes"] == "Gate locked after 6pm" and "pending_edit" not in held_b[canal]

    # Phone A: the renamed site as an ordinary one, the others gone, visits re-pointed, told why.
    synced_app(page_a)
    mine = replica(page_a, "sites")
    assert mine[proposed["Towpath steps"]]["name"] == "Towpath steps by the lock"
    assert mine[proposed["Towpath steps"]]["status"] == "approved"
    assert mine[canal]["notes"] == "Gate locked after 6pm"
    assert proposed["Canal Stret"] not in mine and proposed["Skip outside number 4"] not in mine
    expect(page_a.get_by_text("is the same as “Canal Street”")).to_be_visible()
    expect(page_a.get_by_text("A skip is not a site: report it as fly-tipping.")).to_be_visible()

    def visits():
        person = db.session.query(Person).filter_by(display_name="Rep Proposer").one()
        return {s.id: s.site_id for s in db.session.query(Submission).filter_by(person_id=person.id)}

    stored = live_server.run(visits)
    assert sorted(stored.values(), key=str) == sorted([proposed["Towpath steps"], canal, None], key=str)
    mine_visits = replica(page_a, "my_submissions")
    assert {visit["id"]: visit["site_id"] for visit in mine_visits.values()} == stored
    page_a.get_by_role("link", name="My visits").click()
    expect(page_a.get_by_text(re.compile("Street visit — No site|— No site"))).to_be_visible()
    expect(page_a.get_by_text(re.compile("— Canal Street$"))).to_be_visible()
    coordinator.close()
    phone_a.close()
    phone_b.close()
