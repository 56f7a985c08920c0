"""Prometheus metrics (prometheus-client): what the sync API did, how long it took, what devices still hold.

The metrics are counted whether or not /metrics is switched on (KERBSIDE_METRICS): counting
costs a lock and an addition, and switching the page on later then shows the whole run.
Labels are a short closed list (HTTP statuses, result statuses, mutation types, which are
checked against the protocol's names), never a device, person or area.

Under gunicorn each worker is a process with its own counters. With PROMETHEUS_MULTIPROC_DIR
set (an empty folder, wiped at each start, writable by every worker), prometheus-client
keeps them in files there and /metrics adds them up across workers; `kerbside serve` tells
it when a worker ends. The variable must be set before the server starts (it is read when
this module is first imported).
"""

from __future__ import annotations

import hmac
import math
import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import REGISTRY, multiprocess

from sync.protocol import ALL_STATUSES, MUTATION_TYPES, UNSENT_WARNING_DAYS

# Seconds: a round trip's push or pull is a few milliseconds; a busy database may take seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HOUR, DAY = 3600, 86400
# How long a device's oldest unsent item has waited: a minute is normal, the field app warns at 3 days.
UNSENT_AGE_BUCKETS = (60, 10 * 60, HOUR, 6 * HOUR, DAY, UNSENT_WARNING_DAYS * DAY, 7 * DAY, 30 * DAY)

SYNC_REQUESTS = Counter("kerbside_sync_requests", "Sync round trips (POST /api/sync/v1), by HTTP status.",
                        ["status"])
SYNC_ITEMS = Counter("kerbside_sync_items", "Pushed items, by their result's status and the mutation's type.",
                     ["status", "type"])
PUSH_SECONDS = Histogram("kerbside_sync_push_seconds", "Time spent applying one round trip's pushed items.",
                         buckets=LATENCY_BUCKETS)
PULL_SECONDS = Histogram("kerbside_sync_pull_seconds", "Time spent reading one round trip's page of changes.",
                         buckets=LATENCY_BUCKETS)
OLDEST_UNSENT = Histogram("kerbside_device_oldest_unsent_age_seconds",
                          "Age of the oldest item a device still had to send, as it reported in its sync request.",
                          buckets=UNSENT_AGE_BUCKETS)
BLOB_BYTES = Counter("kerbside_blob_bytes_stored", "Bytes of new photos put in the blob store.")
BLOBS = Counter("kerbside_blobs_stored", "New photos put in the blob store.")

# Result statuses and mutation types a label may take; anything else a device sends is "other".
RESULT_STATUSES = ALL_STATUSES
TYPES = frozenset(MUTATION_TYPES)


def _label(value, allowed: frozenset) -> str:
    return value if isinstance(value, str) and value in allowed else "other"


def sync_answered(status: int) -> None:
    SYNC_REQUESTS.labels(status=str(status)).inc()


def items_answered(mutations: list, results: list) -> None:
    """Count each pushed item by its result and its type (results come in the order of the items)."""
    for index, result in enumerate(results):
        item = mutations[index] if index < len(mutations) else None
        kind = item.get("type") if isinstance(item, dict) else None
        SYNC_ITEMS.labels(status=_label(result.get("status"), RESULT_STATUSES), type=_label(kind, TYPES)).inc()


# A report past this is a device's clock gone wrong, not a wait: it is left out.
MAX_REPORTED_AGE_S = 5 * 365 * DAY


def oldest_unsent_reported(age_s) -> None:
    """A device's `oldest_unsent_age_s` hint; anything but a plausible number of seconds is ignored."""
    if isinstance(age_s, bool) or not isinstance(age_s, (int, float)):
        return
    if math.isfinite(age_s) and 0 <= age_s <= MAX_REPORTED_AGE_S:
        OLDEST_UNSENT.observe(float(age_s))


def blob_stored(size: int) -> None:
    BLOBS.inc()
    BLOB_BYTES.inc(size)


def token_accepted(expected: str | None, authorization: str | None) -> bool:
    """No token set: anyone may read. Else `Authorization: Bearer <token>`, compared in constant time."""
    if not expected:
        return True
    sent = authorization or ""
    scheme, _, value = sent.partition(" ")
    if scheme.lower() != "bearer":
        value = ""
    return hmac.compare_digest(value.strip().encode(), expected.encode())


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus's text format: this process's, or every worker's in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def worker_ended(pid: int) -> None:
    """gunicorn's child_exit hook: drop a finished worker's live gauges (counters are kept)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)
