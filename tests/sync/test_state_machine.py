"""The sync state machine (tests/sync/sync_machine.py) against the real app, and its negative controls.

The short profile runs here on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set;
bench/state_machine.py runs the long one. Each negative control is a deliberately broken
variant, defined in this file only, that the machine's checks must catch:

(a) a server whose mutation log has no unique key on `mid` and claims items without it —
    inserting blindly (a replay applies twice), or checking and then inserting (two
    concurrent pushes both pass the check; PostgreSQL only, SQLite serialises writers);
(b) a client that drops an item on any HTTP answer, 500 and 503 included (Workbox's bug);
(c) a client that saves the cursor before its page, so a power cut between them loses changes.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from sqlalchemy import insert, select, text

from bench.faults import DropsOnAnyAnswer  # the broken client the fault campaign runs too
from server import push as push_module
from server.extensions import db
from server.models import MutationLog, Site, utcnow
from sync.client import Client
from tests.conftest import is_postgres
from tests.sync.sync_machine import InvariantViolation, SyncMachine

# Short enough for CI on either database (about a minute); bench/state_machine.py goes long.
CI_EXAMPLES = 12
CI_STEPS = 30


@pytest.fixture
def machine_app(app):
    """The test app with the per-device rate limit out of the way (a machine syncs fast)."""
    app.config["SYNC_RATE_PER_MINUTE"] = 10**6
    db.session.commit()
    return app


def machine_settings(examples: int, steps: int) -> settings:
    """Hypothesis settings for a stateful run: no deadline (a sync is real work), no example database."""
    return settings(max_examples=examples, stateful_step_count=steps, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def test_client_and_server_keep_every_item_exactly_once_under_faults(machine_app):
    run_state_machine_as_test(lambda: SyncMachine(machine_app), settings=machine_settings(CI_EXAMPLES, CI_STEPS))


# -- running a scenario with the machine's own rules and checks ---------------------------------------


def run_scenario(machine: SyncMachine, steps: list[tuple[str, dict]]):
    """Set up, run the named rules in order with every invariant after each, then heal and check."""
    try:
        machine.set_up()
        machine.every_item_is_somewhere_and_nothing_twice()
        for name, arguments in steps:
            getattr(machine, name)(**arguments)
            machine.every_item_is_somewhere_and_nothing_twice()
    finally:
        machine.teardown()


LOST_ANSWER_THEN_RETRY = [
    ("edit_site", {"n": 0, "pick": 0, "field": "notes"}),
    ("create_visit", {"n": 0, "pick": 1, "photo": False}),
    ("lose_next_answer", {"n": 0}),
    ("push", {"n": 0, "force": False}),
    ("push", {"n": 0, "force": True}),
]


def test_scenario_lost_answer_then_retry_passes_on_the_real_code(machine_app):
    run_scenario(SyncMachine(machine_app), LOST_ANSWER_THEN_RETRY)


# A site proposed on phone 0 while phone 1 syncs, then decided each way; edits held and decided.
MODERATION = {
    decision: [
        ("propose_site", {"n": 0, "pick": 1}),
        ("push", {"n": 0, "force": True}),
        ("push", {"n": 1, "force": True}),
        ("create_visit", {"n": 0, "pick": 3, "photo": False}),
        ("edit_site", {"n": 1, "pick": 0, "field": "notes"}),
        ("push", {"n": 0, "force": True}),
        ("push", {"n": 1, "force": True}),
        ("moderate_site", {"pick": 0, "decision": decision}),
        ("moderate_site_edit", {"pick": 0, "accept": decision in ("approve", "merge")}),
        ("push", {"n": 1, "force": False}),
        ("push", {"n": 0, "force": False}),
    ]
    for decision in ("approve", "rename", "merge", "reject")
}


@pytest.mark.parametrize("decision", sorted(MODERATION))
def test_scenario_site_moderation_keeps_replicas_equal_to_the_server(machine_app, decision):
    machine = SyncMachine(machine_app)
    run_scenario(machine, MODERATION[decision])
    assert db.session.execute(select(Site).where(Site.status == "proposed")).first() is None


def test_negative_control_proposed_site_sent_to_the_whole_area_is_caught(machine_app, monkeypatch):
    """Before moderation a proposed site went to every phone: the machine's check catches it."""
    from server import push

    real = push.NewVisit.changes

    def to_the_area(self):
        pending = real(self)
        for change in pending:
            if change.collection == "sites":
                change.area_id, change.person_id = self.site["area_id"], None
        return pending

    monkeypatch.setattr(push.NewVisit, "changes", to_the_area)
    with pytest.raises(InvariantViolation, match="replica_holds_the_sites_it_may_see"):
        run_scenario(SyncMachine(machine_app), MODERATION["approve"][:3])


# -- (a) no unique key on mid --------------------------------------------------------------------------


def _log_rows(ctx, items) -> list[dict]:
    now = utcnow()
    return [{
        "mid": item.mid, "device_id": ctx.device.id, "seq": item.seq if item.seq is not None else -1,
        "type": item.type or "unknown", "payload_hash": item.hash or "",
        "status": (item.result or {}).get("status", "rejected"), "change_seq": None,
        "result": {k: v for k, v in (item.result or {}).items() if k not in ("mid", "status")},
        "data": item.data if (item.result or {}).get("status") != "applied" else None, "received_at": now,
    } for item in items]


def claim_blindly(ctx, items) -> set:
    """BROKEN: every log row is inserted as it comes and every item counts as new."""
    if not items:
        return set()
    db.session.execute(insert(MutationLog.__table__), _log_rows(ctx, items))
    return {item.mid for item in items}


@contextmanager
def mutation_log_without_unique_key():
    """BROKEN: the mutation log loses its primary key on `mid` for the length of a test."""
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        key = db.session.execute(text("SELECT conname FROM pg_constraint WHERE conrelid = 'mutation_log'::regclass "
                                      "AND contype = 'p'")).scalar_one()
        db.session.execute(text(f'ALTER TABLE mutation_log DROP CONSTRAINT "{key}"'))
        db.session.commit()
        try:
            yield
        finally:
            db.session.rollback()
            db.session.execute(text("DELETE FROM mutation_log"))
            db.session.execute(text(f'ALTER TABLE mutation_log ADD CONSTRAINT "{key}" PRIMARY KEY (mid)'))
            db.session.commit()
    else:  # SQLite cannot drop a key: the table is made again without it (the file is the test's own)
        db.session.execute(text("ALTER TABLE mutation_log RENAME TO mutation_log_keyed"))
        db.session.execute(text("CREATE TABLE mutation_log AS SELECT * FROM mutation_log_keyed WHERE 0"))
        db.session.execute(text("DROP TABLE mutation_log_keyed"))
        db.session.commit()
        yield


def test_negative_control_blind_claim_without_unique_key_is_caught_as_two_rows_for_one_mid(machine_app, monkeypatch):
    monkeypatch.setattr(push_module, "_claim", claim_blindly)
    with mutation_log_without_unique_key(), pytest.raises(InvariantViolation) as caught:
        run_scenario(SyncMachine(machine_app), LOST_ANSWER_THEN_RETRY)
    assert caught.value.check == "one_row_per_mid"


def claim_check_then_insert(barrier: threading.Barrier):
    """BROKEN: look for the mids first, then insert the others; `barrier` lines two pushes up between."""

    def claim(ctx, items) -> set:
        if not items:
            return set()
        known = set(db.session.execute(select(MutationLog.mid).where(MutationLog.mid.in_([i.mid for i in items])))
                    .scalars())
        barrier.wait()
        new = [item for item in items if item.mid not in known]
        if new:
            db.session.execute(insert(MutationLog.__table__), _log_rows(ctx, new))
        return {item.mid for item in new}

    return claim


def deliver_at_once(app, request: tuple, senders: list[dict]):
    """The same sync request sent at the same moment once per sender (its Authorization headers)."""
    method, path, json_body, _body, _headers = request
    errors = []

    def one(headers):
        try:
            with app.app_context():
                app.test_client().open(path, method=method, json=json_body, headers=headers)
        except Exception as exc:  # reported below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(headers,)) for headers in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors


def _concurrent_retry_scenario(machine: SyncMachine, app):
    """One item sent by two phones at the same moment (its export imported on a second phone).

    Two pushes from one phone never race: each updates the phone's row (its last sync) and so
    waits for the other. A refused item has no effect to collide on either (a visit's own key,
    or the lock on an edited site, would stop the second push): its log row alone records it.
    """
    machine.set_up()
    machine.create_hostile_item(n=0, pick=0, how="bad_grade")
    machine.hold_next_request(n=0)
    machine.push(n=0, force=False)
    (request,) = machine.networks[0].held
    machine.networks[0].held = []
    other_phone = machine.networks[1].delivered[0][4]
    db.session.commit()
    deliver_at_once(app, request, [request[4], other_phone])
    machine.every_item_is_somewhere_and_nothing_twice()


@pytest.mark.postgres
@pytest.mark.skipif(not is_postgres(), reason="SQLite runs write transactions one at a time: pushes cannot race there")
def test_concurrent_retries_are_one_row_on_the_real_server(machine_app):
    machine = SyncMachine(machine_app)
    try:
        _concurrent_retry_scenario(machine, machine_app)
    finally:
        machine.teardown()


@pytest.mark.postgres
@pytest.mark.skipif(not is_postgres(), reason="SQLite serialises write transactions, so check-then-insert cannot race there")
def test_negative_control_check_then_insert_is_caught_as_two_rows_for_one_mid(machine_app, monkeypatch):
    monkeypatch.setattr(push_module, "_claim", claim_check_then_insert(threading.Barrier(2, timeout=10)))
    machine = SyncMachine(machine_app)
    with mutation_log_without_unique_key(), pytest.raises(InvariantViolation) as caught:
        try:
            _concurrent_retry_scenario(machine, machine_app)
        finally:
            machine.close()  # no heal: the harm is done, and the table has no key to heal with
    assert caught.value.check == "one_row_per_mid"


# -- (b) a client that drops an item on any HTTP answer ----------------------------------------------------


class DroppingMachine(SyncMachine):
    client_class = DropsOnAnyAnswer


BUSY_THEN_POISON = [
    ("create_visit", {"n": 0, "pick": 1, "photo": False}),
    ("server_busy_next", {"n": 0}),
    ("push", {"n": 0, "force": False}),
    ("create_visit", {"n": 0, "pick": 2, "photo": False}),
    ("inject_poison_item", {"n": 0, "pick": 3}),
    ("push", {"n": 0, "force": True}),
]


def test_scenario_busy_then_poison_passes_on_the_real_client(machine_app):
    run_scenario(SyncMachine(machine_app), BUSY_THEN_POISON)


def test_negative_control_client_dropping_items_on_503_is_caught_as_an_item_nowhere(machine_app):
    with pytest.raises(InvariantViolation) as caught:
        run_scenario(DroppingMachine(machine_app), BUSY_THEN_POISON[:3])
    assert caught.value.check == "every_item_is_somewhere"


def test_negative_control_client_dropping_items_on_500_is_caught_as_an_item_nowhere(machine_app):
    with pytest.raises(InvariantViolation) as caught:
        run_scenario(DroppingMachine(machine_app), BUSY_THEN_POISON[3:])
    assert caught.value.check == "every_item_is_somewhere"


# -- (c) a client that saves the cursor before its page ----------------------------------------------------


class CursorBeforePage(Client):
    """BROKEN: the new cursor is committed on its own, before the page it belongs to is stored."""

    def _store_response(self, batch, body, now, report):
        with self._transaction() as store:
            self._set(store, "cursor", body["cursor"])
        return super()._store_response(batch, body, now, report)


class CursorFirstMachine(SyncMachine):
    client_class = CursorBeforePage


POWER_CUT_WHILE_PULLING = [
    ("edit_site", {"n": 1, "pick": 0, "field": "notes"}),
    ("create_visit", {"n": 1, "pick": 1, "photo": True}),
    ("push", {"n": 1, "force": False}),
    # A street rep's edit reaches the other phone once a coordinator accepts it.
    ("moderate_site_edit", {"pick": 0, "accept": True}),
    ("crash_while_storing_a_page", {"n": 0}),
    ("pull_with_limit", {"n": 0, "limit": 1}),
    ("push", {"n": 0, "force": False}),
]


def test_scenario_power_cut_while_pulling_passes_on_the_real_client(machine_app):
    machine = SyncMachine(machine_app)
    run_scenario(machine, POWER_CUT_WHILE_PULLING)
    assert machine.crashes == 1


def test_negative_control_cursor_saved_before_its_page_is_caught_by_the_replica_check(machine_app):
    machine = CursorFirstMachine(machine_app)
    with pytest.raises(InvariantViolation) as caught:
        run_scenario(machine, POWER_CUT_WHILE_PULLING)
    assert machine.crashes == 1
    assert caught.value.check == "replica_matches_the_server"
