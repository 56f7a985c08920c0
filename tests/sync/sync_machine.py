"""A Hypothesis state machine over the reference client and the real server app, in one process.

Two devices (sync.client.Client, each with its own SQLite file) talk to the Flask app through
a `Network` this module controls: it can be offline, lose an answer after the server
committed, answer 503 itself, hold a request and deliver it later (out of order), replay an
earlier request body, and answer 500 to any request carrying the poison marker (a server bug
one visit triggers). The machine also jumps device clocks, crashes a device while it stores a
page, backs the server's database up and restores it with a new epoch (as `kerbside new-epoch`
after a restore), and publishes and retires form versions.

Invariants after every step: every item created is in its device's outbox, attention list or
sent archive, or on the server; nothing acknowledged is missing from the server (once the
device has seen the current epoch); never two rows for one mid, two submissions for one visit,
two change rows for one visit, or a site version that does not match its applied edits;
nothing hostile or poisonous is stored. At teardown the faults heal and the devices sync until
quiet; then the server must hold exactly the visits created and accepted, and each device's
replica must equal a fresh pull of its scope.

The test (tests/sync/test_state_machine.py) runs a short profile; bench/state_machine.py runs
a long one; the negative controls run it against broken variants (in tests only).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import func, insert, select, text

from bench.faults import png
from server import operations
from server.extensions import db
from server.models import AuditEntry, Change, Device, FormVersion, MutationLog, ServerState, Site, SiteEdit, Submission
from server.pull import scope_view
from server.seed_content import STREET_FORM
from sync.client import SYNC_PATH, Client
from sync.protocol import COULD_NOT_SEND
from sync.transport import Response, TransportError

POISON_MARKER = "kerbside-poison-state-machine"
LINE_KEYS = [line["key"] for section in STREET_FORM["sections"] for line in section["lines"] if line["type"] == "grade"]
DEVICES = 2
DAY_S = 86400.0
# Device clocks wander within these bounds of the real time: inside the 30 days the sent
# archive is kept, so a restore never asks for something a device has already forgotten.
CLOCK_BOUNDS_S = (-2 * DAY_S, 20 * DAY_S)
HEAL_ROUNDS = 40

# What the machines did, across every example of a run (bench/state_machine.py reports it).
STATS: Counter = Counter()


class InvariantViolation(AssertionError):
    """A check failed; `check` names it, so a negative control can say which one caught it."""

    def __init__(self, check: str, detail: str):
        super().__init__(f"{check}: {detail}")
        self.check = check


def violated(check: str, detail: str):
    raise InvariantViolation(check, detail)


class PowerCut(Exception):
    """The device lost power while it stored a page."""


# -- the network between a device and the server -------------------------------------------------


class Network:
    """One device's transport to the in-process server, with the faults the machine sets."""

    def __init__(self, server: Server):
        self.server = server
        self.offline = False
        self.cut_next = False  # deliver, then lose the answer
        self.busy_next = False  # answer 503 + Retry-After without delivering
        self.hold_next = False  # keep the next sync request in the network; the device hears nothing
        self.held: list[tuple] = []
        self.delivered: list[tuple] = []  # sync requests that reached the server, for replays

    def __call__(self, method, path, *, json=None, body=None, headers=None):
        """The device's request: faults first, then the server."""
        if self.offline:
            raise TransportError("no signal")
        if self.busy_next:
            self.busy_next = False
            return Response(503, {"Retry-After": "5"}, {"code": "unavailable", "message": "Busy."})
        request = (method, path, json, body, dict(headers or {}))
        if self.hold_next and method == "POST" and path == SYNC_PATH:
            self.hold_next = False
            self.held.append(request)
            raise TransportError("no answer yet", timed_out=True)
        response = self.server.deliver(*request)
        if method == "POST" and path == SYNC_PATH:
            self.delivered.append(request)
        if self.cut_next:
            self.cut_next = False
            raise TransportError("connection reset after the server answered")
        return response


class Server:
    """The real app behind Flask's test client, with one simulated bug: the poison marker gives 500."""

    def __init__(self, app):
        self.test_client = app.test_client()
        self.requests = 0

    def deliver(self, method, path, json_body, body, headers) -> Response:
        """Hand one request to the app and return its answer (the poison bug answers 500)."""
        self.requests += 1
        if json_body is not None and POISON_MARKER in json.dumps(json_body):
            return Response(500, {}, {"code": "server_error", "message": "Something went wrong."})
        kwargs = {"headers": headers}
        if json_body is not None:
            kwargs["json"] = json_body
        if body is not None:
            kwargs["data"] = body
            kwargs["content_type"] = "application/octet-stream"
        answer = self.test_client.open(path, method=method, **kwargs)
        return Response(answer.status_code, dict(answer.headers), answer.get_json(silent=True))


class Clock:
    """A device clock: the real time plus an offset the machine moves."""

    def __init__(self):
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


# -- what was created, and what the server should end up with -----------------------------------------


@dataclass
class Created:
    """One item a device queued, and what the machine expects of it."""

    device: int
    kind: str  # visit, hostile, poison, site_update
    visit_id: str | None = None
    site_id: str | None = None


# -- the database: empty, seed, back up, restore --------------------------------------------------------


def _tables_in_order():
    # Answers are guarded by triggers, not a foreign key, so the metadata does not know they
    # come after their submissions: put them last.
    tables = [t for t in db.metadata.sorted_tables if t.name != "answer"]
    return tables + [t for t in db.metadata.sorted_tables if t.name == "answer"]


def empty_database():
    """Every table emptied; the state rows back."""
    db.session.rollback()
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
        db.session.execute(text(f"TRUNCATE {names} CASCADE"))
    else:
        for table in reversed(_tables_in_order()):
            db.session.execute(table.delete())
    db.session.commit()
    operations.init_state()
    db.session.commit()


def moved_visits() -> set[str]:
    """Visits no longer at the site they were sent with: their proposed site was merged or rejected."""
    from server.push import proposed_site_id

    return {row.id for row in db.session.execute(select(Submission.id, Submission.site_id, Submission.data))
            if row.site_id != ((row.data or {}).get("site_id") or proposed_site_id(row.id))}


def backup() -> dict:
    """Every row of every table, as a backup taken now would hold them."""
    rows = {t.name: [dict(r._mapping) for r in db.session.execute(select(t))] for t in _tables_in_order()}
    db.session.rollback()
    return rows


def restore(rows: dict) -> str:
    """Put the backup's rows back (and only them), then start a new epoch as after a real restore."""
    db.session.rollback()
    tables = _tables_in_order()
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables) + " CASCADE"))
    else:
        for table in reversed(tables):
            db.session.execute(table.delete())
    for table in tables:
        if rows[table.name]:
            db.session.execute(insert(table), rows[table.name])
    db.session.commit()
    return operations.start_new_epoch()


def server_view(device_id: str) -> dict:
    """What a brand-new replica of this device's scope holds: every change from no cursor, folded."""
    view = scope_view(db.session.get(Device, device_id))
    db.session.rollback()
    return view


# -- the machine ---------------------------------------------------------------------------------------


class SyncMachine(RuleBasedStateMachine):
    """Devices, a server and the faults between them; see the module's docstring."""

    # Negative controls swap these for broken variants.
    client_class = Client

    def __init__(self, app):
        super().__init__()
        STATS["examples"] += 1
        self.app = app
        self.folder = tempfile.mkdtemp(prefix="kerbside-machine-")
        self.server = Server(app)
        self.created: dict[str, Created] = {}
        self.backup_rows: dict | None = None
        self.published: list[int] = []  # form versions ever published (so always accepted)
        self.retired: set[int] = set()
        self.photos = 0
        self.devices: list[Client] = []
        self.networks: list[Network] = []
        self.clocks: list[Clock] = []
        self.crash_armed = [False] * DEVICES
        self.crashes = 0
        self.restores = 0
        self.area_a_sites: list[str] = []

    # -- set-up and tear-down

    @initialize()
    def set_up(self):
        """A fresh database: area A (two sites) for both devices, area B (one site) for no one."""
        empty_database()
        # A new server each example: its rate limiters (20 enrolments a minute per address) too.
        self.app.extensions.pop("kerbside_limiters", None)
        area = operations.create_area("a", "Area A")
        sites = operations.create_sites(area, [{"name": "Canal Street", "lat": 53.54, "lng": -2.63},
                                               {"name": "Mill Lane", "lat": 53.55, "lng": -2.64}])
        self.area_a_sites = sorted(site.id for site in sites)
        self.area_a = area.id
        other = operations.create_area("b", "Area B")
        operations.create_sites(other, [{"name": "Elsewhere Road", "lat": 53.6, "lng": -2.7}])
        self._publish()
        codes = [operations.issue_invite(area, "street_rep", display_name=f"Rep {n}") for n in range(DEVICES)]
        db.session.commit()
        for n, code in enumerate(codes):
            clock, network = Clock(), Network(self.server)
            device = self._open(n, network, clock)
            device.enrol(code, f"Phone {n}")
            if n == DEVICES - 1:
                # The last phone's person also coordinates the area: its site edits apply at once and
                # reach the other phone, while a plain street rep's are held for review.
                from server.models import Role

                person_id = db.session.get(Device, device.device_id).person_id
                db.session.add(Role(person_id=person_id, area_id=area.id, role="coordinator"))
                db.session.commit()
            self.networks.append(network)
            self.clocks.append(clock)
            self.devices.append(device)
            assert device.sync_once().status == "ok"

    def _open(self, n: int, network: Network, clock: Clock) -> Client:
        device = self.client_class(os.path.join(self.folder, f"phone-{n}.sqlite"), network, clock=clock,
                                   rng=random.Random(n), pull_limit=500)
        real_apply = device._apply_change

        def apply_change(store, change):
            # The hook for a power cut while a page is stored (rule crash_while_storing_a_page).
            if self.crash_armed[n]:
                self.crash_armed[n] = False
                raise PowerCut("power cut while storing a page")
            real_apply(store, change)

        device._apply_change = apply_change
        return device

    def teardown(self):
        """Heal every fault, sync until quiet, then check what the server and replicas hold."""
        try:
            if self.devices:
                self._heal()
                self._check_healed()
        finally:
            self.close()

    def close(self):
        """Close the devices and remove their files (no heal, no checks)."""
        for device in self.devices:
            device.close()
        self.devices = []
        shutil.rmtree(self.folder, ignore_errors=True)
        db.session.rollback()

    # -- helpers

    def _note(self, name: str):
        STATS["steps"] += 1
        STATS["rule:" + name] += 1

    def _publish(self) -> int:
        version = operations.draft_form_version("street", {**STREET_FORM, "title": f"{STREET_FORM['title']}"})
        operations.publish_form_version(version)
        db.session.commit()
        self.published.append(version.version)
        return version.version

    def _sync(self, n: int, force: bool = False):
        """One sync; a power cut restarts the app on the same file, as a phone does."""
        try:
            return self.devices[n].sync_once(force=force)
        except PowerCut:
            self.crashes += 1
            STATS["power_cuts"] += 1
            self.devices[n].close()
            self.devices[n] = self._open(n, self.networks[n], self.clocks[n])
            return None

    def _visit(self, n: int, pick: int) -> dict:
        device = self.devices[n]
        versions = sorted(f["version"] for f in device.replica("forms").values() if f["id"] == "street") or [1]
        sites = sorted(device.replica("sites")) or self.area_a_sites
        return {
            "id": str(uuid.uuid4()),
            "form": {"id": "street", "version": versions[pick % len(versions)]},
            "site_id": sites[pick % len(sites)],
            # The volunteer's statement of when: the real time, whatever the device clock says.
            "observed_at": (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat(),
            "answers": {key: {"grade": "ABCD"[(pick + i) % 4]} for i, key in enumerate(LINE_KEYS)},
        }

    # -- rules: what volunteers do

    @rule(n=st.integers(0, DEVICES - 1), pick=st.integers(0, 20), photo=st.booleans())
    def create_visit(self, n, pick, photo):
        """A volunteer saves a visit, now and then with a photo."""
        self._note("create_visit")
        data = self._visit(n, pick)
        if photo:
            self.photos += 1
            data["answers"]["litter"] = {"grade": "C", "photos": [
                self.devices[n].add_blob(png(2, 2, (self.photos % 256, pick, 7)))]}
        mid = self.devices[n].queue_submission(data)
        self.created[mid] = Created(n, "visit", visit_id=data["id"])

    @rule(n=st.integers(0, DEVICES - 1), pick=st.integers(0, 20),
          how=st.sampled_from(["bad_grade", "unknown_form_version"]))
    def create_hostile_item(self, n, pick, how):
        """An item the server must refuse on its own (200 with `rejected`)."""
        self._note("create_hostile_item")
        data = self._visit(n, pick)
        if how == "bad_grade":
            data["answers"][LINE_KEYS[0]] = {"grade": "E"}
        else:
            data["form"]["version"] = max(self.published) + 50
        mid = self.devices[n].queue_submission(data)
        self.created[mid] = Created(n, "hostile", visit_id=data["id"])

    @rule(n=st.integers(0, DEVICES - 1), pick=st.integers(0, 20))
    def inject_poison_item(self, n, pick):
        """A visit that triggers a server bug: any request carrying it gets 500."""
        self._note("inject_poison_item")
        data = {**self._visit(n, pick), "notes": f"Notes {POISON_MARKER}"}
        mid = self.devices[n].queue_submission(data)
        self.created[mid] = Created(n, "poison", visit_id=data["id"])

    @rule(n=st.integers(0, DEVICES - 1), pick=st.integers(0, 5), field=st.sampled_from(["notes", "lat"]))
    def edit_site(self, n, pick, field):
        """A rep corrects a site's details (`site.update` from the version in the replica)."""
        self._note("edit_site")
        sites = self.devices[n].replica("sites")
        if not sites:
            return
        site_id = sorted(sites)[pick % len(sites)]  # a record's id is its change's, the replica's key
        patch = {"notes": f"Note {uuid.uuid4().hex[:6]}"} if field == "notes" else {"lat": round(53.5 + pick / 100, 4)}
        mid = self.devices[n].queue("site.update", {"id": site_id, "base_version": sites[site_id]["version"], "patch": patch})
        self.created[mid] = Created(n, "site_update", site_id=site_id)

    @rule(n=st.integers(0, DEVICES - 1), pick=st.integers(0, 20))
    def propose_site(self, n, pick):
        """A rep visits a place that is not a site yet: the visit proposes it (on their phone alone)."""
        self._note("propose_site")
        data = self._visit(n, pick)
        del data["site_id"]
        data["new_site"] = {"name": f"Alley {uuid.uuid4().hex[:4]}", "lat": 53.54, "lng": -2.63}
        mid = self.devices[n].queue_submission(data)
        self.created[mid] = Created(n, "visit", visit_id=data["id"])

    @rule(pick=st.integers(0, 20), decision=st.sampled_from(["approve", "rename", "merge", "reject"]))
    def moderate_site(self, pick, decision):
        """A coordinator decides about a proposed site; phones' replicas must follow."""
        from server.coordinator import sites as moderation

        self._note("moderate_site")
        waiting = db.session.execute(select(Site).where(Site.status == "proposed").order_by(Site.id)).scalars().all()
        approved = [s for s in db.session.execute(select(Site).where(Site.status == "approved").order_by(Site.id))
                    .scalars() if s.area_id in {w.area_id for w in waiting}]
        if not waiting:
            return
        site = waiting[pick % len(waiting)]
        targets = [s for s in approved if s.area_id == site.area_id]
        if decision == "approve":
            moderation.approve_site(db.session, site)
        elif decision == "rename":
            moderation.approve_site(db.session, site, f"{site.name} (renamed)")
        elif decision == "merge" and targets:
            moderation.merge_site(db.session, site, targets[pick % len(targets)])
        else:
            moderation.reject_site(db.session, site, "Not a place reps walk")
        db.session.commit()
        STATS["sites_" + decision] += 1

    @rule(pick=st.integers(0, 20), accept=st.booleans())
    def moderate_site_edit(self, pick, accept):
        """A coordinator accepts or refuses a street rep's edit of a site."""
        from server.coordinator import sites as moderation

        self._note("moderate_site_edit")
        waiting = db.session.execute(select(SiteEdit).where(SiteEdit.status == "pending")
                                     .order_by(SiteEdit.id)).scalars().all()
        if not waiting:
            return
        edit = waiting[pick % len(waiting)]
        if accept and db.session.get(Site, edit.site_id).status == "approved":
            moderation.accept_edit(db.session, edit)
        else:
            moderation.refuse_edit(db.session, edit, "")
        db.session.commit()

    # -- rules: syncing

    @rule(n=st.integers(0, DEVICES - 1), force=st.booleans())
    def push(self, n, force):
        """sync_once: photos, the due outbox, then the pull."""
        self._note("push")
        self._sync(n, force)

    @rule(n=st.integers(0, DEVICES - 1), limit=st.integers(1, 12))
    def pull_with_limit(self, n, limit):
        """A sync with a small page size, so pages and cursors follow each other."""
        self._note("pull_with_limit")
        self.devices[n].pull_limit = limit
        self._sync(n, force=True)
        self.devices[n].pull_limit = 500

    # -- rules: faults

    @rule(n=st.integers(0, DEVICES - 1))
    def go_offline(self, n):
        self._note("go_offline")
        self.networks[n].offline = True

    @rule(n=st.integers(0, DEVICES - 1))
    def go_online(self, n):
        self._note("go_online")
        self.networks[n].offline = False

    @rule(n=st.integers(0, DEVICES - 1))
    def lose_next_answer(self, n):
        """The next request reaches the server, which commits; the answer is lost."""
        self._note("lose_next_answer")
        self.networks[n].cut_next = True

    @rule(n=st.integers(0, DEVICES - 1))
    def server_busy_next(self, n):
        """The next request is answered 503 with Retry-After before it reaches the app."""
        self._note("server_busy_next")
        self.networks[n].busy_next = True

    @rule(n=st.integers(0, DEVICES - 1))
    def hold_next_request(self, n):
        """The next sync request stays in the network; the device hears nothing (a timeout)."""
        self._note("hold_next_request")
        self.networks[n].hold_next = True

    @precondition(lambda self: any(network.held for network in self.networks))
    @rule(n=st.integers(0, DEVICES - 1), seed=st.integers(0, 1000))
    def deliver_held_requests(self, n, seed):
        """Requests held in the network arrive late, in a shuffled order; their answers are lost."""
        self._note("deliver_held_requests")
        held, self.networks[n].held = self.networks[n].held, []
        random.Random(seed).shuffle(held)
        for request in held:
            self.server.deliver(*request)

    @precondition(lambda self: any(network.delivered for network in self.networks))
    @rule(n=st.integers(0, DEVICES - 1), which=st.integers(0, 1000))
    def replay_request(self, n, which):
        """An earlier sync request arrives again (a retry by a proxy, a duplicated packet)."""
        self._note("replay_request")
        delivered = self.networks[n].delivered
        if delivered:
            self.server.deliver(*delivered[which % len(delivered)])

    @rule(n=st.integers(0, DEVICES - 1), hours=st.integers(-48, 72))
    def jump_clock(self, n, hours):
        """The device clock jumps (a flat battery, a wrong time zone, a manual change)."""
        self._note("jump_clock")
        low, high = CLOCK_BOUNDS_S
        self.clocks[n].offset = min(high, max(low, self.clocks[n].offset + hours * 3600.0))

    @rule(n=st.integers(0, DEVICES - 1))
    def crash_while_storing_a_page(self, n):
        """The next page this device stores is cut off by a power cut; the app starts again."""
        self._note("crash_while_storing_a_page")
        self.crash_armed[n] = True

    # -- rules: the server's side

    @rule()
    def back_up_server(self):
        """A nightly backup of the whole database."""
        self._note("back_up_server")
        self.backup_rows = backup()

    @precondition(lambda self: self.backup_rows is not None)
    @rule()
    def restore_server_from_backup(self):
        """The database is restored from the backup and given a new epoch (`kerbside new-epoch`).

        What the coordinators did since the backup (form versions published or retired) is done
        again, as they would after a restore; what devices sent is theirs to send again.
        """
        self._note("restore_server_from_backup")
        self.restores += 1
        restore(self.backup_rows)
        known = dict(db.session.execute(select(FormVersion.version, FormVersion.status)
                                        .where(FormVersion.form_id == "street")).all())
        for version in self.published:
            if version not in known:
                redone = operations.draft_form_version("street", STREET_FORM)
                assert redone.version == version
                operations.publish_form_version(redone)
        for version in self.retired:
            row = db.session.get(FormVersion, ("street", version))
            if row.status == "published":
                operations.retire_form_version(row)
        db.session.commit()

    @rule()
    def publish_form_version(self):
        """A coordinator publishes a new version of the street form."""
        self._note("publish_form_version")
        self._publish()

    @rule(pick=st.integers(0, 10))
    def retire_form_version(self, pick):
        """A coordinator retires a version; visits filled on it offline are still accepted."""
        self._note("retire_form_version")
        live = [v for v in self.published if v not in self.retired]
        if len(live) < 2:
            # The only published version of a form that phones use cannot be retired (the server refuses).
            return
        version = live[pick % len(live)]
        operations.retire_form_version(db.session.get(FormVersion, ("street", version)))
        db.session.commit()
        self.retired.add(version)

    # -- invariants

    def _server(self) -> dict:
        facts = {
            "log": dict(db.session.execute(select(MutationLog.mid, MutationLog.status)).all()),
            "stored": set(db.session.execute(select(Submission.id)).scalars()),
            "epoch": db.session.execute(select(ServerState.epoch)).scalar_one(),
            "sites": dict(db.session.execute(select(Site.id, Site.version)).all()),
            # A coordinator's accepted edit, or a rename on approval, is a version too.
            "moderated": Counter(
                [site_id for (site_id,) in db.session.execute(select(SiteEdit.site_id).where(SiteEdit.status == "accepted"))]
                + [entry.record_id for entry in db.session.execute(select(AuditEntry).where(AuditEntry.action == "site.approve"))
                   .scalars() if "name" in (entry.details.get("after") or {})]),
            "held": {mid for mid, result in db.session.execute(
                select(MutationLog.mid, MutationLog.result).where(MutationLog.type == "site.update"))
                if (result or {}).get("pending_review")},
            "mids_twice": db.session.execute(select(MutationLog.mid).group_by(MutationLog.mid)
                                             .having(func.count() > 1)).scalars().all(),
            "visits_twice": db.session.execute(select(Submission.id).group_by(Submission.id)
                                               .having(func.count() > 1)).scalars().all(),
            # Not a key: a visit applied twice writes a second change row for it.
            # A visit at a proposed site that was merged or rejected moved once, and its volunteer's
            # phone was told so: one change row more for it (and only one: a site is decided once).
            "visit_changes_twice": [
                record_id for record_id, count in db.session.execute(
                    select(Change.record_id, func.count()).where(Change.collection == "my_submissions")
                    .group_by(Change.record_id).having(func.count() > 1))
                if count > 2 or record_id not in moved_visits()],
        }
        db.session.rollback()
        return facts

    def _device_tables(self, n: int) -> dict:
        device = self.devices[n]
        return {
            "outbox": {item["mid"] for item in device.outbox()},
            "sent": {item["mid"] for item in device.sent()},
            "attention": {item["mid"]: item for item in device.attention()},
            "epoch": device.server_epoch,
        }

    def _on_server(self, item: Created, mid: str, facts: dict) -> bool:
        if item.kind == "site_update":
            return facts["log"].get(mid) in ("applied", "conflict")
        return item.visit_id in facts["stored"]

    @invariant()
    def every_item_is_somewhere_and_nothing_twice(self):
        """Outbox, attention, sent archive or server for every item; one row per mid and per visit."""
        if not self.devices:
            return
        facts = self._server()
        if facts["mids_twice"]:
            violated("one_row_per_mid", f"mutation log rows repeated for {facts['mids_twice'][:3]}")
        if facts["visits_twice"]:
            violated("one_submission_per_visit", f"visits stored twice: {facts['visits_twice'][:3]}")
        if facts["visit_changes_twice"]:
            violated("one_change_per_visit", f"visits with two change rows: {facts['visit_changes_twice'][:3]}")
        tables = [self._device_tables(n) for n in range(DEVICES)]
        applied_edits = Counter()
        for mid, item in self.created.items():
            mine = tables[item.device]
            places = [name for name in ("outbox", "sent", "attention") if mid in mine[name]]
            if len(places) > 1:
                violated("one_place_on_the_device", f"{item.kind} {mid} is in {places}")
            if not places and not self._on_server(item, mid, facts):
                violated("every_item_is_somewhere", f"{item.kind} {mid} is in no outbox, attention list or archive, "
                                                    "and not on the server")
            if "sent" in places and mine["epoch"] == facts["epoch"] and not self._on_server(item, mid, facts):
                violated("acknowledged_is_on_the_server", f"{item.kind} {mid} was acknowledged but the server lacks it")
            if item.kind in ("hostile", "poison") and item.visit_id in facts["stored"]:
                violated("nothing_hostile_is_stored", f"{item.kind} visit {item.visit_id} was stored")
            # A street rep's edit is applied as held for review (pending_review): the site keeps its version.
            if item.kind == "site_update" and facts["log"].get(mid) == "applied" and mid not in facts["held"]:
                applied_edits[item.site_id] += 1
        for site_id, version in facts["sites"].items():
            if version != 1 + applied_edits[site_id] + facts["moderated"][site_id]:
                violated("site_version_matches_its_edits",
                         f"site {site_id} is at version {version} after {applied_edits[site_id]} applied edit(s)")

    # -- healing and the final checks

    def _heal(self):
        for network in self.networks:
            network.offline = network.cut_next = network.busy_next = network.hold_next = False
            held, network.held = network.held, []
            for request in held:  # late arrivals: their answers go nowhere
                self.server.deliver(*request)
        self.crash_armed = [False] * DEVICES
        for _round in range(HEAL_ROUNDS):
            quiet = True
            for n in range(DEVICES):
                device = self.devices[n]
                # The device waits out the server's Retry-After, however its clock has moved.
                waiting_until = float(device._get("server_retry_at") or 0)
                self.clocks[n].offset = max(self.clocks[n].offset + 600.0, waiting_until - time.time() + 1.0)
                report = self._sync(n, force=True)
                if report is None or report.status != "ok" or report.changes or device.outbox():
                    quiet = False
            if quiet:
                return
        outboxes = {n: len(self.devices[n].outbox()) for n in range(DEVICES)}
        violated("heals", f"devices still not quiet after {HEAL_ROUNDS} rounds without faults; outboxes {outboxes}")

    def _check_healed(self):
        self.every_item_is_somewhere_and_nothing_twice()
        facts = self._server()
        tables = [self._device_tables(n) for n in range(DEVICES)]
        expected_stored = set()
        for mid, item in self.created.items():
            mine = tables[item.device]
            if mid in mine["outbox"]:
                violated("heals", f"{item.kind} {mid} is still in the outbox")
            refusal = mine["attention"].get(mid)
            if item.kind == "visit":
                if refusal is None:
                    expected_stored.add(item.visit_id)
                elif refusal["code"] != COULD_NOT_SEND:
                    violated("good_visits_are_accepted", f"visit {item.visit_id} refused: {refusal['code']}")
                elif item.visit_id in facts["stored"]:
                    # Its answers were lost three times while alone; the server has it all the same.
                    STATS["could_not_send_but_stored"] += 1
                    expected_stored.add(item.visit_id)
                else:
                    STATS["good_set_aside"] += 1
            elif item.kind == "hostile":
                if refusal is None or refusal["status"] != "rejected":
                    violated("hostile_items_are_refused", f"hostile visit {item.visit_id}: {refusal}")
            elif item.kind == "poison":
                if refusal is None or refusal["code"] != COULD_NOT_SEND:
                    violated("poison_is_set_aside", f"poison visit {item.visit_id}: {refusal}")
            elif item.kind == "site_update":
                status = facts["log"].get(mid)
                if refusal is None:
                    if status != "applied":
                        violated("edits_agree_with_the_server", f"edit {mid} acknowledged; the server log says {status}")
                elif refusal["code"] == COULD_NOT_SEND:
                    # Set aside after its answers were lost while alone; the server may well have applied it.
                    STATS["edits_set_aside"] += 1
                elif status is None and self.restores:
                    # Refused before a restore that forgot the refusal; refused items are not sent again.
                    STATS["refusals_forgotten_by_a_restore"] += 1
                elif refusal["status"] != status:
                    violated("edits_agree_with_the_server", f"edit {mid}: device {refusal['status']}, server {status}")
        if facts["stored"] != expected_stored:
            violated("server_holds_what_was_accepted",
                     f"missing {sorted(expected_stored - facts['stored'])[:3]}, "
                     f"unexpected {sorted(facts['stored'] - expected_stored)[:3]}")
        for n, device in enumerate(self.devices):
            replica = {}
            for collection in ("areas", "sites", "agreements", "forms", "actions", "my_submissions", "device"):
                for record_id, data in device.replica(collection).items():
                    replica[(collection, record_id)] = data
            view = server_view(device.device_id)
            if replica != view:
                missing = sorted(set(view) - set(replica))[:3]
                extra = sorted(set(replica) - set(view))[:3]
                stale = sorted(k for k in set(view) & set(replica) if view[k] != replica[k])[:3]
                violated("replica_matches_the_server", f"device {n}: missing {missing}, extra {extra}, stale {stale}")
            # Moderation: a phone holds its area's approved sites and the sites its own person
            # proposed that still wait, and nothing else (not another phone's proposal, nor a
            # merged or rejected site).
            person_id = db.session.get(Device, device.device_id).person_id
            expected_sites = {site.id for site in db.session.execute(select(Site).where(Site.area_id == self.area_a))
                              .scalars() if site.status == "approved"
                              or (site.status == "proposed" and site.proposed_by == person_id)}
            held_sites = {record_id for collection, record_id in replica if collection == "sites"}
            if held_sites != expected_sites:
                violated("replica_holds_the_sites_it_may_see",
                         f"device {n}: extra {sorted(held_sites - expected_sites)[:3]}, "
                         f"missing {sorted(expected_sites - held_sites)[:3]}")
            db.session.rollback()
        STATS["healed_examples"] += 1
