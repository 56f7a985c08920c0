"""A coordinator's day in a real browser, on the demo data, with axe-core on every page.

Walk the priority list to a visit, raise an action, mark it not doing with a reason,
publish the area's own copy of the shared street form, and see the public page change.
"""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from e2e.conftest import DEMO_PASSWORD, PHONE

_axe = Axe()


def assert_accessible(page, where: str):
    """No serious or critical axe-core violations on the page as it is now."""
    violations = _axe.run(page).response["violations"]
    bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations
           if v["impact"] in ("serious", "critical")]
    assert not bad, f"{where}: {bad}"


def sign_in(page, live_server):
    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill(live_server.details["email"])
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(live_server.url + "/coordinator/")
    expect(page.get_by_role("heading", level=1, name="Dashboard")).to_be_visible()


def test_priority_to_action_to_public_page(page, browser, live_server):
    sign_in(page, live_server)
    assert_accessible(page, "dashboard")

    page.get_by_role("navigation", name=re.compile("Workspace for")).get_by_role("link", name="Priorities").click()
    expect(page.get_by_role("heading", level=1, name="Priority list")).to_be_visible()
    assert_accessible(page, "priority list")
    first_row = page.locator(".priority-table tbody tr").first
    site_name = first_row.locator("th").inner_text().strip()
    first_row.locator("a.evidence").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(site_name)
    expect(page.get_by_text("Received (server time)")).to_be_visible()
    assert_accessible(page, "visit")

    page.get_by_role("link", name=re.compile("^Raise an action")).first.click()
    expect(page.get_by_role("heading", level=1, name="Raise an action")).to_be_visible()
    assert_accessible(page, "raise an action")
    title = f"E2E: sort out the problem at {site_name}"
    page.get_by_label("What will be done").fill(title)
    page.get_by_label("Assigned to (service or partner)").select_option("Street cleansing")
    page.get_by_role("button", name="Raise the action").click()
    expect(page.get_by_role("heading", level=1, name=title)).to_be_visible()
    assert_accessible(page, "action")

    reason = "E2E: the landowner must clear it; we have written to them and will check in a month."
    page.get_by_role("radio", name="Not doing").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("residents will see the reason")
    page.get_by_role("radio", name="Not doing").check()
    page.get_by_label("Reason, if it is not being done").fill(reason)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Action updated.")).to_be_visible()

    page.get_by_role("link", name="Forms", exact=True).click()
    assert_accessible(page, "forms")
    # The street form is shared by every area: the coordinator makes the area's own copy of it.
    street = page.locator("section.card", has=page.get_by_role("heading", name=re.compile("^Neighbourhood Agreement Monitoring Form")))
    expect(street.get_by_role("button", name=re.compile("^New draft of"))).to_have_count(0)
    street.get_by_role("button", name=re.compile("own copy$")).click()
    expect(page.get_by_role("heading", name="Preview, as the phone shows it")).to_be_visible()
    assert_accessible(page, "form draft")
    # The words are plain fields; the JSON waits, folded, for structural changes.
    page.get_by_label("Title", exact=True).fill("Street monitoring form (E2E edition)")
    first_line = page.locator("fieldset.line-words").first
    first_line.get_by_label("Wording for C").fill("Large groups gathering most evenings")
    page.get_by_role("button", name="Save the draft").click()
    expect(page.get_by_text("Draft saved.")).to_be_visible()
    expect(page.get_by_role("heading", level=3, name="Street monitoring form (E2E edition)")).to_be_visible()
    expect(page.get_by_text("Large groups gathering most evenings").first).to_be_visible()
    assert not page.get_by_label(re.compile("^The form as JSON")).is_visible()
    page.get_by_role("button", name=re.compile("^Publish version")).click()
    expect(page.get_by_text(re.compile("published. Phones get it on their next sync"))).to_be_visible()

    # A resident, not signed in, reads the public page.
    resident = browser.new_context()
    public = resident.new_page()
    public.goto(f"{live_server.url}/area/{live_server.details['area']}")
    expect(public.get_by_text(reason)).to_be_visible()
    expect(public.get_by_text("Street monitoring form (E2E edition)")).to_be_visible()
    assert "Street rep Ann" not in public.content()
    assert_accessible(public, "public page")
    resident.close()


@pytest.mark.parametrize("path", ["trends", "map", "coverage", "mystery-shops", "submissions", "actions", "people",
                                  "exports", "agreement", "settings"])
def test_other_pages_pass_axe_at_phone_width(page, live_server, path):
    page.set_viewport_size(PHONE)
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/coordinator/{live_server.details['area']}/{path}")
    if path == "map":
        expect(page.locator(".leaflet-marker-icon").first).to_be_visible()
        assert page.locator(".leaflet-marker-icon").count() == page.locator("#site-list tbody tr[data-grade]").evaluate_all(
            "rows => rows.filter(r => r.dataset.lat).length")
    assert_accessible(page, path)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{path} scrolls sideways at {PHONE['width']} px"
