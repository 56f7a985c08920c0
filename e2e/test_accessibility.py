"""WCAG 2.2 AA on every page, in a real Chromium: axe-core with no finding of any impact, and the
checks axe does not make.

The walk covers the field app's screens, every HTML page of the URL map (the coordinators' and
partners' pages as a coordinator, the admin's as an admin, the public ones signed out, with real
ids from the demo data; a page added to the URL map must be added to e2e/test_csp.py's
addresses, and so here, or `test_every_page_is_walked` fails), and the error pages.
Each page is checked for:

- axe-core (the wheel's axe 4.12), rules tagged wcag2a, wcag2aa, wcag21a, wcag21aa, wcag22aa
  and best-practice: no violation of any impact (1.1.1 ... 4.1.2);
- reflow (1.4.10, 1.4.4): no sideways scrolling and no clipped text at 320 CSS px wide, and at
  640 CSS px wide, which is what a 1280 px window shows at 200% browser zoom;
- target size (2.5.8): each visible control at least 24 by 24 CSS px (a link inside a sentence
  is exempt, as WCAG says), each grade choice (its radio and label) at least 44 by 44;
- focus (2.4.7, 2.4.11): tabbing through the page, each focused element shows an outline or
  shadow it does not have unfocused, and the element at its centre is itself (nothing sticky
  or fixed covers it);
- reduced motion (2.3.3, best practice): with `prefers-reduced-motion: reduce`, no transition
  or animation longer than 0.01 s and no smooth scrolling;
- colour is never the only signal (1.4.1): every grade chip carries its letter.

Then: errors announced and linked (the street form, a bad sign-in), a site chosen with the
keyboard without the map, and a whole street visit filled and saved with the keyboard alone.
Negative controls prove each home-made check can fail.

Pages are grouped by who sees them; each group shares one browser context (made when first
needed), so the module signs in once per group.
"""

from __future__ import annotations


import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from e2e.conftest import PHONE
from e2e.test_csp import ADMIN_EMAIL, _page_endpoints, _real_addresses, _sign_in

# What this walk checks is the pages' markup and styles, the same on either database: CI runs it
# in its SQLite pass (the README's test command) and leaves it out of the PostgreSQL pass.
pytestmark = pytest.mark.markup_only
from e2e.test_pwa_field import (
    SYNC_TIMEOUT_MS,
    fill_street_visit,
    go_offline,
    go_online,
    join,
    new_volunteer,
    waiting_count,
)
from server import operations
from server.extensions import db
from server.models import Person, Submission

DESK = {"width": 1280, "height": 800}
NARROW = {"width": 320, "height": 640}
# 1280 CSS px at 200% browser zoom lay out in 640 CSS px: the same media queries and line breaks.
ZOOMED = {"width": 640, "height": 400}
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
MAX_TABS = 80
FLAG_REASON = "Check the litter grade"

# Pages signed out, by endpoint (or a name for a page that is not an endpoint of its own).
PUBLIC = ["web.index", "signin.login", "api_docs.docs", "public.area", "error-404", "login-refused"]
ADMIN_ONLY = ["admin_people.people", "admin_audit.entries", "admin_privacy.people", "admin_privacy.person",
              "admin_privacy.erase"]
FIELD = ["join", "home", "street-form", "street-form-missing", "checklist-form", "mystery-shop-form", "deal",
         "mine", "settings", "home-needs-correcting", "correction"]
# The coordinator's pages: every other HTML endpoint of the URL map.
COORDINATOR = [
    "coordinator.index", "coordinator.dashboard", "coordinator.priorities", "coordinator.trends",
    "coordinator.map_view", "coordinator.coverage", "coordinator.sites_waiting", "coordinator.mystery_shops",
    "coordinator.checklist_results", "coordinator.submissions", "coordinator.submission",
    "coordinator.accept_matching", "coordinator.site", "coordinator.actions_board", "coordinator.new_action",
    "coordinator.action", "coordinator.exports", "coordinator.forms", "coordinator.form_version",
    "coordinator.confirm_retire_form", "coordinator.agreements", "coordinator.agreement_version",
    "coordinator.form_translation", "coordinator.agreement_translation",
    "coordinator.people", "coordinator.person", "coordinator.merge_person", "coordinator.revoke_device",
    "coordinator.area_settings", "imports.upload", "account.password", "error-403",
]
PARTNER = ["partner.actions_board", "partner.action"]
GROUP = {**{name: "anonymous" for name in PUBLIC}, **{name: "admin" for name in ADMIN_ONLY},
         **{name: "field" for name in FIELD}, **{name: "coordinator" for name in COORDINATOR},
         **{name: "partner" for name in PARTNER}}
ALL_PAGES = PUBLIC + COORDINATOR + PARTNER + ADMIN_ONLY + FIELD
# Pages that show grades (chips, legends, the form's A to D): each must carry its letters.
GRADED = ["public.area", "coordinator.dashboard", "coordinator.priorities", "coordinator.map_view",
          "coordinator.site", "coordinator.submission", "street-form", "correction"]

# -- the checks axe does not make, run in the page ------------------------------------------------

REFLOW = """() => {
  const width = window.innerWidth;
  const problems = [];
  if (document.documentElement.scrollWidth > width) problems.push(`scrolls sideways: ${document.documentElement.scrollWidth} > ${width}`);
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
  const hasText = (el) => [...el.childNodes].some((node) => node.nodeType === 3 && node.textContent.trim());
  for (const el of document.body.querySelectorAll('*')) {
    if (!hasText(el) || !el.checkVisibility({visibilityProperty: true, opacityProperty: true})) continue;
    const rect = el.getBoundingClientRect();
    if (rect.width <= 1 || rect.height <= 1) continue;  // visually hidden text, read by screen readers
    // Text cut off by its own box, or pushed off the page's sides.
    const style = getComputedStyle(el);
    const cuts = ['hidden', 'clip'].includes(style.overflowX) || style.textOverflow === 'ellipsis';
    if (cuts && el.scrollWidth > el.clientWidth + 1) problems.push(`clipped: ${describe(el)} "${el.textContent.trim().slice(0, 40)}"`);
    if (rect.right > width + 1 || rect.left < -1) {
      // Inside a box that scrolls on its own (a wide table), the text is reachable: that is allowed.
      let scroller = el.parentElement;
      while (scroller && scroller !== document.body && !['auto', 'scroll'].includes(getComputedStyle(scroller).overflowX)) scroller = scroller.parentElement;
      if (!scroller || scroller === document.body) problems.push(`off the page: ${describe(el)} "${el.textContent.trim().slice(0, 40)}" (${Math.round(rect.left)}..${Math.round(rect.right)})`);
    }
  }
  return problems;
}"""

TARGETS = """() => {
  const problems = [];
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.getAttribute('name') ? `[name=${el.getAttribute('name')}]` : '') + ` "${(el.textContent || el.value || el.getAttribute('aria-label') || '').trim().slice(0, 30)}"`;
  const union = (a, b) => ({left: Math.min(a.left, b.left), top: Math.min(a.top, b.top), right: Math.max(a.right, b.right), bottom: Math.max(a.bottom, b.bottom)});
  const block = (el) => { let up = el.parentElement; while (up && getComputedStyle(up).display.startsWith('inline')) up = up.parentElement; return up; };
  const inSentence = (el) => {
    if (el.tagName !== 'A' || getComputedStyle(el).display !== 'inline') return false;
    const around = block(el);
    return Boolean(around) && around.textContent.replace(el.textContent, '').trim().length > 0;
  };
  const controls = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [role=button], [role=link], [tabindex]:not([tabindex="-1"])';
  for (const el of document.querySelectorAll(controls)) {
    if (el.disabled || el.closest('[inert]')) continue;
    let box = el.getBoundingClientRect();
    // A control's label takes its taps too (a radio, a tick box, a file input drawn as its label).
    for (const label of el.labels || []) if (['radio', 'checkbox', 'file'].includes(el.type)) box = union(box, label.getBoundingClientRect());
    const shown = el.checkVisibility({visibilityProperty: true}) || [...(el.labels || [])].some((label) => label.checkVisibility());
    if (!shown) continue;
    const width = box.right - box.left, height = box.bottom - box.top;
    if (width === 0 && height === 0) continue;
    if (inSentence(el)) continue;
    const grade = el.type === 'radio' && el.closest('.grades');
    const least = grade ? 44 : 24;
    if (width < least - 0.5 || height < least - 0.5) problems.push(`${describe(el)}: ${Math.round(width)}x${Math.round(height)} < ${least}`);
  }
  return problems;
}"""

FOCUS_STEP = """() => {
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.getAttribute('name') ? `[name=${el.getAttribute('name')}]` : '') + ` "${(el.textContent || el.value || el.getAttribute('aria-label') || '').trim().slice(0, 30)}"`;
  const look = (el) => { const s = getComputedStyle(el); return {outline: s.outlineStyle === 'none' || parseFloat(s.outlineWidth) === 0 ? 'none' : `${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor}`, shadow: s.boxShadow}; };
  const result = {};
  const previous = window.__focusPrevious;
  if (previous && previous.element !== document.activeElement) {
    const now = look(previous.element);
    const shows = (previous.look.outline !== 'none' && previous.look.outline !== now.outline) || previous.look.shadow !== now.shadow;
    if (!shows) result.invisible = previous.name;
  }
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) { window.__focusPrevious = null; result.done = true; return result; }
  const name = describe(el);
  window.__focusPrevious = {element: el, look: look(el), name};
  result.name = name;
  // The centre of each of its boxes (a link broken over two lines has two), or of the part of a box
  // taller than the window that is in the window: at one of them must be the element itself.
  const boxes = [...el.getClientRects()].filter((rect) => rect.width > 0 && rect.height > 0);
  let hit = null, x = 0, y = 0, ours = false;
  for (const rect of boxes.length ? boxes : [el.getBoundingClientRect()]) {
    const top = Math.max(rect.top, 0), bottom = Math.min(rect.bottom, innerHeight);
    const left = Math.max(rect.left, 0), right = Math.min(rect.right, innerWidth);
    x = (left + right) / 2;
    y = (top + bottom) / 2;
    hit = bottom > top && right > left ? document.elementFromPoint(x, y) : null;
    ours = Boolean(hit) && (hit === el || el.contains(hit) || [...(el.labels || [])].some((label) => label.contains(hit)));
    if (ours) break;
  }
  if (!ours) result.covered = `${name} at ${Math.round(x)},${Math.round(y)}: ${hit ? describe(hit) : 'outside the window'}`;
  return result;
}"""

MOTION = """() => {
  const problems = [];
  const seconds = (value) => Math.max(0, ...value.split(',').map((part) => part.trim().endsWith('ms') ? parseFloat(part) / 1000 : parseFloat(part) || 0));
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
  for (const el of [document.documentElement, ...document.querySelectorAll('*')]) {
    for (const pseudo of [null, '::before', '::after']) {
      const style = getComputedStyle(el, pseudo);
      const transition = seconds(style.transitionDuration) + seconds(style.transitionDelay);
      const animation = style.animationName !== 'none' ? seconds(style.animationDuration) : 0;
      if (transition > 0.01) problems.push(`${describe(el)}${pseudo || ''}: transition ${style.transitionDuration}`);
      if (animation > 0.01) problems.push(`${describe(el)}${pseudo || ''}: animation ${style.animationName} ${style.animationDuration}`);
      if (!pseudo && style.scrollBehavior === 'smooth') problems.push(`${describe(el)}: scroll-behavior smooth`);
    }
  }
  for (const running of document.getAnimations()) {
    const timing = running.effect && running.effect.getComputedTiming();
    if (timing && timing.duration > 10) problems.push(`running animation of ${timing.duration} ms`);
  }
  return problems;
}"""

GRADE_LETTERS = """() => [...document.querySelectorAll('[class*="grade-"]')]
  .filter((el) => !['rect', 'path', 'circle', 'svg', 'g'].includes(el.tagName.toLowerCase()) && el.checkVisibility())
  .map((el) => ({classes: el.getAttribute('class'), text: el.textContent.trim(),
                 grade: (el.getAttribute('class').match(/(?:^|\\s)grade-([a-dA-D])(?:\\s|$)/) || [])[1]}))
  .filter((chip) => chip.grade)"""


def run_axe(page) -> list[str]:
    """Every axe-core violation on the page as it is now, of any impact."""
    options = {"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations"]}
    violations = Axe().run(page, options=options).response["violations"]
    return [f"{v['id']} ({v['impact']}): {[node['target'] for node in v['nodes']][:5]}" for v in violations]


def tab_through(page) -> dict:
    """Tab through the page from its top: what showed no focus indicator, and what was covered."""
    page.evaluate("() => { window.__focusPrevious = null; if (document.activeElement) document.activeElement.blur(); window.scrollTo(0, 0); }")
    invisible, covered, seen = [], [], 0
    first = None
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        step = page.evaluate(FOCUS_STEP)
        if step.get("invisible"):
            invisible.append(step["invisible"])
        if step.get("done"):
            break
        if step.get("covered"):
            covered.append(step["covered"])
        if first is None:
            first = step["name"]
        elif step["name"] == first:
            break
        seen += 1
    page.keyboard.press("Tab")
    last = page.evaluate(FOCUS_STEP)
    if last.get("invisible"):
        invisible.append(last["invisible"])
    return {"invisible": invisible, "covered": covered, "seen": seen}


# -- getting each page on screen ---------------------------------------------------------------------


class Walk:
    """The browser contexts of the walk, one per group of pages, each made when first needed."""

    def __init__(self, browser, live):
        self.browser = browser
        self.live = live
        self.pages: dict[str, object] = {}
        self.contexts: list = []
        self.addresses = _real_addresses(live)
        self.volunteer = None

    def close(self):
        for context in self.contexts:
            context.close()

    def page(self, group):
        if group not in self.pages:
            viewport = PHONE if group == "field" else DESK
            context = self.browser.new_context(viewport=viewport)
            self.contexts.append(context)
            page = context.new_page()
            email = {"coordinator": self.live.details["email"], "partner": self.live.details["partner_email"],
                     "admin": ADMIN_EMAIL}.get(group)
            if email:
                _sign_in(page, self.live.url, email)
            if group == "field":
                self._join(page)
            self.pages[group] = page
        return self.pages[group]

    def open(self, name, viewport=None):
        """The page called `name` on screen, at `viewport` (or its group's own size)."""
        group = GROUP[name]
        page = self.page(group)
        page.set_viewport_size(viewport or (PHONE if group == "field" else DESK))
        if group == "field":
            self._field_screen(page, name)
        else:
            self._web_page(page, name)
        page.wait_for_load_state("load")
        return page

    def _web_page(self, page, name):
        url = self.live.url
        if name == "error-404":
            response = page.goto(url + "/no-such-page")
            assert response.status == 404
        elif name == "error-403":
            response = page.goto(url + "/admin/people")
            assert response.status == 403
        elif name == "login-refused":
            page.goto(url + "/login")
            page.get_by_label("Email").fill("nobody@example.org")
            page.get_by_label("Password").fill("not the password")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("alert")).to_be_visible()
        elif name == "partner.action":
            page.goto(url + self.addresses["coordinator.actions_board"])
            page.locator("main a[href*='/actions/']").first.click()
            expect(page.get_by_role("heading", level=1)).to_be_visible()
        else:
            endpoint = name.replace("partner.", "coordinator.")
            response = page.goto(url + self.addresses[endpoint])
            assert response.status < 400, (name, response.status)

    def _join(self, page):
        """A volunteer with one visit sent and flagged by the coordinator, and the join screen seen."""
        name = "Rep Accessible"
        code = new_volunteer(self.live, name)
        page.goto(f"{self.live.url}/app/")
        expect(page.get_by_role("heading", name="Join")).to_be_visible()
        join(page, self.live, code)
        fill_street_visit(page, "Canal Street", grade_index=2)
        expect(waiting_count(page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)

        def flag():
            person = db.session.query(Person).filter_by(display_name=name).one()
            (visit,) = db.session.query(Submission).filter_by(person_id=person.id).all()
            coordinator = db.session.query(Person).filter(Person.email == self.live.details["email"]).one()
            operations.review_submission(visit, "flagged", coordinator, FLAG_REASON)
            db.session.commit()

        self.live.run(flag)
        self.volunteer = name

    def _home(self, page):
        page.evaluate("() => { location.hash = '#/'; }")
        expect(page.get_by_role("link", name="Street monitoring visit")).to_be_visible()

    def _field_screen(self, page, name):
        if name == "join":
            # The join screen of a phone that has not joined: a context of its own, short-lived.
            context = self.browser.new_context(viewport=page.viewport_size)
            self.contexts.append(context)
            fresh = context.new_page()
            fresh.goto(f"{self.live.url}/app/")
            expect(fresh.get_by_role("heading", name="Join")).to_be_visible()
            self.pages["join"] = fresh
            return
        self._home(page)
        if name in ("home", "home-needs-correcting", "correction"):
            page.reload()
            expect(page.locator("#needs-correcting")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
            if name == "correction":
                page.locator("#needs-correcting").get_by_role("link", name="Correct this visit").click()
                expect(page.locator("#correcting")).to_contain_text(FLAG_REASON)
        elif name in ("street-form", "street-form-missing"):
            page.get_by_role("link", name="Street monitoring visit").click()
            expect(page.get_by_role("button", name="Save and send")).to_be_visible()
            if name == "street-form-missing":
                page.get_by_role("button", name="Save and send").click()
                expect(page.get_by_role("heading", name="Some answers are missing")).to_be_visible()
        elif name == "checklist-form":
            page.get_by_role("link", name="Agreement checklist").click()
            expect(page.get_by_role("button", name="Save and send")).to_be_visible()
        elif name == "mystery-shop-form":
            page.get_by_role("link", name="Mystery shop").click()
            expect(page.get_by_role("heading", name="The contact")).to_be_visible()
        elif name == "deal":
            page.get_by_role("link", name="The Deal").click()
            expect(page.get_by_role("heading", name="You said, we did")).to_be_visible()
        elif name == "mine":
            page.get_by_role("link", name="My visits").click()
            expect(page.locator("li.received").first).to_be_visible()
        elif name == "settings":
            page.get_by_role("link", name="Settings").click()
            expect(page.locator("#storage-answer")).not_to_be_empty()

    def shown(self, name, viewport=None):
        """The Playwright page showing `name` (the join screen has a browser of its own)."""
        page = self.open(name, viewport)
        return self.pages["join"] if name == "join" else page


@pytest.fixture(scope="module")
def walk(browser, live_server):
    walk = Walk(browser, live_server)
    yield walk
    walk.close()


# -- the walk -----------------------------------------------------------------------------------------


def test_every_page_is_walked(live_server):
    """Every HTML page of the URL map is in the walk (through test_csp's addresses)."""
    walked = {name.replace("partner.", "coordinator.") for name in ALL_PAGES}
    assert _page_endpoints(live_server.app) - walked - {"pwa.shell"} == set()
    assert set(GROUP) == set(ALL_PAGES) and len(ALL_PAGES) == len(set(ALL_PAGES))


@pytest.mark.parametrize("name", ALL_PAGES)
def test_axe_finds_nothing(walk, name):
    page = walk.shown(name)
    found = run_axe(page)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("name", ALL_PAGES)
def test_reflows_at_320_px(walk, name):
    page = walk.shown(name, NARROW)
    found = page.evaluate(REFLOW)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("name", ALL_PAGES)
def test_reflows_at_200_percent_zoom(walk, name):
    page = walk.shown(name, ZOOMED)
    found = page.evaluate(REFLOW)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("name", ALL_PAGES)
def test_targets_are_big_enough(walk, name):
    page = walk.shown(name)
    found = page.evaluate(TARGETS)
    assert not found, "\n".join(found)
    if name in ("street-form", "correction"):
        sizes = page.locator("label.grade").evaluate_all(
            "(labels) => labels.map((label) => [label.offsetWidth, label.offsetHeight])")
        assert sizes and all(width >= 44 and height >= 44 for width, height in sizes)


@pytest.mark.parametrize("name", ALL_PAGES)
def test_focus_is_visible_and_never_hidden(walk, name):
    page = walk.shown(name)
    found = tab_through(page)
    assert found["seen"] > 0
    assert not found["invisible"], "no focus indicator:\n" + "\n".join(found["invisible"])
    assert not found["covered"], "covered:\n" + "\n".join(found["covered"])


@pytest.mark.parametrize("name", ALL_PAGES)
def test_reduced_motion_is_respected(walk, name):
    walk.page(GROUP[name]).emulate_media(reduced_motion="reduce")  # before the page loads: its scripts see it
    page = walk.shown(name)
    page.emulate_media(reduced_motion="reduce")
    try:
        if name == "coordinator.map_view":
            page.locator(".leaflet-control-zoom-in").click()
        found = page.evaluate(MOTION)
        assert not found, "\n".join(found)
    finally:
        page.emulate_media(reduced_motion="no-preference")
        walk.page(GROUP[name]).emulate_media(reduced_motion="no-preference")


@pytest.mark.parametrize("name", GRADED)
def test_grades_carry_their_letter(walk, name):
    page = walk.shown(name)
    chips = page.evaluate(GRADE_LETTERS)
    assert chips, "no grade shown"
    assert [chip for chip in chips if chip["grade"].upper() not in chip["text"].upper()] == []


# -- errors, choosing a site, the keyboard alone ------------------------------------------------------

LINKED_ERRORS = """(summary) => [...summary.querySelectorAll('a[href^="#"]')].map((link) => {
  const target = document.getElementById(link.getAttribute('href').slice(1));
  const fields = target ? [...target.querySelectorAll('[aria-invalid="true"]')].concat(target.matches('[aria-invalid="true"]') ? [target] : []) : [];
  return {link: link.textContent.trim(), target: Boolean(target), fields: fields.map((field) => {
    const messages = (field.getAttribute('aria-describedby') || '').split(/\\s+/).map((id) => document.getElementById(id)).filter(Boolean);
    return messages.filter((message) => message.checkVisibility() && message.textContent.trim()).map((message) => message.textContent.trim());
  })};
})"""


def assert_errors_linked(page, summary):
    """The summary has the focus and is announced, and each of its links leads to a field marked invalid
    and described by its visible message."""
    assert summary.evaluate("(summary) => summary === document.activeElement")
    assert summary.get_attribute("role") == "alert"
    links = summary.evaluate(LINKED_ERRORS)
    assert links, "no links to the fields"
    for link in links:
        assert link["target"], link
        assert link["fields"] and all(messages for messages in link["fields"]), link


def test_street_form_errors_are_announced_and_linked(walk):
    page = walk.shown("street-form-missing")
    summary = page.locator(".error-summary")
    assert_errors_linked(page, summary)
    # A link of the summary, followed with the keyboard, puts the focus in its field.
    link = summary.get_by_role("link").nth(1)
    target = link.get_attribute("href")[1:]
    link.focus()
    page.keyboard.press("Enter")
    assert page.evaluate("(id) => document.getElementById(id).contains(document.activeElement)", target)


def test_bad_sign_in_error_is_announced_and_linked(walk):
    page = walk.shown("login-refused")
    summary = page.locator("#sign-in-error")
    expect(summary).to_contain_text("do not match")
    assert_errors_linked(page, summary)
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "email"


def tab_to(page, test: str, limit: int = MAX_TABS):
    """Press Tab until the focused element passes the JavaScript `test` (given the element)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(el) => ({test})(el)", page.evaluate_handle("document.activeElement")):
            return
    raise AssertionError(f"Tab never reached {test}")


def test_a_site_is_chosen_with_the_keyboard_without_the_map(walk):
    page = walk.shown("street-form")
    page.evaluate("() => { window.scrollTo(0, 0); document.activeElement && document.activeElement.blur(); }")
    tab_to(page, "(el) => el.type === 'search'")
    page.keyboard.type("mill")
    tab_to(page, "(el) => el.type === 'radio' && el.name === 'site'")
    page.keyboard.press("Space")
    expect(page.get_by_label("Mill Lane", exact=True)).to_be_checked()
    # At the desk too: a coordinator raising an action picks the site from a list, not the map.
    desk = walk.shown("coordinator.new_action")
    desk.evaluate("() => { window.scrollTo(0, 0); document.activeElement && document.activeElement.blur(); }")
    tab_to(desk, "(el) => el.id === 'site_id'")
    desk.keyboard.type("Mill")
    assert desk.evaluate("document.getElementById('site_id').selectedOptions[0].textContent") == "Mill Lane"


def test_a_street_visit_is_filled_and_saved_with_the_keyboard_alone(walk, live_server):
    page = walk.shown("home")
    context = page.context
    go_offline(context, live_server)  # so the visit stays in the outbox to be seen there
    try:
        expect(waiting_count(page)).to_have_attribute("data-count", "0")
        page.evaluate("() => { window.scrollTo(0, 0); document.activeElement && document.activeElement.blur(); }")
        tab_to(page, "(el) => el.tagName === 'A' && el.textContent.trim() === 'Street monitoring visit'")
        page.keyboard.press("Enter")
        expect(page.get_by_role("button", name="Save and send")).to_be_visible()
        tab_to(page, "(el) => el.type === 'search'")
        page.keyboard.type("station")
        tab_to(page, "(el) => el.type === 'radio' && el.name === 'site'")
        page.keyboard.press("Space")
        lines = page.locator("fieldset.line:has(.grades)").count()
        graded = 0
        for _ in range(lines * 6 + 20):
            page.keyboard.press("Tab")
            focused = page.evaluate("""() => { const el = document.activeElement;
                return {grade: el.type === 'radio' && Boolean(el.closest('.grades')), name: el.name,
                        save: el.type === 'submit'}; }""")
            if focused["grade"]:
                page.keyboard.press("ArrowDown")  # the next grade: B (arrows choose within a line)
                graded += 1
            elif focused["save"]:
                break
        assert graded == lines
        page.keyboard.press("Enter")
        expect(page.get_by_text("Saved. It will be sent by itself")).to_be_visible()
        expect(waiting_count(page)).to_have_attribute("data-count", "1")
        # The app tries to send it at once and finds no signal; the header is drawn again after that.
        expect(page.get_by_text("No signal: your work is kept on this phone.")).to_be_visible()
        page.wait_for_load_state("networkidle")
        tab_to(page, "(el) => el.tagName === 'A' && el.textContent.trim() === 'My visits'")
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", level=1, name="My visits")).to_be_visible()
        expect(page.locator("li.waiting", has_text="Station Road")).to_contain_text("Waiting to send")
    finally:
        go_online(context, live_server)
    page.reload()  # back online, the app sends what waits as it opens
    expect(waiting_count(page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)


# -- negative controls: each home-made check catches what it is there for ------------------------------

BROKEN = """<!doctype html><html lang="en"><head><title>broken</title><style>
  .wide { inline-size: 500px; } .cut { inline-size: 60px; overflow: hidden; white-space: nowrap; }
  .tiny { inline-size: 16px; block-size: 16px; padding: 0; } .plain:focus { outline: none; }
  .moving { transition: color 0.3s; } html { scroll-behavior: smooth; }
  .sticky { position: fixed; inset-block-start: 0; inset-inline: 0; block-size: 100px; background: #fff; }
</style></head><body><main><p class="wide">a wide line of text</p><p class="cut">text cut off by its box</p>
  <button class="tiny">x</button><a class="plain moving" href="#a">no outline</a>
  <div class="sticky">sticky banner</div></main></body></html>"""


def test_the_checks_catch_a_broken_page(browser):
    context = browser.new_context(viewport=NARROW, reduced_motion="reduce")
    page = context.new_page()
    page.set_content(BROKEN)
    reflow = page.evaluate(REFLOW)
    assert any("scrolls sideways" in problem for problem in reflow)
    assert any("clipped" in problem and "cut off" in problem for problem in reflow)
    assert any("button" in problem and "16x16" in problem for problem in page.evaluate(TARGETS))
    motion = page.evaluate(MOTION)
    assert any("transition" in problem for problem in motion) and any("smooth" in problem for problem in motion)
    found = tab_through(page)
    assert any("no outline" in name for name in found["invisible"])
    assert any("sticky banner" in where for where in found["covered"])
    context.close()
