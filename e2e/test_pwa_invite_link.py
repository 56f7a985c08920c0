"""The invite link a coordinator's QR code holds opens the field app ready to join."""

from __future__ import annotations

from playwright.sync_api import expect

from e2e.conftest import PHONE


def test_invite_link_from_the_qr_code_prefills_the_code_and_joins(live_server, browser):
    code = live_server.invite("street_rep", name="Rep from a QR code")
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{live_server.url}/app/#invite={code}")
    field = page.get_by_label("Invite code")
    expect(field).to_have_value(code)
    page.get_by_role("button", name="Join").click()
    expect(page.get_by_role("heading", name="Hello, Rep from a QR code")).to_be_visible()
    context.close()
