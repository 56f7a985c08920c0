"""Background Sync does its job: the service worker's handler rejects when the push did not go
through, so the browser tries again later, and sends the outbox when it did.

The handler is the worker's own `backgroundSync(tag)`, which its `sync` listener passes to
`event.waitUntil`; the test calls it inside the real service worker (Playwright can evaluate
in a worker) with the server out of reach, then reachable, and fires a real `sync` event
through the DevTools protocol. Its negative control deploys a worker whose handler resolves
on failure, and shows the same check catches it.
"""

from __future__ import annotations

import time

from playwright.sync_api import expect

from e2e.test_pwa_field import (
    SYNC_TIMEOUT_MS,
    deployed_app,
    fill_street_visit,
    go_offline,
    go_online,
    join,
    launch,
    new_volunteer,
    replace_in,
    submissions_of,
    waiting_count,
)

HANDLER = """() => self.kerbside.backgroundSync(self.kerbside.SYNC_TAG).then(
    (status) => ({settled: "resolved", status}),
    (error) => ({settled: "rejected", message: String(error && error.message)}))"""


def service_worker(context):
    """The app's active service worker, as Playwright sees it."""
    deadline = time.monotonic() + SYNC_TIMEOUT_MS / 1000
    while not context.service_workers and time.monotonic() < deadline:
        time.sleep(0.1)
    (worker,) = context.service_workers
    return worker


def handler_outcome(worker):
    """What the worker's sync handler does now; a sync the page is running is waited out."""
    for _attempt in range(50):
        outcome = worker.evaluate(HANDLER)
        if outcome.get("status") != "busy":
            return outcome
        time.sleep(0.2)
    return outcome


def offline_handler_outcome(playwright, live, profile, name):
    """Join, save a visit with no signal, and run the worker's sync handler: how does it settle?"""
    code = new_volunteer(live, name, roles=("street_rep",))
    context, page = launch(playwright, profile)
    join(page, live, code)
    worker = service_worker(context)
    go_offline(context, live)
    fill_street_visit(page, "Canal Street")
    expect(waiting_count(page)).to_have_attribute("data-count", "1")
    outcome = handler_outcome(worker)
    return context, page, worker, outcome


def test_background_sync_rejects_while_the_push_cannot_go_through_and_sends_once_it_can(live_server, playwright, tmp_path):
    context, page, worker, offline = offline_handler_outcome(playwright, live_server, tmp_path / "phone", "Rep Background")
    assert offline["settled"] == "rejected", offline  # the browser will fire the sync event again
    assert submissions_of(live_server, "Rep Background") == []

    # Signal again, and no app page open: the browser's own sync event sends the outbox.
    page.goto("about:blank")
    go_online(context, live_server)
    cdp = context.new_cdp_session(page)
    registrations = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda event: registrations.extend(event["registrations"]))
    cdp.send("ServiceWorker.enable")
    deadline = time.monotonic() + SYNC_TIMEOUT_MS / 1000
    while not registrations and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    registration = next(r for r in registrations if r["scopeURL"].endswith("/app/"))
    cdp.send("ServiceWorker.dispatchSyncEvent", {"origin": live_server.url, "registrationId": registration["registrationId"],
                                                 "tag": "kerbside-outbox", "lastChance": False})
    deadline = time.monotonic() + SYNC_TIMEOUT_MS / 1000
    while not submissions_of(live_server, "Rep Background") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(submissions_of(live_server, "Rep Background")) == 1
    assert handler_outcome(worker) == {"settled": "resolved", "status": "ok"}
    context.close()


def worker_that_resolves_on_failure(live, tmp_path):
    """Deploy a broken variant of the app for the duration: its sync handler swallows a failed push."""
    return deployed_app(live, tmp_path, "broken-sync-handler", lambda folder: replace_in(
        folder, "sw.js", "if (SYNC_NOT_THROUGH.includes(outcome.status)) throw new Error(", "if (false) throw new Error("))


def test_negative_control_a_handler_that_resolves_on_failure_is_caught(live_server, playwright, tmp_path):
    with worker_that_resolves_on_failure(live_server, tmp_path):
        context, _page, _worker, offline = offline_handler_outcome(playwright, live_server, tmp_path / "phone", "Rep Broken Sync")
    # The check the real handler passes reports this variant as broken: it resolved, so the
    # browser would never fire the sync event again for a visit still on the phone.
    assert offline["settled"] == "resolved" and offline["status"] == "offline"
    go_online(context, live_server)
    context.close()
