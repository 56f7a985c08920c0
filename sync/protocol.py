"""Constants and wire-level rules shared by the server and every client."""

from __future__ import annotations

import hashlib
import json
import random

PROTOCOL_VERSION = 1
SUPPORTED_PROTOCOLS = (1,)

MAX_MUTATIONS_PER_REQUEST = 200
MAX_REQUEST_BYTES = 2 * 1024 * 1024
MAX_BLOB_BYTES = 8 * 1024 * 1024
DEFAULT_PULL_LIMIT = 500
MAX_PULL_LIMIT = 1000
# Room a client leaves in each request for the envelope around the mutations (protocol, cursor, limit).
ENVELOPE_BYTES = 4096

# Only these remove an item from a device's outbox; anything else is "not yet".
FINAL_STATUSES = frozenset({"applied", "duplicate", "conflict", "rejected"})
ALL_STATUSES = FINAL_STATUSES | {"deferred"}

# `submission.correct` is a volunteer's correction of their own flagged visit: a new visit
# that names the one it supersedes (docs/sync-protocol.md).
MUTATION_TYPES = ("submission.create", "submission.correct", "site.update", "action.update")

COLLECTIONS = ("areas", "sites", "agreements", "forms", "actions", "my_submissions", "device")

GRADES = ("A", "B", "C", "D")
KEPT_VALUES = ("kept", "partly", "not_kept", "cant_tell")
FORM_KINDS = ("street", "checklist", "mystery_shop")
LINE_TYPES = ("grade", "kept", "choice", "text", "datetime")
# Which volunteer roles fill which kind of form (coordinators and admins may fill any).
FORM_ROLES = {
    "street": ("street_rep",),
    "checklist": ("street_rep", "mystery_shopper"),
    "mystery_shop": ("mystery_shopper",),
}
STAFF_ROLES = ("coordinator", "admin")

# How long a client keeps what it sent, to push it again when the server's epoch changes.
SENT_ARCHIVE_DAYS = 30
UNSENT_WARNING_DAYS = 3

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 300.0
# A server's Retry-After (or a deferred item's retry_after_s) is honoured up to an hour. A
# wait longer than any the client could have set means the device's clock went back: the
# wait is over, rather than lasting as long as the jump.
MAX_RETRY_AFTER_S = 3600.0
MAX_WAIT_S = max(BACKOFF_MAX_S, MAX_RETRY_AFTER_S)

# -- what one item may hold (the server refuses the item alone, never the request) ----------

# Integers a client sends are kept as 64-bit on the server and as doubles in JavaScript:
# beyond 2^53 - 1 they would not survive the round trip.
MAX_SAFE_INTEGER = 2**53 - 1
# How deeply `data` may nest; a real visit is four levels deep.
MAX_DATA_DEPTH = 32
# A visit's time is the volunteer's statement, but one that cannot be true is refused:
# more than a day ahead of the server's clock, or long before its form version existed.
OBSERVED_AT_MAX_AHEAD_S = 24 * 3600
OBSERVED_AT_MAX_BEFORE_PUBLISHED_DAYS = 60
# Any date a client sends (a visit's time, a `datetime` answer) falls in these years: outside
# them it is a slip of the finger, and at the ends of the calendar it cannot even be put into UTC.
EARLIEST_YEAR = 2000
LATEST_YEAR = 2100
# A cursor the server issues is about a hundred characters; a longer one was never issued.
MAX_CURSOR_CHARS = 512

# -- a poison item never stalls a device -----------------------------------------------------

# A request that fails without an explanation (a 5xx other than 503, or no answer at all)
# halves the next batch its items go in, so a bad item ends up alone; an item that then
# fails alone the same way this many times in a row, while the server answers other
# requests, goes to "Needs attention" and the queue moves on. A 5xx is the server's own
# word; a connection cut is weak evidence (one bar of signal cuts good requests too: the
# fault campaign set good visits aside at 3, and with one request in five cut a good lone
# item is cut 6 times in a row once in 15,000), so a lone item must be cut 10 times in a row.
ALONE_FAILURES_TO_ATTENTION = 3
ALONE_CUTS_TO_ATTENTION = 10
NO_ANSWER = "no_answer"  # the way a request fails when no answer (or half of one) came back
# The attention code a client gives such an item (the server never sent it).
COULD_NOT_SEND = "could_not_send"
# A photo the server refuses with one of these moves its visit to "Needs attention" (403 is
# `photo_quota_exceeded`: sending again soon would only be refused again).
PHOTO_REFUSED_STATUSES = (400, 403, 413, 415)


# What the field app receives from this module through its build (server/pwa.py writes them
# into js/protocol.js), so the two clients never hold hand-made copies of them.
CLIENT_CONSTANTS = (
    "PROTOCOL_VERSION", "MAX_MUTATIONS_PER_REQUEST", "MAX_REQUEST_BYTES", "MAX_BLOB_BYTES", "ENVELOPE_BYTES",
    "DEFAULT_PULL_LIMIT", "FINAL_STATUSES", "MUTATION_TYPES", "GRADES", "KEPT_VALUES", "FORM_KINDS", "FORM_ROLES",
    "STAFF_ROLES", "SENT_ARCHIVE_DAYS", "UNSENT_WARNING_DAYS", "BACKOFF_FIRST_S", "BACKOFF_MAX_S",
    "MAX_RETRY_AFTER_S", "MAX_WAIT_S",
    "ALONE_FAILURES_TO_ATTENTION", "ALONE_CUTS_TO_ATTENTION", "NO_ANSWER", "COULD_NOT_SEND", "PHOTO_REFUSED_STATUSES",
)


def canonical_json(data) -> bytes:
    """The canonical bytes of a JSON value: sorted keys, no spaces, UTF-8 unescaped."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def payload_hash(data) -> str:
    """`sha256:<hex>` of the canonical JSON of a mutation's data."""
    return "sha256:" + hashlib.sha256(canonical_json(data)).hexdigest()


def is_final(status: str) -> bool:
    """Whether a push result lets the client drop the item from its outbox."""
    return status in FINAL_STATUSES


def backoff_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number `attempt` (1-based): full jitter, 1 s up to 5 min."""
    rng = rng or random
    # The doubling stops once past the cap: 2 ** 1024 no longer fits a float, and a phone
    # retrying every few minutes for days reaches a thousand attempts.
    doublings = min(max(0, attempt - 1), 30)
    ceiling = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * (2 ** doublings))
    # Never below one second, so a flapping connection cannot make a device hammer the server.
    return max(BACKOFF_FIRST_S, rng.uniform(0, ceiling))


def is_unexplained_failure(status: int | None) -> bool:
    """A failure the server gave no reason for: a 5xx other than 503, or (None) no answer at all.

    429 and 503 say "later" and are waited out; a 4xx is an answer about the request.
    """
    return status is None or (status >= 500 and status != 503)


def alone_failures_to_attention(way: str) -> int:
    """How many lone failures of one way (NO_ANSWER, or "http_<status>") in a row set an item aside."""
    return ALONE_CUTS_TO_ATTENTION if way == NO_ANSWER else ALONE_FAILURES_TO_ATTENTION


def split_size(batch_size: int) -> int:
    """The most items the next batch may hold after a batch of `batch_size` failed unexplained."""
    return max(1, batch_size // 2)
