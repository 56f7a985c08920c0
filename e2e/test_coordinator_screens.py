"""The dashboard, priority list, map and public page at desk and phone widths.

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
    ("coordinator-map", "/coordinator/{area}/map"),
    ("public-area", "/area/{area}"),
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
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} scrolls sideways at {viewport['width']} px"
        target = os.path.join(folder, f"{name}-{width_name}.png")
        page.screenshot(path=target)
        assert os.path.getsize(target) > 5_000
