"""The Python reference client of sync protocol v1: an outbox, a sent archive and a replica in SQLite.

It does what the protocol asks of every client (see docs/client.md):
- a queued item is frozen (canonical JSON, its hash taken once) and leaves the outbox only
  on a final status; anything else is "not yet" and is sent again after a backoff;
- rejected and conflicting items go to a "needs attention" list, never away;
- one sync at a time; photos are uploaded before the visits that show them;
- each response's results, its page of changes and its cursor are stored in ONE SQLite
  transaction, so a crash between pages neither loses nor repeats a change;
- a new server epoch moves the last 30 days of the sent archive back to the outbox.
It is what the load and fault tests drive; it imports nothing from the server.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sync import export
from sync.protocol import (
    COULD_NOT_SEND,
    ENVELOPE_BYTES,
    MAX_MUTATIONS_PER_REQUEST,
    MAX_REQUEST_BYTES,
    MAX_RETRY_AFTER_S,
    MAX_WAIT_S,
    MUTATION_TYPES,
    NO_ANSWER,
    PHOTO_REFUSED_STATUSES,
    PROTOCOL_VERSION,
    SENT_ARCHIVE_DAYS,
    UNSENT_WARNING_DAYS,
    alone_failures_to_attention,
    backoff_delay,
    canonical_json,
    is_unexplained_failure,
    payload_hash,
    split_size,
)
from sync.transport import Response, TransportError, UrllibTransport

SYNC_PATH = "/api/sync/v1"
DAY_S = 86400.0
SHA256_HEX = frozenset("0123456789abcdef")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS outbox (
    mid TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, type TEXT NOT NULL, payload_hash TEXT NOT NULL,
    data TEXT NOT NULL, created_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL, last_error TEXT,
    failures INTEGER NOT NULL DEFAULT 0, alone_failures INTEGER NOT NULL DEFAULT 0, alone_way TEXT,
    batch_limit INTEGER);
CREATE TABLE IF NOT EXISTS sent (
    mid TEXT PRIMARY KEY, seq INTEGER NOT NULL, type TEXT NOT NULL, payload_hash TEXT NOT NULL,
    data TEXT NOT NULL, created_at REAL NOT NULL, sent_at REAL NOT NULL, result TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS sent_by_time ON sent (sent_at);
CREATE TABLE IF NOT EXISTS attention (
    mid TEXT PRIMARY KEY, seq INTEGER NOT NULL, type TEXT NOT NULL, payload_hash TEXT NOT NULL,
    data TEXT NOT NULL, created_at REAL NOT NULL, noted_at REAL NOT NULL, status TEXT NOT NULL,
    code TEXT, message TEXT, result TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (
    sha256 TEXT PRIMARY KEY, data BLOB NOT NULL, created_at REAL NOT NULL, checked_epoch TEXT);
CREATE TABLE IF NOT EXISTS replica (
    collection TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, data TEXT,
    PRIMARY KEY (collection, id));
"""

ITEM_COLUMNS = "mid, seq, type, payload_hash, data, created_at"
# Columns added after the first release, for outbox files made before them.
OUTBOX_COUNTERS = {"failures": "INTEGER NOT NULL DEFAULT 0", "alone_failures": "INTEGER NOT NULL DEFAULT 0",
                   "alone_way": "TEXT", "batch_limit": "INTEGER"}
COULD_NOT_SEND_MESSAGE = "This visit could not be sent. Export it for your coordinator."

# One sync at a time per store, even with several Client objects on one file in a process.
_sync_locks: dict[str, threading.Lock] = {}
_sync_locks_guard = threading.Lock()


class EnrolmentError(Exception):
    """The server refused an invite code (or the app must be updated first)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class SyncReport:
    """What one `sync_once` did. `status` is "ok" or why it stopped early."""

    status: str = "ok"
    code: str | None = None
    requests: int = 0
    applied: int = 0
    duplicate: int = 0
    attention: int = 0
    deferred: int = 0
    kept: int = 0
    photos_uploaded: int = 0
    changes: int = 0
    pages: int = 0
    reset: bool = False
    epoch_changed: bool = False
    repushed: int = 0
    retry_at: float | None = None
    results: list = field(default_factory=list)


@dataclass
class OutboxItem:
    mid: str
    seq: int
    type: str
    payload_hash: str
    data: str  # the frozen canonical JSON text
    created_at: float
    failures: int = 0  # requests carrying it that failed without an explanation
    batch_limit: int | None = None  # the most items its next batch may hold, after such failures

    def wire(self) -> dict:
        """The mutation as the protocol sends it."""
        return {"mid": self.mid, "seq": self.seq, "type": self.type, "payload_hash": self.payload_hash,
                "data": json.loads(self.data)}


class _Stop(Exception):
    """Ends a sync early; the report already says why."""


class _Blamed(_Stop):
    """A request failed for one item alone while the server answers others: the sync goes on without it."""


@dataclass
class _Round:
    """What one sync has learnt so far: whether the server has answered any request."""

    answered: bool = False


def wire_size(item: OutboxItem) -> int:
    """Bytes the item can take in a request body, whichever JSON encoder the transport uses."""
    # ASCII-escaped JSON is never shorter than UTF-8 JSON, so it is the safe measure.
    return len(json.dumps(item.wire(), ensure_ascii=True).encode()) + 1


def first_batch(items: list, max_items: int = MAX_MUTATIONS_PER_REQUEST,
                max_bytes: int = MAX_REQUEST_BYTES - ENVELOPE_BYTES) -> list:
    """The longest prefix of `items` within both request limits (at least one item)."""
    batch, used = [], 0
    for item in items:
        size = wire_size(item)
        if batch and (len(batch) >= max_items or used + size > max_bytes):
            break
        batch.append(item)
        used += size
    return batch


def photo_list(data) -> list:
    """Every photo hash a mutation's data refers to (`photos` lists and `photo` fields), in order."""
    found: list = []

    def walk(value, key=None):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif key in ("photos", "photo") and isinstance(value, str) and len(value) == 64 and set(value) <= SHA256_HEX:
            if value not in found:
                found.append(value)

    walk(data)
    return found


def photo_hashes(data) -> set:
    """Every photo hash a mutation's data refers to."""
    return set(photo_list(data))


def iso(moment: float | None) -> str | None:
    return None if moment is None else datetime.fromtimestamp(moment, timezone.utc).isoformat()


class Client:
    """A device: outbox, sent archive, needs-attention list, photos and replica in one SQLite file."""

    def __init__(self, path: str, server, *, clock=time.time, rng: random.Random | None = None,
                 pull_limit: int = 500):
        """`server` is a base URL or a transport callable (see sync.transport)."""
        self.path = path
        self.transport = UrllibTransport(server) if isinstance(server, str) else server
        self.clock = clock
        self.rng = rng or random.Random()
        self.pull_limit = pull_limit
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db_lock = threading.RLock()
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # the outbox must survive a power cut
        with self._transaction() as db:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            present = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
            for column, kind in OUTBOX_COUNTERS.items():
                if column not in present:
                    db.execute(f"ALTER TABLE outbox ADD COLUMN {column} {kind}")
        key = os.path.realpath(path) if path != ":memory:" else f":memory:{id(self)}"
        with _sync_locks_guard:
            self._sync_lock = _sync_locks.setdefault(key, threading.Lock())

    def close(self):
        """Close the SQLite connection."""
        self._db.close()

    # -- storage helpers ---------------------------------------------------------------

    @contextmanager
    def _transaction(self):
        with self._db_lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, params=()) -> list:
        with self._db_lock:  # one connection serves every thread; never read mid-transaction
            return self._db.execute(sql, params).fetchall()

    def _get(self, key: str, db=None):
        if db is None:
            rows = self._rows("SELECT value FROM meta WHERE key = ?", (key,))
            return rows[0][0] if rows else None
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    @staticmethod
    def _set(db, key: str, value):
        if value is None:
            db.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                       (key, str(value)))

    def _now(self, now: float | None) -> float:
        return self.clock() if now is None else now

    def _auth(self) -> dict:
        return {"Authorization": "Bearer " + (self._get("token") or "")}

    # -- what the app calls ------------------------------------------------------------

    @property
    def device_id(self) -> str | None:
        return self._get("device_id")

    @property
    def server_epoch(self) -> str | None:
        return self._get("server_epoch")

    @property
    def cursor(self) -> str | None:
        return self._get("cursor")

    @property
    def needs_enrolment(self) -> str | None:
        """The server's code (token_revoked, ...) when the device must join again, else None."""
        return self._get("needs_enrolment")

    @property
    def update_required(self) -> bool:
        """True when the server no longer speaks this app's protocol version."""
        refused = self._get("update_required")
        return refused is not None and int(refused) == PROTOCOL_VERSION

    def enrol(self, code: str, device_name: str, now: float | None = None) -> dict:
        """Join with an invite code; keeps the outbox, clears `needs_enrolment`. Returns the person."""
        now = self._now(now)
        response = self.transport("POST", SYNC_PATH + "/enrol",
                                  json={"protocol": PROTOCOL_VERSION, "code": code, "device_name": device_name},
                                  headers={})
        body = response.json or {}
        if response.status == 426:
            with self._transaction() as db:
                self._set(db, "update_required", PROTOCOL_VERSION)
        if response.status != 201:
            raise EnrolmentError(response.status, body.get("code", "enrol_failed"), body.get("message", ""))
        person = body["person"]
        with self._transaction() as db:
            if self._get("person_id", db) not in (None, person["id"]):
                # Another person's replica (their own visits, other areas) must not stay.
                db.execute("DELETE FROM replica")
                self._set(db, "cursor", None)
            self._set(db, "device_id", body["device_id"])
            self._set(db, "token", body["token"])
            self._set(db, "person_id", person["id"])
            self._set(db, "person", json.dumps(person))
            self._set(db, "areas", json.dumps(body.get("areas", [])))
            self._set(db, "needs_enrolment", None)
            self._set(db, "update_required", None)
            if body.get("server_epoch"):
                self._note_epoch(db, body["server_epoch"], now, SyncReport())
        return {"device_id": body["device_id"], "person": person, "areas": body.get("areas", [])}

    def queue(self, mutation_type: str, data: dict, now: float | None = None) -> str:
        """Freeze a mutation into the outbox in one transaction; returns its `mid`."""
        if mutation_type not in MUTATION_TYPES:
            raise ValueError(f"unknown mutation type {mutation_type!r}")
        text = canonical_json(data).decode("utf-8")
        digest = payload_hash(json.loads(text))
        mid = str(uuid.uuid4())
        with self._transaction() as db:
            seq = int(self._get("next_seq", db) or 1)
            self._set(db, "next_seq", seq + 1)
            db.execute(
                "INSERT INTO outbox (mid, seq, type, payload_hash, data, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (mid, seq, mutation_type, digest, text, self._now(now)),
            )
        return mid

    def queue_submission(self, data: dict, now: float | None = None) -> str:
        """Queue a visit (`submission.create`); gives it an `id` when it has none."""
        if not data.get("id"):
            data = {**data, "id": str(uuid.uuid4())}
        return self.queue("submission.create", data, now)

    def needs_correcting(self) -> list[dict]:
        """The person's visits a coordinator flagged and no correction has superseded yet (from `my_submissions`)."""
        mine = self.replica("my_submissions").values()
        return [visit for visit in mine if visit.get("review_status") == "flagged" and not visit.get("superseded_by")]

    def queue_correction(self, flagged_id: str, data: dict, now: float | None = None) -> str:
        """Queue a correction of the flagged visit `flagged_id` (`submission.correct`): a whole new visit
        naming the one it supersedes; gives it an `id` when it has none."""
        data = {**data, "id": data.get("id") or str(uuid.uuid4()), "supersedes": flagged_id}
        return self.queue("submission.correct", data, now)

    def add_blob(self, content: bytes, now: float | None = None) -> str:
        """Keep a photo's bytes until the server has them; returns its sha256 (hex)."""
        digest = hashlib.sha256(content).hexdigest()
        with self._transaction() as db:
            db.execute("INSERT INTO blobs (sha256, data, created_at) VALUES (?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
                       (digest, content, self._now(now)))
        return digest

    def outbox(self) -> list[dict]:
        """Unsent items, oldest first, with their retry state."""
        rows = self._rows("SELECT * FROM outbox ORDER BY seq")
        return [dict(row) | {"data": json.loads(row["data"])} for row in rows]

    def sent(self) -> list[dict]:
        """The sent archive (kept 30 days to push again after a server restore)."""
        rows = self._rows("SELECT * FROM sent ORDER BY seq")
        return [dict(row) | {"data": json.loads(row["data"]), "result": json.loads(row["result"])} for row in rows]

    def attention(self) -> list[dict]:
        """Items the server refused or found in conflict, with its message."""
        rows = self._rows("SELECT * FROM attention ORDER BY seq")
        return [dict(row) | {"data": json.loads(row["data"]), "result": json.loads(row["result"])} for row in rows]

    def send_again(self, mid: str, now: float | None = None) -> bool:
        """Put an item the device gave up sending (could_not_send) back in the outbox, its counts afresh."""
        with self._transaction() as db:
            row = db.execute("SELECT code FROM attention WHERE mid = ?", (mid,)).fetchone()
            if row is None or row[0] != COULD_NOT_SEND:
                return False  # the server's own refusals are not sent again: it would refuse them again
            # B608 (bandit) is answered: the columns and tables are constants of this module; every value is a bound parameter.
            db.execute(f"INSERT INTO outbox ({ITEM_COLUMNS}) SELECT {ITEM_COLUMNS} FROM attention WHERE mid = ?", (mid,))  # nosec B608
            db.execute("DELETE FROM attention WHERE mid = ?", (mid,))
        return True

    def replica(self, collection: str) -> dict:
        """The replica's records of one collection, by id."""
        rows = self._rows("SELECT id, data FROM replica WHERE collection = ?", (collection,))
        return {row["id"]: json.loads(row["data"]) for row in rows}

    def status(self, now: float | None = None) -> dict:
        """What the app shows: unsent count, age of the oldest, last sync, attention, warnings."""
        now = self._now(now)
        ((unsent, oldest, next_attempt),) = self._rows("SELECT count(*), min(created_at), min(next_attempt_at) FROM outbox")
        ((attention,),) = self._rows("SELECT count(*) FROM attention")
        last_sync = self._get("last_sync_at")
        oldest_age = None if oldest is None else max(0.0, now - oldest)
        return {
            "unsent": unsent,
            "oldest_unsent_age_s": oldest_age,
            "last_sync_at": iso(float(last_sync)) if last_sync else None,
            "attention": attention,
            "warning": oldest_age is not None and oldest_age > UNSENT_WARNING_DAYS * DAY_S,
            "needs_enrolment": self.needs_enrolment,
            "update_required": self.update_required,
            "next_attempt_at": iso(next_attempt),
        }

    def export_unsent(self, now: float | None = None) -> dict:
        """Everything not yet safely on the server, as an "Export unsent" file (sync/export_format.schema.json).

        The outbox and the needs-attention items with the photos they show; the token is
        never part of it. This client keeps no drafts, so `drafts` is empty.
        """
        person = json.loads(self._get("person") or "{}")

        def wire(item):
            return {key: item[key] for key in export.MUTATION_FIELDS}

        def ms(moment):  # the file's device times are milliseconds, as JavaScript keeps them
            return int(round(moment * 1000))

        outbox = [{**wire(item), "queued_at": ms(item["created_at"])} for item in self.outbox()]
        attention = [{"mutation": wire(item), "result": item["result"], "noted_at": ms(item["noted_at"])}
                     for item in self.attention()]
        wanted = set().union(*(photo_hashes(entry["data"]) for entry in outbox),
                             *(photo_hashes(entry["mutation"]["data"]) for entry in attention))
        photos = {}
        for sha256 in sorted(wanted):
            rows = self._rows("SELECT data FROM blobs WHERE sha256 = ?", (sha256,))
            if rows:
                photos[sha256] = export.photo_entry(bytes(rows[0]["data"]))
        return export.new_export(
            exported_at=iso(self._now(now)),
            device_id=self.device_id,
            person={"id": self._get("person_id"), "display_name": person.get("display_name", "")},
            outbox=outbox,
            attention=attention,
            drafts=[],
            photos=photos,
        )

    # -- the sync ----------------------------------------------------------------------

    def sync_once(self, now: float | None = None, *, force: bool = False) -> SyncReport:
        """Upload photos, push the due outbox and pull every page; one sync at a time.

        A call made while another sync runs returns at once with status "busy" (the
        running one will send everything that is due). `force` sends items still waiting
        out their backoff, as on reconnect or app start; a server's Retry-After still holds.
        """
        if not self._sync_lock.acquire(blocking=False):
            return SyncReport(status="busy")
        try:
            report = SyncReport()
            try:
                self._sync(self._now(now), force, report)
            except _Stop:
                pass
            return report
        finally:
            self._sync_lock.release()

    def _sync(self, now: float, force: bool, report: SyncReport):
        if not self._get("token"):
            report.status = "not_enrolled"
            return
        if self.needs_enrolment:
            report.status, report.code = "needs_enrolment", self.needs_enrolment
            return
        retry_at = float(self._get("server_retry_at") or 0)
        if now < retry_at <= now + MAX_RETRY_AFTER_S:  # a longer wait means the clock went back
            report.status, report.retry_at = "waiting", retry_at
            return
        round_ = _Round()
        if self.update_required:
            # The server refused this app's protocol: ask again with nothing pushed, and send
            # as soon as it accepts the app (a 426 again ends the sync, keeping everything).
            body = self._good_body(self._post_sync([], now, report, round_), [], now, report, round_)
            with self._transaction() as db:
                self._set(db, "update_required", None)
            self._store_response([], body, now, report)
        attempted: set[str] = set()
        max_items = MAX_MUTATIONS_PER_REQUEST
        has_more = True  # every sync pulls at least once
        while True:
            due = [item for item in self._due(now, force) if item.mid not in attempted]
            if not due and not has_more:
                break
            limit = due[0].batch_limit if due and due[0].batch_limit else max_items
            batch = first_batch(due, max_items=min(max_items, limit))
            if len(batch) == 1 and batch[0].failures and not round_.answered:
                # Before a lone item that failed before is blamed again, the server must be
                # seen answering a request without it (a pull), or nobody is blamed.
                probe = self._post_sync([], now, report, round_, on_behalf=batch)
                body = self._good_body(probe, batch, now, report, round_, blame=False)
                has_more = self._store_response([], body, now, report)
                continue
            attempted |= {item.mid for item in batch}
            try:
                batch = self._upload_photos(batch, now, report, round_)
                alone = len(batch) == 1 and round_.answered
                response = self._post_sync(batch, now, report, round_, alone=alone)
                if response.status == 413 and len(batch) > 1:
                    # The server's limits are smaller than ours: send the same items in halves.
                    max_items = max(1, len(batch) // 2)
                    attempted -= {item.mid for item in batch}
                    continue
                if response.status == 413:
                    self._to_attention_for_request(batch, response, now, report)
                    continue
                body = self._good_body(response, batch, now, report, round_, alone=alone)
            except _Blamed:
                # Kept (or moved to attention) with the failure counted; the others go on.
                report.status, report.code = "ok", None
                continue
            has_more = self._store_response(batch, body, now, report)
        with self._transaction() as db:
            self._prune(db, now)

    def _due(self, now: float, force: bool) -> list[OutboxItem]:
        columns = f"{ITEM_COLUMNS}, failures, batch_limit"
        if force:
            # B608 (bandit) is answered: the columns and tables are constants of this module; every value is a bound parameter.
            rows = self._rows(f"SELECT {columns} FROM outbox ORDER BY seq")  # nosec B608
        else:
            rows = self._rows(
                # B608 (bandit) is answered: the columns and tables are constants of this module; every value is a bound parameter.
                f"SELECT {columns} FROM outbox WHERE next_attempt_at IS NULL OR next_attempt_at <= ? "  # nosec B608
                "OR next_attempt_at > ? ORDER BY seq",
                (now, now + MAX_WAIT_S),  # a wait longer than any we set means the clock went back
            )
        return [OutboxItem(**dict(row)) for row in rows]

    def _request(self, method: str, path: str, items: list, now: float, report: SyncReport, round_: _Round,
                 *, alone: bool = False, blame: bool = True, **kwargs) -> Response:
        """One request on behalf of `items`; no answer at all counts against them and ends the sync."""
        report.requests += 1
        try:
            response = self.transport(method, path, headers=self._auth(), **kwargs)
        except TransportError as error:
            blamed = blame and alone and not error.timed_out
            with self._transaction() as db:
                # A timeout is a slow link, not evidence against an item: it only splits the batch.
                self._fail(db, items, now, report, "timeout" if error.timed_out else "network_error", None,
                           split=blame, alone=NO_ANSWER if blamed else None)
            report.status = "offline"
            report.kept += len(items)
            raise (_Blamed if blamed else _Stop) from None
        if response.status < 500:
            round_.answered = True
        return response

    def _upload_photos(self, batch: list, now: float, report: SyncReport, round_: _Round) -> list:
        """Photos go first (HEAD, then PUT when missing); items with a refused photo need attention."""
        epoch = self.server_epoch
        refused: dict[str, Response] = {}
        # In the order the visits show them, so every client asks in the same order.
        wanted = dict.fromkeys(sha for item in batch for sha in photo_list(json.loads(item.data)))
        for sha256 in wanted:
            rows = self._rows("SELECT data, checked_epoch FROM blobs WHERE sha256 = ?", (sha256,))
            row = rows[0] if rows else None
            if row is None or (epoch is not None and row["checked_epoch"] == epoch):
                continue  # not on this device (the server will say so), or known to be there
            # A photo request is about the visits that show it, and about no others.
            showing = [item for item in batch if sha256 in photo_hashes(json.loads(item.data))]
            path = f"{SYNC_PATH}/blobs/{sha256}"
            try:
                response = self._request("HEAD", path, showing, now, report, round_, alone=round_.answered)
                if response.status == 404:
                    response = self._request("PUT", path, showing, now, report, round_, alone=round_.answered,
                                             body=bytes(row["data"]))
                    if response.status in (200, 201):
                        report.photos_uploaded += 1
                if response.status in PHOTO_REFUSED_STATUSES:
                    refused[sha256] = response
                    continue
                if response.status not in (200, 201):
                    self._stop_on_failure(response, showing, now, report, alone=round_.answered)
            except _Blamed:
                failed = {item.mid for item in showing}
                batch = [item for item in batch if item.mid not in failed]
                report.status, report.code = "ok", None
                continue
            with self._transaction() as db:
                db.execute("UPDATE blobs SET checked_epoch = ? WHERE sha256 = ?", (epoch, sha256))
        if not refused:
            return batch
        keep = []
        for item in batch:
            bad = photo_hashes(json.loads(item.data)) & set(refused)
            if bad:
                self._to_attention_for_request([item], refused[min(bad)], now, report)
            else:
                keep.append(item)
        return keep

    def _post_sync(self, batch: list, now: float, report: SyncReport, round_: _Round, *, alone: bool = False,
                   on_behalf: list | None = None) -> Response:
        """POST the batch with the pull cursor; `on_behalf` (a probe) is backed off, never blamed, if no answer comes."""
        ((oldest,),) = self._rows("SELECT min(created_at) FROM outbox")
        # How long the oldest unsent item has waited, for the server's metrics (docs/sync-protocol.md).
        body = {"protocol": PROTOCOL_VERSION, "cursor": self.cursor, "limit": self.pull_limit,
                "mutations": [item.wire() for item in batch],
                "oldest_unsent_age_s": None if oldest is None else round(max(0.0, now - oldest), 3)}
        return self._request("POST", SYNC_PATH, batch if on_behalf is None else on_behalf, now, report, round_,
                             alone=alone, blame=on_behalf is None, json=body)

    def _good_body(self, response: Response, batch: list, now: float, report: SyncReport, round_: _Round,
                   *, alone: bool = False, blame: bool = True) -> dict:
        """The body of a good sync answer; anything else ends the sync (see _stop_on_failure)."""
        if response.status == 200 and isinstance(response.json, dict) and "cursor" in response.json:
            return response.json
        self._stop_on_failure(response, batch, now, report, alone=alone, blame=blame)

    def _stop_on_failure(self, response: Response, batch: list, now: float, report: SyncReport,
                         *, alone: bool = False, blame: bool = True):
        """Any answer but a good one: keep every item, note why, and end this sync.

        A failure the server gave no reason for counts against the items it carried (the
        next batch is split; a lone item may go to attention); `blame=False` (a probe sent
        on an item's behalf) only backs it off.
        """
        body = response.json if isinstance(response.json, dict) else {}
        code = body.get("code") or f"http_{response.status}"
        retry_after = response.retry_after()
        if retry_after is not None:
            retry_after = min(retry_after, MAX_RETRY_AFTER_S)
        # A 2xx whose body is not a sync answer was cut on its way: as good as no answer.
        unexplained = blame and is_unexplained_failure(None if response.status < 300 else response.status)
        blamed = unexplained and alone
        with self._transaction() as db:
            if body.get("server_epoch"):
                self._note_epoch(db, body["server_epoch"], now, report)
            if response.status == 401:
                # Nothing is dropped: the items wait for the device to join again. A HEAD
                # answer has no body to say why, hence the generic code.
                refusal = body.get("code") or "token_rejected"
                self._set(db, "needs_enrolment", refusal)
                report.status, report.code = "needs_enrolment", refusal
            elif response.status == 426:
                self._set(db, "update_required", PROTOCOL_VERSION)
                report.status, report.code = "update_required", code
            else:
                if retry_after is not None:
                    self._set(db, "server_retry_at", now + retry_after)
                    report.retry_at = now + retry_after
                way = NO_ANSWER if response.status < 300 else f"http_{response.status}"
                self._fail(db, batch, now, report, code, retry_after, split=unexplained, alone=way if blamed else None)
                report.status, report.code = "server_busy" if response.status in (429, 503) else "failed", code
        report.kept += len(batch)
        raise _Blamed if blamed else _Stop

    def _fail(self, db, items: list, now: float, report: SyncReport, code: str, retry_after: float | None,
              *, split: bool = False, alone: str | None = None):
        """Back the items off; `split` counts a failure (halving their next batch), `alone` (the way
        it failed) an alone failure, which sets an item aside once it has failed so often enough times in a row."""
        for item in items:
            row = db.execute("SELECT attempts, failures, alone_failures, alone_way, batch_limit FROM outbox WHERE mid = ?",
                             (item.mid,)).fetchone()
            if row is None:
                continue
            tries, failures, alone_failures, alone_way = row[0] + 1, row[1] + int(split), row[2], row[3]
            if alone:
                # Only failures of one way count together: a different one starts the count again.
                alone_failures, alone_way = (alone_failures + 1 if alone_way == alone else 1), alone
                if alone_failures >= alone_failures_to_attention(alone):
                    self._move_to_attention(db, item, {"status": "failed", "code": COULD_NOT_SEND,
                                                       "message": COULD_NOT_SEND_MESSAGE, "last_error": code}, now)
                    report.attention += 1
                    continue
            batch_limit = split_size(len(items)) if split else row[4]
            delay = retry_after if retry_after is not None else backoff_delay(tries, self.rng)
            db.execute("UPDATE outbox SET attempts = ?, failures = ?, alone_failures = ?, alone_way = ?, batch_limit = ?, "
                       "next_attempt_at = ?, last_error = ? WHERE mid = ?",
                       (tries, failures, alone_failures, alone_way, batch_limit, now + delay, code, item.mid))

    def _to_attention_for_request(self, batch: list, response: Response, now: float, report: SyncReport):
        body = response.json if isinstance(response.json, dict) else {}
        result = {"status": "rejected", "code": body.get("code") or f"http_{response.status}",
                  "message": body.get("message") or "", "errors": body.get("errors") or {}}
        with self._transaction() as db:
            for item in batch:
                self._move_to_attention(db, item, result, now)
                report.attention += 1

    def _store_response(self, batch: list, body: dict, now: float, report: SyncReport) -> bool:
        """Results, the page of changes and the new cursor: one SQLite transaction."""
        report.pages += 1
        results = {r.get("mid"): r for r in body.get("results") or [] if isinstance(r, dict)}
        with self._transaction() as db:
            if body.get("server_epoch"):
                self._note_epoch(db, body["server_epoch"], now, report)
            for item in batch:
                self._apply_result(db, item, results.get(item.mid), now, report)
            if body.get("reset"):
                db.execute("DELETE FROM replica")
                report.reset = True
            for change in body.get("changes") or []:
                self._apply_change(db, change)
                report.changes += 1
            self._set(db, "cursor", body["cursor"])
            self._set(db, "last_sync_at", now)
            self._set(db, "server_retry_at", None)
        return bool(body.get("has_more"))

    def _apply_change(self, db, change: dict):
        if change["op"] == "delete":
            db.execute("DELETE FROM replica WHERE collection = ? AND id = ?", (change["collection"], change["id"]))
        else:
            db.execute(
                "INSERT INTO replica (collection, id, seq, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (collection, id) DO UPDATE SET seq = excluded.seq, data = excluded.data",
                (change["collection"], change["id"], change["seq"], json.dumps(change.get("data"))),
            )

    def _apply_result(self, db, item: OutboxItem, result: dict | None, now: float, report: SyncReport):
        status = (result or {}).get("status")
        report.results.append(result)
        if status in ("applied", "duplicate"):
            first = result.get("first") or {}
            if status == "duplicate" and first.get("status") in ("rejected", "conflict"):
                # The first answer was a refusal that this device never heard: show it now.
                self._move_to_attention(db, item, {**first, "mid": item.mid}, now)
                report.attention += 1
                return
            # B608 (bandit) is answered: the columns and tables are constants of this module; every value is a bound parameter.
            db.execute(f"INSERT INTO sent ({ITEM_COLUMNS}, sent_at, result) "  # nosec B608
                       f"SELECT {ITEM_COLUMNS}, ?, ? FROM outbox WHERE mid = ?",
                       (now, json.dumps(result), item.mid))
            db.execute("DELETE FROM outbox WHERE mid = ?", (item.mid,))
            setattr(report, status, getattr(report, status) + 1)
        elif status in ("rejected", "conflict"):
            self._move_to_attention(db, item, result, now)
            report.attention += 1
        elif status == "deferred":
            for sha256 in result.get("missing") or ():
                db.execute("UPDATE blobs SET checked_epoch = NULL WHERE sha256 = ?", (sha256,))
            retry_after = result.get("retry_after_s")
            self._fail(db, [item], now, report, result.get("code") or "deferred",
                       min(float(retry_after), MAX_RETRY_AFTER_S) if isinstance(retry_after, (int, float))
                       and not isinstance(retry_after, bool) else None)
            report.deferred += 1
        else:
            # No answer for this item, or one this client does not know: not final, so keep it.
            self._fail(db, [item], now, report, "no_result", None)
            report.kept += 1

    def _move_to_attention(self, db, item: OutboxItem, result: dict, now: float):
        db.execute(
            # B608 (bandit) is answered: the columns and tables are constants of this module; every value is a bound parameter.
            f"INSERT INTO attention ({ITEM_COLUMNS}, noted_at, status, code, message, result) "  # nosec B608
            f"SELECT {ITEM_COLUMNS}, ?, ?, ?, ?, ? FROM outbox WHERE mid = ? "
            "ON CONFLICT (mid) DO NOTHING",
            (now, result.get("status", "rejected"), result.get("code"), result.get("message"),
             json.dumps(result), item.mid),
        )
        db.execute("DELETE FROM outbox WHERE mid = ?", (item.mid,))

    def _note_epoch(self, db, epoch: str, now: float, report: SyncReport):
        """A new server epoch: push again everything sent in the last 30 days (same mid, same hash)."""
        stored = self._get("server_epoch", db)
        if stored == epoch:
            return
        if stored is not None:
            since = now - SENT_ARCHIVE_DAYS * DAY_S
            moved = db.execute(
                # B608 (bandit) is answered: the columns and tables are constants of this module; every value is a bound parameter.
                f"INSERT INTO outbox ({ITEM_COLUMNS}) SELECT {ITEM_COLUMNS} FROM sent WHERE sent_at >= ? "  # nosec B608
                "ON CONFLICT DO NOTHING", (since,),
            ).rowcount
            db.execute("DELETE FROM sent WHERE sent_at >= ?", (since,))
            report.epoch_changed = True
            report.repushed += moved
        self._set(db, "server_epoch", epoch)

    def _prune(self, db, now: float):
        """Forget archive items past 30 days, and old photos nothing refers to any more."""
        horizon = now - SENT_ARCHIVE_DAYS * DAY_S
        db.execute("DELETE FROM sent WHERE sent_at < ?", (horizon,))
        wanted = set()
        for table in ("outbox", "sent", "attention"):
            # B608 (bandit) is answered: the columns and tables are constants of this module; every value is a bound parameter.
            for (text,) in db.execute(f"SELECT data FROM {table}"):  # nosec B608
                wanted |= photo_hashes(json.loads(text))
        # A recent photo may belong to a draft that is not queued yet, so only old ones go.
        for (sha256,) in db.execute("SELECT sha256 FROM blobs WHERE created_at < ?", (horizon,)).fetchall():
            if sha256 not in wanted:
                db.execute("DELETE FROM blobs WHERE sha256 = ?", (sha256,))
