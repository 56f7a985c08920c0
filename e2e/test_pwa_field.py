"""The field app in a real Chromium at a phone's size, against a live server.

Each test uses its own persistent browser profile (so the service worker, caches and
IndexedDB survive closing the browser) and its own volunteer. Tests that change the
server's forms or deploy a new app version run last in this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time

from playwright.sync_api import expect

from axe_playwright_python.sync_playwright import Axe

from e2e.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE
from server import operations
from server.blobs import store
from server.extensions import db
from server.models import Area, Blob, FormVersion, MutationLog, Person, Role, Submission
from e2e.esm import strip_module
from server.pwa import DEFAULT_SOURCE_DIR
from sync.protocol import canonical_json, payload_hash
from server.seed_content import STREET_FORM

ICON = os.path.join(DEFAULT_SOURCE_DIR, "icons", "icon-192.png")
# Screenshots go to KERBSIDE_SCREENSHOTS_DIR when it is set (docs/screenshots/ holds the
# committed ones); otherwise to a temporary folder, so a test run leaves the tree clean.
SCREENSHOTS = os.environ.get("KERBSIDE_SCREENSHOTS_DIR")
SYNC_TIMEOUT_MS = 20_000


def launch(playwright, profile, live=None):
    """A Chromium with a persistent profile, at a phone's size; with no network when `live` is cut."""
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, viewport=PHONE, service_workers="allow",
    )
    if live is not None and live.relay.is_cut:
        go_offline(context, live)
    page = context.pages[0] if context.pages else context.new_page()
    return context, page


def _no_network(route):
    route.abort("internetdisconnected")


def go_offline(context, live):
    """No signal. The server is cut off at the relay first: Chromium's offline emulation and
    Playwright's routes miss a service worker that Background Sync wakes as a profile reopens,
    before either is attached. Both are kept too, so the page itself also sees no network;
    what the service worker answers from its cache never needs it."""
    live.relay.cut()
    context.set_offline(True)
    context.route("**/*", _no_network)


def go_online(context, live):
    live.relay.restore()
    context.unroute("**/*", _no_network)
    context.set_offline(False)


def new_volunteer(live, name, roles=("street_rep", "mystery_shopper")) -> str:
    """A volunteer holding `roles` in the demo area; returns their invite code."""

    def work():
        area = db.session.query(Area).filter_by(slug=live.details["area"]).one()
        person = operations.create_person(name, roles=[(role, area) for role in roles])
        code = operations.issue_invite(area, roles[0], person=person)
        db.session.commit()
        return code

    return live.run(work)


def join(page, live, code, url=None):
    """Open the app online (at `url`, or the live server's), join with `code`, and wait until it
    works offline and has its forms."""
    page.goto(f"{url or live.url}/app/")
    page.get_by_label("Invite code").fill(code)
    page.get_by_role("button", name="Join").click()
    expect(page.get_by_role("link", name="Street monitoring visit")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
    wait_until_offline_ready(page)


def wait_until_offline_ready(page):
    """Wait until the app's service worker is activated with its precache, and sees it itself."""
    page.wait_for_function(
        """async () => {
            const registration = await navigator.serviceWorker.getRegistration();
            const keys = await caches.keys();
            return registration && registration.active && registration.active.state === "activated"
                && keys.some((key) => key.startsWith("kerbside-static-"));
        }""",
        timeout=SYNC_TIMEOUT_MS,
    )
    # The worker (a module worker) must itself see the shell in its cache: measured in Chromium,
    # it does so a few hundred milliseconds after the page is told it is activated, and a
    # navigation offline in that gap is not answered from the cache.
    deadline = time.monotonic() + SYNC_TIMEOUT_MS / 1000
    while not any(worker.evaluate("caches.match(self.registration.scope).then(Boolean)")
                  for worker in page.context.service_workers):
        assert time.monotonic() < deadline, "the service worker never saw its precached shell"
        time.sleep(0.05)


def waiting_count(page):
    return page.locator("#waiting-count")


def choose_site(page, search, name):
    page.get_by_label("Find a site by name").fill(search)
    page.get_by_label(name, exact=True).check()


def fill_street_visit(page, site, grade_index=1, photo=False):
    """Fill the street monitoring form: one grade per line, optionally a photo on the first line."""
    page.goto(page.url.split("#")[0] + "#/") if "#/draft" in page.url else None
    page.get_by_role("link", name="Street monitoring visit").click()
    choose_site(page, site.split()[0], site)
    lines = page.locator("fieldset.line:has(.grades)")
    expect(lines.first).to_be_visible()
    for index in range(lines.count()):
        lines.nth(index).locator("label.grade").nth(grade_index).click()
    if photo:
        lines.first.locator("summary").click()
        with open(ICON, "rb") as handle:
            lines.first.locator("input[type=file]").set_input_files(
                files=[{"name": "litter.png", "mimeType": "image/png", "buffer": handle.read()}])
        expect(page.locator("fieldset.line:has(.grades)").first.locator("ul.photos img")).to_have_count(1)
    save(page)


def fill_mystery_shop(page):
    page.get_by_role("link", name="Mystery shop").click()
    choose_site(page, "contact centre", "Council contact centre (phone)")
    page.get_by_label("Report a missed bin").check()
    page.locator("fieldset", has_text="How you made contact").get_by_label("Phone", exact=True).check()
    page.get_by_label("When you made contact").fill("2026-11-20T10:00")
    page.locator("fieldset", has_text="Were you treated").get_by_label("Yes", exact=True).check()
    page.get_by_label("What happened, in your own words").fill("Answered after 4 minutes; bin collected next day.")
    save(page)


def save(page):
    page.get_by_role("button", name="Save and send").click()
    expect(page.get_by_text("Saved. It will be sent by itself")).to_be_visible()


def submissions_of(live, name):
    """(submission, answers with photos) stored for the volunteer called `name`."""

    def work():
        person = db.session.query(Person).filter_by(display_name=name).one()
        rows = db.session.query(Submission).filter_by(person_id=person.id).all()
        return [(s.id, s.kind, s.form_version, s.data) for s in rows]

    return live.run(work)


def idb(page, store):
    """Everything in one IndexedDB store of the app, read in the page."""
    return page.evaluate(
        """(store) => new Promise((resolve, reject) => {
            const open = indexedDB.open("kerbside");
            open.onsuccess = () => {
                const request = open.result.transaction(store).objectStore(store).getAll();
                request.onsuccess = () => { open.result.close(); resolve(request.result.map((row) => ({...row, bytes: undefined}))); };
                request.onerror = () => reject(request.error);
            };
        })""",
        store,
    )


# -- every screen: accessible, installable, pictured -----------------------------------------------


def check_screen(page, name):
    """No serious or critical axe-core violations; a 360x740 screenshot for the docs."""
    page.wait_for_load_state()
    violations = [v for v in Axe().run(page).response["violations"] if v["impact"] in ("serious", "critical")]
    assert violations == [], f"{name}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {[node['target'] for node in v['nodes']]}" for v in violations)
    folder = SCREENSHOTS or os.path.join(tempfile.gettempdir(), "kerbside-screenshots")
    os.makedirs(folder, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=os.path.join(folder, f"pwa-{name}.png"))


def test_every_screen_is_accessible_and_the_app_is_installable(live_server, playwright, tmp_path):
    code = new_volunteer(live_server, "Rep Screens")
    context, page = launch(playwright, tmp_path / "phone")
    page.goto(f"{live_server.url}/app/")
    expect(page.get_by_role("heading", name="Join")).to_be_visible()
    check_screen(page, "join")
    join(page, live_server, code)

    installability = context.new_cdp_session(page).send("Page.getInstallabilityErrors")
    assert installability == {"installabilityErrors": []}

    fill_street_visit(page, "Canal Street", grade_index=1)
    expect(waiting_count(page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)
    go_offline(context, live_server)
    fill_street_visit(page, "Mill Lane", grade_index=2)
    page.get_by_role("link", name="Street monitoring visit").click()
    choose_site(page, "Park", "Park Avenue")
    page.locator("fieldset.line:has(.grades)").first.locator("label.grade").nth(2).click()
    page.locator("fieldset.line:has(.grades)").first.locator("summary").click()
    check_screen(page, "street-form")
    page.get_by_role("button", name="Save and send").click()
    expect(page.get_by_role("heading", name="Some answers are missing")).to_be_visible()
    check_screen(page, "street-form-missing")
    page.get_by_role("link", name="Home").click()
    expect(waiting_count(page)).to_have_attribute("data-count", "1")
    check_screen(page, "home")

    page.get_by_role("link", name="Agreement checklist").click()
    expect(page.get_by_role("heading", name="Our part (the council and partners)")).to_be_visible()
    check_screen(page, "checklist")
    page.get_by_role("link", name="Home").click()
    page.get_by_role("link", name="Mystery shop").click()
    expect(page.get_by_role("heading", name="The contact")).to_be_visible()
    check_screen(page, "mystery-shop")

    def remove_street_rep_role():
        person = db.session.query(Person).filter_by(display_name="Rep Screens").one()
        db.session.query(Role).filter_by(person_id=person.id, role="street_rep").delete()
        db.session.commit()

    live_server.run(remove_street_rep_role)
    page.get_by_role("link", name="Home").click()
    go_online(context, live_server)
    expect(page.locator("#attention-link")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
    page.locator("#attention-link").click()
    expect(page.locator("li.attention")).to_have_count(1)
    check_screen(page, "attention")

    page.get_by_role("link", name="The Deal").click()
    expect(page.get_by_role("heading", name="You said, we did")).to_be_visible()
    check_screen(page, "deal")
    page.get_by_role("link", name="My visits").click()
    expect(page.locator("li.received")).to_have_count(1)
    check_screen(page, "mine")
    page.get_by_role("link", name="Settings").click()
    expect(page.locator("#storage-answer")).not_to_be_empty()
    check_screen(page, "settings")
    # A draft and a refused visit are still on the phone: they cannot be sent, so they do not
    # block signing out, and the phone offers to export them first. (The checklist and the
    # mystery shop were only opened: they left no draft.)
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text(re.compile(r"cannot be sent: drafts: 1, needing attention: 1\."))
    expect(page.get_by_role("button", name="Export, then sign out")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out and delete them")).to_be_visible()
    context.close()


# -- canonical JSON: the phone and the server hash the same bytes ------------------------------------

TRICKY = {
    "plain": "text",
    "é": "naïve café — “quoted”",
    "\U0001F600": "a key beyond the BMP",
    "\uFB01": "a BMP key above the surrogates",
    "esc\"apes": "quote \" backslash \\ newline \n tab \t bell \u0007 del \u007f nul \u0000 sep \u2028",
    "nested": {"b": [1, 2, {"z": None, "a": True}], "a": {"f": False}},
    "numbers": [0, -3, 9007199254740991, 53.541234, -2.63, 0.5, 1e-05, 1.5e-07, 123456.789, 1e21, -0.0, 2.0],
    "emoji": "👩🏽‍🚒 🇬🇧",
    "arabic": "شارع القناة",
}


def js_canonical(page, data):
    """canonicalJson, payloadHash and JSON.stringify of `data`, computed by the app's own module."""
    with open(os.path.join(DEFAULT_SOURCE_DIR, "js", "canonical.js"), encoding="utf-8") as handle:
        source = strip_module(handle.read())
    return page.evaluate(
        "async (data) => {" + source + """
            return {canonical: canonicalJson(data), hash: await payloadHash(data), sent: JSON.stringify(data),
                    naive: JSON.stringify(Object.keys(data).sort())};
        }""",
        data,
    )


def test_javascript_and_python_canonical_json_give_the_same_hash(live_server, page):
    page.goto(f"{live_server.url}/")  # a secure context, for crypto.subtle
    made = js_canonical(page, TRICKY)
    # The contract: the server hashes the data it parsed from what the phone sent.
    received = json.loads(made["sent"])
    assert made["canonical"].encode("utf-8") == canonical_json(received)
    assert made["hash"] == payload_hash(received)
    # Where JSON keeps every value's type, the bytes equal those of the original data too.
    exact = {key: value for key, value in TRICKY.items() if key != "numbers"}
    assert js_canonical(page, exact)["hash"] == payload_hash(exact)
    # Negative control: JavaScript's default key sort would have hashed different bytes.
    assert json.loads(made["naive"]) != sorted(TRICKY)


# -- the main journey --------------------------------------------------------------------------


def test_offline_visits_survive_restart_and_sync_exactly_once(live_server, playwright, tmp_path):
    profile = tmp_path / "phone"
    code = new_volunteer(live_server, "Rep Offline")
    context, page = launch(playwright, profile)
    join(page, live_server, code)

    go_offline(context, live_server)
    response = page.reload()
    assert response.from_service_worker
    expect(page.get_by_role("link", name="Street monitoring visit")).to_be_visible()

    fill_street_visit(page, "Canal Street", grade_index=2, photo=True)
    fill_street_visit(page, "Mill Lane", grade_index=0)
    fill_street_visit(page, "Station Road", grade_index=3)
    fill_mystery_shop(page)
    expect(waiting_count(page)).to_have_attribute("data-count", "4")
    expect(waiting_count(page)).to_contain_text("Waiting to send: 4")
    context.close()

    # The browser was closed; it comes back with no signal (the relay stays cut, so even a
    # Background Sync that Chromium fires as the profile opens cannot reach the server).
    context, page = launch(playwright, profile, live_server)
    response = page.goto(f"{live_server.url}/app/")
    assert response.from_service_worker
    expect(waiting_count(page)).to_have_attribute("data-count", "4")
    assert submissions_of(live_server, "Rep Offline") == []

    go_online(context, live_server)
    expect(waiting_count(page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)

    stored = submissions_of(live_server, "Rep Offline")
    assert sorted(kind for _id, kind, _v, _d in stored) == ["mystery_shop", "street", "street", "street"]
    assert len({submission_id for submission_id, *_rest in stored}) == 4
    photos = [sha for *_rest, data in stored for answer in data["answers"].values() for sha in answer.get("photos", [])]
    assert len(photos) == 1

    def photo_row():
        blob = db.session.get(Blob, photos[0])
        return blob.content_type, store().get(photos[0])[:3]

    assert live_server.run(photo_row) == ("image/jpeg", b"\xff\xd8\xff")

    page.get_by_role("link", name="My visits").click()
    received = page.locator("li.received")
    expect(received).to_have_count(4)
    expect(received.first).to_contain_text("Received")
    context.close()


def test_connection_lost_after_commit_is_a_duplicate_not_a_second_copy(live_server, playwright, tmp_path):
    code = new_volunteer(live_server, "Rep Dropped")
    context, page = launch(playwright, tmp_path / "phone")
    join(page, live_server, code)
    go_offline(context, live_server)
    fill_street_visit(page, "Hope Street")
    expect(waiting_count(page)).to_have_attribute("data-count", "1")

    dropped, waited = [], []

    def drop_after_commit(route):
        body = route.request.post_data_json or {}
        if body.get("mutations") and not dropped:
            route.fetch()  # the server receives and commits the push...
            dropped.append(body["mutations"][0]["mid"])
            waited.append(body.get("oldest_unsent_age_s"))
            route.abort("connectionreset")  # ...and its answer never reaches the phone
        else:
            route.continue_()

    context.route("**/api/sync/v1", drop_after_commit)
    go_online(context, live_server)
    expect(waiting_count(page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)
    assert dropped
    # The push told the server how long the visit had waited (seconds, for its metrics).
    assert isinstance(waited[0], (int, float)) and 0 < waited[0] < 600

    sent = idb(page, "sent")
    assert [item["result"]["status"] for item in sent] == ["duplicate"]
    assert len(submissions_of(live_server, "Rep Dropped")) == 1
    assert live_server.run(lambda: db.session.query(MutationLog).filter_by(mid=dropped[0]).count()) == 1
    context.close()


def test_rejected_visit_is_listed_under_needs_attention_with_the_servers_message(live_server, playwright, tmp_path):
    code = new_volunteer(live_server, "Rep Rejected")
    context, page = launch(playwright, tmp_path / "phone")
    join(page, live_server, code)
    go_offline(context, live_server)
    fill_street_visit(page, "Queen Street")

    def remove_street_rep_role():
        person = db.session.query(Person).filter_by(display_name="Rep Rejected").one()
        db.session.query(Role).filter_by(person_id=person.id, role="street_rep").delete()
        db.session.commit()

    live_server.run(remove_street_rep_role)
    go_online(context, live_server)
    expect(waiting_count(page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)
    page.locator("#attention-link").click()
    expect(page.get_by_role("heading", name="Needs attention")).to_be_visible()
    expect(page.locator("li.attention")).to_contain_text("Kerbside says: You cannot fill in this kind of form in this area. If you think you should, ask your coordinator.")
    assert submissions_of(live_server, "Rep Rejected") == []
    context.close()


# -- changes on the server while the phone is away ----------------------------------------------


def test_draft_of_a_retired_form_version_still_saves_and_syncs_against_it(live_server, playwright, tmp_path):
    code = new_volunteer(live_server, "Rep Versions", roles=("street_rep",))
    context, page = launch(playwright, tmp_path / "phone")
    join(page, live_server, code)
    page.get_by_role("link", name="Street monitoring visit").click()
    choose_site(page, "Church", "Church Walk")
    lines = page.locator("fieldset.line:has(.grades)")
    lines.nth(0).locator("label.grade").nth(0).click()
    draft_url = page.url
    old_version = idb(page, "drafts")[0]["form"]["version"]
    go_offline(context, live_server)

    def republish():
        current = db.session.query(FormVersion).filter_by(form_id="street", status="published").one()
        renamed = json.loads(json.dumps(STREET_FORM))
        renamed["sections"][0]["lines"][0]["label"] = "Groups gathering or disorderly behaviour"
        operations.publish_form_version(operations.draft_form_version("street", renamed))
        operations.retire_form_version(current)
        db.session.commit()
        return current.version

    assert live_server.run(republish) == old_version
    go_online(context, live_server)
    page.get_by_role("link", name="Home").click()
    page.get_by_role("button", name="Send now").is_visible()
    expect(page.get_by_text(f"Version {old_version} of")).to_be_visible(timeout=SYNC_TIMEOUT_MS)

    page.goto(draft_url)
    lines = page.locator("fieldset.line:has(.grades)")
    expect(lines.first.locator("legend")).to_have_text("Groups loitering and/or disorderly behaviour (NI 17)")
    for index in range(1, lines.count()):
        lines.nth(index).locator("label.grade").nth(1).click()
    # Saved with no signal, so the item is seen waiting before it is seen sent.
    go_offline(context, live_server)
    save(page)
    expect(waiting_count(page)).to_have_attribute("data-count", "1")
    go_online(context, live_server)
    expect(waiting_count(page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)
    assert [version for _id, _kind, version, _data in submissions_of(live_server, "Rep Versions")] == [old_version]

    # A new visit now uses the new version.
    page.get_by_role("link", name="Street monitoring visit").click()
    expect(page.locator("fieldset.line:has(.grades)").first.locator("legend")).to_have_text("Groups gathering or disorderly behaviour")
    context.close()


@contextlib.contextmanager
def deployed_app(live, tmp_path, name, change):
    """Serve app sources changed by `change(folder)` (a copy of pwa/) for the duration."""
    deployed = tmp_path / f"pwa-{name}"
    shutil.copytree(DEFAULT_SOURCE_DIR, deployed)
    change(deployed)
    live.app.config.update(PWA_SOURCE_DIR=str(deployed), PWA_BUILD_DIR=str(tmp_path / f"build-{name}"))
    try:
        yield
    finally:
        live.app.config.pop("PWA_SOURCE_DIR")
        live.app.config.pop("PWA_BUILD_DIR")


def replace_in(folder, path, old, new):
    """Change one module of a deployed copy; the old text must be there (or the variant tests nothing)."""
    module = folder / path
    source = module.read_text()
    assert old in source, f"{path} no longer holds the text this variant replaces"
    module.write_text(source.replace(old, new))


def new_app_version(live, tmp_path):
    """Deploy new app sources (a changed message, a newer IndexedDB schema) for the duration."""

    def change(folder):
        # The messages are built from server/pwa_messages.py, not this folder: the new version's
        # changed text is made in the module that draws the navigation.
        replace_in(folder, "js/app.js", '"aria-current": routeBase() === href ? "page" : null }, t(id))',
                   '"aria-current": routeBase() === href ? "page" : null }, id === "nav_mine" ? "My visits and reviews" : t(id))')
        db_module = folder / "js" / "db.js"
        db_module.write_text(DB_VERSION_LINE.sub(f"DB_VERSION = {current_db_version() + 1};", db_module.read_text()))

    return deployed_app(live, tmp_path, "next", change)


DB_VERSION_LINE = re.compile(r"DB_VERSION = (\d+);")


def current_db_version() -> int:
    """The IndexedDB schema version the app's sources ask for."""
    with open(os.path.join(DEFAULT_SOURCE_DIR, "js", "db.js"), encoding="utf-8") as handle:
        return int(DB_VERSION_LINE.search(handle.read()).group(1))


def reload_into_new_version(page):
    """The app notices the deployed version, offers it, and the person reloads into it."""
    page.evaluate("navigator.serviceWorker.getRegistration().then((registration) => registration.update())")
    expect(page.get_by_text("Update available")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
    page.get_by_role("button", name="Reload to update").click()
    expect(page.get_by_role("link", name="My visits and reviews")).to_be_visible(timeout=SYNC_TIMEOUT_MS)


def test_new_app_version_offers_update_and_the_queue_survives(live_server, playwright, tmp_path):
    code = new_volunteer(live_server, "Rep Update")
    context, page = launch(playwright, tmp_path / "phone")
    join(page, live_server, code)
    first_version = page.locator("html").get_attribute("data-version")
    # The API is out of reach (the app and its worker are not): visits stay queued.
    context.route("**/api/**", lambda route: route.abort("internetdisconnected"))
    fill_street_visit(page, "Union Street")
    fill_street_visit(page, "Ash Grove")
    page.get_by_role("link", name="Street monitoring visit").click()
    choose_site(page, "Beech", "Beech Avenue")
    expect(waiting_count(page)).to_have_attribute("data-count", "2")
    page.get_by_role("link", name="Home").click()

    with new_app_version(live_server, tmp_path):
        reload_into_new_version(page)
        assert page.locator("html").get_attribute("data-version") != first_version
        expect(waiting_count(page)).to_have_attribute("data-count", "2")
        assert len(idb(page, "drafts")) == 1
        assert page.evaluate("indexedDB.databases().then((all) => all.find((d) => d.name === 'kerbside').version)") == current_db_version() + 1

        context.unroute("**/api/**")
        page.get_by_role("button", name="Send now").click()
        expect(waiting_count(page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)
        assert len(submissions_of(live_server, "Rep Update")) == 2
    context.close()
