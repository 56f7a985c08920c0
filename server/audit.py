"""The audit log: who did what to which record, when and from where, chained by hashes.

Every coordinator, partner and admin action and every sign-in calls `record()` in the
transaction that does the work, just before it commits, so an entry exists exactly when
the action happened. Entries name people and devices by id only: erasing a person (see
server.privacy) removes nothing here and breaks no link of the chain.

The chain: each entry holds `prev_hash` (the hash of the entry before it; 64 zeros for the
first) and `entry_hash`, the SHA-256 of its own canonical JSON with `prev_hash` in it. An
edited entry no longer matches its hash; a deleted or reordered one leaves a gap in `seq`
or a `prev_hash` that does not follow. The head row holds the last seq and hash: writers
take it with SELECT … FOR UPDATE, so on PostgreSQL concurrent writers queue there and the
chain never forks (on SQLite every writing transaction begins IMMEDIATE, which serialises
them already), and `verify()` also notices entries cut off the end.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timezone

from flask import current_app, g, has_request_context, request
from sqlalchemy import select

from server.extensions import db
from server.models import AuditEntry, AuditHead, utcnow

GENESIS = "0" * 64
# Fields covered by the hash, in the order the canonical JSON lists them (it sorts keys anyway).
HASHED_FIELDS = ("seq", "at", "action", "person_id", "device_id", "record_type", "record_id", "area_id",
                 "address", "details", "prev_hash")
_FROM_REQUEST = object()


def _moment(at: datetime) -> str:
    """A moment as the hash sees it: UTC to the microsecond, the same on every backend."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(fields: dict) -> bytes:
    """The entry as sorted, compact JSON: the bytes its hash is taken over."""
    shown = {name: fields.get(name) for name in HASHED_FIELDS}
    shown["at"] = _moment(fields["at"])
    return json.dumps(shown, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(fields: dict) -> str:
    return hashlib.sha256(canonical(fields)).hexdigest()


_SORTED_FIELDS = sorted(HASHED_FIELDS)
# The string encoder json.dumps uses with ensure_ascii=False (C when available).
_encode_text = json.encoder.encode_basestring


def _canonical_in_batch(fields: dict, encoded: dict) -> bytes:
    """`canonical(fields)`, byte for byte, built field by field (the keys in sorted order, each
    value encoded as `json.dumps` encodes it): text with JSON's own string encoder, whole numbers
    as digits, and the values a batch repeats (who, when, the details) encoded once, in
    `encoded`. Values are JSON-plain, for which `repr` tells distinct ones apart: it is only the
    cache's key, the text is always JSON's own."""
    parts = []
    for name in _SORTED_FIELDS:
        value = fields.get(name)
        if value is None:
            parts.append(f'"{name}":null')
        elif name == "at":
            text = encoded.get(("at", value))
            if text is None:
                text = encoded[("at", value)] = json.dumps({"at": _moment(value)}, separators=(",", ":"),
                                                           ensure_ascii=False)[1:-1]
            parts.append(text)
        elif type(value) is str:
            parts.append(f'"{name}":{_encode_text(value)}')
        elif type(value) is int:
            parts.append(f'"{name}":{value}')
        else:
            key = (name, repr(value))
            text = encoded.get(key)
            if text is None:
                text = encoded[key] = json.dumps({name: value}, sort_keys=True, separators=(",", ":"),
                                                 ensure_ascii=False)[1:-1]
            parts.append(text)
    return ("{" + ",".join(parts) + "}").encode()


def _plain(value):
    """`value` as JSON gives it back (dates as text), so the stored details hash as they were written."""
    return json.loads(json.dumps(value, default=_text, ensure_ascii=False))


def _text(value):
    return value.isoformat() if isinstance(value, datetime) else str(value)


def changed_fields(before: dict, after: dict) -> tuple[dict, dict]:
    """Only the fields whose values differ, before and after."""
    keys = [k for k in {**before, **after} if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


def email_key(email: str) -> str:
    """A keyed hash of a typed email: repeated attempts can be linked without keeping the address."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, b"audit-email:" + email.strip().lower().encode(), hashlib.sha256).hexdigest()[:32]


def _actor() -> tuple[str | None, str | None, str | None]:
    if not has_request_context():
        return None, None, None
    person = g.get("person")
    device = g.get("device")
    return (person.id if person is not None else None, device.id if device is not None else None,
            (request.remote_addr or None))


def record(action: str, *, record_type: str | None = None, record_id=None, area_id: str | None = None,
           before: dict | None = None, after: dict | None = None, details: dict | None = None,
           person_id=_FROM_REQUEST, device_id=_FROM_REQUEST, session=None) -> AuditEntry:
    """Add an entry in the current transaction; call it last, just before the commit.

    Who and from where come from the request (the signed-in person, the device, the client
    address), unless given; outside a request (the CLI) they are empty unless given. For an
    edit pass `before` and `after`: only the fields that changed are kept.
    """
    session = session or db.session
    who, device, address = _actor()
    body = dict(details or {})
    if before is not None or after is not None:
        body["before"], body["after"] = changed_fields(before or {}, after or {})
    head_table = AuditHead.__table__
    head = session.execute(
        select(head_table.c.seq, head_table.c.entry_hash).where(head_table.c.id == 1).with_for_update()
    ).one_or_none()
    if head is None:
        # A database made before the audit log's state row (init_state makes it).
        session.execute(head_table.insert().values(id=1, seq=0, entry_hash=GENESIS))
        seq, prev = 1, GENESIS
    else:
        seq, prev = head.seq + 1, head.entry_hash
    fields = {
        "seq": seq,
        "at": utcnow(),
        "action": action,
        "person_id": who if person_id is _FROM_REQUEST else person_id,
        "device_id": device if device_id is _FROM_REQUEST else device_id,
        "record_type": record_type,
        "record_id": None if record_id is None else str(record_id),
        "area_id": area_id,
        "address": address[:64] if address else None,
        "details": _plain(body),
        "prev_hash": prev,
    }
    fields["entry_hash"] = entry_hash(fields)
    entry = AuditEntry(**fields)
    session.add(entry)
    session.flush()
    session.execute(head_table.update().where(head_table.c.id == 1).values(seq=seq, entry_hash=fields["entry_hash"]))
    return entry


def record_many(entries: list[dict], session=None) -> None:
    """Add several entries at once (a bulk action): the head is taken and moved once, the rows go in together.

    Each of `entries` holds `record()`'s keyword arguments (action, record_type, record_id,
    area_id, before, after, details), their values already as JSON gives them back (text,
    numbers, None, lists, dicts: `record()` converts, this does not, as it would cost as much
    again as the hashing); who and from where come from the request. The chain
    is the same as from as many `record()` calls, so `verify()` reads it the same way; a
    review of 5,000 visits costs one statement per table instead of three per entry.
    """
    if not entries:
        return
    from server import bulk

    session = session or db.session
    who, device, address = _actor()
    head_table = AuditHead.__table__
    head = session.execute(
        select(head_table.c.seq, head_table.c.entry_hash).where(head_table.c.id == 1).with_for_update()
    ).one_or_none()
    if head is None:
        session.execute(head_table.insert().values(id=1, seq=0, entry_hash=GENESIS))
        seq, prev = 0, GENESIS
    else:
        seq, prev = head.seq, head.entry_hash
    at = utcnow()
    rows = []
    encoded: dict = {}
    for entry in entries:
        body = dict(entry.get("details") or {})
        if entry.get("before") is not None or entry.get("after") is not None:
            body["before"], body["after"] = changed_fields(entry.get("before") or {}, entry.get("after") or {})
        seq += 1
        record_id = entry.get("record_id")
        fields = {"seq": seq, "at": at, "action": entry["action"], "person_id": who, "device_id": device,
                  "record_type": entry.get("record_type"), "record_id": None if record_id is None else str(record_id),
                  "area_id": entry.get("area_id"), "address": address[:64] if address else None,
                  "details": body, "prev_hash": prev}
        fields["entry_hash"] = prev = hashlib.sha256(_canonical_in_batch(fields, encoded)).hexdigest()
        rows.append(fields)
    bulk.insert_rows(session, AuditEntry.__table__, rows)
    session.execute(head_table.update().where(head_table.c.id == 1).values(seq=seq, entry_hash=prev))


def record_and_commit(action: str, **kwargs) -> None:
    """Record from a page that only reads (an export): its own short write transaction.

    A GET begins its SQLite transaction deferred; one that read and then writes could fail
    at once if another writer committed meanwhile. So the read transaction ends first, and
    the entry is written in a transaction that begins IMMEDIATE (see server._tune_sqlite).
    """
    db.session.commit()
    g.kerbside_writes = True
    try:
        record(action, **kwargs)
        db.session.commit()
    finally:
        g.kerbside_writes = False


def init_head(session) -> None:
    """Create the head row if it is missing (a fresh database)."""
    if session.get(AuditHead, 1) is None:
        session.add(AuditHead(id=1, seq=0, entry_hash=GENESIS))


# -- verification --------------------------------------------------------------------------


@dataclass
class Verdict:
    entries: int
    broken_at: int | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def verify(session=None, page: int = 1000) -> Verdict:
    """Walk the chain in seq order and report the first entry that was edited, removed or moved."""
    session = session or db.session
    expected_seq, prev, count = 1, GENESIS, 0
    last_seen = 0
    table = AuditEntry.__table__
    # Plain rows, a page at a time: nothing accumulates in the session however long the log.
    columns = [table.c[name] for name in (*HASHED_FIELDS, "entry_hash")]
    while True:
        entries = session.execute(
            select(*columns).where(table.c.seq > last_seen).order_by(table.c.seq).limit(page)
        ).all()
        for entry in entries:
            if entry.seq != expected_seq:
                return Verdict(count, expected_seq, f"entry {expected_seq} is missing (deleted or renumbered)")
            if entry.prev_hash != prev:
                return Verdict(count, entry.seq, f"entry {entry.seq} does not follow entry {entry.seq - 1} "
                                                 "(an entry was removed, replaced or moved)")
            if entry_hash(dict(entry._mapping)) != entry.entry_hash:
                return Verdict(count, entry.seq, f"entry {entry.seq} was altered after it was written")
            prev, expected_seq, count = entry.entry_hash, entry.seq + 1, count + 1
        if len(entries) < page:
            break
        last_seen = entries[-1].seq
    head = session.execute(select(AuditHead.seq, AuditHead.entry_hash).where(AuditHead.id == 1)).one_or_none()
    head_seq, head_hash = (head.seq, head.entry_hash) if head is not None else (0, GENESIS)
    if (head_seq, head_hash) != (expected_seq - 1, prev):
        return Verdict(count, expected_seq, f"entries from {expected_seq} to {head_seq} are missing "
                                            "(the log was cut short)")
    return Verdict(count)
