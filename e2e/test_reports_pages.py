"""Exports and checklist results in a real browser: the XLSX downloaded from the exports page and
read back with openpyxl; both pages at desk and phone widths (no sideways scroll, axe-core,
screenshots to KERBSIDE_SCREENSHOTS_DIR when it is set, else the test's temporary folder).
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, timezone

import openpyxl
import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from e2e.conftest import DEMO_PASSWORD
from e2e.test_coordinator_flow import assert_accessible
from server.coordinator import exports
from server.extensions import db
from server.models import Answer, Area

DESK = {"width": 1280, "height": 900}
PHONE_375 = {"width": 375, "height": 812}


def _sign_in(page, live_server):
    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill(live_server.details["email"])
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name=re.compile("^Sign out"))).to_be_visible()


def test_download_the_workbook_for_a_period_and_read_it_back(page, live_server, tmp_path):
    _sign_in(page, live_server)
    page.goto(f"{live_server.url}/coordinator/{live_server.details['area']}/exports")
    today = datetime.now(timezone.utc).date()
    start, end = today - timedelta(days=30), today
    page.get_by_label("From").fill(start.isoformat())
    page.get_by_label("To").fill(end.isoformat())
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download the workbook (XLSX)").click()
    download = download_info.value
    assert download.suggested_filename == f"{live_server.details['area']}-kerbside-{start}-to-{end}.xlsx"
    target = tmp_path / "kerbside.xlsx"
    download.save_as(target)

    book = openpyxl.load_workbook(target, read_only=True)
    assert book.sheetnames == ["Street visits", "Mystery shops", "Checklists", "Columns"]
    street = list(book["Street visits"].iter_rows(values_only=True))
    assert street[0] == exports.SUBMISSION_COLUMNS
    assert list(book["Checklists"].iter_rows(max_row=1, values_only=True))[0] == exports.CHECKLIST_COLUMNS

    def graded_lines():
        area = db.session.execute(select(Area).where(Area.slug == live_server.details["area"])).scalar_one()
        begin = datetime(start.year, start.month, start.day, tzinfo=timezone.utc)
        return db.session.execute(select(func.count()).select_from(Answer).where(
            Answer.area_id == area.id, Answer.kind == "street", Answer.grade.is_not(None),
            Answer.observed_at >= begin, Answer.observed_at < begin + timedelta(days=31))).scalar()

    # One row per graded line of the month's street visits, each with its words beside its key.
    assert len(street) - 1 == live_server.run(graded_lines) > 0
    header = street[0]
    litter = next(row for row in street[1:] if row[header.index("line_key")] == "litter")
    assert litter[header.index("line_label")] == "Litter"
    assert re.fullmatch(r"Volunteer [0-9A-F]{6}", litter[header.index("volunteer")])
    columns = {(sheet, column): words for sheet, column, words in book["Columns"].iter_rows(min_row=2, values_only=True)}
    assert columns[("Street visits", "grade")].startswith("The grade letter")


@pytest.mark.parametrize("width_name, viewport", [("desk", DESK), ("phone", PHONE_375)])
def test_checklist_results_and_exports_fit_and_are_captured(page, live_server, tmp_path, width_name, viewport):
    folder = os.environ.get("KERBSIDE_SCREENSHOTS_DIR") or str(tmp_path)
    os.makedirs(folder, exist_ok=True)
    page.set_viewport_size(viewport)
    _sign_in(page, live_server)
    area = live_server.details["area"]
    for name, path in (("coordinator-checklists", f"/coordinator/{area}/checklists"),
                       ("coordinator-exports", f"/coordinator/{area}/exports")):
        page.goto(live_server.url + path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        if name == "coordinator-checklists":
            expect(page.locator("svg.chart").first).to_be_visible()
            expect(page.get_by_role("row", name=re.compile("^Listen, be open, honest and friendly"))).to_have_count(1)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} scrolls sideways at {viewport['width']} px"
        assert_accessible(page, name)
        target = os.path.join(folder, f"{name}-{width_name}.png")
        page.screenshot(path=target, full_page=True)
        assert os.path.getsize(target) > 5_000
    # The public page shows the same checklist figures, with no names.
    page.goto(f"{live_server.url}/area/{area}")
    section = page.locator("section", has=page.get_by_role("heading", name="Is the agreement being kept?", level=2))
    expect(section.get_by_role("row", name=re.compile("^Listen, be open, honest and friendly"))).to_have_count(1)
    assert "Street rep" not in section.inner_text()
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"public page scrolls sideways at {viewport['width']} px"
    assert_accessible(page, "public page")
    target = os.path.join(folder, f"public-area-checklists-{width_name}.png")
    section.screenshot(path=target)
    assert os.path.getsize(target) > 5_000


def test_a_standards_lines_are_ticked_in_the_agreement_editor_and_used_on_the_mystery_shops_page(page, live_server):
    _sign_in(page, live_server)
    area = live_server.details["area"]
    page.goto(f"{live_server.url}/coordinator/{area}/agreement")
    page.get_by_role("button", name="New draft of the agreement").click()
    boxes = page.get_by_role("group", name=re.compile("^Street-form lines this standard concerns")).first
    expect(boxes.get_by_label("Bins left out on the street")).to_be_checked()
    assert_accessible(page, "agreement draft")
    boxes.get_by_label("Bins left out on the street").uncheck()
    boxes.get_by_label("Fly-tipping").check()
    page.get_by_role("button", name="Save the draft").first.click()
    expect(page.get_by_text("Draft saved.")).to_be_visible()
    boxes = page.get_by_role("group", name=re.compile("^Street-form lines this standard concerns")).first
    expect(boxes.get_by_label("Fly-tipping")).to_be_checked()
    expect(boxes.get_by_label("Bins left out on the street")).not_to_be_checked()
    page.get_by_role("button", name=re.compile(r"^Publish version \d+$")).click()
    page.goto(f"{live_server.url}/coordinator/{area}/mystery-shops")
    expect(page.get_by_role("row", name=re.compile("^Bins emptied weekly"))).to_contain_text("Lines: Litter, Fly-tipping")
    expect(page.get_by_role("row", name=re.compile("^Phone calls answered"))).to_contain_text(
        "No lines named: the whole theme Home Sweet Home")
