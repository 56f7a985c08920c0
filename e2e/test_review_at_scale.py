"""Review at scale in a real browser: bulk-accepting 50 visits filtered by site, and reviewing
visit after visit from the keyboard. Screenshots of the filtered queue and the confirmation at
desk and phone widths go to KERBSIDE_SCREENSHOTS_DIR when it is set (docs/screenshots/)."""

from __future__ import annotations

import os
import re
import uuid
from datetime import datetime, timedelta, timezone

from playwright.sync_api import expect
from sqlalchemy import func, select

from e2e.conftest import DEMO_PASSWORD
from e2e.test_coordinator_flow import assert_accessible
from server import operations
from server.extensions import db
from server.models import Answer, Area, Person, Role, Submission
from server.seed_content import STREET_FORM

DESK = {"width": 1280, "height": 900}
NARROW = {"width": 375, "height": 812}
LINES = [(line["key"], section["theme"]) for section in STREET_FORM["sections"] for line in section["lines"]]


def _seed(live_server, site_name: str, visits: int) -> str:
    """A new site of the demo area with `visits` street visits waiting for review; returns the site's id."""

    def work():
        area = db.session.execute(select(Area).where(Area.slug == live_server.details["area"])).scalar_one()
        (site,) = operations.create_sites(area, [{"name": site_name, "lat": 53.54, "lng": -2.63}])
        rep = db.session.execute(select(Person).join(Role).where(Role.area_id == area.id,
                                                                 Role.role == "street_rep")).scalars().first()
        now = datetime.now(timezone.utc).replace(microsecond=0)
        for n in range(visits):
            visit_id = str(uuid.uuid4())
            observed = now - timedelta(hours=n + 1)
            db.session.add(Submission(
                id=visit_id, form_id="street", form_version=1, kind="street", area_id=area.id, site_id=site.id,
                person_id=rep.id, observed_at=observed, received_at=observed + timedelta(minutes=5),
                payload_hash="sha256:" + uuid.uuid4().hex, data={"id": visit_id}, review_status="pending"))
            db.session.flush()  # the visit before its answers (no foreign key orders them)
            for key, theme in LINES:
                db.session.add(Answer(submission_id=visit_id, line_key=key, theme=theme, grade="C", area_id=area.id,
                                      site_id=site.id, kind="street", observed_at=observed))
            db.session.flush()
        db.session.commit()
        return site.id

    return live_server.run(work)


def _statuses(live_server, site_id: str) -> dict[str, int]:
    def work():
        return dict(db.session.execute(select(Submission.review_status, func.count())
                                       .where(Submission.site_id == site_id)
                                       .group_by(Submission.review_status)).all())

    return live_server.run(work)


def _sign_in(page, live_server):
    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill(live_server.details["email"])
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name=re.compile("^Sign out"))).to_be_visible()


def _capture(page, name: str, tmp_path):
    folder = os.environ.get("KERBSIDE_SCREENSHOTS_DIR") or str(tmp_path)
    os.makedirs(folder, exist_ok=True)
    for width_name, viewport in (("desk", DESK), ("phone", NARROW)):
        page.set_viewport_size(viewport)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} scrolls sideways at {viewport['width']} px"
        target = os.path.join(folder, f"{name}-{width_name}.png")
        # A phone's first screens: the filters, the count, the bulk actions and the first rows.
        page.screenshot(path=target, full_page=True,
                        clip={"x": 0, "y": 0, "width": viewport["width"], "height": 1500 if width_name == "phone" else 900})
        assert os.path.getsize(target) > 5_000
    page.set_viewport_size(DESK)


def test_bulk_accepting_50_visits_filtered_by_site(page, live_server, tmp_path):
    site_id = _seed(live_server, "Bulk Review Street", 52)
    _sign_in(page, live_server)
    page.goto(f"{live_server.url}/coordinator/{live_server.details['area']}/submissions")
    page.get_by_label("Site", exact=True).select_option(label="Bulk Review Street")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#review-count")).to_have_text("52 visits match.")
    assert_accessible(page, "filtered review queue")

    # Two ticked by hand first: the rest are then accepted as "all matching".
    rows = page.locator(".review-table tbody tr")
    rows.nth(0).get_by_role("checkbox").check()
    rows.nth(1).get_by_role("checkbox").check()
    page.get_by_role("button", name="Accept selected").click()
    expect(page.get_by_text("2 visits accepted.")).to_be_visible()
    expect(page.locator("#review-count")).to_have_text("50 visits match.")
    assert _statuses(live_server, site_id) == {"accepted": 2, "pending": 50}
    expect(page.get_by_label("Site", exact=True)).to_have_value(site_id)  # the filters are kept
    _capture(page, "coordinator-review-filtered", tmp_path)

    page.get_by_role("link", name="Accept all 50 matching visits…").click()
    expect(page.get_by_role("heading", level=1, name="Accept all matching visits")).to_be_visible()
    expect(page.get_by_text("50 visits match these filters.")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("Bulk Review Street")
    assert_accessible(page, "accept all confirmation")
    _capture(page, "coordinator-review-accept-all", tmp_path)
    page.get_by_role("button", name="Accept 50 visits").click()
    expect(page.get_by_text("50 visits accepted.")).to_be_visible()
    expect(page.locator("#review-count")).to_have_text("0 visits match.")
    assert _statuses(live_server, site_id) == {"accepted": 52}


def test_select_all_on_the_page_ticks_every_row(page, live_server):
    site_id = _seed(live_server, "Select All Street", 4)
    _sign_in(page, live_server)
    page.goto(f"{live_server.url}/coordinator/{live_server.details['area']}/submissions?site={site_id}")
    page.get_by_role("checkbox", name="Select all visits on this page").check()
    boxes = page.locator(".review-table tbody input[type=checkbox]")
    expect(boxes).to_have_count(4)
    for n in range(4):
        expect(boxes.nth(n)).to_be_checked()
    boxes.nth(3).uncheck()  # then only the three still ticked are meant
    expect(page.get_by_role("checkbox", name="Select all visits on this page")).not_to_be_checked()
    page.get_by_role("button", name="Accept selected").click()
    expect(page.get_by_text("3 visits accepted.")).to_be_visible()
    assert _statuses(live_server, site_id) == {"accepted": 3, "pending": 1}


def test_reviewing_visit_after_visit_from_the_keyboard(page, live_server):
    site_id = _seed(live_server, "Keyboard Lane", 3)
    _sign_in(page, live_server)
    page.goto(f"{live_server.url}/coordinator/{live_server.details['area']}/submissions?site={site_id}")
    links = page.locator(".review-table tbody th a")
    hrefs = [links.nth(n).get_attribute("href") for n in range(3)]
    ids = [re.search(r"/submissions/([^?]+)", href).group(1) for href in hrefs]
    links.first.click()
    expect(page.get_by_role("heading", name="Keys")).to_be_visible()
    assert_accessible(page, "visit page with keys")

    page.get_by_role("radio", name="Accept").focus()  # a chosen radio button is not a text field: keys still work
    page.keyboard.press("j")
    expect(page).to_have_url(re.compile(f"/submissions/{ids[1]}\\?.*site={site_id}"))
    page.keyboard.press("k")
    expect(page).to_have_url(re.compile(f"/submissions/{ids[0]}\\?"))
    page.keyboard.press("a")  # accept, and on to the next visit of the same list
    expect(page).to_have_url(re.compile(f"/submissions/{ids[1]}\\?.*site={site_id}"))
    expect(page.get_by_text("This is the next visit.")).to_be_visible()

    page.keyboard.press("f")  # flag: the choice made, the reason box ready for words
    expect(page.get_by_role("radio", name=re.compile("^Flag it"))).to_be_checked()
    expect(page.get_by_label(re.compile("^Reason"))).to_be_focused()
    page.keyboard.type("just the letters j and k, typed as words")  # not moves while typing
    expect(page).to_have_url(re.compile(f"/submissions/{ids[1]}\\?"))
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Save the review and go to the next visit")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(f"/submissions/{ids[2]}\\?"))

    def work():
        return {i: db.session.get(Submission, i).review_status for i in ids}

    assert live_server.run(work) == {ids[0]: "accepted", ids[1]: "flagged", ids[2]: "pending"}
    assert _statuses(live_server, site_id) == {"accepted": 1, "flagged": 1, "pending": 1}
