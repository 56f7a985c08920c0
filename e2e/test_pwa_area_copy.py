"""An area's own copy of a shared form takes the shared form's place on its volunteers' phones."""

from __future__ import annotations

from playwright.sync_api import expect

from e2e.test_pwa_field import SYNC_TIMEOUT_MS, join, new_volunteer
from server import operations
from server.extensions import db
from server.models import Area, Form

TITLE = "Millbrook's own street check"


def _publish_area_copy(live):
    def work():
        area = db.session.query(Area).filter_by(slug=live.details["area"]).one()
        shared = db.session.get(Form, "street")
        draft = operations.copy_shared_form(shared, area)
        draft.definition = {**draft.definition, "title": TITLE}
        operations.publish_form_version(draft)
        db.session.commit()

    return live.run(work)


def test_a_phone_offers_the_areas_copy_instead_of_the_shared_form(page, live_server):
    _publish_area_copy(live_server)
    join(page, live_server, new_volunteer(live_server, "Copy Rep"))
    # One street form on the home screen, not the shared one beside the copy.
    links = page.get_by_role("link", name="Street monitoring visit")
    expect(links).to_have_count(1)
    links.click()
    expect(page.get_by_role("heading", level=1, name=TITLE)).to_be_visible(timeout=SYNC_TIMEOUT_MS)
