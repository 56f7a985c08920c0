"""When the server refuses the phone, or forgets what it acknowledged, no visit is lost.

In a real Chromium at a phone's size: a device a coordinator signed out (401), a server that
needs a newer app (426), and a server restored from a backup (a new epoch). The Python
reference client has the same cases in tests/sync; these show the field app's own handling.
The 426 case that deploys a new app version runs last in this module.
"""

from __future__ import annotations

import json
import time

from playwright.sync_api import expect
from sqlalchemy import delete

from e2e.test_pwa_field import (
    SYNC_TIMEOUT_MS,
    fill_street_visit,
    go_offline,
    go_online,
    idb,
    join,
    launch,
    new_app_version,
    new_volunteer,
    submissions_of,
    waiting_count,
)
from server import operations
from server.extensions import db
from server.models import Answer, Area, Change, Device, MutationLog, Person, Submission


def person_named(name):
    return db.session.query(Person).filter_by(display_name=name).one()


def eventually(page, read, count=2):
    """`read()` once it holds `count` things, or as it is when the sync timeout has passed."""
    deadline = time.monotonic() + SYNC_TIMEOUT_MS / 1000
    value = read()
    while len(value) < count and time.monotonic() < deadline:
        page.wait_for_timeout(200)
        value = read()
    return value


def test_a_signed_out_phone_keeps_its_visits_and_sends_them_once_it_joins_again(live_server, playwright, tmp_path):
    code = new_volunteer(live_server, "Rep Revoked", roles=("street_rep",))
    context, page = launch(playwright, tmp_path / "phone")
    join(page, live_server, code)
    go_offline(context, live_server)
    fill_street_visit(page, "Canal Street")
    expect(waiting_count(page)).to_have_attribute("data-count", "1")

    def revoke():
        for device in db.session.query(Device).filter_by(person_id=person_named("Rep Revoked").id):
            operations.revoke_device(device)
        db.session.commit()

    live_server.run(revoke)
    go_online(context, live_server)
    expect(page.get_by_text("This phone needs to join again")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
    expect(waiting_count(page)).to_have_attribute("data-count", "1")
    assert submissions_of(live_server, "Rep Revoked") == []

    def new_invite():
        area = db.session.query(Area).filter_by(slug=live_server.details["area"]).one()
        invite = operations.issue_invite(area, "street_rep", person=person_named("Rep Revoked"))
        db.session.commit()
        return invite

    page.get_by_role("link", name="Join again").click()
    page.get_by_label("Invite code").fill(live_server.run(new_invite))
    page.get_by_role("button", name="Join").click()
    expect(waiting_count(page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)
    expect(page.get_by_text("This phone needs to join again")).to_have_count(0)
    assert len(submissions_of(live_server, "Rep Revoked")) == 1
    context.close()


def test_after_a_restore_the_phone_sends_again_what_the_server_lost(live_server, playwright, tmp_path):
    code = new_volunteer(live_server, "Rep Restore", roles=("street_rep",))
    context, page = launch(playwright, tmp_path / "phone")
    join(page, live_server, code)
    go_offline(context, live_server)
    fill_street_visit(page, "Mill Lane")
    fill_street_visit(page, "Queen Street")
    expect(waiting_count(page)).to_have_attribute("data-count", "2")
    go_online(context, live_server)
    expect(waiting_count(page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)
    kept, lost = sorted(submissions_of(live_server, "Rep Restore"), key=lambda row: row[3]["observed_at"])
    lost_id = lost[0]

    def restore_from_an_older_backup():
        """What a restore does to the newest visit: gone, with its log row and changes; then the runbook."""
        lost = db.session.get(Submission, lost_id)
        db.session.execute(delete(MutationLog).where(MutationLog.payload_hash == lost.payload_hash))
        db.session.execute(delete(Answer).where(Answer.submission_id == lost_id))
        db.session.execute(delete(Submission).where(Submission.id == lost_id))
        db.session.execute(delete(Change).where(Change.record_id == lost_id))
        db.session.commit()
        operations.start_new_epoch()  # `kerbside new-epoch`

    live_server.run(restore_from_an_older_backup)
    assert [row[0] for row in submissions_of(live_server, "Rep Restore")] == [kept[0]]

    # The phone notices the new epoch on its next sync (here: the app opened again), puts its
    # sent archive back in the outbox, and sends it.
    page.reload()
    stored = eventually(page, lambda: sorted(row[0] for row in submissions_of(live_server, "Rep Restore")))
    assert stored == sorted([kept[0], lost_id])
    resent = eventually(page, lambda: sorted(item["result"]["status"] for item in idb(page, "sent") if item.get("resent")))
    assert resent == ["applied", "duplicate"]  # the lost visit stored again; the kept one not twice
    expect(waiting_count(page)).to_have_attribute("data-count", "0")
    context.close()


def refuse_this_app(context):
    """The server answers every sync with 426 (it needs a newer app); returns the bodies it was sent."""
    asked = []

    def needs_a_newer_app(route):
        asked.append(route.request.post_data_json)
        route.fulfill(status=426, content_type="application/json", body=json.dumps({
            "code": "protocol_unsupported", "supported": [2],
            "message": "This version of the app cannot talk to Kerbside. Update the app. Nothing on your phone is lost.",
        }))

    context.route("**/api/sync/v1", needs_a_newer_app)
    return asked, needs_a_newer_app


def test_the_app_asks_again_on_each_attempt_and_sends_once_the_server_accepts_it(live_server, playwright, tmp_path):
    code = new_volunteer(live_server, "Rep Rollback", roles=("street_rep",))
    context, page = launch(playwright, tmp_path / "phone")
    join(page, live_server, code)
    asked, handler = refuse_this_app(context)
    fill_street_visit(page, "Union Street")
    expect(page.get_by_text("Kerbside needs a newer version of the app")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
    expect(waiting_count(page)).to_have_attribute("data-count", "1")

    # "Send now" asks the server again, with nothing pushed, and keeps the visit.
    before = len(asked)
    page.get_by_role("button", name="Send now").click()
    deadline = time.monotonic() + SYNC_TIMEOUT_MS / 1000
    while len(asked) == before and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert len(asked) > before and asked[-1]["mutations"] == []
    expect(waiting_count(page)).to_have_attribute("data-count", "1")

    # No newer app exists yet: the button says so and the visit stays.
    page.get_by_role("button", name="Update the app").click()
    expect(page.get_by_text("There is no newer app yet")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
    assert submissions_of(live_server, "Rep Rollback") == []

    # The server accepts this app again (say, its update was rolled back): the next attempt sends.
    context.unroute("**/api/sync/v1", handler)
    page.get_by_role("button", name="Send now").click()
    expect(waiting_count(page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)
    expect(page.get_by_text("Kerbside needs a newer version of the app")).to_have_count(0)
    assert len(submissions_of(live_server, "Rep Rollback")) == 1
    context.close()


def test_a_server_that_needs_a_newer_app_keeps_the_visits_and_update_the_app_reloads_into_it(live_server, playwright, tmp_path):
    code = new_volunteer(live_server, "Rep Protocol", roles=("street_rep",))
    context, page = launch(playwright, tmp_path / "phone")
    join(page, live_server, code)
    first_version = page.locator("html").get_attribute("data-version")
    _asked, handler = refuse_this_app(context)
    fill_street_visit(page, "Union Street")
    expect(page.get_by_text("Kerbside needs a newer version of the app")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
    expect(waiting_count(page)).to_have_attribute("data-count", "1")
    assert submissions_of(live_server, "Rep Protocol") == []

    # The server is updated and so is the app: "Update the app" fetches the new worker and
    # reloads into it; the new version tries again and sends.
    context.unroute("**/api/sync/v1", handler)
    with new_app_version(live_server, tmp_path):
        page.get_by_role("button", name="Update the app").click()
        expect(page.get_by_role("link", name="My visits and reviews")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
        assert page.locator("html").get_attribute("data-version") != first_version
        expect(waiting_count(page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)
        expect(page.get_by_text("Kerbside needs a newer version of the app")).to_have_count(0)
    assert len(submissions_of(live_server, "Rep Protocol")) == 1
    context.close()
