"""Overload protection for the sync API, per worker process.

Each gunicorn worker keeps its own counters: the limits are approximate across workers,
which is enough to stop a runaway device loop or a thundering herd after an outage.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

from flask import current_app, request


class RateLimiter:
    """At most `per_minute` requests per key in any sliding minute."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._hits: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def retry_after(self, key: str, now: float | None = None) -> int:
        """0 when the request may go ahead (and is counted), else seconds to wait."""
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits[key]
            while hits and now - hits[0] >= 60:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return max(1, int(60 - (now - hits[0])) + 1)
            hits.append(now)
            return 0


class ConcurrencyGate:
    """Refuse work beyond `limit` requests at once instead of queueing it behind a busy database."""

    def __init__(self, limit: int):
        self._slots = threading.BoundedSemaphore(limit)

    def enter(self) -> bool:
        return self._slots.acquire(blocking=False)

    def leave(self):
        self._slots.release()


def body_limit(max_bytes: int):
    """Let one route take larger request bodies than the app's MAX_CONTENT_LENGTH."""

    def mark(view):
        view.kerbside_max_bytes = max_bytes
        return view

    return mark


def apply_body_limit():
    """before_request, ahead of anything that reads the body (the CSRF check reads the form)."""
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    max_bytes = getattr(view, "kerbside_max_bytes", None)
    if max_bytes:
        request.max_content_length = max_bytes
