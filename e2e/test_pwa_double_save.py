"""A double tap on Save queues the visit once."""

from __future__ import annotations

from playwright.sync_api import expect

from e2e.test_pwa_field import SYNC_TIMEOUT_MS, choose_site, go_offline, join, launch, new_volunteer, waiting_count


def test_double_tap_on_save_queues_one_visit(live_server, playwright, tmp_path):
    code = new_volunteer(live_server, "Rep Double Tap")
    context, page = launch(playwright, tmp_path / "phone")
    page.goto(f"{live_server.url}/app/")
    join(page, live_server, code)
    expect(waiting_count(page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)
    go_offline(context, live_server)  # keep the item in the outbox, where it can be counted
    page.get_by_role("link", name="Street monitoring visit").click()
    choose_site(page, "Canal", "Canal Street")
    lines = page.locator("fieldset.line:has(.grades)")
    expect(lines.first).to_be_visible()
    for index in range(lines.count()):
        lines.nth(index).locator("label.grade").nth(1).click()
    page.get_by_role("button", name="Save and send").dblclick()
    expect(page.get_by_text("Saved. It will be sent by itself")).to_be_visible()
    expect(waiting_count(page)).to_have_attribute("data-count", "1")
    page.wait_for_timeout(500)  # a second queued item would have landed by now
    expect(waiting_count(page)).to_have_attribute("data-count", "1")
    context.close()
