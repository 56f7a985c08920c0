"""The pull cursor: opaque to clients, plain data to the server.

A cursor carries the server epoch it was issued in, the last change `seq` the client
holds, and a fingerprint of the scope (areas and roles) it was computed for. Any mismatch
means the client's replica can no longer be trusted and must be rebuilt (`reset`).

While a new (or reset) replica is being filled, the cursor also carries `upto`: the highest
seq when its first page was read. Until the pages reach it the device receives the current
state of its scope (each live record once, as of its latest change), then it follows the log
from `upto` like any other device.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import NamedTuple

from sync.protocol import MAX_CURSOR_CHARS, MAX_SAFE_INTEGER


class CursorInvalid(ValueError):
    """The cursor string is not one this server could have issued."""


@dataclass(frozen=True)
class Cursor:
    epoch: str
    seq: int
    scope: str
    upto: int | None = None  # set while the device is receiving the current state, not the log


class Start(NamedTuple):
    """Where a pull starts: after which seq, whether the replica must be dropped first, and
    (while a replica is being filled from the current state) the seq that state is read up to."""

    after: int
    reset: bool
    upto: int | None = None


def scope_fingerprint(areas, roles) -> str:
    """A short stable fingerprint of what a device may see."""
    text = json.dumps([sorted(areas), sorted(roles)], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode(cursor: Cursor) -> str:
    """The opaque text of a cursor, as a client receives it."""
    fields = {"e": cursor.epoch, "s": cursor.seq, "h": cursor.scope}
    if cursor.upto is not None:
        fields["u"] = cursor.upto
    raw = json.dumps(fields, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(text) -> Cursor:
    """The cursor in `text`, or CursorInvalid for anything this server could not have issued."""
    # Whatever a client sends is checked for what an issued cursor is, never coerced into it:
    # a number of 1e400 or 2**70 inside is refused here, not met later as an overflow.
    if not isinstance(text, str) or len(text) > MAX_CURSOR_CHARS:
        raise CursorInvalid("not a cursor's text")
    try:
        padded = text + "=" * (-len(text) % 4)
        raw = json.loads(base64.urlsafe_b64decode(padded.encode()))
        epoch, seq, scope = raw["e"], raw["s"], raw["h"]
        upto = raw.get("u", seq)
    except (ValueError, KeyError, TypeError, IndexError, RecursionError, AttributeError) as exc:
        raise CursorInvalid(type(exc).__name__) from None
    if not (type(epoch) is str and type(scope) is str and type(seq) is int and type(upto) is int):
        raise CursorInvalid("wrong types")
    if not 0 <= seq <= upto <= MAX_SAFE_INTEGER:
        raise CursorInvalid("seq out of range")
    return Cursor(epoch=epoch, seq=seq, scope=scope, upto=upto if "u" in raw else None)


def start_point(text, *, epoch: str, scope: str, kept_from: int, issued_up_to: int | None = None) -> Start:
    """Where a pull starts and whether the client must reset its replica.

    `kept_from` is the lowest seq the server still keeps history from: a cursor older
    than that may have missed changes that were compacted away. `issued_up_to` is the
    highest seq the server has committed: a cursor beyond it was never issued here.
    A device filling its replica from the current state follows the log from its `upto`,
    so that is the seq both are compared with.
    """
    if text is None:
        return Start(0, False)
    try:
        cursor = decode(text)
    except CursorInvalid:
        return Start(0, True)
    follows_from = cursor.seq if cursor.upto is None else cursor.upto
    if cursor.epoch != epoch or cursor.scope != scope or follows_from < kept_from - 1:
        return Start(0, True)
    if issued_up_to is not None and follows_from > issued_up_to:
        return Start(0, True)
    return Start(cursor.seq, False, cursor.upto)
