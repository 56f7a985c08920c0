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
    raw = json.dumps({"e": cursor.epoch, "s": cursor.seq, "h": cursor.scope}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(text: str) -> Cursor:
    try:
        padded = text + "=" * (-len(text) % 4)
        raw = json.loads(base64.urlsafe_b64decode(padded.encode()))
        cursor = Cursor(epoch=str(raw["e"]), seq=int(raw["s"]), scope=str(raw["h"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise CursorInvalid(str(exc)) from exc
    if cursor.seq < 0:
        raise CursorInvalid("negative seq")
    return cursor


def start_point(text: str | None, *, epoch: str, scope: str, kept_from: int) -> tuple[int, bool]:
    """Where a pull starts and whether the client must reset its replica.

    `kept_from` is the lowest seq the server still keeps history from: a cursor older
    than that may have missed changes that were compacted away.
    """
    if text is None:
        return 0, False
    try:
        cursor = decode(text)
    except CursorInvalid:
        return 0, True
    if cursor.epoch != epoch or cursor.scope != scope or cursor.seq < kept_from - 1:
        return 0, True
    return cursor.seq, False
