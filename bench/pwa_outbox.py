"""1,000 visits queued offline in the field app, sent once the phone is online again (4x CPU throttling).

The field app runs in a real headless Chromium (persistent profile, service worker, as the
browser tests run it) joined to a live server started as the browser tests start it
(`e2e.conftest.start_live_server`: the demo data, werkzeug's threaded server, reached
through the cuttable TCP relay). The phone goes offline the sound way (docs: environment.md,
"Offline in a browser test"): the relay refuses connections, and `set_offline` and a route
that aborts every request are kept as well.

The visits are queued through the app's own code path, not its form: `page.evaluate`
imports the app's `outbox.js` (the same module instance the page runs, from the build's
asset folder), and for each visit does what the form's "Save and send" does — `newDraft`
on the published street form, one grade per line and a site from the replica, `saveDraft`,
`queueDraft` — without drawing the form 1,000 times. In mode `background-sync` it also
registers the Background Sync the app registers after each save (`requestBackgroundSync`);
in mode `page` only the page's own `online` listener syncs, so that the sync surely runs in
the page, which is the target CDP throttles (a service worker is a target of its own); in
mode `background-sync` Background Sync is registered after each visit as the app does.

Then, with 4x CPU throttling on the page (CDP `Emulation.setCPUThrottlingRate`), the phone
goes online and the clock runs until the outbox is empty AND the server holds the 1,000
visits. Each sync request the page made is listed with Chromium's own timing of it, so the
time the page spends between requests (its own work) shows beside the server's.

Run: python bench/pwa_outbox.py [--visits 1000] [--runs 3] [--modes page,background-sync] [--no-write]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.report import write_section  # noqa: E402
from e2e.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE, start_live_server  # noqa: E402
from e2e.test_pwa_field import go_offline, go_online, join  # noqa: E402
from server import operations  # noqa: E402
from server.extensions import db  # noqa: E402
from server.models import Area, Person, Submission  # noqa: E402

TARGET_S = 20.0

# Queues `count` street visits the way the form's "Save and send" does, in the page, with the
# app's own modules (imported from the build's asset folder: the same instances the app runs).
QUEUE = """async ({ count, backgroundSync }) => {
  const entry = document.querySelector("script[type=module][src]").src;
  const base = entry.slice(0, entry.lastIndexOf("/js/") + 4);
  const outbox = await import(base + "outbox.js");
  const db = await import(base + "db.js");
  const screens = await import(base + "screens.js");
  const sync = await import(base + "sync.js");
  const person = await db.getMeta("person");
  const areas = (await db.getMeta("areas")) || [];
  const form = (await screens.currentForms(person)).find((found) => found.kind === "street");
  const sites = (await db.replicaAll("sites")).filter((site) => site.status === "approved");
  const lines = form.sections.flatMap((section) => section.lines).filter((line) => line.type === "grade");
  const area = areas.length === 1 ? areas[0].id : null;
  const started = performance.now();
  for (let n = 0; n < count; n += 1) {
    const draft = outbox.newDraft(form);
    const site = sites[n % sites.length];
    draft.site = { mode: "list", site_id: site.id, site_name: site.name, new_name: "" };
    for (const [index, line] of lines.entries()) draft.answers[line.key] = { grade: "ABCD"[(n + index) % 4] };
    await outbox.saveDraft(draft);
    if (!(await outbox.queueDraft(draft, area))) throw new Error("a visit was not queued");
    if (backgroundSync) await sync.requestBackgroundSync(await navigator.serviceWorker.getRegistration());
  }
  return { ms: performance.now() - started, outbox: await db.countOf("outbox"), lines: lines.length };
}"""

OUTBOX_COUNT = """async () => {
  const entry = document.querySelector("script[type=module][src]").src;
  const db = await import(entry.slice(0, entry.lastIndexOf("/js/") + 4) + "db.js");
  return [await db.countOf("outbox"), await db.countOf("attention")];
}"""


class Folders:
    """What `start_live_server` needs of pytest's tmp_path_factory: a fresh folder by name."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="kerbside-bench-outbox-"))

    def mktemp(self, name):
        folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.root))
        return folder


def new_volunteer(live, name) -> str:
    def work():
        area = db.session.query(Area).filter_by(slug=live.details["area"]).one()
        person = operations.create_person(name, roles=[("street_rep", area)])
        code = operations.issue_invite(area, "street_rep", person=person)
        db.session.commit()
        return code

    return live.run(work)


def stored_visits(live, name) -> int:
    def work():
        person = db.session.query(Person).filter_by(display_name=name).one()
        return db.session.query(Submission).filter_by(person_id=person.id).count()

    return live.run(work)


def one_run(playwright, live, visits: int, background_sync: bool, number: int) -> dict:
    name = f"Outbox bench {number}"
    code = new_volunteer(live, name)
    with tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, viewport=PHONE, service_workers="allow")
        try:
            page = context.pages[0] if context.pages else context.new_page()
            join(page, live, code)
            go_offline(context, live)
            queued = page.evaluate(QUEUE, {"count": visits, "backgroundSync": background_sync})
            if queued["outbox"] != visits:
                raise RuntimeError(f"the outbox holds {queued['outbox']} items, not {visits}")
            page.wait_for_timeout(1000)  # whatever the app tries offline, it tries now, and fails
            if stored_visits(live, name):
                raise RuntimeError("visits reached the server while the phone was offline")
            requests = []

            def finished(request):
                if request.method == "POST" and request.url.endswith("/api/sync/v1"):
                    timing = request.timing
                    requests.append({"start": timing["startTime"], "ms": timing["responseEnd"],
                                     "wait": timing["responseStart"] - timing["requestStart"],
                                     "bytes": len(request.post_data_buffer or b""),
                                     # Playwright names the service worker a request came from, if any.
                                     "worker": getattr(request, "service_worker", None) is not None})

            context.on("requestfinished", finished)
            cdp = context.new_cdp_session(page)
            cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
            load = os.getloadavg()[0]
            started = time.perf_counter()
            go_online(context, live)
            outbox_empty_at = server_full_at = None
            deadline = started + 300
            while outbox_empty_at is None or server_full_at is None:
                now = time.perf_counter()
                if now > deadline:
                    raise RuntimeError("not sent within 300 s")
                if server_full_at is None and stored_visits(live, name) >= visits:
                    server_full_at = time.perf_counter()
                if outbox_empty_at is None:
                    waiting, attention = page.evaluate(OUTBOX_COUNT)
                    if attention:
                        raise RuntimeError(f"{attention} visits need attention")
                    if waiting == 0:
                        outbox_empty_at = time.perf_counter()
                page.wait_for_timeout(100)
            seconds = max(outbox_empty_at, server_full_at) - started
            stored = stored_visits(live, name)
            if stored != visits:
                raise RuntimeError(f"the server holds {stored} visits, not {visits}")
            cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
        finally:
            context.close()
    requests.sort(key=lambda r: r["start"])
    return {"seconds": seconds, "server_full_s": server_full_at - started, "outbox_empty_s": outbox_empty_at - started,
            "queue_ms": queued["ms"], "requests": requests, "load": load, "lines": queued["lines"]}


MODES = {
    "page": "the page's `online` listener syncs (no Background Sync registered)",
    "background-sync": "Background Sync registered after each visit, as the app's save does (the page's `online` "
                       "listener or the service worker's `sync` event, whichever takes the sync lock first)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default="page,background-sync", help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--no-write", action="store_true")
    options = parser.parse_args()
    modes = [mode for mode in options.modes.split(",") if mode]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")
    from playwright.sync_api import sync_playwright

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request would bury the figures
    folders = Folders()
    live, server = start_live_server(folders, "outbox")
    runs = {mode: [] for mode in modes}
    try:
        with sync_playwright() as playwright:
            for number in range(options.runs):
                for mode in modes:  # interleaved, so a busy moment on the machine falls on each
                    run = one_run(playwright, live, options.visits, mode == "background-sync", len(runs[mode]) + 100 * modes.index(mode))
                    runs[mode].append(run)
                    first = run["requests"][0]["start"] if run["requests"] else 0
                    print(f"{mode} run {number + 1}: {run['seconds']:.2f} s (server full {run['server_full_s']:.2f} s, "
                          f"outbox empty {run['outbox_empty_s']:.2f} s), {len(run['requests'])} sync requests, "
                          f"load {run['load']:.2f}", flush=True)
                    for r in run["requests"]:
                        print(f"   request at {r['start'] - first:7.0f} ms: {r['ms']:6.0f} ms "
                              f"(server wait {r['wait']:6.0f} ms), {r['bytes']:,} bytes sent"
                              f"{', from the service worker' if r['worker'] else ', from the page'}")
    finally:
        live.relay.close()
        server.shutdown()
        with live.app.app_context():
            db.engine.dispose()
        shutil.rmtree(folders.root, ignore_errors=True)  # the server's database and the build
    database = "PostgreSQL" if os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql") else "SQLite"
    lines = [f"## Field app: {options.visits:,} visits queued offline, sent once online", "",
             f"`python bench/pwa_outbox.py --visits {options.visits} --runs {options.runs}` — headless Chromium, "
             f"persistent profile, joined to the e2e live server (werkzeug, {database}, demo data) through the cuttable "
             "relay; offline as environment.md says is sound (relay cut, `set_offline`, a route aborting every request). "
             "The visits (street form, 12 graded lines, no photos) are queued through the app's own modules in "
             "`page.evaluate` (`newDraft`, `saveDraft`, `queueDraft`: what the form's Save does, without drawing the "
             "form 1,000 times). Then 4x CPU throttling (CDP) on the page, online, and the clock runs until the outbox "
             f"is empty and the server holds every visit. Target: ≤ {TARGET_S:.0f} s. Modes: "
             + "; ".join(f"`{mode}`: {MODES[mode]}" for mode in modes) + ". CDP throttles the page only: a sync the "
             "service worker runs is not slowed 4x.", "",
             "| mode | run | sent (outbox empty and server full) | server full | outbox empty | sync requests (of them, the worker's) "
             "| time inside them | of it, server wait | queuing offline (unthrottled) | load (1 min) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for mode, found in runs.items():
        for number, run in enumerate(found, 1):
            lines.append(f"| {mode} | {number} | {run['seconds']:.2f} s | {run['server_full_s']:.2f} s "
                         f"| {run['outbox_empty_s']:.2f} s | {len(run['requests'])} ({sum(r['worker'] for r in run['requests'])}) "
                         f"| {sum(r['ms'] for r in run['requests']) / 1000:.2f} s "
                         f"| {sum(r['wait'] for r in run['requests']) / 1000:.2f} s | {run['queue_ms'] / 1000:.1f} s "
                         f"| {run['load']:.2f} |")
    lines.append("")
    for mode, found in runs.items():
        middle = sorted(found, key=lambda run: run["seconds"])[len(found) // 2]
        inside = sum(r["ms"] for r in middle["requests"]) / 1000
        lines.append(f"- `{mode}`: median **{statistics.median(run['seconds'] for run in found):.2f} s** "
                     f"(target ≤ {TARGET_S:.0f} s); in the median run {inside:.2f} s were inside its "
                     f"{len(middle['requests'])} sync requests, the rest the app's own work between and after them "
                     "(IndexedDB, building each batch) and the wait for the sync to start.")
    text = "\n".join(lines)
    print(text)
    if not options.no_write:
        write_section("pwa-outbox", text)


if __name__ == "__main__":
    main()
