"""The "was retired" notice on phones (issue 10, point 7), in a real Chromium against a live server.

It shows on a phone that had the retired version, once: dismissed, it stays dismissed (the
dismissal is kept in IndexedDB) through reloads and later syncs. A phone that joins after the
retirement, and a mystery shopper's phone (which receives the street form but never offers
it), show no notice at all.
"""

from __future__ import annotations

import json

from playwright.sync_api import expect

from e2e.test_pwa_field import SYNC_TIMEOUT_MS, idb, join, launch, new_volunteer
from server import operations
from server.extensions import db
from server.models import FormVersion
from server.seed_content import STREET_FORM


def _join_as_shopper(page, live, code):
    page.goto(f"{live.url}/app/")
    page.get_by_label("Invite code").fill(code)
    page.get_by_role("button", name="Join").click()
    expect(page.get_by_role("link", name="Mystery shop")).to_be_visible(timeout=SYNC_TIMEOUT_MS)


def _synced_again(page):
    """Reload (the app syncs as it starts) and wait until that sync has finished."""
    before = page.evaluate("""() => new Promise((resolve) => {
        const open = indexedDB.open("kerbside");
        open.onsuccess = () => { const r = open.result.transaction("meta").objectStore("meta").get("last_sync");
                                 r.onsuccess = () => { open.result.close(); resolve(r.result || 0); }; };
    })""")
    page.reload()
    page.wait_for_function("""(before) => new Promise((resolve) => {
        const open = indexedDB.open("kerbside");
        open.onsuccess = () => { const r = open.result.transaction("meta").objectStore("meta").get("last_sync");
                                 r.onsuccess = () => { open.result.close(); resolve((r.result || 0) > before); }; };
    })""", arg=before, timeout=SYNC_TIMEOUT_MS)
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def _meta(page, key):
    rows = page.evaluate("""(key) => new Promise((resolve) => {
        const open = indexedDB.open("kerbside");
        open.onsuccess = () => { const r = open.result.transaction("meta").objectStore("meta").get(key);
                                 r.onsuccess = () => { open.result.close(); resolve(r.result === undefined ? null : r.result); }; };
    })""", key)
    return rows


def _publish_and_retire(live):
    def work():
        current = db.session.query(FormVersion).filter_by(form_id="street", status="published").one()
        renamed = json.loads(json.dumps(STREET_FORM))
        renamed["sections"][0]["lines"][0]["label"] = "Groups gathering or disorderly behaviour"
        operations.publish_form_version(operations.draft_form_version("street", renamed))
        operations.retire_form_version(current)
        db.session.commit()
        return current.version

    return live.run(work)


def test_retirement_notice_is_shown_once_and_only_on_phones_that_had_the_version(live_server, playwright, tmp_path):
    rep_context, rep = launch(playwright, tmp_path / "rep")
    join(rep, live_server, new_volunteer(live_server, "Rep Notices", roles=("street_rep",)))
    shopper_context, shopper = launch(playwright, tmp_path / "shopper")
    _join_as_shopper(shopper, live_server, new_volunteer(live_server, "Shopper Notices", roles=("mystery_shopper",)))
    # Both phones have the street form in their replica; only the rep's offered it.
    assert any(row["collection"] == "forms" and row["data"]["id"] == "street" for row in idb(shopper, "replica"))

    retired = _publish_and_retire(live_server)
    notice = f"Version {retired} of"

    _synced_again(rep)
    expect(rep.get_by_text(notice)).to_have_count(1)
    expect(rep.get_by_role("heading", name="Messages")).to_be_visible()
    rep.get_by_role("button", name="Hide this message").click()
    expect(rep.get_by_text(notice)).to_have_count(0)
    expect(rep.get_by_role("heading", name="Messages")).to_have_count(0)
    assert len(_meta(rep, "dismissed_notices")) == 1
    # Dismissed for good: not after a reload and another sync either.
    _synced_again(rep)
    expect(rep.get_by_role("link", name="Street monitoring visit")).to_be_visible()
    expect(rep.get_by_text(notice)).to_have_count(0)

    # The mystery shopper's phone received the message but never had the street form: nothing shown.
    _synced_again(shopper)
    assert any(row["collection"] == "device" for row in idb(shopper, "replica"))
    expect(shopper.get_by_role("link", name="Mystery shop")).to_be_visible()
    expect(shopper.get_by_text(notice)).to_have_count(0)
    expect(shopper.get_by_role("heading", name="Messages")).to_have_count(0)

    # A phone that joins now meets the version already retired: it never had it.
    new_context, new_phone = launch(playwright, tmp_path / "new")
    join(new_phone, live_server, new_volunteer(live_server, "Rep New Phone", roles=("street_rep",)))
    assert any(row["collection"] == "device" for row in idb(new_phone, "replica"))
    expect(new_phone.get_by_text(notice)).to_have_count(0)
    _synced_again(new_phone)
    expect(new_phone.get_by_text(notice)).to_have_count(0)
    for context in (rep_context, shopper_context, new_context):
        context.close()
