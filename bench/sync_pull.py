"""The pull half of a sync, at scale: incremental pulls, a worker's memory, and first syncs with history.

Three parts, each on SQLite (a fresh file) and on PostgreSQL (--database-url, default the
`bench_sync` database, emptied first: its tables are dropped and made again):

1. `incremental` — an incremental pull of 100 changes with 10,000 and with 1,000,000 change
   rows stored: realistic site records across 20 areas, put in by COPY (server/bulk.py) with
   seqs from the change counter, as the server takes them. A device of one area whose cursor
   is 100 of its area's changes behind the end pulls (no mutations) through the Flask test
   client with gzip accepted; median server time of --pulls pulls (after a warm-up), gzip
   bytes as they leave the server. Target: ≤ 6 ms median, ratio 1M / 10k ≤ 1.1.
2. `rss` — the peak resident memory of a gunicorn worker while 20 new phones do a whole first
   sync of a 5,000-site area at once (every page, limit 1000, gzip accepted). The server is
   `kerbside serve --workers 1` (the app made once in the master, then one sync worker
   forked, as production runs it), with Redis db 4 for limits. RSS is sampled from
   /proc/PID/status every 10 ms (VmRSS), and the kernel's own peak (VmHWM) read at the end.
   Target: ≤ 200 MB.
3. `first-sync` — a new phone's first sync of a 500-site area (5 form versions, 2 agreements,
   gzip accepted), as bench/compression.py times it: fresh; then with 1,000,000 change rows
   of history in that area (most of them updates of its sites, each site edited ~1,900 times;
   2,000 sites that lived and were merged away, deleted at the end; 40 republished agreement
   versions); then after `compaction.compact(keep_days=0)`. The site table is left as the
   history says (each live site at its last version), so the first sync of any kind must
   show the same live records. Target: history ≤ 1.1x the bytes and time of the fresh area.

Server time is noisy on a shared machine: the one-minute load average is printed beside
every figure. Run: python bench/sync_pull.py [--parts incremental,rss,first-sync]
[--databases sqlite,postgresql] [--database-url URL] [--pulls 101] [--no-write]
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from sqlalchemy import bindparam, func, select, text, update  # noqa: E402

from bench.hosts import StartError, free_port, wait_for_port  # noqa: E402
from bench.report import write_section  # noqa: E402
from server import bulk, create_app, operations  # noqa: E402
from server.changes import take_seqs  # noqa: E402
from server.cli import drop_all_tables  # noqa: E402
from server.extensions import db  # noqa: E402
from server.models import Agreement, AgreementVersion, Area, Change, ServerState, Site, utcnow  # noqa: E402
from server.seed_content import AGREEMENT, STREET_FORM, checklist_form, mystery_shop_form  # noqa: E402
from sync import cursor as cursors  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_sync"
# Redis for the limits; BENCH_REDIS_URL picks another db where several benches share one Redis.
REDIS_URL = os.environ.get("BENCH_REDIS_URL") or "redis://127.0.0.1:6379/4"
AREAS = 20
SITES_PER_AREA = 500
CHUNK = 50_000  # change rows per COPY (one transaction each)
GZIP = {"Accept-Encoding": "gzip"}


def load() -> float:
    return os.getloadavg()[0]


class CpuClock:
    """CPU seconds used by the PostgreSQL backends serving the bench's database.

    On a machine other jobs share, wall-clock time includes waiting for a core; CPU time does
    not. The Flask test client runs the server in this process, so its CPU time is read with
    `time.process_time()` around each request (the bench's own decoding left out); PostgreSQL's
    work is done in its backends (found by their `postgres: user database` process title, as
    bench/ingest.py finds them), read before and after a series of requests: the kernel counts
    them in ticks of 10 ms, so over many requests, not one.
    """

    def __init__(self, url: str):
        from sqlalchemy import make_url

        parsed = make_url(url)
        self.database = parsed.database if parsed.get_backend_name() == "postgresql" else None
        self.tick = os.sysconf("SC_CLK_TCK")

    def backends(self) -> float:
        """CPU seconds of the PostgreSQL backends of this database so far (0 on SQLite)."""
        used = 0.0
        if self.database is None:
            return used
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    title = handle.read().replace(b"\0", b" ").decode(errors="replace")
                if not (title.startswith("postgres: ") and f" {self.database} " in title):
                    continue
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            used += (int(fields[11]) + int(fields[12])) / self.tick
        return used


# -- a database -------------------------------------------------------------------------------


def make_app(url: str, folder: str, extra: dict | None = None):
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench-only", "BLOB_DIR": os.path.join(folder, "blobs"),
                       "SYNC_RATE_PER_MINUTE": 10_000_000, "ENROL_LIMIT_ADDRESS": "1000000 per minute", **(extra or {})})


def fresh_schema(app) -> None:
    """Empty tables at the newest migration, and the state rows (as `kerbside db upgrade` leaves them)."""
    from server.cli import upgrade_database

    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            drop_all_tables()
        upgrade_database()
        db.session.remove()


def databases(names: list[str], url: str) -> list[tuple[str, str, str]]:
    """(label, url, folder) per database asked for; SQLite gets a fresh file in a fresh folder (each part its own)."""
    found = []
    for name in names:
        folder = tempfile.mkdtemp(prefix=f"kerbside-bench-pull-{name}-")
        if name == "sqlite":
            found.append(("SQLite", f"sqlite:///{folder}/bench.sqlite", folder))
        else:
            found.append(("PostgreSQL", url, folder))
    return found


def removed(where: list[tuple[str, str, str]]) -> None:
    """Delete the part's folders (a SQLite file of 1,000,000 change rows is half a gigabyte)."""
    for _label, _url, folder in where:
        shutil.rmtree(folder, ignore_errors=True)


def publish_forms() -> None:
    """5 form versions every area shares (3 of the street form, a checklist, a mystery shop), as bench/compression.py."""
    definitions = [("street", STREET_FORM), ("street", STREET_FORM), ("street", STREET_FORM),
                   ("checklist", checklist_form(AGREEMENT)), ("mystery_shop", mystery_shop_form(AGREEMENT))]
    for form_id, definition in definitions:
        operations.publish_form_version(operations.draft_form_version(form_id, definition))


def make_area(slug: str, sites: int, agreements: int = 2):
    """An area with `sites` sites along a few streets and `agreements` published agreements."""
    area = operations.create_area(slug, slug.replace("-", " ").title())
    operations.create_sites(area, [{"name": f"{n} {slug.title()} Street", "lat": 53.5 + n / 10000, "lng": -2.6,
                                    "notes": "Bins out on Tuesdays" if n % 7 == 0 else ""}
                                   for n in range(1, sites + 1)])
    for n in range(agreements):
        operations.publish_agreement_version(operations.draft_agreement_version(f"{slug}-deal-{n}", area, AGREEMENT))
    return area


def enrol(client, area, name="Bench") -> str:
    code = operations.issue_invite(area, "street_rep", display_name=name)
    db.session.commit()
    response = client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": code, "device_name": name})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["token"]


def site_record(site_id: str, area_id: str, n: int, version: int, notes: str) -> dict:
    """A site as the server sends it: Site.to_sync of an approved site, whatever fields that holds now."""
    return Site(id=site_id, area_id=area_id, name=f"{n} Bench Road", lat=round(53.5 + n / 10000, 6), lng=-2.6, line=None,
                notes=notes, photo=None, status="approved", version=version).to_sync()


def copy_changes(rows: list[dict]) -> None:
    """Change rows in one transaction: seqs from the counter, then COPY (PostgreSQL) or executemany (SQLite)."""
    seqs = take_seqs(db.session, len(rows))
    for seq, row in zip(seqs, rows):
        row["seq"] = seq
    bulk.insert_rows(db.session, Change.__table__, rows)
    db.session.commit()


def analyse() -> None:
    """Fresh planner statistics, as autovacuum (PostgreSQL) or a routine ANALYZE (SQLite) would leave them."""
    db.session.execute(text("ANALYZE"))
    db.session.commit()


def decoded(response) -> dict:
    raw = response.data
    if response.headers.get("Content-Encoding") == "gzip":
        raw = gzip.decompress(raw)
    return json.loads(raw)


# -- 1. incremental pulls ---------------------------------------------------------------------


def fill_areas(total: int, areas: list, start: int, rng: random.Random) -> None:
    """Change rows `start`..`total` (counted over the whole table), round-robin over the areas:
    site records put again and again (each site's version rising), 1 in 50 a delete."""
    written = start
    when = utcnow() - timedelta(days=700)
    while written < total:
        rows = []
        for n in range(written, min(total, written + CHUNK)):
            area = areas[n % len(areas)]
            number = rng.randrange(SITES_PER_AREA)
            site_id = area["sites"][number]
            op = "delete" if rng.random() < 0.02 else "put"
            version = n // (len(areas) * SITES_PER_AREA) + 2
            rows.append({"collection": "sites", "record_id": site_id, "op": op, "area_id": area["id"], "person_id": None,
                         "data": site_record(site_id, area["id"], number, version, f"Checked, visit {n}")
                         if op == "put" else None,
                         "created_at": when + timedelta(seconds=n * 60)})
        copy_changes(rows)
        written += len(rows)


def cursor_behind(epoch: str, scope: str, area_id: str, behind: int) -> str:
    """A cursor `behind` of the area's changes before the end of the log."""
    seqs = db.session.execute(select(Change.seq).where(Change.area_id == area_id).order_by(Change.seq.desc())
                              .limit(behind + 1)).scalars().all()
    if len(seqs) <= behind:
        raise RuntimeError(f"the area has only {len(seqs)} changes: fill more rows")
    return cursors.encode(cursors.Cursor(epoch=epoch, seq=seqs[-1], scope=scope))


def timed_pulls(client, token: str, cursor: str, pulls: int, expect: int, clock: CpuClock) -> tuple[list[float], int, float]:
    """Server times of `pulls` pulls (after 5 warm-up pulls), gzip bytes of one, and mean CPU seconds per pull."""
    headers = {"Authorization": f"Bearer {token}", **GZIP}
    body = {"protocol": 1, "cursor": cursor, "limit": 500, "mutations": []}
    times, wire, cpu, backends = [], 0, 0.0, None
    for n in range(pulls + 5):
        if n == 5:
            backends = clock.backends()
        started, cpu_started = time.perf_counter(), time.process_time()
        response = client.post("/api/sync/v1", json=body, headers=headers)
        spent = time.perf_counter() - started
        if n >= 5:
            cpu += time.process_time() - cpu_started
        page = decoded(response)
        if response.status_code != 200 or len(page["changes"]) != expect or page["has_more"] or page["reset"]:
            raise RuntimeError(f"pull gave {response.status_code}, {len(page.get('changes', []))} changes, "
                               f"has_more {page.get('has_more')}, reset {page.get('reset')}")
        wire = len(response.data)
        if n >= 5:  # the first few warm the caches and the app's first-request work
            times.append(spent)
    return times, wire, (cpu + clock.backends() - backends) / pulls


def pull_alone(token: str, cursor: str, pulls: int, clock: CpuClock) -> tuple[list[float], float]:
    """The pull function by itself (server/pull.py: the query and the page), for the same device and cursor."""
    from server import pull
    from server.auth import token_hash
    from server.models import Device

    device = db.session.execute(select(Device).where(Device.token_hash == token_hash(token))).scalar_one()
    area_ids, roles = operations.device_scope(device.person)
    state = db.session.get(ServerState, 1)
    arguments = {"cursor_text": cursor, "limit": 500, "epoch": state.epoch, "kept_from": state.changes_kept_from,
                 "person_id": device.person_id, "area_ids": area_ids, "roles": roles}
    db.session.rollback()
    times, cpu, backends = [], 0.0, None
    for n in range(pulls + 5):
        if n == 5:
            backends = clock.backends()
        started, cpu_started = time.perf_counter(), time.process_time()
        page = pull.pull(**arguments)
        db.session.rollback()  # as the sync view ends its read
        if n >= 5:
            times.append(time.perf_counter() - started)
            cpu += time.process_time() - cpu_started
    if len(page["changes"]) != 100:
        raise RuntimeError(f"the pull alone gave {len(page['changes'])} changes")
    return times, (cpu + clock.backends() - backends) / pulls


LIMIT_STORES = {"database": {}, "redis": {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": "bench-syncbench"}}


def incremental(label: str, url: str, folder: str, sizes: list[int], pulls: int) -> list[dict]:
    app = make_app(url, folder)
    # The same database with the sync's rate limit counted in Redis, as several hosts count it.
    apps = {"database": app, "redis": make_app(url, folder, LIMIT_STORES["redis"])}
    fresh_schema(app)
    clock = CpuClock(url)
    rng = random.Random(20261201)
    figures = []
    with app.app_context():
        publish_forms()
        areas = []
        for n in range(AREAS):
            area = operations.create_area(f"area-{n:02d}", f"Area {n}")
            areas.append({"id": area.id, "area": area, "sites": [str(uuid.UUID(int=rng.getrandbits(128), version=4))
                                                                  for _ in range(SITES_PER_AREA)]})
        db.session.commit()
        client = app.test_client()
        token = enrol(client, areas[0]["area"])
        first = decoded(client.post("/api/sync/v1", json={"protocol": 1, "cursor": None, "mutations": []},
                                    headers={"Authorization": f"Bearer {token}"}))
        scope = cursors.decode(first["cursor"]).scope
        epoch = db.session.get(ServerState, 1).epoch
        db.session.remove()
    for size in sizes:
        with app.app_context():
            have = db.session.execute(select(func.count()).select_from(Change)).scalar_one()
            started = time.perf_counter()
            fill_areas(size, areas, have, rng)
            analyse()
            filled = time.perf_counter() - started
            cursor = cursor_behind(epoch, scope, areas[0]["id"], 100)
            rows = db.session.execute(select(func.count()).select_from(Change)).scalar_one()
            db.session.remove()
        figure = {"label": label, "rows": rows, "pulls": pulls, "fill_s": filled}
        before = load()
        for store, variant in apps.items():
            with variant.app_context():
                times, wire, cpu = timed_pulls(variant.test_client(), token, cursor, pulls, 100, clock)
                db.session.remove()
            key = "db" if store == "database" else store
            figure[f"{key}_ms"] = statistics.median(times) * 1000
            figure[f"{key}_p90"] = sorted(times)[int(len(times) * 0.9)] * 1000
            figure[f"{key}_cpu"] = cpu * 1000
            figure["wire"] = wire
        with app.app_context():
            times, cpu = pull_alone(token, cursor, pulls, clock)
            figure["alone_ms"], figure["alone_cpu"] = statistics.median(times) * 1000, cpu * 1000
            db.session.remove()
        figure["load"] = (before, load())
        print(f"  incremental {label} {rows:,} rows: median {figure['db_ms']:.2f} ms, CPU {figure['db_cpu']:.2f} ms "
              f"(limits in the database), {figure['redis_ms']:.2f} ms, CPU {figure['redis_cpu']:.2f} ms (limits in Redis), "
              f"the pull alone {figure['alone_ms']:.2f} ms, CPU {figure['alone_cpu']:.2f} ms; "
              f"{figure['wire']:,} gzip bytes (fill {filled:.0f} s), load {before:.2f}", flush=True)
        figures.append(figure)
    for variant in apps.values():
        with variant.app_context():
            db.engine.dispose()
    return figures


def incremental_report(results: list[dict], pulls: int) -> str:
    lines = ["## Incremental pull of 100 changes, 10,000 against 1,000,000 change rows", "",
             f"`python bench/sync_pull.py --parts incremental --pulls {pulls}` — change rows of site records across "
             f"{AREAS} areas ({SITES_PER_AREA} sites each, every site put again and again, 1 in 50 a delete), put in "
             "by COPY on PostgreSQL (executemany on SQLite) with seqs from the change counter, then ANALYZE. A street "
             "rep's device of one area, its cursor 100 of its area's changes behind the end (about 2,000 rows of the "
             "log), pulls with no mutations through the Flask test client, gzip accepted: the median (and 90th "
             f"percentile) of {pulls} pulls after 5 warm-up pulls, with the sync's rate limit counted in the database "
             f"(the embedded default: a write and a commit per sync) and in Redis (db {REDIS_URL.rsplit('/', 1)[-1]}, `KERBSIDE_REDIS_URL`, as "
             "several hosts count it); and `server.pull.pull` alone (the query and the page, no HTTP, no auth, no "
             "limit) for the same device and cursor. CPU: the mean CPU time per pull of this process (the test client "
             "runs the server in it) and of the PostgreSQL backends, which waiting for a core on a busy machine does not "
             "inflate as it does wall-clock time. Target: ≤ 6 ms median, ratio ≤ 1.1.", "",
             "| database | change rows | limits in the database: median (p90), CPU | ratio | limits in Redis: median (p90), CPU "
             "| ratio | the pull alone: median, CPU | ratio | gzip bytes | load before / after |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    base = {}
    for r in results:
        first = base.setdefault(r["label"], r)
        lines.append(f"| {r['label']} | {r['rows']:,} | {r['db_ms']:.2f} ms ({r['db_p90']:.2f}), {r['db_cpu']:.2f} ms "
                     f"| {r['db_ms'] / first['db_ms']:.2f}, CPU {r['db_cpu'] / first['db_cpu']:.2f} "
                     f"| {r['redis_ms']:.2f} ms ({r['redis_p90']:.2f}), {r['redis_cpu']:.2f} ms "
                     f"| {r['redis_ms'] / first['redis_ms']:.2f}, CPU {r['redis_cpu'] / first['redis_cpu']:.2f} | {r['alone_ms']:.2f} ms, {r['alone_cpu']:.2f} ms "
                     f"| {r['alone_ms'] / first['alone_ms']:.2f}, CPU {r['alone_cpu'] / first['alone_cpu']:.2f} "
                     f"| {r['wire']:,} | {r['load'][0]:.2f} / {r['load'][1]:.2f} |")
    return "\n".join(lines)


# -- 2. a worker's peak memory during 20 first syncs ---------------------------------------------


def proc_status(pid: int) -> dict:
    """VmRSS and VmHWM of a process, in bytes."""
    found = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) * 1024
    return found


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (gunicorn's workers, of its master)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(name))
    return found


def http_post(port: int, path: str, body: dict, token: str | None = None) -> tuple[int, dict, int]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    headers = {"Content-Type": "application/json", **GZIP}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request("POST", path, body=json.dumps(body), headers=headers)
        response = connection.getresponse()
        raw = response.read()
        wire = len(raw)
        if response.getheader("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        return response.status, json.loads(raw), wire
    finally:
        connection.close()


def whole_first_sync(port: int, token: str) -> tuple[int, int, int]:
    """(records, pages, bytes on the wire) of a phone's first sync, every page at limit 1000."""
    cursor, records, pages, wire = None, {}, 0, 0
    while True:
        status, page, size = http_post(port, "/api/sync/v1", {"protocol": 1, "cursor": cursor, "limit": 1000,
                                                               "mutations": []}, token)
        if status != 200:
            raise RuntimeError(f"first sync page {pages + 1}: HTTP {status} {page.get('code')}")
        for change in page["changes"]:
            key = (change["collection"], change["id"])
            if change["op"] == "delete":
                records.pop(key, None)
            else:
                records[key] = True
        pages, wire, cursor = pages + 1, wire + size, page["cursor"]
        if not page["has_more"]:
            return len(records), pages, wire


def rss(label: str, url: str, folder: str, sites: int, phones: int) -> dict:
    app = make_app(url, folder)
    fresh_schema(app)
    with app.app_context():
        publish_forms()
        area = make_area("rss-bench", sites)
        codes = [operations.issue_invite(area, "street_rep", display_name=f"Phone {n}") for n in range(phones)]
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    port = free_port()
    env = dict(os.environ, DATABASE_URL=url, SECRET_KEY="bench-only-secret", KERBSIDE_INSTANCE=folder,
               KERBSIDE_BLOB_DIR=os.path.join(folder, "blobs"), KERBSIDE_SYNC_RATE_PER_MINUTE="1000000",
               KERBSIDE_ENROL_LIMIT_ADDRESS="1000000 per minute", KERBSIDE_REDIS_URL=REDIS_URL,
               KERBSIDE_REDIS_PREFIX="bench-syncbench")
    kerbside = shutil.which("kerbside", path=os.path.dirname(sys.executable)) or "kerbside"
    log = open(os.path.join(folder, "serve.log"), "wb")  # a file, not a pipe nobody reads while it fills
    server = subprocess.Popen([kerbside, "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 90
        try:
            wait_for_port(port, server, "kerbside serve", timeout=90)
        except StartError as exc:
            log.flush()
            raise RuntimeError(f"{exc}: {open(log.name, errors='replace').read()[-2000:]}") from None
        workers = []
        while not workers and time.monotonic() < deadline:
            workers = children(server.pid)
            time.sleep(0.1)
        if len(workers) != 1:
            raise RuntimeError(f"expected one worker, found {workers}")
        worker = workers[0]
        time.sleep(1.0)  # the worker's own start (its imports are the master's, forked)
        idle = proc_status(worker)
        tokens = []
        for n, code in enumerate(codes):
            status, body, _ = http_post(port, "/api/sync/v1/enrol", {"protocol": 1, "code": code, "device_name": f"Phone {n}"})
            if status != 201:
                raise RuntimeError(f"enrol: HTTP {status} {body.get('code')}")
            tokens.append(body["token"])
        # One phone's first sync first, alone: what a worker that has served once holds.
        whole_first_sync(port, tokens[0])
        before = proc_status(worker)
        samples, stop = [], threading.Event()

        def sample():
            while not stop.is_set():
                samples.append(proc_status(worker)["VmRSS"])
                time.sleep(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        results, problems = [None] * phones, []
        start = threading.Barrier(phones)

        def phone(n):
            try:
                start.wait()
                results[n] = whole_first_sync(port, tokens[n])
            except Exception as exc:  # reported below: a figure from a failed run means nothing
                problems.append(repr(exc))

        threads = [threading.Thread(target=phone, args=(n,)) for n in range(phones)]
        load_before = load()
        sampler.start()
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        stop.set()
        sampler.join()
        after = proc_status(worker)
        if problems:
            raise RuntimeError(f"first syncs failed: {problems[:3]}")
        # Equal records and pages; gzip bytes differ by a few (each answer stamps its own server_time).
        if len({r[:2] for r in results}) != 1:
            raise RuntimeError(f"the phones got different first syncs: {set(r[:2] for r in results)}")
        expected = max(results, key=lambda r: r[2])
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    figure = {"database": label, "sites": sites, "phones": phones, "records": expected[0], "pages": expected[1],
              "wire": expected[2], "rss_idle": idle["VmRSS"], "rss_before": before["VmRSS"], "hwm_before": before["VmHWM"],
              "peak_sampled": max(samples), "hwm": after["VmHWM"], "samples": len(samples), "wall_s": wall,
              "load": (load_before, load())}
    print(f"  rss {label}: worker RSS {before['VmRSS'] / 2**20:.1f} MiB before, sampled peak "
          f"{figure['peak_sampled'] / 2**20:.1f} MiB, VmHWM {figure['hwm'] / 2**20:.1f} MiB; {phones} syncs of "
          f"{expected[1]} pages ({expected[2]:,} bytes each) in {wall:.1f} s, load {load_before:.2f}", flush=True)
    return figure


def rss_report(results: list[dict]) -> str:
    r0 = results[0]
    lines = ["## Peak memory of a worker during 20 first syncs at once", "",
             f"`python bench/sync_pull.py --parts rss` — `kerbside serve --workers 1` (the app made once in the master, "
             "one gunicorn sync worker forked from it, as production runs it; limits in Redis db 4), a "
             f"{r0['sites']:,}-site area with 5 form versions and 2 agreements. {r0['phones']} phones, each enrolled "
             "first, start together (a barrier) and each pulls its whole first sync, every page at limit 1000, gzip "
             "accepted. `idle`: the worker a second after it was forked; one phone's first sync then ran alone, so "
             "`after one sync` is a worker that has served once. The "
             "worker's VmRSS is sampled every 10 ms from /proc; VmHWM is the kernel's peak for the worker's life. "
             "Target: ≤ 200 MB (MiB below: 1 MiB = 1.05 MB).", "",
             "| database | records per phone | pages | gzip bytes per phone | worker RSS idle | after one sync | peak (sampled) "
             "| peak (VmHWM) | 20 syncs took | load before / after |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['database']} | {r['records']:,} | {r['pages']} | {r['wire']:,} "
                     f"| {r['rss_idle'] / 2**20:.1f} MiB | {r['rss_before'] / 2**20:.1f} MiB | {r['peak_sampled'] / 2**20:.1f} MiB "
                     f"| {r['hwm'] / 2**20:.1f} MiB | {r['wall_s']:.1f} s | {r['load'][0]:.2f} / {r['load'][1]:.2f} |")
    return "\n".join(lines)


# -- 3. first syncs with a long history ---------------------------------------------------------


def first_sync(client, token: str) -> dict:
    """A new phone's whole first sync (every page, limit 1000, gzip): bytes, pages, server time, live records."""
    headers = {"Authorization": f"Bearer {token}", **GZIP}
    cursor, records, wire, pages, spent, cpu = None, {}, 0, 0, 0.0, 0.0
    while True:
        started, cpu_started = time.perf_counter(), time.process_time()
        response = client.post("/api/sync/v1", json={"protocol": 1, "cursor": cursor, "limit": 1000, "mutations": []},
                               headers=headers)
        spent += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        wire += len(response.data)
        pages += 1
        page = decoded(response)
        if response.status_code != 200:
            raise RuntimeError(f"first sync: HTTP {response.status_code} {page.get('code')}")
        for change in page["changes"]:
            key = (change["collection"], change["id"])
            if change["op"] == "delete":
                records.pop(key, None)
            else:
                records[key] = change.get("data")
        cursor = page["cursor"]
        if not page["has_more"]:
            return {"wire": wire, "pages": pages, "seconds": spent, "cpu": cpu, "records": records}


def timed_first_syncs(client, area, repeat: int, name: str, clock: CpuClock) -> dict:
    token = enrol(client, area, name)  # a new phone each time: its first sync is what is timed
    first_sync(client, token)  # warm-up: the app's first-request work and cold caches are not the figure
    backends = clock.backends()
    # The same phone again from no cursor is the same first sync (a new or reset device).
    runs = [first_sync(client, token) for _ in range(repeat)]
    cpu = sum(r["cpu"] for r in runs) + clock.backends() - backends
    return {"wire": runs[0]["wire"], "pages": runs[0]["pages"], "ms": statistics.median(r["seconds"] for r in runs) * 1000,
            "cpu_ms": cpu / repeat * 1000, "records": runs[0]["records"]}


def build_history(area, rows: int, rng: random.Random) -> dict:
    """`rows` change rows of history in `area`, and the tables left as that history says.

    Most rows are edits of the area's live sites (notes rewritten, the version rising), each
    site edited again and again; 2,000 sites that lived a while (a few edits each) and were
    merged into another, ending in a delete; and 40 agreement versions republished through
    the app itself (each a delete of the version it retires and a put of the new one).
    """
    for n in range(20):  # republished through operations, so versions and their change rows are the app's own
        for agreement in ("history-deal-0", "history-deal-1"):
            definition = {**AGREEMENT, "title": f"{AGREEMENT.get('title', 'The Deal')} (review {n + 1})"}
            operations.publish_agreement_version(operations.draft_agreement_version(agreement, area, definition))
    db.session.commit()
    live = db.session.execute(select(Site).where(Site.area_id == area.id)).scalars().all()
    target = live[0]
    ghosts = [{"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "area_id": area.id, "name": f"Old site {n}",
               "lat": 53.6, "lng": -2.6, "notes": "", "status": "merged", "merged_into_id": target.id, "version": 6,
               "field_versions": {}, "line": None, "photo": None, "proposed_by": None,
               "created_at": utcnow() - timedelta(days=600), "updated_at": utcnow() - timedelta(days=300)}
              for n in range(2000)]
    bulk.insert_rows(db.session, Site.__table__, ghosts)
    db.session.commit()
    ghost_rows = []
    for ghost in ghosts:
        for version in range(1, 6):
            ghost_rows.append(("put", ghost["id"], version, ghost))
        ghost_rows.append(("delete", ghost["id"], 6, ghost))
    edits = rows - len(ghost_rows)
    last = {}
    written, when = 0, utcnow() - timedelta(days=700)
    ghost_at = {n * (rows // len(ghost_rows)) for n in range(len(ghost_rows))}
    ghost_iter = iter(sorted(ghost_rows, key=lambda g: (g[1], g[2])))  # each ghost's rows in order
    # Each record as Site.to_sync makes it (whatever fields that holds), then edited.
    sites = [(s.id, s.to_sync()) for s in live]
    while written < rows:
        chunk = []
        for n in range(written, min(rows, written + CHUNK)):
            created = when + timedelta(seconds=n * 50)
            if n in ghost_at:
                op, site_id, version, ghost = next(ghost_iter)
                data = None if op == "delete" else Site(
                    id=site_id, area_id=area.id, name=ghost["name"], lat=ghost["lat"], lng=ghost["lng"], line=None,
                    notes="", photo=None, status="approved", version=version).to_sync()
            else:
                site_id, record = sites[rng.randrange(len(sites))]
                version = last.get(site_id, (1, ""))[0] + 1
                notes = f"Checked {created:%d %b %Y}: {rng.choice(['bins out', 'fly-tipping by the garages', 'clear', 'graffiti on the wall'])}"
                last[site_id] = (version, notes)
                op, data = "put", {**record, "notes": notes, "version": version}
            chunk.append({"collection": "sites", "record_id": site_id, "op": op, "area_id": area.id, "person_id": None,
                          "data": data, "created_at": created})
        copy_changes(chunk)
        written += len(chunk)
    # The site table as the history leaves it: each live site at its last edit.
    db.session.execute(update(Site.__table__).where(Site.__table__.c.id == bindparam("b_id"))
                       .values(version=bindparam("b_version"), notes=bindparam("b_notes")),
                       [{"b_id": site_id, "b_version": v, "b_notes": notes} for site_id, (v, notes) in last.items()])
    db.session.commit()
    return {"edits": edits, "ghost_rows": len(ghost_rows), "edited_sites": len(last)}


def live_problems(records: dict, area) -> list[str]:
    """What a replica built from `records` gets wrong about the area's live sites and agreements."""
    problems = []
    sites = {site.id: site.to_sync() for site in db.session.execute(
        select(Site).where(Site.area_id == area.id, Site.status == "approved")).scalars()}
    pulled = {key[1]: data for key, data in records.items() if key[0] == "sites"}
    if set(pulled) != set(sites):
        problems.append(f"sites: {len(set(pulled) - set(sites))} not live, {len(set(sites) - set(pulled))} missing")
    wrong = [site_id for site_id, data in pulled.items() if site_id in sites and data.get("version") != sites[site_id]["version"]]
    if wrong:
        problems.append(f"{len(wrong)} sites at another version than the table's")
    agreements = {version.sync_id for version in db.session.execute(
        select(AgreementVersion).join(Agreement).where(Agreement.area_id == area.id,
                                                        AgreementVersion.status == "published")).scalars()}
    if {key[1] for key in records if key[0] == "agreements"} != agreements:
        problems.append("agreements differ from the published versions")
    return problems


def compaction_available() -> bool:
    try:
        from server import compaction  # noqa: F401
    except ImportError:
        return False
    return True


def first_sync_history(label: str, url: str, folder: str, rows: int, repeat: int, compact: bool) -> dict:
    app = make_app(url, folder)
    fresh_schema(app)
    rng = random.Random(20261202)
    clock = CpuClock(url)
    stages = []
    with app.app_context():
        publish_forms()
        area = make_area("history", 500, agreements=0)
        for agreement in ("history-deal-0", "history-deal-1"):
            operations.publish_agreement_version(operations.draft_agreement_version(agreement, area, AGREEMENT))
        db.session.commit()
        client = app.test_client()

        def stage(name, extra=None, times=repeat):
            before = load()
            found = timed_first_syncs(client, area, times, f"Phone {len(stages)}", clock)
            count = db.session.execute(select(func.count()).select_from(Change)).scalar_one()
            sites = sum(1 for key in found["records"] if key[0] == "sites")
            problems = live_problems(found["records"], area)
            stages.append({"problems": problems, "stage": name, "change_rows": count, "wire": found["wire"], "pages": found["pages"],
                           "ms": found["ms"], "cpu_ms": found["cpu_ms"], "repeat": times, "records": len(found["records"]), "sites": sites,
                           "load": (before, load()), **(extra or {})})
            print(f"  first sync {label} {name}: {found['wire']:,} bytes, {found['pages']} pages, {found['ms']:.1f} ms (CPU {found['cpu_ms']:.1f} ms), "
                  f"{len(found['records'])} records ({sites} sites), {count:,} change rows, load {before:.2f}"
                  f"{'; WRONG: ' + '; '.join(problems) if problems else ''}", flush=True)

        stage("fresh area")
        started = time.perf_counter()
        made = build_history(area, rows, rng)
        analyse()
        built = time.perf_counter() - started
        print(f"  history: {made} in {built:.0f} s", flush=True)
        # Each first sync here reads the whole history: fewer of them, or the run takes half an hour.
        stage(f"with {rows:,} rows of history", {"built_s": built}, times=min(repeat, 3))
        if compact:
            from server import compaction

            started = time.perf_counter()
            summary = compaction.compact(keep_days=0)
            summary = summary.as_dict() if hasattr(summary, "as_dict") else summary
            db.session.commit()
            analyse()
            stage("history, after compact(keep_days=0)",
                              {"compact_s": time.perf_counter() - started, "summary": summary})
            # What the deleted rows leave behind until a VACUUM (PostgreSQL's autovacuum, soon
            # after a large delete) clears them: measured as compact leaves it, then vacuumed.
            area_id = area.id
            db.session.remove()  # no transaction of ours may hold back what VACUUM clears
            started = time.perf_counter()
            postgres = db.engine.dialect.name == "postgresql"
            vacuum = "VACUUM (ANALYZE) change" if postgres else "VACUUM"
            # On the driver's own connection, outside a transaction: the app's SQLite engine
            # begins one itself (BEGIN IMMEDIATE, server/__init__.py), and VACUUM refuses to run in one.
            raw = db.engine.raw_connection()
            try:
                if postgres:
                    raw.driver_connection.autocommit = True
                raw.driver_connection.execute(vacuum)
            finally:
                if postgres:
                    raw.driver_connection.autocommit = False
                raw.close()
            area = db.session.get(Area, area_id)
            stage(f"history, compacted, then {vacuum.split(' change')[0]}", {"vacuum_s": time.perf_counter() - started})
        db.session.remove()
        db.engine.dispose()
    return {"database": label, "stages": stages}


def first_sync_report(results: list[dict], rows: int, repeat: int) -> str:
    lines = ["## First sync of a 500-site area with 1,000,000 change rows of history", "",
             f"`python bench/sync_pull.py --parts first-sync --history {rows} --repeat {repeat}` — a new phone's whole "
             "first sync (every page, limit 1000, gzip accepted) of a 500-site area, 5 form versions, 2 agreements, "
             "through the Flask test client (server time: the median whole first sync of "
             f"{repeat}, after one warm-up; of {min(repeat, 3)} for the uncompacted history, each of which reads all of it). Fresh; then with {rows:,} change rows of history in that area (edits of its 500 sites, "
             "each edited ~1,900 times; 2,000 sites that lived a while and were merged away, ending in a delete; 40 "
             "agreement versions republished through the app), the site table left as the history says; then after "
             "`compaction.compact(keep_days=0)`; then after a VACUUM (PostgreSQL: `VACUUM (ANALYZE) change`, what "
             "autovacuum does soon after a delete this large; SQLite: `VACUUM`). Target: with history ≤ 1.1x the bytes and the time of the fresh area.",
             "CPU: the mean CPU time of a whole first sync, this process's (the server runs in it) and the PostgreSQL "
             "backends', which a busy machine does not inflate as it does wall-clock time.",
             "", "| database | stage | change rows | records | gzip bytes | vs fresh | pages | server time | vs fresh "
             "| CPU | vs fresh | load before / after |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for result in results:
        fresh = result["stages"][0]
        for s in result["stages"]:
            lines.append(f"| {result['database']} | {s['stage']} | {s['change_rows']:,} | {s['records']:,} "
                         f"| {s['wire']:,} | {s['wire'] / fresh['wire']:.2f}x | {s['pages']} | {s['ms']:.1f} ms "
                         f"| {s['ms'] / fresh['ms']:.2f}x | {s['cpu_ms']:.1f} ms | {s['cpu_ms'] / fresh['cpu_ms']:.2f}x "
                         f"| {s['load'][0]:.2f} / {s['load'][1]:.2f} |")
    lines.append("")
    for result in results:
        problems = [f"{s['stage']}: {'; '.join(s['problems'])}" for s in result["stages"] if s["problems"]]
        notes = [f"{result['database']}: every stage's replica holds exactly the live sites (at the table's "
                 f"version) and the published agreements: {'yes' if not problems else '**no** (' + '; '.join(problems) + ')'}"]
        for s in result["stages"]:
            if "built_s" in s:
                notes.append(f"history built in {s['built_s']:.0f} s")
            if "compact_s" in s:
                notes.append(f"compact took {s['compact_s']:.1f} s and answered {s['summary']}")
            if "vacuum_s" in s:
                notes.append(f"the VACUUM took {s['vacuum_s']:.1f} s")
        lines.append("- " + "; ".join(notes) + ".")
    return "\n".join(lines)


# -- the run -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="incremental,rss,first-sync")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL)
    parser.add_argument("--sizes", default="10000,1000000", help="change rows for the incremental pulls")
    parser.add_argument("--pulls", type=int, default=101)
    parser.add_argument("--rss-sites", type=int, default=5000)
    parser.add_argument("--phones", type=int, default=20)
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--no-compact", action="store_true", help="skip the compacted stage")
    parser.add_argument("--no-write", action="store_true")
    options = parser.parse_args()
    parts = options.parts.split(",")
    names = options.databases.split(",")
    sizes = [int(size) for size in options.sizes.split(",")]
    if "incremental" in parts:
        where = databases(names, options.database_url)
        results = [figure for label, url, folder in where for figure in incremental(label, url, folder, sizes, options.pulls)]
        removed(where)
        text_ = incremental_report(results, options.pulls)
        print(text_)
        if not options.no_write:
            write_section("sync-pull-incremental", text_)
    if "rss" in parts:
        where = databases(names, options.database_url)
        results = [rss(label, url, folder, options.rss_sites, options.phones) for label, url, folder in where]
        removed(where)
        text_ = rss_report(results)
        print(text_)
        if not options.no_write:
            write_section("sync-pull-rss", text_)
    if "first-sync" in parts:
        compact = not options.no_compact and compaction_available()
        if not compact and not options.no_compact:
            print("  server.compaction is not here yet: the compacted stage is left out", flush=True)
        where = databases(names, options.database_url)
        results = [first_sync_history(label, url, folder, options.history, options.repeat, compact)
                   for label, url, folder in where]
        removed(where)
        text_ = first_sync_report(results, options.history, options.repeat)
        print(text_)
        if not options.no_write:
            write_section("sync-first-sync-history", text_)


if __name__ == "__main__":
    main()
