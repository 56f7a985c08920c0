"""Drafts that never lose a keystroke, and unsent work that moves: export, import, a new phone.

In a real Chromium at a phone's size, against a live server: text typed just before the page
is reloaded or the browser closed is kept; a form opened and left leaves no draft; drafts are
listed by site, time and lines answered; signing out with only drafts offers to export them;
the file the app downloads is the one format (checked against sync/export_format.schema.json),
a coordinator imports it once, and the same person's new phone brings its work back and sends
each visit once.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from types import SimpleNamespace

from playwright.sync_api import expect

from e2e.conftest import PHONE
from e2e.test_coordinator_flow import assert_accessible, sign_in
from e2e.test_pwa_field import (
    SYNC_TIMEOUT_MS,
    check_screen,
    choose_site,
    fill_street_visit,
    go_offline,
    go_online,
    idb,
    join,
    launch,
    new_volunteer,
    submissions_of,
    waiting_count,
)
from server import operations
from server.extensions import db
from server.models import Area, FormVersion, Person, Role
from sync.export import read_export

NOTES = "Anything else (optional)"


def street_lines(live) -> int:
    """How many lines the published street form has."""

    def work():
        version = db.session.query(FormVersion).filter_by(form_id="street", status="published").one()
        return sum(len(section["lines"]) for section in version.definition["sections"])

    return live.run(work)


def reinvite(live, name) -> str:
    """A new invite code for an existing volunteer (a new phone), as a coordinator issues it."""

    def work():
        area = db.session.query(Area).filter_by(slug=live.details["area"]).one()
        person = db.session.query(Person).filter_by(display_name=name).one()
        code = operations.issue_invite(area, "street_rep", person=person)
        db.session.commit()
        return code

    return live.run(work)


def open_street_form(page):
    page.get_by_role("link", name="Home").click()
    page.get_by_role("link", name="Street monitoring visit").click()
    expect(page.locator("fieldset.line:has(.grades)").first).to_be_visible()


def grade_lines(page, count, grade_index=1):
    lines = page.locator("fieldset.line:has(.grades)")
    for index in range(count):
        lines.nth(index).locator("label.grade").nth(grade_index).click()


def start_draft(page, search, site, graded):
    """A draft at `site` with the first `graded` lines answered, left unsaved."""
    open_street_form(page)
    choose_site(page, search, site)
    grade_lines(page, graded)


def draft_links(page):
    return page.locator("ul.drafts li a")


def download_export(page, folder, button="Download unsent work"):
    """Press the export button; the file is kept in `folder` (a closed browser deletes its
    downloads). Returns the file's bytes and its path."""
    with page.expect_download() as info:
        page.get_by_role("button", name=button).click()
    download = info.value
    assert re.fullmatch(r"kerbside-unsent-[\d-]+\.json", download.suggested_filename)
    path = folder / download.suggested_filename
    download.save_as(path)
    return path.read_bytes(), path


def local_input(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def phone_clock(page, local_value) -> str:
    """The time of a draft as the phone's language writes it (the app's own Intl call)."""
    return page.evaluate(
        "(value) => new Date(value).toLocaleTimeString(document.documentElement.lang, { hour: '2-digit', minute: '2-digit' })",
        local_value)


def meta_value(page, key):
    """One value of the app's meta store (the token, the person, ...)."""
    return page.evaluate(
        """(key) => new Promise((resolve, reject) => {
            const open = indexedDB.open("kerbside");
            open.onsuccess = () => {
                const request = open.result.transaction("meta").objectStore("meta").get(key);
                request.onsuccess = () => { open.result.close(); resolve(request.result); };
                request.onerror = () => reject(request.error);
            };
        })""",
        key,
    )


# -- no keystroke lost ---------------------------------------------------------------------------


def test_text_typed_just_before_a_reload_or_a_close_is_kept(live_server, playwright, tmp_path):
    profile = tmp_path / "phone"
    code = new_volunteer(live_server, "Rep Keystrokes")
    context, page = launch(playwright, profile)
    join(page, live_server, code)
    go_offline(context, live_server)
    open_street_form(page)
    choose_site(page, "Hope", "Hope Street")
    draft_url = page.url
    # Typed key by key, then the page reloads at once: the last keys were typed well within
    # a quarter of a second (the old debounce) of the reload.
    page.get_by_label(NOTES).press_sequentially("Bins out since Monday")
    page.reload()
    expect(page.get_by_label(NOTES)).to_have_value("Bins out since Monday")

    # The same for a line's note, with the browser closed 50 ms after the last key.
    first_line = page.locator("fieldset.line:has(.grades)").first
    first_line.locator("summary").click()
    first_line.get_by_label("Note").press_sequentially("Crisp packets by the bench")
    page.wait_for_timeout(50)
    context.close()

    context, page = launch(playwright, profile, live_server)
    page.goto(draft_url)
    expect(page.get_by_label(NOTES)).to_have_value("Bins out since Monday")
    expect(page.locator("fieldset.line:has(.grades)").first.get_by_label("Note")).to_have_value("Crisp packets by the bench")
    (draft,) = idb(page, "drafts")
    assert draft["notes"] == "Bins out since Monday"
    context.close()


def test_a_form_opened_and_left_leaves_no_draft(live_server, playwright, tmp_path):
    code = new_volunteer(live_server, "Rep Browsing")
    context, page = launch(playwright, tmp_path / "phone")
    join(page, live_server, code)
    open_street_form(page)
    page.get_by_label("Find a site by name").fill("Hope")  # looking is not a change
    page.get_by_role("link", name="Home").click()
    expect(page.get_by_text("No drafts.")).to_be_visible()

    page.get_by_role("link", name="Agreement checklist").click()
    expect(page.get_by_role("heading", name="Our part (the council and partners)")).to_be_visible()
    page.reload()  # the form was never touched: there is nothing to reopen
    expect(page.get_by_text("No drafts.")).to_be_visible()
    assert idb(page, "drafts") == []

    page.get_by_role("link", name="Settings").click()
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("heading", name="Join")).to_be_visible()  # nothing held it back
    context.close()


def test_drafts_are_listed_by_site_time_and_lines_answered(live_server, playwright, tmp_path):
    lines = street_lines(live_server)
    code = new_volunteer(live_server, "Rep Lister")
    context, page = launch(playwright, tmp_path / "phone")
    join(page, live_server, code)
    start_draft(page, "Hope", "Hope Street", graded=7)
    open_street_form(page)
    yesterday = local_input(datetime.now() - timedelta(days=1))
    page.get_by_label("Date and time of the visit").fill(yesterday)
    grade_lines(page, 1)
    page.get_by_role("link", name="Home").click()

    drafts = {draft["site"]["site_name"]: draft for draft in idb(page, "drafts")}
    today_time = phone_clock(page, drafts["Hope Street"]["observed_local"])
    expect(draft_links(page)).to_have_count(2)
    expect(draft_links(page).filter(has_text="Hope Street")).to_have_text(f"Hope Street, today {today_time}, 7 of {lines} lines")
    expect(draft_links(page).filter(has_text="No site chosen yet")).to_have_text(
        f"No site chosen yet, yesterday {phone_clock(page, yesterday)}, 1 of {lines} lines")
    expect(page.locator("ul.drafts li .hint").first).to_have_text("Street visit")
    check_screen(page, "drafts")
    context.close()


# -- signing out ---------------------------------------------------------------------------------


def test_signing_out_with_only_drafts_offers_to_export_them(live_server, playwright, tmp_path):
    code = new_volunteer(live_server, "Rep Leaving")
    context, page = launch(playwright, tmp_path / "phone")
    join(page, live_server, code)
    go_offline(context, live_server)
    fill_street_visit(page, "Canal Street")
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("button", name="Sign out", exact=True).click()
    # A visit waiting to be sent still holds sign-out back, with no way to delete it here.
    expect(page.get_by_role("alert")).to_have_text("Visits not sent yet: 1. Send them first, or export them and then sign out.")
    expect(page.get_by_role("button", name="Sign out and delete them")).to_be_hidden()

    go_online(context, live_server)
    expect(waiting_count(page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)
    start_draft(page, "Hope", "Hope Street", graded=2)
    page.get_by_label(NOTES).fill("Came back later for the rest")
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("cannot be sent: drafts: 1, needing attention: 0.")
    check_screen(page, "sign-out-drafts")
    raw, _path = download_export(page, tmp_path, "Export, then sign out")
    expect(page.get_by_role("heading", name="Join")).to_be_visible()

    exported = read_export(raw)
    assert exported["outbox"] == [] and exported["attention"] == []
    (draft,) = exported["drafts"]
    assert draft["site"]["site_name"] == "Hope Street" and draft["notes"] == "Came back later for the rest"
    assert idb(page, "drafts") == []
    context.close()


# -- one export format: the coordinator's import, and a new phone --------------------------------


def make_offline_work(page, context, live):
    """Two visits saved with no signal (one with a photo) and a draft with a note."""
    go_offline(context, live)
    fill_street_visit(page, "Canal Street", grade_index=2, photo=True)
    fill_street_visit(page, "Mill Lane", grade_index=0)
    start_draft(page, "Hope", "Hope Street", graded=3)
    page.get_by_label(NOTES).fill("Fly-tipping behind the shops")
    page.get_by_role("link", name="Home").click()
    expect(waiting_count(page)).to_have_attribute("data-count", "2")


def test_the_field_apps_export_is_imported_by_the_coordinator_once(live_server, playwright, browser, tmp_path):
    lines = street_lines(live_server)
    code = new_volunteer(live_server, "Rep Broken Phone")
    context, page = launch(playwright, tmp_path / "phone")
    join(page, live_server, code)
    make_offline_work(page, context, live_server)
    page.get_by_role("link", name="Settings").click()
    raw, path = download_export(page, tmp_path)

    exported = read_export(raw)  # the schema's check, on the file the app really wrote
    token = meta_value(page, "token")
    assert token and token.encode() not in raw
    assert len(exported["outbox"]) == 2 and len(exported["drafts"]) == 1 and len(exported["photos"]) == 1
    assert all(isinstance(entry["queued_at"], (int, float)) for entry in exported["outbox"])

    # The coordinator's desk has a signal while the phone has none: it reaches the server
    # directly, not through the relay that is cut for the phone.
    host, port = live_server.relay.upstream
    office = SimpleNamespace(url=f"http://{host}:{port}", details=live_server.details)
    desk = browser.new_context(viewport=PHONE)
    coordinator = desk.new_page()
    sign_in(coordinator, office)

    def import_file():
        coordinator.goto(office.url + "/coordinator/import")
        coordinator.get_by_label(re.compile("^Export file")).set_input_files(path)
        coordinator.get_by_role("button", name="Import").click()
        expect(coordinator.get_by_role("heading", level=1, name="Import finished")).to_be_visible()

    import_file()
    expect(coordinator.get_by_text("New visits stored: 2")).to_be_visible()
    drafts = coordinator.get_by_role("table", name="Drafts in the file")
    expect(drafts.get_by_role("row", name=re.compile("Hope Street"))).to_contain_text(f"3 of {lines}")
    assert_accessible(coordinator, "import result")
    stored = submissions_of(live_server, "Rep Broken Phone")
    assert len(stored) == 2 and len({submission_id for submission_id, *_rest in stored}) == 2

    import_file()
    expect(coordinator.get_by_text("Already here (not counted twice): 2")).to_be_visible()
    expect(coordinator.get_by_text("New visits stored: 0")).to_be_visible()

    # The phone finds a signal after all: its copies are duplicates, not second visits.
    go_online(context, live_server)
    expect(waiting_count(page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)
    assert sorted(item["result"]["status"] for item in idb(page, "sent")) == ["duplicate", "duplicate"]
    assert len(submissions_of(live_server, "Rep Broken Phone")) == 2
    desk.close()
    context.close()


def street_rep_role(live, name, held: bool):
    """Take the volunteer's street rep role away, or give it back."""

    def work():
        person = db.session.query(Person).filter_by(display_name=name).one()
        if held:
            area = db.session.query(Area).filter_by(slug=live.details["area"]).one()
            person.roles.append(Role(role="street_rep", area_id=area.id))
        else:
            db.session.query(Role).filter_by(person_id=person.id, role="street_rep").delete()
        db.session.commit()

    live.run(work)


def have_a_visit_refused(page, context, live, name):
    """A visit sent while the volunteer had lost the street rep role: it lands in "Needs attention"."""
    go_offline(context, live)
    fill_street_visit(page, "Queen Street")
    street_rep_role(live, name, held=False)
    go_online(context, live)
    expect(page.locator("#attention-link")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
    street_rep_role(live, name, held=True)


def test_a_refused_answer_is_named_by_its_line_not_by_the_protocols_path(live_server, playwright, tmp_path):
    """ "Needs attention" names a refused answer by its form line's label, and shows other problems
    in the server's words alone, never a field path such as `payload_hash:`."""
    name = "Rep Attention"
    context, page = launch(playwright, tmp_path / "phone")
    join(page, live_server, new_volunteer(live_server, name))
    have_a_visit_refused(page, context, live_server, name)
    first_line = live_server.run(lambda: db.session.query(FormVersion).filter_by(
        form_id="street", status="published").one().definition["sections"][0]["lines"][0])
    # As the server answers a visit whose answers it cannot take: problems by field path.
    page.evaluate("""(key) => new Promise((resolve, reject) => {
        const open = indexedDB.open("kerbside");
        open.onsuccess = () => {
            const store = open.result.transaction("attention", "readwrite").objectStore("attention");
            const all = store.getAll();
            all.onsuccess = () => {
                const item = all.result[0];
                item.result.errors = {[`answers.${key}`]: ["Choose one grade: A, B, C or D."],
                                      payload_hash: ["This was damaged on the way."]};
                store.put(item).onsuccess = () => { open.result.close(); resolve(); };
            };
            all.onerror = () => reject(all.error);
        };
    })""", first_line["key"])
    page.goto(f"{live_server.url}/app/#/attention")
    problems = page.locator("li.attention ul li")
    expect(problems).to_have_text([f"{first_line['label']}: Choose one grade: A, B, C or D.",
                                   "This was damaged on the way."], timeout=SYNC_TIMEOUT_MS)
    context.close()


def choose_restore_file(page, path):
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Export file from your old phone").set_input_files(path)


def test_a_new_phone_brings_back_the_work_and_sends_each_visit_once(live_server, playwright, tmp_path):
    lines = street_lines(live_server)
    name = "Rep Mover"
    old_phone, old_page = launch(playwright, tmp_path / "old-phone")
    join(old_page, live_server, new_volunteer(live_server, name))
    have_a_visit_refused(old_page, old_phone, live_server, name)
    make_offline_work(old_page, old_phone, live_server)
    old_page.get_by_role("link", name="Settings").click()
    raw, path = download_export(old_page, tmp_path)
    exported = read_export(raw)
    old_phone.close()  # broken: it never comes back online in this test
    live_server.relay.restore()  # the signal is back, for the new phone

    new_phone, page = launch(playwright, tmp_path / "new-phone")
    join(page, live_server, reinvite(live_server, name))
    choose_restore_file(page, path)
    status = page.get_by_role("status").filter(has_text="Brought back")
    expect(status).to_have_text("Brought back: drafts: 1, visits waiting to send: 2, needing attention: 1. "
                                "Already on this phone, so skipped: 0.")
    check_screen(page, "move-phone")
    expect(waiting_count(page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)

    # Each visit once, with the ids and hashes the old phone gave them, and the photo.
    stored = submissions_of(live_server, name)
    assert sorted(submission_id for submission_id, *_rest in stored) == sorted(
        entry["data"]["id"] for entry in exported["outbox"])
    sent = {item["mid"]: item for item in idb(page, "sent")}
    for entry in exported["outbox"]:
        assert sent[entry["mid"]]["mutation"]["payload_hash"] == entry["payload_hash"]
        assert sent[entry["mid"]]["result"]["status"] == "applied"
    photos = [sha for *_rest, data in stored for answer in data["answers"].values() for sha in answer.get("photos", [])]
    assert photos == list(exported["photos"])

    # The draft and the refused visit are here to carry on with.
    page.get_by_role("link", name="Home").click()
    (draft,) = exported["drafts"]
    expect(draft_links(page)).to_have_text(
        f"Hope Street, today {phone_clock(page, draft['observed_local'])}, 3 of {lines} lines")
    expect(page.locator("#attention-link")).to_have_text("Needs attention: 1")
    draft_links(page).click()
    expect(page.get_by_label(NOTES)).to_have_value("Fly-tipping behind the shops")

    # The same file again changes nothing: all of it is already here.
    choose_restore_file(page, path)
    expect(page.get_by_role("status").filter(has_text="Brought back")).to_have_text(
        "Brought back: drafts: 0, visits waiting to send: 0, needing attention: 0. Already on this phone, so skipped: 4.")
    expect(waiting_count(page)).to_have_attribute("data-count", "0")
    assert len(idb(page, "drafts")) == 1
    assert len(submissions_of(live_server, name)) == 2
    new_phone.close()

    # Someone else's phone refuses the file, says why, and keeps nothing of it.
    other, other_page = launch(playwright, tmp_path / "other-phone")
    join(other_page, live_server, new_volunteer(live_server, "Rep Someone Else"))
    choose_restore_file(other_page, path)
    expect(other_page.get_by_role("status").filter(has_text="another volunteer")).to_contain_text(
        "This file holds another volunteer's work, so nothing was changed.")
    assert idb(other_page, "drafts") == [] and idb(other_page, "outbox") == [] and idb(other_page, "attention") == []
    assert idb(other_page, "blobs") == []
    other.close()


# -- an app updated from before drafts waited for a change ---------------------------------------


def test_the_upgrade_removes_only_the_empty_drafts_that_opening_a_form_left(live_server, page):
    """An IndexedDB of schema version 1 with an untouched draft and a started one, then the app opens it."""
    page.goto(f"{live_server.url}/")  # same origin as the app, but not the app: it must not open the database yet
    page.evaluate("""() => new Promise((resolve, reject) => {
        const open = indexedDB.open("kerbside", 1);
        open.onupgradeneeded = () => {
            const db = open.result;
            for (const name of ["meta", "attention"]) db.createObjectStore(name, name === "meta" ? undefined : { keyPath: "mid" });
            db.createObjectStore("drafts", { keyPath: "id" });
            db.createObjectStore("outbox", { keyPath: "mid" }).createIndex("seq", "seq");
            db.createObjectStore("sent", { keyPath: "mid" }).createIndex("sent_at", "sent_at");
            db.createObjectStore("blobs", { keyPath: "sha256" });
            db.createObjectStore("replica", { keyPath: "key" }).createIndex("collection", "collection");
        };
        open.onsuccess = () => {
            const site = { mode: "list", site_id: null, site_name: "", new_name: "" };
            const drafts = open.result.transaction("drafts", "readwrite").objectStore("drafts");
            drafts.put({ id: "empty", form: { id: "street", version: 1 }, site, answers: {}, notes: "" });
            drafts.put({ id: "noted", form: { id: "street", version: 1 }, site, answers: { litter: { note: "bags" } }, notes: "" });
            drafts.transaction.oncomplete = () => { open.result.close(); resolve(); };
            drafts.transaction.onerror = () => reject(drafts.transaction.error);
        };
        open.onerror = () => reject(open.error);
    })""")
    page.goto(f"{live_server.url}/app/")
    expect(page.get_by_role("heading", name="Join")).to_be_visible()
    page.wait_for_function("indexedDB.databases().then((all) => all.some((d) => d.name === 'kerbside' && d.version > 1))")
    assert [draft["id"] for draft in idb(page, "drafts")] == ["noted"]
    assert json.dumps(idb(page, "drafts")[0]["answers"]) == '{"litter": {"note": "bags"}}'
