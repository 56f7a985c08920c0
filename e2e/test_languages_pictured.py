"""The phone's street form and the public page in each shipped language, pictured, and the
charts read from the right in Urdu.

In a real Chromium: English, Welsh and Urdu, each checked by axe-core (no finding of any
impact), with `lang` and `dir` right, no sideways scrolling at a phone's width, and a
screenshot into KERBSIDE_SCREENSHOTS_DIR when it is set (docs/screenshots/ holds the committed
ones). The trends page in Urdu: every chart's text inside its chart, and the month labels on
the right, where a right-to-left reader starts.
"""

from __future__ import annotations

import os

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from e2e.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE
from e2e.test_csp import _sign_in
from e2e.test_pwa_field import SYNC_TIMEOUT_MS, new_volunteer

LANGUAGES = [("en-GB", "en-GB", "ltr"), ("cy", "cy", "ltr"), ("ur", "ur", "rtl")]
DESK = {"width": 1280, "height": 900}
_axe = Axe()


def _folder(tmp_path) -> str:
    folder = os.environ.get("KERBSIDE_SCREENSHOTS_DIR") or str(tmp_path)
    os.makedirs(folder, exist_ok=True)
    return folder


def _checked_and_pictured(page, name: str, tag: str, direction: str, folder: str) -> None:
    expect(page.locator("html")).to_have_attribute("lang", tag)
    expect(page.locator("html")).to_have_attribute("dir", direction)
    violations = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in _axe.run(page).response["violations"]]
    assert violations == [], f"{name}: {violations}"
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{name} scrolls sideways"
    target = os.path.join(folder, f"{name}.png")
    page.screenshot(path=target, full_page=True)
    assert os.path.getsize(target) > 5_000


@pytest.mark.parametrize("language, tag, direction", LANGUAGES)
def test_the_public_page_in_each_language(browser, live_server, tmp_path, language, tag, direction):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    area = live_server.details["area"]
    # The page's own switcher link, as a resident would follow it: the choice is kept in a cookie.
    page.goto(f"{live_server.url}/language?to={language}&next=/area/{area}")
    assert page.url.endswith(f"/area/{area}")
    _checked_and_pictured(page, f"public-area-{tag}-phone", tag, direction, _folder(tmp_path))
    context.close()


@pytest.mark.parametrize("language, tag, direction", LANGUAGES)
def test_the_street_form_on_a_phone_in_each_language(playwright, live_server, tmp_path, language, tag, direction):
    code = new_volunteer(live_server, f"Rep {tag}")
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "phone"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, viewport=PHONE,
        service_workers="allow", locale=language)
    page = context.pages[0] if context.pages else context.new_page()
    page.goto(f"{live_server.url}/app/")
    # Found by structure: the labels are in the phone's language.
    page.locator("main form input").first.fill(code)
    page.locator("main form button[type=submit]").click()
    start = page.locator('a[href="#/new/street"]')
    expect(start).to_be_visible(timeout=SYNC_TIMEOUT_MS)
    start.click()
    expect(page.locator("fieldset.line").first).to_be_visible()
    _checked_and_pictured(page, f"field-street-form-{tag}-phone", tag, direction, _folder(tmp_path))
    context.close()


# Each chart text's box and its chart's, on screen.
CHART_BOXES = """() => [...document.querySelectorAll("svg.chart")].map((svg) => {
    const chart = svg.getBoundingClientRect();
    return {chart: svg.id, left: chart.left, right: chart.right, texts: [...svg.querySelectorAll("text")].map((text) => {
        const box = text.getBoundingClientRect();
        return {text: text.textContent, month: text.classList.contains("chart-month"), left: box.left, right: box.right};
    })};
})"""


@pytest.mark.parametrize("language, reads_from", [("ur", "right"), ("en-GB", "left")])
def test_trend_charts_keep_their_text_inside_and_start_where_the_reader_does(page, live_server, tmp_path,
                                                                             language, reads_from):
    page.set_viewport_size(DESK)
    _sign_in(page, live_server.url, live_server.details["email"])
    area = live_server.details["area"]
    page.goto(f"{live_server.url}/language?to={language}&next=/coordinator/{area}/trends")
    charts = page.evaluate(CHART_BOXES)
    assert len(charts) >= 3
    for chart in charts:
        for text in chart["texts"]:
            assert chart["left"] - 1 <= text["left"] and text["right"] <= chart["right"] + 1, (chart["chart"], text)
            if text["month"]:
                edge = chart["right"] - text["right"] if reads_from == "right" else text["left"] - chart["left"]
                assert edge <= 5, (chart["chart"], text)  # set 3 px in from the edge
    if language == "ur":
        page.locator("#by-theme").evaluate("(heading) => heading.scrollIntoView()")
        page.screenshot(path=os.path.join(_folder(tmp_path), "coordinator-trends-ur-desk.png"))
