"""Fault campaign: field devices push through a fault proxy to a gunicorn that is killed at random.

Run it as `python bench/faults.py --profile full` (or `--profile ci`, a few minutes). It:

1. empties the PostgreSQL database (--database-url, or FAULTS_DATABASE_URL) and seeds areas,
   sites, the street form and one real invite code per device;
2. starts gunicorn (several sync workers) and, in front of it, the fault proxy
   (bench/fault_proxy.py): dropped connections, delays (some longer than the devices'
   timeout), answers cut after the server committed, its own 503s with Retry-After, and a
   500 for any request carrying the poison marker (a server bug one visit triggers);
3. runs the devices, each the reference client (sync.client.Client) with its own SQLite file:
   they queue visits (some with real PNG photos, uploaded first as blobs), site edits,
   hostile items the server must refuse, and poison visits, and sync as phones do;
4. SIGKILLs gunicorn's master and workers at random moments and starts it again;
5. after the last fault, lets the devices sync until every outbox is empty, then checks
   every item against the database and every device's replica against the server.

Every queued item is tracked as ok, failed or unknown, as its device learns it; an item sent
in a request that got no answer (or a 5xx other than 503) is "in doubt" until it is settled.
The figures go into the "faults" section of docs/benchmarks.md. The script exits with 1 when
anything was lost, duplicated or left unresolved, or a poison or hostile item was stored:
those are correctness checks, never timings.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import os
import random
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from sqlalchemy import create_engine, func, make_url, select, text  # noqa: E402

from bench.fault_proxy import KINDS, FaultProxy, FaultRates  # noqa: E402
from bench.hosts import free_port  # noqa: E402
from bench.ingest import BenchError, database  # noqa: E402
from bench.report import write_section  # noqa: E402
from server import operations  # noqa: E402
from server.cli import drop_all_tables, upgrade_database  # noqa: E402
from server.extensions import db  # noqa: E402
from server.models import Change, Device as DeviceRow, MutationLog, Site, Submission  # noqa: E402
from server.pull import scope_view  # noqa: E402
from server.seed_content import STREET_FORM  # noqa: E402
from sync.client import SYNC_PATH, Client  # noqa: E402
from sync.protocol import COULD_NOT_SEND  # noqa: E402
from sync.transport import TransportError, UrllibTransport  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/faults_bench"
POISON_MARKER = "kerbside-poison-7c1e"  # in a visit's notes: the proxy answers 500 to any body holding it
LINE_KEYS = [line["key"] for section in STREET_FORM["sections"] for line in section["lines"] if line["type"] == "grade"]
# Items today's server refuses on their own (200 with a `rejected` result), by what is wrong.
HOSTILE_KINDS = ("bad_grade", "unknown_form_version", "notes_too_long", "missing_line")


@dataclass
class Profile:
    """How big a campaign is; `full` meets the issue's figures, `ci` runs the same checks small."""

    devices: int
    visits: int
    site_update_share: float
    hostile_per_device: int
    poison_per_device: int
    photo_share: float
    kills: int
    rates: FaultRates
    faults_wanted: int  # of each random kind, before the faults stop
    areas: int = 4
    sites_per_area: int = 25
    workers: int = 4
    client_timeout_s: float = 5.0
    delay_s: tuple = (0.05, 7.0)  # past the client's timeout now and then: the device gives up, the server commits
    clock_speed: float = 10.0  # device time runs this much faster, so backoffs of minutes take seconds
    burst: int = 6  # the most items a device queues between two syncs
    converge_timeout_s: float = 600.0
    extra_faults_timeout_s: float = 600.0


PROFILES = {
    "full": Profile(devices=20, visits=20_000, site_update_share=0.05, hostile_per_device=20, poison_per_device=5,
                    photo_share=0.10, kills=8, rates=FaultRates(drop=0.05, delay=0.05, cut=0.05, busy=0.05),
                    faults_wanted=500),
    "ci": Profile(devices=8, visits=1_600, site_update_share=0.05, hostile_per_device=4, poison_per_device=2,
                  photo_share=0.10, kills=3, rates=FaultRates(drop=0.06, delay=0.04, cut=0.06, busy=0.06),
                  faults_wanted=10, delay_s=(0.05, 6.0), converge_timeout_s=240.0, extra_faults_timeout_s=60.0),
}


# -- the data a device makes ---------------------------------------------------------------------


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG image of one colour (what a phone's camera would give, only smaller)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    row = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


# -- the server ------------------------------------------------------------------------------------


class Gunicorn:
    """gunicorn in its own process group, so one SIGKILL takes the master and every worker."""

    def __init__(self, url: str, instance: str, workers: int, port: int):
        self.url, self.instance, self.workers, self.port = url, instance, workers, port
        self.process: subprocess.Popen | None = None
        self.kills = 0
        self.restarted_at: float | None = None

    def start(self):
        """Start and wait until it listens and its workers have loaded the app."""
        env = dict(os.environ)
        env.update({
            "DATABASE_URL": self.url,
            "SECRET_KEY": "faults-bench-only-secret",
            "KERBSIDE_INSTANCE": self.instance,
            "KERBSIDE_BLOB_DIR": os.path.join(self.instance, "blobs"),
            "KERBSIDE_SYNC_RATE_PER_MINUTE": "1000000",
            # Every bench phone enrols from 127.0.0.1; the shared enrolment throttle would refuse them.
            "KERBSIDE_ENROL_LIMIT_ADDRESS": "1000000 per minute",
        })
        command = [sys.executable, "-m", "gunicorn", "-w", str(self.workers), "-b", f"127.0.0.1:{self.port}",
                   "--log-level", "critical", "--timeout", "120", "server:create_app()"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"gunicorn exited with code {self.process.returncode}")
            # Listening is not enough: the workers load the app after the master binds.
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                connection.request("HEAD", SYNC_PATH + "/blobs/" + "0" * 64)
                connection.getresponse().read()
                return self
            except (OSError, http.client.HTTPException):
                time.sleep(0.1)
            finally:
                connection.close()
        raise BenchError("gunicorn did not start listening within 60 s")

    def kill_and_restart(self, rng: random.Random):
        """SIGKILL the master and its workers at once, as a power cut would, then start again."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.kills += 1
        time.sleep(rng.uniform(0.0, 1.5))  # the machine takes a moment to come back
        self.start()
        self.restarted_at = time.monotonic()

    def stop(self):
        """Stop for good (TERM, then KILL)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def ensure_database(url: str):
    """Create the PostgreSQL database if it does not exist yet (CI starts from a bare cluster)."""
    parsed = make_url(url)
    engine = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                        {"name": parsed.database}).scalar()
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        engine.dispose()


def seed(url: str, instance: str, profile: Profile) -> dict:
    """A fresh schema: areas with sites, the street form published, one invite code per device."""
    with database(url, instance):
        drop_all_tables()
        upgrade_database()
        areas = []
        for n in range(profile.areas):
            area = operations.create_area(f"faults-{n}", f"Fault Street {n}")
            operations.create_sites(area, [{"name": f"Site {n}.{s}", "lat": 53.5 + s / 1000, "lng": -2.6 - n / 100}
                                           for s in range(profile.sites_per_area)])
            areas.append(area)
        operations.publish_form_version(operations.draft_form_version("street", STREET_FORM))
        codes = [operations.issue_invite(areas[d % len(areas)], "street_rep", display_name=f"Fault volunteer {d}")
                 for d in range(profile.devices)]
        db.session.commit()
    return {"codes": codes}


# -- a device and what it knows ----------------------------------------------------------------------


class WatchedTransport:
    """The real urllib transport; notes which items went out in a request that got no clear answer."""

    def __init__(self, inner: UrllibTransport, device: FieldDevice):
        self.inner = inner
        self.device = device

    def __call__(self, method, path, *, json=None, body=None, headers=None):
        """Send one request; an answer lost or a 5xx (not 503) puts its items in doubt."""
        mids = [m["mid"] for m in (json or {}).get("mutations") or ()] if path == SYNC_PATH else []
        try:
            response = self.inner(method, path, json=json, body=body, headers=headers)
        except TransportError:
            self.device.note_doubt(mids)
            raise
        if response.status >= 500 and response.status != 503:
            self.device.note_doubt(mids)
        return response


@dataclass
class Intent:
    """One thing a volunteer will do: a visit (with a photo or not), a site edit, a hostile or poison item."""

    kind: str  # visit, photo_visit, site_update, hostile, poison
    detail: str = ""


class DropsOnAnyAnswer(Client):
    """BROKEN, for `--broken`: any HTTP answer to a sync request, 500 and 503 included, counts as delivered."""

    def _request(self, method, path, items, *args, **kwargs):
        response = super()._request(method, path, items, *args, **kwargs)
        if method == "POST" and path == SYNC_PATH and response.status != 200 and items:
            with self._transaction() as store:
                for item in items:
                    store.execute("DELETE FROM outbox WHERE mid = ?", (item.mid,))
        return response


# Deliberately broken clients the campaign must catch (its negative controls); never the product's.
BROKEN_CLIENTS = {"drops-on-any-answer": DropsOnAnyAnswer}


class FieldDevice:
    """A phone: the reference client, its plan of work, and a ledger of what it has learnt."""

    def __init__(self, number: int, folder: str, url: str, profile: Profile, seed_: int, started: float,
                 client_class: type[Client] = Client):
        self.number = number
        self.rng = random.Random(seed_)
        self.path = os.path.join(folder, f"device-{number}.sqlite")
        speed = profile.clock_speed
        self.client = client_class(self.path, WatchedTransport(UrllibTransport(url, profile.client_timeout_s), self),
                             clock=lambda: started + (time.time() - started) * speed, rng=random.Random(seed_ + 1))
        self.profile = profile
        self.plan: list[Intent] = []
        self.lock = threading.Lock()
        self.kind_of: dict[str, Intent] = {}  # mid -> what it was
        self.visit_of: dict[str, str] = {}  # mid -> visit id (submission.create)
        self.site_of: dict[str, str] = {}  # mid -> site id (site.update)
        self.state: dict[str, str] = {}  # mid -> ok / failed / unknown
        self.doubted: set[str] = set()
        self.queued = 0
        self.syncs = Counter()
        self.errors: list[str] = []
        self.converged = False

    # -- the ledger

    def note_doubt(self, mids):
        """Items whose fate this device cannot know yet."""
        with self.lock:
            self.doubted.update(mids)

    def learn(self):
        """Read the device's own store: items out of the outbox are ok (sent) or failed (attention)."""
        with self.lock:
            pending = {mid for mid, state in self.state.items() if state == "unknown"}
        if not pending:
            return
        with closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)) as store:
            in_outbox = {row[0] for row in store.execute("SELECT mid FROM outbox")}
            left = sorted(pending - in_outbox)
            sent, failed = set(), set()
            for start in range(0, len(left), 500):
                chunk = left[start:start + 500]
                marks = ",".join("?" * len(chunk))
                sent |= {r[0] for r in store.execute(f"SELECT mid FROM sent WHERE mid IN ({marks})", chunk)}
                failed |= {r[0] for r in store.execute(f"SELECT mid FROM attention WHERE mid IN ({marks})", chunk)}
        with self.lock:
            for mid in left:
                if mid in sent:
                    self.state[mid] = "ok"
                elif mid in failed:
                    self.state[mid] = "failed"
                else:
                    self.errors.append(f"{mid} left the outbox for neither the sent archive nor attention")
                    self.state[mid] = "vanished"

    # -- the work

    def make_plan(self, visits: int):
        """This device's share of the work, in a random order."""
        profile, rng = self.profile, self.rng
        plan = [Intent("photo_visit" if rng.random() < profile.photo_share else "visit") for _ in range(visits)]
        plan += [Intent("site_update") for _ in range(round(visits * profile.site_update_share))]
        plan += [Intent("hostile", HOSTILE_KINDS[n % len(HOSTILE_KINDS)]) for n in range(profile.hostile_per_device)]
        plan += [Intent("poison") for _ in range(profile.poison_per_device)]
        rng.shuffle(plan)
        self.plan = plan

    def enrol(self, code: str):
        """Join with the invite code and fill the replica (before any fault)."""
        self.client.enrol(code, f"Fault phone {self.number}")
        while self.client.sync_once(force=True).status != "ok":
            time.sleep(0.2)

    def _visit_data(self, intent: Intent) -> dict:
        rng = self.rng
        sites = sorted(self.client.replica("sites"))
        forms = self.client.replica("forms")
        version = max(f["version"] for f in forms.values() if f["id"] == "street")
        data = {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "form": {"id": "street", "version": version},
            "site_id": rng.choice(sites),
            "observed_at": now_iso(),
            "answers": {key: {"grade": rng.choice("ABCD")} for key in LINE_KEYS},
            "location": {"lat": round(53.5 + rng.random() / 50, 6), "lng": round(-2.64 + rng.random() / 50, 6),
                         "accuracy_m": 12.0},
        }
        if rng.random() < 0.3:
            data["answers"][rng.choice(LINE_KEYS)]["note"] = "Bins overflowing by the bus stop"
        if intent.kind == "photo_visit":
            photo = png(rng.randint(2, 6), rng.randint(2, 6), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
            data["answers"]["litter"] = {"grade": "C", "photos": [self.client.add_blob(photo)]}
        elif intent.kind == "poison":
            data["notes"] = f"Visit notes {POISON_MARKER}"
        elif intent.kind == "hostile":
            if intent.detail == "bad_grade":
                data["answers"][LINE_KEYS[0]] = {"grade": "E"}
            elif intent.detail == "unknown_form_version":
                data["form"]["version"] = version + 50
            elif intent.detail == "notes_too_long":
                data["notes"] = "x" * 4001
            elif intent.detail == "missing_line":
                del data["answers"][LINE_KEYS[-1]]
        return data

    def queue_next(self) -> bool:
        """Queue the next intent of the plan; False when the plan is done."""
        if not self.plan:
            return False
        intent = self.plan.pop()
        if intent.kind == "site_update":
            sites = self.client.replica("sites")
            site_id = self.rng.choice(sorted(sites))  # a record's id is its change's, the replica's key
            site = sites[site_id]
            patch = ({"notes": f"Checked by phone {self.number} at {now_iso()}"} if self.rng.random() < 0.7
                     else {"lat": round(site["lat"] + self.rng.uniform(-1e-4, 1e-4), 6)})
            mid = self.client.queue("site.update", {"id": site_id, "base_version": site["version"], "patch": patch})
            self.site_of[mid] = site_id
        else:
            data = self._visit_data(intent)
            mid = self.client.queue_submission(data)
            self.visit_of[mid] = data["id"]
        with self.lock:
            self.kind_of[mid] = intent
            self.state[mid] = "unknown"
            self.queued += 1
        return True

    def sync(self, force: bool):
        report = self.client.sync_once(force=force)
        self.syncs[report.status] += 1
        self.learn()
        return report

    def run_under_fire(self, campaign: Campaign):
        """Queue bursts and sync, as a rep does between streets, until the faults stop."""
        try:
            while not campaign.converging.is_set():
                for _ in range(self.rng.randint(1, self.profile.burst)):
                    if not self.queue_next():
                        break
                report = self.sync(force=self.rng.random() < 0.15)
                if report.status in ("waiting", "busy"):
                    pause = 0.3
                elif self.plan:
                    pause = self.rng.uniform(0.0, 0.05)
                else:  # all queued: a phone in a pocket syncs now and then
                    pause = self.rng.uniform(0.2, 0.6)
                campaign.converging.wait(pause)
            self.converge(campaign)
        except Exception as exc:  # a crash of the device loop is a result to report, not to hide
            self.errors.append(f"device {self.number}: {exc!r}")

    def converge(self, campaign: Campaign):
        """No more faults: sync (as on reconnect) until the outbox is empty."""
        while time.monotonic() < campaign.converge_deadline:
            report = self.sync(force=True)
            if report.status == "ok" and not self.client.outbox():
                self.converged = True
                return
            time.sleep(0.05)


# -- the campaign --------------------------------------------------------------------------------------


@dataclass
class Campaign:
    profile: Profile
    converging: threading.Event = field(default_factory=threading.Event)
    converge_deadline: float = 0.0


def run(profile: Profile, url: str, seed_: int, client_class: type[Client] = Client) -> dict:
    """Run one campaign; return the figures and the checks' findings."""
    rng = random.Random(seed_)
    instance = tempfile.mkdtemp(prefix="kerbside-faults-")
    wall_started = time.monotonic()
    ensure_database(url)
    details = seed(url, instance, profile)
    server = Gunicorn(url, instance, profile.workers, free_port()).start()
    proxy = FaultProxy(("127.0.0.1", server.port), profile.rates, seed=seed_, poison_marker=POISON_MARKER.encode(),
                       delay_s=profile.delay_s, retry_after_s=1)
    proxy.pause()
    campaign = Campaign(profile)
    devices: list[FieldDevice] = []
    try:
        started = time.time()
        share = [profile.visits // profile.devices + (1 if d < profile.visits % profile.devices else 0)
                 for d in range(profile.devices)]
        for d in range(profile.devices):
            device = FieldDevice(d, instance, proxy.url, profile, seed_ * 1000 + d, started, client_class)
            device.enrol(details["codes"][d])
            device.make_plan(share[d])
            devices.append(device)
        planned = sum(len(device.plan) for device in devices)
        kill_at = sorted(rng.uniform(0.05, 0.92) for _ in range(profile.kills))
        print(f"  {profile.devices} devices enrolled; {planned:,} items planned; faults on", flush=True)

        proxy.resume()
        fire_started = time.monotonic()
        threads = [threading.Thread(target=device.run_under_fire, args=(campaign,), name=f"device-{device.number}")
                   for device in devices]
        for thread in threads:
            thread.start()
        last_print = 0.0
        queue_done_at = None
        while True:
            queued = sum(device.queued for device in devices)
            if kill_at and queued >= kill_at[0] * planned:
                kill_at.pop(0)
                server.kill_and_restart(rng)
                print(f"  server killed and restarted ({server.kills}) at {queued:,} items queued", flush=True)
            counts = proxy.counts()
            if time.monotonic() - last_print > 30:
                last_print = time.monotonic()
                print(f"  {time.monotonic() - fire_started:5.0f} s: {queued:,}/{planned:,} queued; "
                      + ", ".join(f"{k} {counts[k]}" for k in KINDS + ("poison", "down", "requests")), flush=True)
            if queued >= planned and not kill_at:
                queue_done_at = queue_done_at or time.monotonic()
                enough = all(counts[kind] >= profile.faults_wanted for kind in KINDS if getattr(profile.rates, kind))
                if enough or time.monotonic() - queue_done_at > profile.extra_faults_timeout_s:
                    break
            time.sleep(0.2)

        proxy.pause()
        faults_stopped = time.monotonic()
        campaign.converge_deadline = faults_stopped + profile.converge_timeout_s
        campaign.converging.set()
        print(f"  faults stopped after {faults_stopped - fire_started:.0f} s; converging", flush=True)
        for thread in threads:
            thread.join()
        # One more quiet round for everyone, so each replica holds what the others sent last.
        for device in devices:
            for _round in range(20):
                report = device.sync(force=True)
                if report.status == "ok" and report.changes == 0:
                    break
        converged_at = time.monotonic()
        last_fault = max(t for t in (proxy.last_fault_at, server.restarted_at, faults_stopped - 1e-9) if t)
        counts = proxy.counts()
        figures = {
            "profile": profile,
            "faults": counts,
            "kills": server.kills,
            "fire_s": faults_stopped - fire_started,
            "converge_s": converged_at - last_fault,
            "all_converged": all(device.converged for device in devices),
            "wall_s": None,
            "syncs": sum((device.syncs for device in devices), Counter()),
        }
        server.stop()
        figures.update(check(url, instance, devices))
        figures["wall_s"] = time.monotonic() - wall_started
        return figures
    finally:
        proxy.close()
        server.stop()
        for device in devices:
            device.client.close()
        shutil.rmtree(instance, ignore_errors=True)


# -- the checks ----------------------------------------------------------------------------------------


def _device_tables(device: FieldDevice) -> dict:
    with closing(sqlite3.connect(f"file:{device.path}?mode=ro", uri=True, timeout=30)) as store:
        return {
            "outbox": {r[0] for r in store.execute("SELECT mid FROM outbox")},
            "sent": {r[0]: r[1] for r in store.execute("SELECT mid, json_extract(result, '$.status') FROM sent")},
            "attention": {r[0]: (r[1], r[2], r[3]) for r in store.execute(
                "SELECT mid, status, code, json_extract(result, '$.last_error') FROM attention")},
            "replica": {(r[0], r[1]): r[2] for r in store.execute("SELECT collection, id, data FROM replica")},
            "device_id": store.execute("SELECT value FROM meta WHERE key = 'device_id'").fetchone()[0],
        }


def server_view(device_id: str) -> dict:
    """The device's scope as the server sees it, with each record as JSON text like the client's replica."""
    return {key: json.dumps(data) for key, data in scope_view(db.session.get(DeviceRow, device_id)).items()}


def check(url: str, instance: str, devices: list[FieldDevice]) -> dict:
    """Every item against the database, every replica against the server's view."""
    findings = Counter()
    problems: list[str] = []
    with database(url, instance) as session:
        stored = set(session.execute(select(Submission.id)).scalars())
        log = dict(session.execute(select(MutationLog.mid, MutationLog.status)).all())
        # A street rep's site edit is held for a coordinator (`pending_review`): answered applied, but
        # the site keeps its version until a coordinator decides (docs/sync-protocol.md).
        held = {mid for mid, result in session.execute(select(MutationLog.mid, MutationLog.result)
                                                       .where(MutationLog.type == "site.update"))
                if isinstance(result, dict) and result.get("pending_review")}
        versions = dict(session.execute(select(Site.id, Site.version)).all())
        findings["duplicate_submission_rows"] = len(session.execute(
            select(Submission.id).group_by(Submission.id).having(func.count() > 1)).all())
        findings["duplicate_log_rows"] = len(session.execute(
            select(MutationLog.mid).group_by(MutationLog.mid).having(func.count() > 1)).all())
        # Not a key: a visit applied twice would write a second change row for it.
        findings["duplicate_visit_changes"] = len(session.execute(
            select(Change.record_id).where(Change.collection == "my_submissions")
            .group_by(Change.record_id).having(func.count() > 1)).all())
        site_changes = dict(session.execute(
            # The area's rows only: a held edit also writes one for its editor's phone alone.
            select(Change.record_id, func.count()).where(Change.collection == "sites", Change.person_id.is_(None))
            .group_by(Change.record_id)).all())
        views = {device.number: server_view(_device_tables(device)["device_id"]) for device in devices}

    applied_updates = Counter()
    known_visits = set()
    for device in devices:
        tables = _device_tables(device)
        findings["unresolved"] += len(tables["outbox"])
        for mid, intent in device.kind_of.items():
            findings[f"submitted_{intent.kind}"] += 1
            findings["submitted"] += 1
            in_sent, refusal = tables["sent"].get(mid), tables["attention"].get(mid)
            where = "outbox" if mid in tables["outbox"] else "sent" if in_sent else "attention" if refusal else None
            if where is None:
                findings["lost"] += 1
                problems.append(f"device {device.number}: {intent.kind} {mid} is nowhere on the device")
                continue
            if intent.kind == "site_update":
                status = log.get(mid)
                if status == "applied" and mid not in held:
                    applied_updates[device.site_of[mid]] += 1
                if where == "sent" and status != "applied":
                    findings["lost"] += 1
                    problems.append(f"site edit {mid} acknowledged but the log says {status}")
                elif where == "attention":
                    findings[f"site_update_{refusal[0]}"] += 1
                    if status != refusal[0]:
                        problems.append(f"site edit {mid}: device says {refusal[0]}, server log {status}")
                elif where == "sent":
                    findings["site_update_applied"] += 1
                continue
            visit_id = device.visit_of[mid]
            known_visits.add(visit_id)
            on_server = visit_id in stored
            if intent.kind in ("visit", "photo_visit"):
                if on_server:
                    findings["stored"] += 1
                if where == "sent" and not on_server:
                    findings["lost"] += 1
                    problems.append(f"visit {visit_id} acknowledged but not on the server")
                elif where == "attention":
                    findings["good_set_aside"] += 1
                    findings[f"good_set_aside_{refusal[1]}"] += 1
                    findings[f"good_set_aside_after_{refusal[2] or refusal[1]}"] += 1
                    if on_server:
                        # Its answers were lost while it was alone: stored, yet shown as not sent.
                        findings["good_set_aside_but_stored"] += 1
            elif intent.kind == "hostile":
                if on_server:
                    findings["hostile_stored"] += 1
                    problems.append(f"hostile item ({intent.detail}) {visit_id} was stored")
                elif where == "attention" and refusal[0] == "rejected":
                    findings["hostile_rejected"] += 1
            elif intent.kind == "poison":
                if on_server or mid in log:
                    findings["poison_stored"] += 1
                    problems.append(f"poison visit {visit_id} reached the server")
                elif where == "attention" and refusal[1] == COULD_NOT_SEND:
                    findings["poison_handled"] += 1
        with device.lock:
            doubted = set(device.doubted)
        findings["doubted"] += len(doubted)
        findings["doubted_resolved"] += len([mid for mid in doubted if mid not in tables["outbox"]])
        findings["answered_duplicate"] += sum(1 for status in tables["sent"].values() if status == "duplicate")
        findings["vanished"] += sum(1 for state in device.state.values() if state == "vanished")
        replica = {key: json.dumps(json.loads(value)) for key, value in tables["replica"].items()}
        view = {key: json.dumps(json.loads(value)) for key, value in views[device.number].items()}
        if replica != view:
            findings["replicas_differing"] += 1
            missing = sorted(set(view) - set(replica))[:3]
            extra = sorted(set(replica) - set(view))[:3]
            stale = sorted(k for k in set(view) & set(replica) if view[k] != replica[k])[:3]
            problems.append(f"device {device.number}: replica differs (missing {missing}, extra {extra}, stale {stale})")
        problems.extend(device.errors)

    findings["strangers_on_server"] = len(stored - known_visits)
    for site_id, version in versions.items():
        # Every applied edit moves the version on by one and writes one change row: no more, no fewer.
        if version != 1 + applied_updates[site_id] or site_changes.get(site_id, 0) != 1 + applied_updates[site_id]:
            findings["site_versions_wrong"] += 1
            problems.append(f"site {site_id}: version {version}, change rows {site_changes.get(site_id)}, "
                            f"applied edits {applied_updates[site_id]}")
    findings["duplicated"] = (findings["duplicate_submission_rows"] + findings["duplicate_log_rows"]
                              + findings["duplicate_visit_changes"] + findings["strangers_on_server"])
    findings["lost"] += findings["vanished"]
    return {"findings": findings, "problems": problems}


def failed_checks(figures: dict) -> list[str]:
    """The correctness checks that failed (an empty list when the campaign passed)."""
    found = figures["findings"]
    failures = []
    for name in ("lost", "duplicated", "unresolved", "site_versions_wrong", "hostile_stored", "poison_stored",
                 "replicas_differing"):
        if found[name]:
            failures.append(f"{name}: {found[name]}")
    if found["doubted_resolved"] != found["doubted"]:
        failures.append(f"in doubt and never settled: {found['doubted'] - found['doubted_resolved']}")
    # A good visit may be set aside only by the poison rule (alone, failing the same way again and
    # again); refused for anything else, such as its photo, it is a bug that no fault excuses.
    refused = found["good_set_aside"] - found["good_set_aside_could_not_send"]
    if refused:
        failures.append(f"good visits refused: {refused}")
    if found["poison_handled"] != found["submitted_poison"]:
        failures.append(f"poison visits not set aside: {found['submitted_poison'] - found['poison_handled']}")
    return failures


# -- the report ----------------------------------------------------------------------------------------


def report(name: str, seed_: int, figures: dict, failures: list[str]) -> str:
    """The markdown section for docs/benchmarks.md."""
    p, f, c = figures["profile"], figures["findings"], figures["faults"]
    visits = f["submitted_visit"] + f["submitted_photo_visit"]
    rows = [
        ("Items queued (all kinds)", f"{f['submitted']:,}"),
        ("Visits (good), of which with a photo", f"{visits:,} ({f['submitted_photo_visit']:,})"),
        ("Visits stored on the server", f"{f['stored']:,}"),
        ("Site edits: applied / conflict (in attention)",
         f"{f['site_update_applied']:,} / {f['site_update_conflict']:,}"),
        ("Hostile items refused and in attention, of queued", f"{f['hostile_rejected']:,} of {f['submitted_hostile']:,}"),
        ("Poison visits in attention as could_not_send, never stored",
         f"{f['poison_handled']:,} of {f['submitted_poison']:,}"),
        ("**Lost**", f"**{f['lost']}**"),
        ("**Duplicated** (submission rows per visit id, log rows per mid, change rows per visit, "
         "visits the devices never made)", f"**{f['duplicated']}**"),
        ("Sites whose version or change rows differ from 1 + their applied edits (an edit lost or doubled)",
         f"{f['site_versions_wrong']}"),
        ("Items in doubt (sent, no clear answer) / settled", f"{f['doubted']:,} / {f['doubted_resolved']:,}"),
        ("**Unresolved** (still in an outbox at the end)", f"**{f['unresolved']}**"),
        ("Answered `duplicate` (stored while the device could not know)", f"{f['answered_duplicate']:,}"),
        ("Good visits set aside in attention as could_not_send (the poison rule, under plain faults)",
         f"{f['good_set_aside_could_not_send']} of {visits:,}; the server had stored "
         f"{f['good_set_aside_but_stored']} of them; last failure: "
         + ", ".join(f"{k[len('good_set_aside_after_'):]} {v}" for k, v in sorted(f.items())
                     if k.startswith("good_set_aside_after_")) if f["good_set_aside"] else "0"),
        ("**Good visits refused** (in attention for anything but could_not_send)",
         f"**{f['good_set_aside'] - f['good_set_aside_could_not_send']}**"),
        ("Replicas differing from the server's view of their scope", f"{f['replicas_differing']}"),
    ]
    fault_rows = [(kind, f"{c[kind]:,}", f"{getattr(p.rates, kind):.0%}") for kind in KINDS]
    table = "\n".join(["| Check | Result |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)])
    faults = "\n".join(["| Fault | Injected | Rate per request |", "|---|---|---|",
                        *(f"| {a} | {b} | {r} |" for a, b, r in fault_rows),
                        f"| poison (500 for a body with the marker) | {c['poison']:,} | every such request |",
                        f"| server SIGKILLed (master and workers) and restarted | {figures['kills']} | at random |",
                        f"| requests met while the server was down (reset) | {c['down']:,} | — |"])
    verdict = "passed" if not failures else "FAILED: " + "; ".join(failures)
    return f"""## Fault campaign (`bench/faults.py --profile {name}`)

{p.devices} devices, each the reference client with its own SQLite file and a real invite code,
synced through the fault proxy (`bench/fault_proxy.py`, real sockets on loopback) to gunicorn
({p.workers} sync workers) on PostgreSQL, while the server was SIGKILLed and restarted at random.
Devices queue 1–{p.burst} items between syncs: visits ({p.photo_share:.0%} with a real PNG photo
uploaded first as a blob), site edits ({p.site_update_share:.0%} of visits), hostile items
({", ".join(HOSTILE_KINDS)}) and poison visits (their notes hold a marker; the proxy answers 500 to
any request that carries one, as a server bug would). Device time runs {p.clock_speed:g}x faster,
so the protocol's backoffs (1 s to 5 min) fit; the device's timeout is {p.client_timeout_s:g} s and
delays run to {p.delay_s[1]:g} s, so some devices gave up on requests the server then committed.
After the last fault every device synced until its outbox was empty; then every item was checked
against the database, and every replica against a fresh pull of its scope.

Result (seed {seed_}): **{verdict}**. Requests through the proxy: {c['requests']:,}. Under fire
{figures['fire_s']:.0f} s; **time to converge after the last fault {figures['converge_s']:.1f} s**;
wall time {figures['wall_s'] / 60:.1f} min (seeding, enrolment and the checks included).

{faults}

{table}
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="ci")
    parser.add_argument("--database-url", default=os.environ.get("FAULTS_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--converge-timeout", type=float, default=None, help="seconds the devices get to converge")
    parser.add_argument("--no-write", action="store_true", help="print, but leave docs/benchmarks.md alone")
    parser.add_argument("--broken", choices=sorted(BROKEN_CLIENTS), default=None,
                        help="negative control: run a deliberately broken client, which the checks must catch "
                             "(exits 0 only when they do)")
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgresql"):
        parser.error("the campaign runs against PostgreSQL (several gunicorn workers)")
    profile = PROFILES[args.profile]
    if args.converge_timeout is not None:
        profile = dataclasses.replace(profile, converge_timeout_s=args.converge_timeout)
    print(f"Fault campaign, profile {args.profile}: {profile.devices} devices, {profile.visits:,} visits, "
          f"{profile.kills} server kills", flush=True)
    try:
        figures = run(profile, args.database_url, args.seed, BROKEN_CLIENTS.get(args.broken, Client))
    except BenchError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    failures = failed_checks(figures)
    if args.broken:
        verdict = "caught: " + "; ".join(failures) if failures else "**NOT CAUGHT**"
        print(f"Negative control ({args.broken}): {verdict}")
        if not args.no_write:
            write_section("faults-control", f"""## Fault campaign, negative control (`bench/faults.py --profile {args.profile} --broken {args.broken}`)

The same campaign with a deliberately broken client ({BROKEN_CLIENTS[args.broken].__doc__.split(": ", 1)[1]})
must fail its checks. Result (seed {args.seed}): {verdict}.
""")
        return 0 if failures else 1
    markdown = report(args.profile, args.seed, figures, failures)
    print()
    print(markdown)
    for problem in figures["problems"][:30]:
        print("  problem:", problem)
    if not args.no_write:
        write_section(f"faults-{args.profile}" if args.profile != "full" else "faults", markdown)
    if failures:
        print("FAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
