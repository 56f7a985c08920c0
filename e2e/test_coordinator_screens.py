"""The dashboard, priority list, trends, map and public page at desk and phone widths.

Each page must fit the width without scrolling sideways. The screenshots go to
KERBSIDE_SCREENSHOTS_DIR when it is set (docs/screenshots/ holds the committed ones),
else to the test's temporary folder.
"""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from e2e.conftest import DEMO_PASSWORD, PHONE

DESK = {"width": 1280, "height": 900}
PAGES = [
    ("coordinator-dashboard", "/coordinator/{area}/"),
    ("coordinator-priorities", "/coordinator/{area}/priorities"),
    ("coordinator-trends", "/coordinator/{area}/trends"),
    ("coordinator-map", "/coordinator/{area}/map"),
    ("public-area", "/area/{area}"),
    # The demo street form's Urdu translation, its fields right to left beside the English.
    ("coordinator-translation-ur", "/coordinator/{area}/forms/street/2/translation?lang=ur"),
]


@pytest.mark.parametrize("width_name, viewport", [("desk", DESK), ("phone", PHONE)])
def test_screens_fit_and_are_captured(page, live_server, tmp_path, width_name, viewport):
    folder = os.environ.get("KERBSIDE_SCREENSHOTS_DIR") or str(tmp_path)
    os.makedirs(folder, exist_ok=True)
    page.set_viewport_size(viewport)
    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill(live_server.details["email"])
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name=re.compile("^Sign out"))).to_be_visible()
    for name, path in PAGES:
        page.goto(live_server.url + path.format(area=live_server.details["area"]))
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        if name == "coordinator-map":
            expect(page.locator(".leaflet-marker-icon").first).to_be_visible()
        if name == "coordinator-trends":
            # The picture shows the charts, not only the page's heading and form.
            page.locator("#by-theme").evaluate("(heading) => heading.scrollIntoView()")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} scrolls sideways at {viewport['width']} px"
        target = os.path.join(folder, f"{name}-{width_name}.png")
        page.screenshot(path=target)
        assert os.path.getsize(target) > 5_000


# Every <text> of every chart as the browser lays it out: its computed font size, and the
# height of its box on screen (which a viewBox would scale with the chart's width).
CHART_TEXTS = """() => [...document.querySelectorAll("svg.chart text")].map((text) => ({
    chart: text.closest("svg").id,
    text: text.textContent,
    size: parseFloat(getComputedStyle(text).fontSize),
    height: text.getBoundingClientRect().height,
    width: text.getBoundingClientRect().width,
    scale: text.getScreenCTM().a,
}))"""
CHART_PAGES = [("/coordinator/{area}/trends", 20), ("/coordinator/{area}/", 3), ("/area/{area}", 3)]


@pytest.mark.parametrize("width_name, viewport", [("desk", DESK), ("phone", {"width": 375, "height": 812})])
def test_chart_text_is_at_least_12_px_as_displayed(page, live_server, width_name, viewport):
    page.set_viewport_size(viewport)
    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill(live_server.details["email"])
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name=re.compile("^Sign out"))).to_be_visible()
    for path, at_least in CHART_PAGES:
        page.goto(live_server.url + path.format(area=live_server.details["area"]))
        texts = page.evaluate(CHART_TEXTS)
        # The demo's charts are there to measure (a page without charts would pass by saying nothing).
        assert len(texts) >= at_least, (path, len(texts))
        small = [t for t in texts if t["size"] < 12 or t["height"] < 12 or abs(t["scale"] - 1) > 0.001]
        assert small == [], (path, width_name, small[:5])
        # Month names are words, not "25-12".
        assert not [t for t in texts if re.fullmatch(r"\d\d-\d\d", t["text"])]
        # No chart text runs past its chart's edge (cut off on a narrow screen).
        outside = page.evaluate("""() => [...document.querySelectorAll("svg.chart text")].filter((text) => {
            const box = text.getBoundingClientRect(), chart = text.closest("svg").getBoundingClientRect();
            return box.left < chart.left - 1 || box.right > chart.right + 1;
        }).map((text) => text.textContent)""")
        assert outside == [], (path, width_name, outside[:5])
    page.goto(live_server.url + CHART_PAGES[0][0].format(area=live_server.details["area"]))
    expect(page.locator("svg.chart text.chart-note", has_text="so far").first).to_be_visible()
