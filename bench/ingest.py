"""Ingest benchmark: street visits pushed over HTTP to a real gunicorn, against a direct-insert ceiling.

Run it as `python bench/ingest.py`. It measures, in one run:

1. SQLite: one device pushes every visit, in batches of 100, to gunicorn with one worker.
2. PostgreSQL: ten devices at once, each pushing its share in batches of 100, to gunicorn
   with several workers.
3. The ceiling for each database: the same rows (submission, answers, change rows and
   mutation log) inserted directly with SQLAlchemy Core `executemany`, 100 visits per
   transaction, from one thread.
4. PostgreSQL across two hosts (unless --no-two-hosts): the same ten devices, each sending
   its requests to two gunicorn servers in turn (the workers split between them), with photos
   in a real S3-compatible store (moto's standalone server, started here) and the limits'
   counters in Redis (--redis-url); then every device uploads photos the same way. Its runs
   alternate with the one-host runs of 2.

Every request body is built before the clock starts. After each run the script checks that
every result was `applied` and that the database holds exactly the expected submissions
and answers; it stops with an error otherwise, because figures for wrong results mean
nothing. It prints a table and writes the "ingest" section of docs/benchmarks.md.

The PostgreSQL database (--database-url, or BENCH_DATABASE_URL) is emptied: the script drops
and creates its tables there.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from sqlalchemy import func, insert, make_url, select, text, update  # noqa: E402

from bench.hosts import GunicornServer, MotoS3, StartError  # noqa: E402
from bench.report import machine, write_section  # noqa: E402
from server import create_app, operations  # noqa: E402
from server import bulk  # noqa: E402
from server.changes import my_submission_record, take_seqs  # noqa: E402
from server.cli import drop_all_tables  # noqa: E402
from server.extensions import db  # noqa: E402
from server.models import Answer, Area, Change, ChangeCounter, MutationLog, Site, Submission  # noqa: E402
from server.models import Device as DeviceRow  # noqa: E402
from server.seed_content import STREET_FORM  # noqa: E402
from sync.protocol import payload_hash  # noqa: E402
from sync.validation import compile_form  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test_bench"
SITES = 40
GRADES = "ABCD"
TARGET_SUBS_PER_S = 2000
TARGET_RATIO = 0.40
TARGET_STORED_RATIO = 0.90

try:  # orjson parses the answers faster, leaving more of the two cores to the server
    import orjson

    def _loads(raw: bytes):
        return orjson.loads(raw)
except ImportError:  # pragma: no cover - the standard library does the same, slower
    def _loads(raw: bytes):
        return json.loads(raw)


class BenchError(RuntimeError):
    """The run produced wrong results: no figure is reported."""


# -- the data -------------------------------------------------------------------------------


LINE_KEYS = [line["key"] for section in STREET_FORM["sections"] for line in section["lines"] if line["type"] == "grade"]


def make_visits(count: int, site_ids: list[str], seed: int = 20261122,
                window: tuple[datetime, datetime] | None = None) -> list[dict]:
    """`count` street visits of 12 graded lines, as a device would make them, over the weeks before now
    (or evenly over `window`, start and end).

    The server refuses a visit dated ahead of its clock, or long before its form version
    was published (the benchmark publishes the form just before it starts).
    """
    rng = random.Random(seed)
    if window:
        step = (window[1] - window[0]) / max(count, 1)
        start = window[0]
    else:
        step = min(timedelta(minutes=7), timedelta(days=50) / max(count, 1))
        start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1) - step * count
    visits = []
    for n in range(count):
        visits.append({
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "form": {"id": "street", "version": 1},
            "site_id": rng.choice(site_ids),
            "observed_at": (start + step * n).isoformat(),
            "answers": {key: {"grade": rng.choice(GRADES)} for key in LINE_KEYS},
            "location": {"lat": round(53.5 + rng.random() / 50, 6), "lng": round(-2.64 + rng.random() / 50, 6),
                         "accuracy_m": 12.0},
        })
    return visits


def make_mutations(visits: list[dict], seed: int) -> list[dict]:
    """One `submission.create` mutation per visit, its payload_hash computed the canonical way."""
    rng = random.Random(seed)
    return [
        {"mid": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "seq": n + 1, "type": "submission.create",
         "payload_hash": payload_hash(data), "data": data}
        for n, data in enumerate(visits)
    ]


def batched(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# -- the database -----------------------------------------------------------------------------


def _app(url: str, instance: str):
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench-only", "BLOB_DIR": os.path.join(instance, "blobs")})


def _has_migrations() -> bool:
    versions = os.path.join(ROOT, "server", "migrations", "versions")
    return os.path.isdir(versions) and any(name.endswith(".py") for name in os.listdir(versions))


def fresh_database(url: str, instance: str, devices: int) -> dict:
    """Empty schema, the street form published, one area with sites, and one invite per device."""
    app = _app(url, instance)
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            drop_all_tables()
        if _has_migrations():
            from server.cli import upgrade_database

            upgrade_database()
        else:
            db.create_all()
            operations.init_state()
        area = operations.create_area("bench", "Bench Street")
        sites = operations.create_sites(area, [
            {"name": f"Site {n}", "lat": 53.54 + n / 1000, "lng": -2.63} for n in range(SITES)
        ])
        version = operations.draft_form_version("street", STREET_FORM)
        operations.publish_form_version(version)
        codes = [operations.issue_invite(area, "street_rep", display_name=f"Bench volunteer {n}") for n in range(devices)]
        db.session.commit()
        details = {"area_id": area.id, "site_ids": [s.id for s in sites], "codes": codes}
        db.session.remove()
        db.engine.dispose()
    return details


@contextlib.contextmanager
def database(url: str, instance: str):
    """The app's database for a moment, its connections closed afterwards."""
    app = _app(url, instance)
    with app.app_context():
        try:
            yield db.session
        finally:
            db.session.remove()
            db.engine.dispose()


def count_rows(url: str, instance: str) -> dict:
    with database(url, instance) as session:
        counts = {
            name: session.execute(select(func.count()).select_from(model)).scalar_one()
            for name, model in (("submissions", Submission), ("answers", Answer), ("mutation_log", MutationLog))
        }
        counts["my_submissions_changes"] = session.execute(
            select(func.count()).select_from(Change).where(Change.collection == "my_submissions")
        ).scalar_one()
    return counts


def check_counts(counts: dict, visits: int, label: str, stored: dict | None = None):
    """The run added exactly `visits` visits' rows to what was `stored` before it (nothing, by default)."""
    stored = stored or {}
    expected = {"submissions": visits, "answers": visits * len(LINE_KEYS), "mutation_log": visits,
                "my_submissions_changes": visits}
    expected = {name: stored.get(name, 0) + count for name, count in expected.items()}
    print(f"  {label}: rows in the database {counts}")
    if counts != expected:
        raise BenchError(f"{label}: the database holds {counts}, expected {expected}")


def wal_state(url: str, instance: str) -> tuple[int, int] | None:
    """PostgreSQL's WAL position (bytes) and checkpoints so far; None on SQLite."""
    if not url.startswith("postgresql"):
        return None
    with database(url, instance) as session:
        row = session.execute(text(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint, "
            "checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")).one()
    return int(row[0]), int(row[1])


def checkpoint(url: str, instance: str):
    """Start a PostgreSQL run from a fresh checkpoint, so that runs compare.

    After a checkpoint, the first change to each page writes the whole page to the WAL; a
    checkpoint that falls inside one run and not another would make them differ for that
    reason alone. Each run reports how many checkpoints happened while it ran.
    """
    with database(url, instance) as session:
        with session.get_bind().connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("CHECKPOINT"))


# -- the server -------------------------------------------------------------------------------


class Server(GunicornServer):
    """gunicorn for the benchmark (bench/hosts.py): no limit on a bench phone's rate or enrolments."""

    def environment(self) -> dict:
        env = super().environment()
        env.update({
            "KERBSIDE_SYNC_RATE_PER_MINUTE": "1000000",
            # Every bench phone enrols from 127.0.0.1; the shared enrolment throttle would refuse them.
            "KERBSIDE_ENROL_LIMIT_ADDRESS": "1000000 per minute",
            # The two-host case's phones upload photos faster than any volunteer could.
            "KERBSIDE_PHOTO_RATE_PER_MINUTE": "1000000",
        })
        env.update(self.settings)
        return env


class Device:
    """One enrolled device with its own keep-alive connection (one to each host) and pull cursor.

    With several hosts its requests go to each in turn, as a load balancer with no sticky
    sessions would send them.
    """

    def __init__(self, *ports: int):
        self.connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=120) for port in ports]
        self.sent = 0
        self.token = None
        self.cursor = None
        self.latencies: list[float] = []
        self.applied = 0
        self.problems: list = []

    def _next(self) -> http.client.HTTPConnection:
        """The connection to the host whose turn it is."""
        connection = self.connections[self.sent % len(self.connections)]
        self.sent += 1
        return connection

    def post(self, path: str, body: bytes, token: str | None = None) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        connection = self._next()
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        return response.status, _loads(raw)

    def put_photo(self, data: bytes) -> int:
        """Upload one photo under its SHA-256 to the next host; the answer's status."""
        connection = self._next()
        connection.request("PUT", f"/api/sync/v1/blobs/{hashlib.sha256(data).hexdigest()}", body=data,
                           headers={"Content-Type": "application/octet-stream", "Authorization": "Bearer " + self.token})
        response = connection.getresponse()
        response.read()
        return response.status

    def enrol(self, code: str, name: str):
        status, body = self.post("/api/sync/v1/enrol", json.dumps(
            {"protocol": 1, "code": code, "device_name": name}).encode())
        if status != 201:
            raise BenchError(f"enrolment failed: {status} {body.get('code')}")
        self.token = body["token"]
        # The first pull fills the replica (area, sites, form): a device does it once, untimed.
        has_more = True
        while has_more:
            status, page = self.post("/api/sync/v1", self._body(b"[]"), self.token)
            if status != 200:
                raise BenchError(f"first pull failed: {status} {page.get('code')}")
            self.cursor, has_more = page["cursor"], page["has_more"]

    def _body(self, mutations: bytes) -> bytes:
        return (b'{"protocol":1,"limit":500,"cursor":' + json.dumps(self.cursor).encode()
                + b',"mutations":' + mutations + b"}")

    def push_all(self, batches: list[tuple[list[str], bytes]]):
        """Send each pre-built batch in turn; record latency; check every answer."""
        for mids, mutations in batches:
            body = self._body(mutations)
            started = time.perf_counter()
            status, page = self.post("/api/sync/v1", body, self.token)
            self.latencies.append(time.perf_counter() - started)
            if status != 200:
                self.problems.append(f"HTTP {status}: {page.get('code')} {page.get('message')}")
                return
            results = page["results"]
            if [r["mid"] for r in results] != mids:
                self.problems.append("results do not match the batch's mids")
            for result in results:
                if result["status"] == "applied":
                    self.applied += 1
                else:
                    self.problems.append(result)
            self.cursor = page["cursor"]


def http_run(url: str, instance: str, visits: int, devices: int, batch: int, workers: int,
             worker_class: str, threads: int, details: dict | None = None, run: int = 0,
             window: tuple[datetime, datetime] | None = None, *, hosts: int = 1, settings: dict | None = None,
             photos_per_device: int = 0, photo_bytes: int = 0, store_pid: int | None = None) -> dict:
    """Push `visits` over HTTP from `devices` devices at once; return the figures.

    With `hosts` > 1, that many servers (each `workers` workers, its own instance folder,
    `settings` on top) share the database, and each device sends its requests to each host
    in turn. `photos_per_device` photos of `photo_bytes` each are then uploaded by every device
    the same way, timed on their own.

    Without `details` the run starts from an empty database. With them (a database
    store_history filled) it pushes on top of what is stored, from the invites of run `run`,
    with visit ids and mids no other run uses.
    """
    stored = None
    if details is None:
        details = fresh_database(url, instance, devices)
    else:
        details = dict(details, codes=details["codes"][run * devices : (run + 1) * devices])
        stored = count_rows(url, instance)
    # A database kept from an earlier call starts its runs' seeds past the ones it has seen.
    seed = run + details.get("seed_base", 0)
    all_visits = make_visits(visits, details["site_ids"], seed=20261122 + seed, window=window)
    shares = [all_visits[d::devices] for d in range(devices)]
    # Every request body is built before the clock starts: the client's cost is not measured.
    prepared = []
    for d, share in enumerate(shares):
        mutations = make_mutations(share, seed=d + 1000 * seed)
        prepared.append([
            ([m["mid"] for m in chunk], json.dumps(chunk, separators=(",", ":"), ensure_ascii=False).encode())
            for chunk in batched(mutations, batch)
        ])
    photos = [[make_photo(d, n, photo_bytes) for n in range(photos_per_device)] for d in range(devices)]
    servers = []
    for n in range(hosts):
        folder = instance if hosts == 1 else os.path.join(instance, f"host-{n + 1}")
        os.makedirs(folder, exist_ok=True)
        servers.append(Server(url, folder, workers, worker_class, threads, settings=dict(settings or {})))
    wal_before = wal_after = None
    photo_figures = None
    clients = []
    try:
        for server in servers:
            server.start()
        clients = [Device(*(server.port for server in servers)) for _ in range(devices)]
        for n, (client, code) in enumerate(zip(clients, details["codes"])):
            client.enrol(code, f"Bench phone {n}")
        database = make_url(url).database if url.startswith("postgresql") else None

        def cpu_seconds() -> tuple[float, float]:
            # Every host's workers; the database's backends once (each host sees all of them).
            counted = [server.cpu_seconds(database) for server in servers]
            return sum(c[0] for c in counted), counted[0][1]

        gate = threading.Barrier(devices + 1)

        def push_share(client, batches):
            gate.wait()
            try:
                client.push_all(batches)
            except Exception as exc:  # a dead connection is a result to report, not to hide
                client.problems.append(repr(exc))

        threads_ = [threading.Thread(target=push_share, args=(c, b)) for c, b in zip(clients, prepared)]
        for thread in threads_:
            thread.start()
        if database:
            checkpoint(url, instance)
        wal_before = wal_state(url, instance)
        cpu_before, client_before = cpu_seconds(), time.process_time()
        load = os.getloadavg()[0]  # what else the machine was doing as the run began
        gate.wait()
        started = time.perf_counter()
        for thread in threads_:
            thread.join()
        elapsed = time.perf_counter() - started
        cpu_after = cpu_seconds()
        wal_after = wal_state(url, instance)
        workers_cpu, database_cpu = (after - before for after, before in zip(cpu_after, cpu_before))
        client_cpu = time.process_time() - client_before
        if photos_per_device:
            workers_before, store_before = cpu_seconds()[0], process_cpu_seconds(store_pid)
            photo_figures = photo_run(clients, photos)
            # Where an upload's time goes: the hosts' workers, or the store (moto is Python too).
            photo_figures["workers_cpu_ms"] = 1000 * (cpu_seconds()[0] - workers_before) / photo_figures["count"]
            photo_figures["store_cpu_ms"] = 1000 * (process_cpu_seconds(store_pid) - store_before) / photo_figures["count"]
    finally:
        for server in servers:
            server.stop()
    problems = [p for c in clients for p in c.problems]
    applied = sum(c.applied for c in clients)
    if problems or applied != visits:
        raise BenchError(f"{applied} of {visits} applied; first problems: {problems[:3]}")
    check_counts(count_rows(url, instance), visits, f"HTTP, {devices} device(s), {hosts} host(s)", stored)
    latencies = sorted(lat for c in clients for lat in c.latencies)
    description = servers[0].description()
    return {
        "server": description if hosts == 1 else f"{hosts} hosts x {description}",
        "hosts": hosts,
        "devices": devices,
        "seconds": elapsed,
        "subs_per_s": visits / elapsed,
        # CPU per batch does not depend on what else runs on the machine, unlike the rate.
        "workers_cpu_ms": 1000 * workers_cpu / len(latencies),
        "database_cpu_ms": 1000 * database_cpu / len(latencies),
        "server_cpu_ms": 1000 * (workers_cpu + database_cpu) / len(latencies),
        "client_cpu_ms": 1000 * client_cpu / len(latencies),
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
        "wal_bytes_per_visit": (wal_after[0] - wal_before[0]) / visits if wal_before else None,
        "checkpoints": wal_after[1] - wal_before[1] if wal_before else None,
        "photos": photo_figures,
        "stored_answers": stored["answers"] if stored else 0,
        "load": load,
    }


def process_cpu_seconds(pid: int | None) -> float:
    """CPU time used so far by one process (0 when there is none)."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_photo(device: int, n: int, size: int) -> bytes:
    """A distinct PNG-signed photo of `size` bytes (no metadata for the server to take out)."""
    rng = random.Random(device * 1_000_003 + n)
    return b"\x89PNG\r\n\x1a\n" + rng.randbytes(max(0, size - 8))


def photo_run(clients: list, photos: list[list[bytes]]) -> dict:
    """Every device uploads its photos at once (PUT, as the field app does); every one must be stored."""
    gate = threading.Barrier(len(clients) + 1)

    def run(client, mine):
        gate.wait()
        for data in mine:
            try:
                status = client.put_photo(data)
            except Exception as exc:  # a dead connection is a result to report, not to hide
                client.problems.append(repr(exc))
                return
            if status != 201:
                client.problems.append(f"photo upload: HTTP {status}")

    threads_ = [threading.Thread(target=run, args=(c, p)) for c, p in zip(clients, photos)]
    for thread in threads_:
        thread.start()
    gate.wait()
    started = time.perf_counter()
    for thread in threads_:
        thread.join()
    elapsed = time.perf_counter() - started
    count = sum(len(p) for p in photos)
    size = sum(len(data) for p in photos for data in p)
    return {"count": count, "bytes": size, "seconds": elapsed, "per_s": count / elapsed,
            "mib_per_s": size / elapsed / 2**20}


BENCH_BUCKET = "kerbside-bench"


def two_hosts_run(args, instance: str) -> dict | None:
    """The 10-device push across two hosts, photos in a real S3-compatible store and limits in Redis.

    Returns None (and says why) when Redis does not answer: the case needs one.
    """
    import redis
    from limits.storage import RedisStorage

    try:
        redis.Redis.from_url(args.redis_url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        print(f"  two hosts: skipped, Redis at {args.redis_url} does not answer ({type(exc).__name__})", flush=True)
        return None
    prefix = f"kerbside-bench-{uuid.uuid4().hex}"
    s3_prefix = f"run-{uuid.uuid4().hex}"
    store = MotoS3(buckets=(BENCH_BUCKET,)).start()
    try:
        settings = {**store.environment(), "KERBSIDE_BLOB_URL": f"s3://{BENCH_BUCKET}/{s3_prefix}",
                    "KERBSIDE_BLOB_ENDPOINT_URL": store.endpoint,
                    "KERBSIDE_REDIS_URL": args.redis_url, "KERBSIDE_REDIS_PREFIX": prefix}
        run = http_run(args.database_url, instance, args.visits, args.devices, args.batch,
                       max(1, args.workers // 2), args.worker_class, args.threads, hosts=2, settings=settings,
                       photos_per_device=args.photos, photo_bytes=args.photo_kb * 1024, store_pid=store.process.pid)
        stored = store.keys(BENCH_BUCKET, s3_prefix + "/")
        expected = args.photos * args.devices
        if len(stored) != expected:
            raise BenchError(f"two hosts: the bucket holds {len(stored)} photos, expected {expected}")
    finally:
        store.stop()
        RedisStorage(args.redis_url, key_prefix=prefix).reset()
    return run


# -- the ceiling --------------------------------------------------------------------------------


def visit_rows(mutation: dict, area_id: str, person_id: str, device_id: str, received: datetime,
               validator) -> tuple[dict, list[dict], dict]:
    """The submission, answer and mutation log rows the push writes for one applied visit."""
    data = mutation["data"]
    observed = datetime.fromisoformat(data["observed_at"])
    submission = {
        "id": data["id"], "form_id": "street", "form_version": 1, "kind": "street",
        "area_id": area_id, "site_id": data["site_id"], "person_id": person_id,
        "device_id": device_id, "observed_at": observed, "observed_offset": "+00:00",
        "received_at": received, "notes": "", "lat": data["location"]["lat"], "lng": data["location"]["lng"],
        "accuracy_m": data["location"]["accuracy_m"], "payload_hash": mutation["payload_hash"], "data": data,
        "review_status": "pending",
    }
    answers = [{
        "submission_id": data["id"], "line_key": key, "theme": validator.lines[key].theme,
        "grade": answer["grade"], "value": None, "note": None, "photos": None,
        "area_id": area_id, "site_id": data["site_id"], "kind": "street", "observed_at": observed,
    } for key, answer in data["answers"].items()]
    log = {"mid": mutation["mid"], "device_id": device_id, "seq": mutation["seq"], "type": mutation["type"],
           "payload_hash": mutation["payload_hash"], "status": "applied", "result": {}, "data": None,
           "received_at": received}
    return submission, answers, log


def ceiling_run(url: str, instance: str, visits: int, batch: int, method: str = "executemany") -> dict:
    """The same rows inserted directly, one transaction per batch, one thread.

    `executemany`: SQLAlchemy Core executemany (the issue's ceiling). `bulk`: the server's own
    set-based writes (server/bulk.py: COPY on PostgreSQL), which is what the push does itself.
    """
    details = fresh_database(url, instance, 1)
    all_visits = make_visits(visits, details["site_ids"])
    mutations = make_mutations(all_visits, seed=0)
    validator = compile_form(STREET_FORM)
    app = _app(url, instance)
    with app.app_context():
        area = db.session.get(Area, details["area_id"])
        person_id = operations.create_person("Ceiling volunteer", roles=[("street_rep", area)]).id
        device = DeviceRow(person_id=person_id, name="Ceiling phone", token_hash=uuid.uuid4().hex)
        db.session.add(device)
        db.session.commit()
        device_id = device.id
        now = datetime.now(timezone.utc)
        prepared = []
        for chunk in batched(mutations, batch):
            submissions, answers, logs = [], [], []
            for m in chunk:
                submission, lines, log = visit_rows(m, details["area_id"], person_id, device_id, now, validator)
                submissions.append(submission)
                answers.extend(lines)
                logs.append(log)
            prepared.append((submissions, answers, logs))
        db.session.remove()

        engine = db.engine
        started = time.perf_counter()
        for submissions, answers, logs in prepared:
            if method == "bulk":
                bulk.insert_rows(db.session, Submission.__table__, submissions)
                bulk.insert_rows(db.session, Answer.__table__, answers)
                seqs = take_seqs(db.session, len(submissions))
                bulk.insert_rows(db.session, Change.__table__, [
                    {"seq": seq, "collection": "my_submissions", "record_id": s["id"], "op": "put", "area_id": None,
                     "person_id": person_id, "data": my_submission_record(s), "created_at": now}
                    for seq, s in zip(seqs, submissions)
                ])
                bulk.insert_rows(db.session, MutationLog.__table__,
                                 [log | {"change_seq": seq} for log, seq in zip(logs, seqs)])
                db.session.commit()
                continue
            with engine.begin() as connection:
                connection.execute(insert(Submission.__table__), submissions)
                connection.execute(insert(Answer.__table__), answers)
                last = connection.execute(
                    update(ChangeCounter.__table__).where(ChangeCounter.__table__.c.id == 1)
                    .values(value=ChangeCounter.__table__.c.value + len(submissions))
                    .returning(ChangeCounter.__table__.c.value)
                ).scalar_one()
                seqs = range(last - len(submissions) + 1, last + 1)
                connection.execute(insert(Change.__table__), [
                    {"seq": seq, "collection": "my_submissions", "record_id": s["id"], "op": "put", "area_id": None,
                     "person_id": person_id, "data": my_submission_record(s), "created_at": now}
                    for seq, s in zip(seqs, submissions)
                ])
                connection.execute(insert(MutationLog.__table__),
                                   [log | {"change_seq": seq} for log, seq in zip(logs, seqs)])
        elapsed = time.perf_counter() - started
        db.session.remove()
        engine.dispose()
    check_counts(count_rows(url, instance), visits, f"ceiling ({method})")
    return {"seconds": elapsed, "subs_per_s": visits / elapsed}


# -- a database with years of history (issue 11) ----------------------------------------------

HISTORY_VOLUNTEERS = 100
HISTORY_DAYS = 730
HISTORY_CHUNK = 10_000  # visits per COPY transaction


def store_history(url: str, instance: str, details: dict, answers: int) -> dict:
    """Store at least `answers` answer rows of earlier visits in the bench area, as years of use leave them.

    Each visit has every row a push leaves: its submission, its 12 answers, its volunteer's
    `my_submissions` change row and its mutation log row, from one of 100 earlier volunteers'
    phones, received in time order over the two years before the timed visits (which fall in
    the last 50 days). COPY writes them (server/bulk.py), 10,000 visits a transaction, seqs
    from the change counter as the push takes them. VACUUM ANALYZE follows: a server that has
    run for years has its old rows vacuumed and its statistics current, so the timed run pays
    neither for first reads of never-vacuumed pages nor for an autovacuum of 10,000,000 rows.
    """
    visits = -(-answers // len(LINE_KEYS))
    validator = compile_form(STREET_FORM)
    rng = random.Random(31)
    app = _app(url, instance)
    started = time.perf_counter()
    with app.app_context():
        area = db.session.get(Area, details["area_id"])
        phones = []
        for n in range(HISTORY_VOLUNTEERS):
            person = operations.create_person(f"Earlier volunteer {n}", roles=[("street_rep", area)])
            phone = DeviceRow(person_id=person.id, name=f"Earlier phone {n}", token_hash=uuid.uuid4().hex)
            db.session.add(phone)
            phones.append((person, phone))
        db.session.flush()
        phones = [(person.id, phone.id) for person, phone in phones]
        db.session.commit()
        now = datetime.now(timezone.utc).replace(microsecond=0)
        first = now - timedelta(days=HISTORY_DAYS)
        step = timedelta(days=HISTORY_DAYS - 60) / visits
        sent = [0] * len(phones)
        for start in range(0, visits, HISTORY_CHUNK):
            submissions, answer_rows, logs, records = [], [], [], []
            for n in range(start, min(visits, start + HISTORY_CHUNK)):
                volunteer = rng.randrange(len(phones))
                person_id, device_id = phones[volunteer]
                sent[volunteer] += 1
                observed = first + step * n
                data = {
                    "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "form": {"id": "street", "version": 1},
                    "site_id": rng.choice(details["site_ids"]),
                    "observed_at": observed.isoformat(),
                    "answers": {key: {"grade": rng.choice(GRADES)} for key in LINE_KEYS},
                    "location": {"lat": round(53.5 + rng.random() / 50, 6), "lng": round(-2.64 + rng.random() / 50, 6),
                                 "accuracy_m": 12.0},
                }
                mutation = {"mid": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "seq": sent[volunteer],
                            "type": "submission.create", "payload_hash": payload_hash(data), "data": data}
                # Phones send within hours of the visit, or days when out of signal.
                received = observed + timedelta(minutes=rng.randrange(5, 3 * 24 * 60))
                submission, lines, log = visit_rows(mutation, details["area_id"], person_id, device_id,
                                                    received, validator)
                submissions.append(submission)
                answer_rows.extend(lines)
                logs.append(log)
                records.append((person_id, submission))
            seqs = take_seqs(db.session, len(submissions))
            bulk.insert_rows(db.session, Submission.__table__, submissions)
            bulk.insert_rows(db.session, Answer.__table__, answer_rows)
            bulk.insert_rows(db.session, Change.__table__, [
                {"seq": seq, "collection": "my_submissions", "record_id": s["id"], "op": "put", "area_id": None,
                 "person_id": person_id, "data": my_submission_record(s), "created_at": s["received_at"]}
                for seq, (person_id, s) in zip(seqs, records)
            ])
            bulk.insert_rows(db.session, MutationLog.__table__,
                             [log | {"change_seq": seq} for log, seq in zip(logs, seqs)])
            db.session.commit()
            if start // HISTORY_CHUNK % 10 == 9:
                print(f"  stored {start + HISTORY_CHUNK:,} of {visits:,} visits "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)
        copied = time.perf_counter() - started
        with db.engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            for table in ("submission", "answer", "change", "mutation_log"):
                connection.execute(text(f"VACUUM (ANALYZE) {table}"))
        db.session.remove()
        db.engine.dispose()
    return {"visits": visits, "answers": visits * len(LINE_KEYS), "copy_s": copied,
            "vacuum_s": time.perf_counter() - started - copied}


def history_details(url: str, instance: str, invites: int) -> dict:
    """The bench area of a database store_history filled earlier, with `invites` new invites."""
    app = _app(url, instance)
    with app.app_context():
        area = db.session.execute(select(Area).where(Area.slug == "bench")).scalar_one()
        site_ids = list(db.session.execute(select(Site.id).where(Site.area_id == area.id).order_by(Site.name)).scalars())
        codes = [operations.issue_invite(area, "street_rep", display_name=f"Bench volunteer {n}") for n in range(invites)]
        db.session.commit()
        # Visit ids and mids of this call's runs differ from those of every earlier call.
        details = {"area_id": area.id, "site_ids": site_ids, "codes": codes, "seed_base": int(time.time())}
        db.session.remove()
        db.engine.dispose()
    return details


def stored_comparison(args, instance: str) -> dict:
    """The same 10-device push on an empty database, and with `--stored-answers` answer rows stored.

    With `--empty-database-url` the empty runs use that database and alternate with the runs
    on the stored history, so that both meet the shared machine's same moments; otherwise
    the empty runs come first, on the database the history is then stored in.
    """
    url, empty_url = args.database_url, args.empty_database_url or args.database_url

    def timed(label: str, n: int, database_url: str, **stored) -> dict:
        print(f"PostgreSQL, {label}: {args.devices} devices, {args.visits:,} visits, run {n + 1} of {args.runs} ...",
              flush=True)
        run = http_run(database_url, instance, args.visits, args.devices, args.batch, args.workers, args.worker_class,
                       args.threads, **stored)
        print(f"  {run['subs_per_s']:,.0f} submissions/s; server CPU {run['server_cpu_ms']:.0f} ms per batch "
              f"(workers {run['workers_cpu_ms']:.0f} + PostgreSQL {run['database_cpu_ms']:.0f}); "
              f"{run['stored_answers']:,} answer rows stored before; load {run['load']:.2f}", flush=True)
        return run

    alternate = empty_url != url
    empty = [] if alternate or args.reuse_stored else [timed("empty database", n, empty_url) for n in range(args.runs)]
    history = None
    if args.reuse_stored:
        details = history_details(url, instance, args.devices * args.runs)
        if count_rows(url, instance)["answers"] < args.stored_answers:
            raise BenchError(f"--reuse-stored: the database holds fewer than {args.stored_answers:,} answer rows")
    else:
        details = fresh_database(url, instance, args.devices * args.runs)
        print(f"Storing {args.stored_answers:,} answer rows of history ...", flush=True)
        history = store_history(url, instance, details, args.stored_answers)
        print(f"  {history['visits']:,} visits in {history['copy_s']:.0f} s (COPY), VACUUM ANALYZE "
              f"{history['vacuum_s']:.0f} s", flush=True)
    stored = []
    for n in range(args.runs):
        window = None
        if args.time_ordered:
            # As a live server receives them: observed after everything stored (the bench's earlier
            # runs included), so the pages' (area, kind, observed_at) index grows at its end.
            with database(url, instance) as session:
                latest = session.execute(select(func.max(Submission.observed_at))).scalar_one()
            window = (latest + timedelta(seconds=1), datetime.now(timezone.utc) - timedelta(minutes=1))
        if alternate:
            empty.append(timed("empty database", n, empty_url, window=window))
        stored.append(timed("history stored", n, url, details=details, run=n, window=window))
    return {"empty": empty, "stored": stored, "history": history, "alternate": alternate}


def stored_report(args, comparison: dict, notes: str = "") -> str:
    """The `ingest-10m` section: the rate with years of history stored, against the rate on an empty database."""
    rows = []
    for label, runs in (("empty", comparison["empty"]), ("history stored", comparison["stored"])):
        for run in runs:
            rows.append(
                f"| {label} | {run['stored_answers']:,} | {run['subs_per_s']:,.0f} | {run['server_cpu_ms']:.0f} "
                f"({run['workers_cpu_ms']:.0f} + {run['database_cpu_ms']:.0f}) | {run['p50_ms']:.0f} | "
                f"{run['p95_ms']:.0f} | {run['wal_bytes_per_visit'] / 1024:.1f} | {run['checkpoints']} | {run['load']:.2f} |")
    lines = [
        "## Ingest with 10,000,000 answer rows stored (`bench/ingest.py --stored-answers`)",
        "",
        f"The PostgreSQL case of the ingest bench ({args.devices} devices at once, {args.visits:,} street visits in "
        f"batches of {args.batch}, gunicorn {args.workers} {args.worker_class} workers), run on an empty database and "
        f"then on one holding {args.stored_answers:,} answer rows of earlier visits in the same area: "
        f"{-(-args.stored_answers // len(LINE_KEYS)):,} submissions from {HISTORY_VOLUNTEERS} earlier phones over "
        "two years, each with its change row and mutation log row, written with COPY and then VACUUM ANALYZE. "
        + ("The runs alternate, empty then stored, on two databases of one PostgreSQL server, so that both cases "
           "meet the shared machine's same moments. " if comparison.get("alternate") else
           "The empty runs come first, then the history is stored. ")
        + ("Each pair's visits are dated after every visit already stored (the earlier runs' too), as a live "
           "server receives them. " if args.time_ordered else
           "Every run's visits are dated over the last 50 days, so runs on top of earlier ones interleave with them. ")
        + "Each run with history pushes on top of the one before it. Every run starts after a CHECKPOINT; `load` "
        "is the one-minute load average at its end (the machine is shared, so the rate moves with it; the CPU "
        "time per batch moves less).",
        "",
        "| case | answer rows stored | subs/s | server CPU ms/batch (workers + PostgreSQL) | p50 batch ms "
        "| p95 batch ms | WAL KiB/visit | checkpoints | load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]
    if comparison["history"]:
        history = comparison["history"]
        lines += ["", f"Storing the history took {history['copy_s']:.0f} s of COPY for {history['visits']:,} visits "
                      f"and {history['vacuum_s']:.0f} s of VACUUM ANALYZE."]
    if comparison["empty"] and comparison["stored"]:
        empty = statistics.median(r["subs_per_s"] for r in comparison["empty"])
        stored = statistics.median(r["subs_per_s"] for r in comparison["stored"])
        cpu_empty = statistics.median(r["server_cpu_ms"] for r in comparison["empty"])
        cpu_stored = statistics.median(r["server_cpu_ms"] for r in comparison["stored"])
        ratio = stored / empty
        lines += ["", f"Median rate: {empty:,.0f} submissions/s empty, {stored:,.0f} with history stored — ratio "
                      f"**{ratio:.2f}**; server CPU per batch {cpu_empty:.0f} → {cpu_stored:.0f} ms "
                      f"(×{cpu_stored / cpu_empty:.2f}).",
                  "", f"Target (issue 11): with 10,000,000 answer rows stored, at least {TARGET_STORED_RATIO:.0%} of "
                      f"the rate on an empty database — **{'met' if ratio >= TARGET_STORED_RATIO else 'NOT met'}**."]
    if notes:
        lines += ["", notes.rstrip()]
    return "\n".join(lines)


# -- the report ---------------------------------------------------------------------------------


def report(args, sqlite: dict | None, postgres: dict | None, two_hosts: dict | None = None) -> str:
    cores = os.cpu_count() or 1
    rows = []
    if two_hosts and postgres and "ceiling" in postgres:
        two_hosts["ceiling"] = postgres["ceiling"]  # the same rows on the same database
    for label, case in (("SQLite", sqlite), ("PostgreSQL", postgres),
                        ("PostgreSQL, two hosts, S3 and Redis", two_hosts)):
        if not case:
            continue
        http_, ceiling = case["http"], case["ceiling"]
        case["ratio"] = ratio = http_["subs_per_s"] / ceiling["subs_per_s"]
        # What the rate would be if the run had the machine's cores to itself.
        cpu_per_batch = http_["server_cpu_ms"] + http_["client_cpu_ms"]
        case["cpu_bound"] = cores * 1000 / cpu_per_batch * args.batch
        # One device waits for each answer before sending the next batch: latency, not CPU, bounds it.
        cpu_bound = f"{case['cpu_bound']:,.0f}" if http_["devices"] > 1 else "—"
        split = (f"{http_['server_cpu_ms']:.0f} ({http_['workers_cpu_ms']:.0f} + {http_['database_cpu_ms']:.0f})"
                 if label.startswith("PostgreSQL") else f"{http_['server_cpu_ms']:.0f}")
        rows.append(
            f"| {label} | {http_['devices']} | {http_['server']} | **{http_['subs_per_s']:,.0f}** | "
            f"{ceiling['subs_per_s']:,.0f} | {ratio:.0%} | {http_['p50_ms']:.0f} | {http_['p95_ms']:.0f} | "
            f"{split} | {http_['client_cpu_ms']:.0f} | {cpu_bound} |"
        )
    table = "\n".join([
        "| Database | Devices | Server | HTTP subs/s | Ceiling subs/s (executemany) | Ratio | p50 batch ms "
        "| p95 batch ms | Server CPU ms/batch (workers + PostgreSQL) | Client CPU ms/batch | CPU-bound subs/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ])
    notes = []
    if postgres:
        runs = postgres["runs"]

        def each(key: str, form: str) -> str:
            return " / ".join(format(run[key], form) for run in runs)

        wal = statistics.median(run["wal_bytes_per_visit"] for run in runs) / 1024
        notes.append(
            f"PostgreSQL runs ({len(runs)}, each on a fresh database, started right after a CHECKPOINT; the median "
            f"is in the table): {each('subs_per_s', ',.0f')} submissions/s; server CPU {each('server_cpu_ms', '.0f')} "
            f"ms per batch; WAL {wal:.1f} KiB per visit ({wal * postgres['http']['subs_per_s'] / 1024:.0f} MiB a second "
            f"at the median rate); checkpoints during the runs: {each('checkpoints', 'd')}; 1-minute load average "
            f"as each began: {each('load', '.1f')}."
        )
        load = statistics.median(run["load"] for run in runs)
        if load > cores:
            notes.append(
                f"**A busy machine:** these runs began at a median 1-minute load average of {load:.1f} on {cores} "
                f"cores, so other work held most of the CPU and the rates above are far below what the code does "
                f"alone. Compare the CPU time per batch, which the load moves much less, and the CPU-bound column."
            )
        met_speed = postgres["http"]["subs_per_s"] >= TARGET_SUBS_PER_S
        met_ratio = postgres["ratio"] >= TARGET_RATIO
        notes.append(
            f"Targets (PostgreSQL, {postgres['http']['devices']} devices): at least {TARGET_SUBS_PER_S:,} submissions/s — "
            f"**{'met' if met_speed else 'NOT met'}**; at least {TARGET_RATIO:.0%} of the ceiling — "
            f"**{'met' if met_ratio else 'NOT met'}**."
        )
        if "bulk" in postgres:
            notes.append(
                f"The push writes with COPY (server/bulk.py), which beats the executemany ceiling; the same rows "
                f"written directly the server's way, from one thread, go in at {postgres['bulk']['subs_per_s']:,.0f} "
                f"submissions/s (HTTP = {postgres['http']['subs_per_s'] / postgres['bulk']['subs_per_s']:.0%} of that)."
            )
    notes.append(two_hosts_note(args, postgres, two_hosts))
    notes_text = "\n\n".join(notes)
    return f"""## Ingest

`python bench/ingest.py` pushes {args.visits:,} street visits of {len(LINE_KEYS)} graded lines over HTTP,
{args.batch} per `POST /api/sync/v1` (each request also pulls the device's new changes, as a phone
does), to gunicorn started as a subprocess: one device against one sync worker on SQLite, and
{args.devices} devices at once on PostgreSQL. Request bodies are built before timing; every result must
be `applied`, and afterwards the database must hold exactly {args.visits:,} submissions and
{args.visits * len(LINE_KEYS):,} answers, or the script fails. The ceiling inserts the same rows
(submission, answers, change rows, mutation log) with SQLAlchemy Core `executemany`, one transaction
per {args.batch} visits, from one thread, on the same kind of database. Ratio = HTTP / ceiling.

The client and the server share the machine ({machine()}), and other work on it slows the
rate. Over one afternoon (2026-11-22) the PostgreSQL rate of nearly the same code moved between
about 1,830 and 3,200 submissions/s on these shared machines, and its CPU time per batch between
about 58 and 97 ms with it: a run measures the code and the machine's moment together.
"CPU-bound subs/s" is what the CPU time per batch (server and client) allows on {cores} idle
cores: the rate to expect when nothing else runs.

{table}

{notes_text}

What the push does (server/push.py, server/bulk.py): one transaction per request, committed
before the answer is sent; per table one statement whatever the batch size — COPY for
submissions, answers and change rows, one `INSERT ... SELECT FROM json_populate_recordset(...)
ON CONFLICT DO NOTHING RETURNING` to claim the mids, one `UPDATE ... FROM json_populate_recordset`
for their change seqs (SQLAlchemy executemany on SQLite); one validator per form version; well-formed
items checked without marshmallow (the schemas still judge, and word, everything else); JSON
read and written with orjson.

Workers: in earlier runs 3, 4, 6 and 8 sync workers, and gthread (2 x 4, 4 x 2), gave the same rate within the
noise on 2 cores: the run is CPU-bound (a sync worker waiting on PostgreSQL leaves its core to
PostgreSQL), so 4 sync workers (2 per core) is the default. {TARGET_SUBS_PER_S:,} submissions/s needs at
most {cores * 1000 * args.batch / TARGET_SUBS_PER_S:.0f} ms of CPU per batch on {cores} cores, everything included.

Where PostgreSQL's time went, and what changed (2026-11-22, measured with
`log_min_duration_statement` and by copying 120,000 answer rows into variants of the table):
the answer rows are most of it. Their foreign key to the submission checked each of the 1,200
rows of a push on its own, about 9 ms of CPU per push; it is now checked once per statement by
triggers (server/integrity.py), and the rate went from about 2,300 to about 2,800 submissions/s.
Four indexes no page read were dropped, and the area index now serves the pages' real filter
(area, kind, period) instead of (area, theme, period). Sustained ingest writes WAL at the rate
given above: docs/deployment.md says how to size `max_wal_size` for it.
"""


def two_hosts_note(args, postgres: dict | None, two_hosts: dict | None) -> str:
    """What the two-host row measured, beside the one-host rate."""
    if not two_hosts:
        why = ("--no-two-hosts" if args.no_two_hosts else "PostgreSQL was not run" if not postgres
               else f"Redis at {args.redis_url} did not answer")
        return f"Two hosts (S3 and Redis): not measured in this run ({why})."
    runs = two_hosts["runs"]
    rate, one = two_hosts["http"]["subs_per_s"], postgres["http"]["subs_per_s"]
    photos = two_hosts["http"]["photos"]
    text = (
        f"Two hosts: two gunicorn servers ({two_hosts['http']['server']}, the one-host case's "
        f"{args.workers} workers split between them), each with its own instance folder, on the same "
        f"PostgreSQL; photos in a real S3-compatible store (moto's standalone server on loopback) and "
        f"every device's sync-rate count in Redis (`KERBSIDE_REDIS_URL`) instead of the database. Each of "
        f"the {args.devices} devices sends its requests to the two hosts in turn, as a load balancer without "
        f"sticky sessions would. Runs ({len(runs)}, alternating with the one-host runs; the median is in the "
        f"table): {' / '.join(format(run['subs_per_s'], ',.0f') for run in runs)} submissions/s (1-minute load "
        f"average as each began: {' / '.join(format(run['load'], '.1f') for run in runs)}). "
        f"**{rate:,.0f}** submissions/s across two hosts against **{one:,.0f}** on one host "
        f"({rate / one:.0%}); server CPU per batch {two_hosts['http']['server_cpu_ms']:.0f} ms against "
        f"{postgres['http']['server_cpu_ms']:.0f} ms. The hosts share this machine's {os.cpu_count()} cores, so this shows what the "
        f"split, S3 and Redis cost, not what a second machine adds; the visits carry no photos, as in the "
        f"one-host case, so the push does not touch the store. Redis's and moto's CPU are not in the "
        f"server CPU column."
    )
    if photos:
        text += (
            f" Then each device uploaded {photos['count'] // args.devices} photos of {args.photo_kb} KiB "
            f"(`PUT /api/sync/v1/blobs/…`, to the hosts in turn): {photos['count']:,} photos in "
            f"{photos['seconds']:.1f} s, {photos['per_s']:,.0f} photos/s ({photos['mib_per_s']:.1f} MiB/s) into the "
            f"store, and the bucket held exactly {photos['count']:,} objects afterwards. CPU per photo: "
            f"{photos['workers_cpu_ms']:.0f} ms in the hosts' workers, {photos['store_cpu_ms']:.0f} ms in the "
            f"S3 server (moto, a Python test server sharing these cores: what it costs here says little about AWS or MinIO)."
        )
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--devices", type=int, default=10, help="devices at once on PostgreSQL")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers for PostgreSQL")
    parser.add_argument("--worker-class", default="sync", choices=("sync", "gthread"))
    parser.add_argument("--threads", type=int, default=2, help="threads per gthread worker")
    parser.add_argument("--runs", type=int, default=3, help="PostgreSQL HTTP runs; the median is reported")
    parser.add_argument("--only", choices=("sqlite", "postgresql"), help="run one case only")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the direct-insert ceiling")
    parser.add_argument("--no-write", action="store_true", help="print, but leave docs/benchmarks.md alone")
    parser.add_argument("--no-two-hosts", action="store_true",
                        help="skip the PostgreSQL case across two hosts with S3 (moto) and Redis")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
                        help="Redis for the two-host case (its keys get a prefix of their own, removed afterwards)")
    parser.add_argument("--photos", type=int, default=20, help="photos each device uploads in the two-host case")
    parser.add_argument("--photo-kb", type=int, default=200, help="size of each of those photos, KiB")
    parser.add_argument("--stored-answers", type=int, metavar="N",
                        help="PostgreSQL only: time the push on an empty database, then with N answer rows of history "
                             "stored; writes the ingest-10m section")
    parser.add_argument("--reuse-stored", action="store_true",
                        help="with --stored-answers: push on top of the history an earlier call stored (no empty runs)")
    parser.add_argument("--empty-database-url",
                        help="with --stored-answers: a second database for the empty runs, which then alternate with "
                             "the runs on the history (it is emptied too)")
    parser.add_argument("--time-ordered", action="store_true",
                        help="with --stored-answers: date each run's visits after every visit stored (as a live "
                             "server receives them) instead of over the last 50 days")
    parser.add_argument("--notes", help="with --stored-answers: a file of Markdown added under the figures")
    args = parser.parse_args(argv)
    if args.stored_answers:
        instance = tempfile.mkdtemp(prefix="kerbside-bench-")
        try:
            comparison = stored_comparison(args, instance)
        except BenchError as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            return 1
        finally:
            shutil.rmtree(instance, ignore_errors=True)
        markdown = stored_report(args, comparison, open(args.notes, encoding="utf-8").read() if args.notes else "")
        print()
        print(markdown)
        if not args.no_write and comparison["empty"] and comparison["stored"]:
            write_section("ingest-10m", markdown)
        return 0

    sqlite = postgres = two_hosts = None
    instance = tempfile.mkdtemp(prefix="kerbside-bench-")
    try:
        if args.only in (None, "sqlite"):
            path = os.path.join(instance, "bench.sqlite")
            sqlite_url = "sqlite:///" + path
            print(f"SQLite: 1 device, {args.visits:,} visits ...", flush=True)
            sqlite = {"http": http_run(sqlite_url, instance, args.visits, 1, args.batch, 1, "sync", 1)}
            print(f"  {sqlite['http']['subs_per_s']:,.0f} submissions/s; server CPU "
                  f"{sqlite['http']['server_cpu_ms']:.0f} ms per batch", flush=True)
            if not args.no_ceiling:
                os.remove(path)
                sqlite["ceiling"] = ceiling_run(sqlite_url, instance, args.visits, args.batch)
                print(f"  ceiling {sqlite['ceiling']['subs_per_s']:,.0f} submissions/s", flush=True)
        if args.only in (None, "postgresql"):
            runs, two_runs = [], []
            for n in range(args.runs):
                print(f"PostgreSQL: {args.devices} devices, {args.visits:,} visits, run {n + 1} of {args.runs} ...", flush=True)
                run = http_run(args.database_url, instance, args.visits, args.devices, args.batch,
                               args.workers, args.worker_class, args.threads)
                print(f"  {run['subs_per_s']:,.0f} submissions/s ({run['server']}); server CPU "
                      f"{run['server_cpu_ms']:.0f} ms per batch (workers {run['workers_cpu_ms']:.0f} "
                      f"+ PostgreSQL {run['database_cpu_ms']:.0f}); WAL {run['wal_bytes_per_visit'] / 1024:.1f} KiB "
                      f"per visit; {run['checkpoints']} checkpoint(s) during the run", flush=True)
                runs.append(run)
                if not args.no_two_hosts and (n == 0 or two_runs):
                    # Alternating with the one-host runs, so that both meet the machine's same moments.
                    print(f"PostgreSQL, two hosts with S3 and Redis: run {n + 1} of {args.runs} ...", flush=True)
                    two = two_hosts_run(args, instance)
                    if two is not None:
                        two_runs.append(two)
                        photos = f"; {two['photos']['per_s']:,.0f} photos/s" if two["photos"] else ""
                        print(f"  {two['subs_per_s']:,.0f} submissions/s ({two['server']}); server CPU "
                              f"{two['server_cpu_ms']:.0f} ms per batch{photos}", flush=True)
            # Other work on the machine moves single runs by ±15%: the median run is reported.
            postgres = {"http": sorted(runs, key=lambda r: r["subs_per_s"])[len(runs) // 2], "runs": runs}
            if two_runs:
                two_hosts = {"http": sorted(two_runs, key=lambda r: r["subs_per_s"])[len(two_runs) // 2],
                             "runs": two_runs}
            if not args.no_ceiling:
                postgres["ceiling"] = ceiling_run(args.database_url, instance, args.visits, args.batch)
                print(f"  ceiling {postgres['ceiling']['subs_per_s']:,.0f} submissions/s", flush=True)
                postgres["bulk"] = ceiling_run(args.database_url, instance, args.visits, args.batch, "bulk")
                print(f"  direct, the server's way (COPY) {postgres['bulk']['subs_per_s']:,.0f} submissions/s", flush=True)
    except (BenchError, StartError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(instance, ignore_errors=True)

    if args.no_ceiling:
        return 0
    markdown = report(args, sqlite, postgres, two_hosts)
    print()
    print(markdown)
    if not args.no_write:
        write_section("ingest", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
