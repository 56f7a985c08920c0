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

# Only these remove an item from a device's outbox; anything else is "not yet".
FINAL_STATUSES = frozenset({"applied", "duplicate", "conflict", "rejected"})
ALL_STATUSES = FINAL_STATUSES | {"deferred"}

MUTATION_TYPES = ("submission.create", "site.update", "action.update")

COLLECTIONS = ("areas", "sites", "agreements", "forms", "actions", "my_submissions", "device")

GRADES = ("A", "B", "C", "D")
KEPT_VALUES = ("kept", "partly", "not_kept", "cant_tell")
FORM_KINDS = ("street", "checklist", "mystery_shop")
LINE_TYPES = ("grade", "kept", "choice", "text", "datetime")

# How long a client keeps what it sent, to push it again when the server's epoch changes.
SENT_ARCHIVE_DAYS = 30
UNSENT_WARNING_DAYS = 3

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 300.0


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
    ceiling = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * (2 ** max(0, attempt - 1)))
    # Never below one second, so a flapping connection cannot make a device hammer the server.
    return max(BACKOFF_FIRST_S, rng.uniform(0, ceiling))
