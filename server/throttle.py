"""Throttles that hold across every worker and host: sign-in, enrolment and each device's sync rate.

Built on the `limits` package. The counters live where every
worker sees them: in Redis when `KERBSIDE_REDIS_URL` is set, otherwise in the database
(`throttle_counter`, through `DatabaseStorage` below, since `limits` has no SQL storage).
`KERBSIDE_THROTTLE_STORAGE=memory` keeps them in each process instead, which is only right
for a single process (and is how a test shows that the shared stores matter).

What is counted is named by a hash keyed with the app's secret, never the raw email or
address, so the counters hold no personal data.

A limit is written the `limits` way, e.g. "10 per 15 minutes"; `hit` counts an attempt and
`wait` says how many seconds are left before the next one may go ahead (0: now).

Sign-in and enrolment count in fixed windows on every store. A device's sync rate
(`hit_device`) counts in a sliding window where the store can (Redis, memory: the `limits`
sliding-window counter, so a device cannot send twice its rate across a window's edge), and in
a fixed window on the database, where a count is then one upsert per request rather than a
read and a write; at worst a device gets twice its rate for one minute, which still stops a
runaway loop.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from contextlib import contextmanager

from flask import current_app, g, has_request_context, request
from limits import parse
from limits.storage import (
    MemoryStorage,
    RedisStorage,
    SlidingWindowCounterSupport,
    Storage,
)
from limits.strategies import (
    FixedWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from sqlalchemy import delete, func, select
from sqlalchemy.exc import SQLAlchemyError

from server.extensions import db
from server.models import ThrottleCounter

REDIS_PREFIX = "kerbside-throttle"
# Seconds to wait for Redis to connect, or to answer one count: a count takes a millisecond, so a
# Redis that has not answered by then is down, and the request is answered 503 long before
# gunicorn's worker timeout would end it.
REDIS_TIMEOUT_S = 2


class ThrottleStoreUnavailable(Exception):
    """The shared counters' Redis did not answer: a server-side fault, answered 503 with Retry-After."""


class DatabaseStorage(Storage):
    """A `limits` storage for fixed windows in the `throttle_counter` table.

    Each count is one upsert committed at once (PostgreSQL and SQLite both have INSERT ..
    ON CONFLICT), so two workers counting at the same moment both count, and a request that
    fails afterwards still counted. Callers count before doing the request's own writes.
    """

    STORAGE_SCHEME = ["kerbside+database"]

    @property
    def base_exceptions(self):
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        insert = _insert_for(db.engine.dialect.name)
        table = ThrottleCounter.__table__
        statement = insert(table).values(key=key, count=amount, expires_at=now + expiry)
        expired = table.c.expires_at <= now
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                # A window that is over starts again with this hit.
                "count": _case(expired, amount, table.c.count + amount),
                "expires_at": _case(expired, now + expiry, table.c.expires_at),
            },
        ).returning(table.c.count)
        # A photo's HEAD only reads, so on SQLite its transaction begins deferred; upgraded to a
        # writer here it could fail at once. So that read ends first and the count is written in
        # a transaction that begins IMMEDIATE, as audit.record_and_commit does. Any other
        # transaction (PostgreSQL's, SQLite's on a POST, which began IMMEDIATE) takes the count
        # as it is: one commit per count, not two.
        # The count changes nothing the request has loaded (its device and person), so the
        # commits leave them loaded: expiring them would cost two more queries per sync.
        session = db.session()
        expires = session.expire_on_commit
        writes = g.get("kerbside_writes") if has_request_context() else None
        session.expire_on_commit = False
        try:
            if _reading_on_sqlite():
                session.commit()
            if has_request_context():
                g.kerbside_writes = True
            count = session.execute(statement).scalar_one()
            session.commit()
        finally:
            session.expire_on_commit = expires
            if has_request_context():
                g.kerbside_writes = writes
        return count

    def get(self, key: str) -> int:
        count = db.session.execute(select(ThrottleCounter.count).where(
            ThrottleCounter.key == key, ThrottleCounter.expires_at > time.time())).scalar_one_or_none()
        return count or 0

    def get_expiry(self, key: str) -> float:
        expires = db.session.execute(select(ThrottleCounter.expires_at).where(
            ThrottleCounter.key == key)).scalar_one_or_none()
        return expires if expires is not None else time.time()

    def check(self) -> bool:
        db.session.execute(select(func.count()).select_from(ThrottleCounter))
        return True

    def reset(self) -> int | None:
        removed = db.session.execute(delete(ThrottleCounter)).rowcount
        db.session.commit()
        return removed

    def clear(self, key: str) -> None:
        db.session.execute(delete(ThrottleCounter).where(ThrottleCounter.key == key))
        db.session.commit()

    def purge_expired(self) -> int:
        """Drop windows that are over (called now and then; they are ignored anyway)."""
        return db.session.execute(delete(ThrottleCounter).where(ThrottleCounter.expires_at <= time.time())).rowcount


def _reading_on_sqlite() -> bool:
    """Whether a transaction begun now on SQLite begins deferred (server/__init__.py's on_begin rule)."""
    if db.engine.dialect.name != "sqlite":
        return False
    return has_request_context() and request.method in ("GET", "HEAD", "OPTIONS") and not g.get("kerbside_writes")


def _insert_for(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _case(condition, then, otherwise):
    from sqlalchemy import case

    return case((condition, then), else_=otherwise)


def storage() -> Storage:
    """The app's counter store, made once per app."""
    store = current_app.extensions.get("kerbside_throttle_storage")
    if store is None:
        store = current_app.extensions["kerbside_throttle_storage"] = _make_storage(current_app.config)
    return store


def _make_storage(config) -> Storage:
    kind = config.get("THROTTLE_STORAGE") or ("redis" if config.get("REDIS_URL") else "database")
    if kind == "redis":
        if not config.get("REDIS_URL"):
            raise RuntimeError("KERBSIDE_THROTTLE_STORAGE=redis needs KERBSIDE_REDIS_URL.")
        return RedisStorage(config["REDIS_URL"], key_prefix=config.get("REDIS_PREFIX") or REDIS_PREFIX,
                            socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S)
    if kind == "memory":
        return MemoryStorage()
    if kind == "database":
        return DatabaseStorage()
    raise RuntimeError(f"KERBSIDE_THROTTLE_STORAGE must be database, redis or memory, not {kind!r}.")


def _limiter() -> FixedWindowRateLimiter:
    limiter = current_app.extensions.get("kerbside_throttle")
    if limiter is None:
        limiter = current_app.extensions["kerbside_throttle"] = FixedWindowRateLimiter(storage())
    return limiter


def _device_limiter() -> RateLimiter:
    """A sliding window where the store keeps one, else a fixed one (the module's docstring says why)."""
    limiter = current_app.extensions.get("kerbside_device_throttle")
    if limiter is None:
        store = storage()
        kind = SlidingWindowCounterRateLimiter if isinstance(store, SlidingWindowCounterSupport) else FixedWindowRateLimiter
        limiter = current_app.extensions["kerbside_device_throttle"] = kind(store)
    return limiter


@contextmanager
def _reaching_store():
    """Redis down or unreachable: ThrottleStoreUnavailable (503), never a 500.

    Only Redis's own errors are turned: the database store's errors already take the database's
    way (a busy or unreachable database is 503 too, errors.handle_database_busy), and the
    memory store has none. A request is refused rather than let through uncounted, since the
    same counters guard sign-in against password guessing.
    """
    store = storage()
    if not isinstance(store, RedisStorage):
        yield
        return
    try:
        yield
    except store.base_exceptions as error:
        raise ThrottleStoreUnavailable(type(error).__qualname__) from error


def register(app):
    """Answer 503 with Retry-After, the error envelope on the API, when the counters' store is down."""
    app.register_error_handler(ThrottleStoreUnavailable, _store_unavailable)


def _store_unavailable(error: ThrottleStoreUnavailable):
    from flask import render_template

    from server import errors
    from server.auth import is_api_request

    db.session.rollback()
    # The error's type only: a connection error's text names the Redis host and may carry its URL.
    current_app.logger.warning("Throttle store (Redis) unavailable: %s", error)
    if is_api_request():
        return errors.envelope(503, "unavailable", errors.messages()[503],
                               headers={"Retry-After": errors.RETRY_AFTER_BUSY_S})
    return render_template("error.html", status=503, message=errors.messages()[503]), 503


def subject(value: str) -> str:
    """What a counter is about (an email, an address), as a keyed hash: no personal data is stored."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def _seconds_left(item, ids, limiter=None) -> int:
    reset_at = (limiter or _limiter()).get_window_stats(item, *ids).reset_time
    return max(1, math.ceil(reset_at - time.time()))


def wait(limit: str, *what: str) -> int:
    """Seconds before `what` may try again under `limit`; 0 when it may try now (nothing counted)."""
    item = parse(limit)
    ids = [subject(value) for value in what]
    with _reaching_store():
        if _limiter().test(item, *ids):
            return 0
        return _seconds_left(item, ids)


def hit(limit: str, *what: str) -> int:
    """Count one attempt by `what`; seconds to wait if that attempt went over `limit`, else 0."""
    item = parse(limit)
    ids = [subject(value) for value in what]
    with _reaching_store():
        if _limiter().hit(item, *ids):
            return 0
        return _seconds_left(item, ids)


def hit_device(per_minute: int, device_id: str) -> int:
    """Count one sync request by a device; seconds to wait if it went over `per_minute`, else 0.

    Counted before the request does anything else, so a refused request costs one count and
    no other query, and a request that fails later still counted.
    """
    item = parse(f"{per_minute} per minute")
    ids = ["device", subject(device_id)]
    limiter = _device_limiter()
    with _reaching_store():
        if limiter.hit(item, *ids):
            return 0
        return _seconds_left(item, ids, limiter)


def forget(limit: str, *what: str) -> None:
    """Start `what`'s count under `limit` again (after a successful sign-in)."""
    with _reaching_store():
        _limiter().clear(parse(limit), *[subject(value) for value in what])


def purge_expired() -> int:
    """Drop the database's windows that are over; other stores expire keys themselves."""
    store = storage()
    return store.purge_expired() if isinstance(store, DatabaseStorage) else 0


def describe_wait(seconds: int) -> str:
    """'3 minutes', '40 seconds': how long to wait, in words a person reads."""
    from flask_babel import ngettext

    if seconds < 60:
        return ngettext("%(num)d second", "%(num)d seconds", seconds)
    minutes = math.ceil(seconds / 60)
    return ngettext("%(num)d minute", "%(num)d minutes", minutes)
