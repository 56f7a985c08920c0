"""The pull cursor: opaque to clients, plain data to the server.

A cursor carries the server epoch it was issued in, the last change `seq` the client
holds, and a fingerprint of the scope (areas and roles) it was computed for. Any mismatch
means the client's replica can no longer be trusted and must be rebuilt (`reset`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

from sync.protocol import MAX_CURSOR_CHARS, MAX_SAFE_INTEGER


class CursorInvalid(ValueError):
    """The cursor string is not one this server could have issued."""


@dataclass(frozen=True)
class Cursor:
    epoch: str
    seq: int
    scope: str


def scope_fingerprint(areas, roles) -> str:
    """A short stable fingerprint of what a device may see."""
    text = json.dumps([sorted(areas), sorted(roles)], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode(cursor: Cursor) -> str:
    """The opaque text of a cursor, as a client receives it."""
    raw = json.dumps({"e": cursor.epoch, "s": cursor.seq, "h": cursor.scope}, separators=(",", ":"))
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
    except (ValueError, KeyError, TypeError, IndexError, RecursionError) as exc:
        raise CursorInvalid(type(exc).__name__) from None
    if not (type(epoch) is str and type(scope) is str and type(seq) is int):
        raise CursorInvalid("wrong types")
    if not 0 <= seq <= MAX_SAFE_INTEGER:
        raise CursorInvalid("seq out of range")
    return Cursor(epoch=epoch, seq=seq, scope=scope)


def start_point(text, *, epoch: str, scope: str, kept_from: int, issued_up_to: int | None = None) -> tuple[int, bool]:
    """Where a pull starts and whether the client must reset its replica.

    `kept_from` is the lowest seq the server still keeps history from: a cursor older
    than that may have missed changes that were compacted away. `issued_up_to` is the
    highest seq the server has committed: a cursor beyond it was never issued here.
    """
    if text is None:
        return 0, False
    try:
        cursor = decode(text)
    except CursorInvalid:
        return 0, True
    if cursor.epoch != epoch or cursor.scope != scope or cursor.seq < kept_from - 1:
        return 0, True
    if issued_up_to is not None and cursor.seq > issued_up_to:
        return 0, True
    return cursor.seq, False
