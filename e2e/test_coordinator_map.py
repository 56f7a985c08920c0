"""The coordinator's map in a real Chromium: sites at one point spread so each opens, and street tiles.

Five sites given the same point must each be clickable (and reachable with Tab, opened
with Enter). With KERBSIDE_MAP_TILES pointed at a tile server this test starts on
loopback, tiles load and the page breaks no part of the Content-Security-Policy; a
negative control serves the same page under the policy without the tile origin, and the
recorder must see the tiles blocked. Screenshots of the map with spread markers go to
KERBSIDE_SCREENSHOTS_DIR when it is set (docs/screenshots/ holds the committed ones).
"""

from __future__ import annotations

import itertools
import os
import re
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from e2e.conftest import DEMO_PASSWORD
from e2e.test_csp import Recorder
from server import operations
from server.extensions import db
from server.models import Area, Person, Role

STACK = [f"Market Parade unit {n}" for n in range(1, 6)]
DESK = {"width": 1280, "height": 900}
PHONE_375 = {"width": 375, "height": 812}


def _png(width=256, height=256) -> bytes:
    """A plain light-grey PNG tile, made here: the machines have no internet and no tile server."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\xdd\xe3\xdd" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


class TileServer:
    """A tiny tile server on loopback: every /{z}/{x}/{y}.png is the same grey tile; it counts requests."""

    def __init__(self):
        tile = _png()
        served = self.served = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if not re.fullmatch(r"/\d+/\d+/\d+\.png", self.path):
                    self.send_error(404)
                    return
                served.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(tile)))
                self.end_headers()
                self.wfile.write(tile)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def template(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/{{z}}/{{x}}/{{y}}.png"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def stacked(live_server):
    """An area whose five sites share one point, coordinated by the demo coordinator; the same five in the demo area."""
    def work():
        area = operations.create_area("market-parade", "Market Parade")
        operations.create_sites(area, [{"name": name, "lat": 53.5402, "lng": -2.6301} for name in STACK])
        demo = db.session.execute(select(Area).where(Area.slug == live_server.details["area"])).scalar_one()
        # A parade of shops given one point, among the demo's streets, for the screenshots.
        operations.create_sites(demo, [{"name": name, "lat": 53.5402, "lng": -2.6301} for name in STACK])
        coordinator = db.session.execute(select(Person).where(Person.email == live_server.details["email"])).scalar_one()
        db.session.add(Role(person_id=coordinator.id, area_id=area.id, role="coordinator"))
        db.session.commit()
        return area.slug

    return live_server.run(work)


@pytest.fixture
def tile_server(live_server):
    tiles = TileServer()
    live_server.app.config.update(MAP_TILES=tiles.template, MAP_ATTRIBUTION="© Test tiles <b>contributors</b>")
    yield tiles
    live_server.app.config.update(MAP_TILES=None, MAP_ATTRIBUTION="")
    tiles.close()


def sign_in(page, live_server):
    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill(live_server.details["email"])
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name=re.compile("^Sign out"))).to_be_visible()


def _boxes(page):
    return page.locator(".leaflet-marker-icon").evaluate_all(
        "icons => icons.map(i => { const r = i.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })")


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_five_sites_at_one_point_spread_and_each_opens(page, live_server, stacked):
    page.set_viewport_size(DESK)
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/coordinator/{stacked}/map")
    markers = page.locator(".leaflet-marker-icon")
    expect(markers).to_have_count(5)
    boxes = _boxes(page)
    assert not any(_overlap(a, b) for a, b in itertools.combinations(boxes, 2)), boxes
    opened = set()
    for n in range(5):
        markers.nth(n).click()
        popup = page.locator(".leaflet-popup-content a")
        expect(popup).to_be_visible()
        opened.add(popup.inner_text())
        page.locator(".leaflet-popup-close-button").click()
        expect(popup).to_have_count(0)
    assert opened == {f"{name} (–)" for name in STACK}
    # The spread is kept at another zoom: still five markers apart.
    page.locator(".leaflet-control-zoom-out").click()
    page.wait_for_timeout(400)
    assert not any(_overlap(a, b) for a, b in itertools.combinations(_boxes(page), 2))


def test_markers_are_reached_with_tab_and_opened_with_enter(page, live_server, stacked):
    page.set_viewport_size(DESK)
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/coordinator/{stacked}/map")
    markers = page.locator(".leaflet-marker-icon")
    expect(markers).to_have_count(5)
    markers.first.focus()
    titles = []
    for _n in range(5):
        focused = page.evaluate("[document.activeElement.classList.contains('leaflet-marker-icon'), "
                                "document.activeElement.getAttribute('role'), document.activeElement.title]")
        assert focused[:2] == [True, "button"], focused
        titles.append(focused[2])
        page.keyboard.press("Enter")
        expect(page.locator(".leaflet-popup-content a")).to_have_text(focused[2].replace(": –", " (–)"))
        page.locator(".leaflet-popup-close-button").click()
        expect(page.locator(".leaflet-popup-content a")).to_have_count(0)
        # Closing the popup leaves the keyboard on the marker again, and Tab goes to the next.
        markers.nth(_n).focus()
        page.keyboard.press("Tab")
    assert sorted(titles) == sorted(f"{name}: –" for name in STACK)


def test_tiles_load_from_the_configured_server_with_no_policy_violation(browser, live_server, stacked, tile_server):
    context = browser.new_context()
    page = context.new_page()
    recorder = Recorder(page)
    sign_in(page, live_server)
    found = recorder.visit(f"{live_server.url}/coordinator/{live_server.details['area']}/map")
    expect(page.locator("img.leaflet-tile-loaded").first).to_be_visible()
    found += recorder.found("after the tiles loaded")
    assert found == []
    assert tile_server.served, "no tile was asked for"
    # The attribution is shown as the text it was configured as, never as markup.
    expect(page.locator(".leaflet-control-attribution")).to_have_text("© Test tiles <b>contributors</b>")
    context.close()


def test_the_recorder_sees_tiles_blocked_by_a_policy_without_their_origin(browser, live_server, stacked, tile_server):
    """Negative control: the same page under the policy a server without tiles sends; the tiles are refused."""
    from server import CONTENT_SECURITY_POLICY

    context = browser.new_context()
    page = context.new_page()
    recorder = Recorder(page)
    sign_in(page, live_server)

    def without_tile_origin(route):
        response = route.fetch()
        route.fulfill(response=response, headers={**response.headers,
                                                  "content-security-policy": CONTENT_SECURITY_POLICY})

    page.route(re.compile(r".*/map$"), without_tile_origin)
    found = recorder.visit(f"{live_server.url}/coordinator/{live_server.details['area']}/map")
    expect(page.locator(".leaflet-tile").first).to_be_attached()
    page.wait_for_timeout(300)
    found += recorder.found("after the tiles were refused")
    assert any(isinstance(event, dict) and event["directive"] == "img-src" for _where, event in found), found
    assert page.locator("img.leaflet-tile-loaded").count() == 0
    context.close()


@pytest.mark.parametrize("width_name, viewport", [("desk", DESK), ("phone", PHONE_375)])
def test_map_with_spread_markers_is_captured(page, live_server, stacked, tmp_path, width_name, viewport):
    folder = os.environ.get("KERBSIDE_SCREENSHOTS_DIR") or str(tmp_path)
    os.makedirs(folder, exist_ok=True)
    page.set_viewport_size(viewport)
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/coordinator/{live_server.details['area']}/map")
    expect(page.locator(".leaflet-marker-icon").first).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the map scrolls sideways at {viewport['width']} px"
    target = os.path.join(folder, f"coordinator-map-{width_name}.png")
    page.screenshot(path=target)
    assert os.path.getsize(target) > 5_000
