"""Concurrent writers and a puller on PostgreSQL: the cursor never skips a change that commits late.

Writers take seqs and then dawdle inside their transactions while a puller follows the
cursor. With seqs from the counter row (server.changes) the puller ends up with every
committed change. The negative control takes seqs from a PostgreSQL sequence at insert
time (the classic gap, defined here in the test only) under the same schedule, and the
same puller is shown to miss the change that committed late.

Two pushes editing one site at the same moment must both count: the record is locked while
a push works out its edit (before, both read version 1 and both wrote version 2).
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from server import operations
from server.changes import PendingChange, write_changes
from server.extensions import db
from server.pull import pull
from tests.conftest import is_postgres

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not is_postgres(), reason="needs PostgreSQL (TEST_DATABASE_URL); CI runs it"),
]

FAST_WRITERS = 4
ROUNDS = 12
HOLD_S = 1.0  # how long the slow writer keeps its seq uncommitted
NAIVE_START = 1_000_000


def counter_seqs(session: Session, writer: int, round_: int, count: int) -> list[int]:
    """The real thing: seqs from the locked counter row, via server.changes.write_changes."""
    return write_changes(
        [PendingChange("device", f"w{writer}-{round_}-{k}", data={"writer": writer}) for k in range(count)],
        session=session,
    )


def naive_seqs(session: Session, writer: int, round_: int, count: int) -> list[int]:
    """The classic gap: a sequence number taken at insert time, visible only at commit."""
    return [
        session.execute(
            text("INSERT INTO change (seq, collection, record_id, op, data, created_at) "
                 "VALUES (nextval('naive_change_seq'), 'device', :rid, 'put', '{}', now()) RETURNING seq"),
            {"rid": f"w{writer}-{round_}-{k}"},
        ).scalar_one()
        for k in range(count)
    ]


def run_writers_and_puller(app, take_seqs) -> dict:
    """One slow writer holds its seq while fast writers commit later ones; a puller follows the cursor."""
    engine = db.engine
    epoch = operations.server_state().epoch
    db.session.commit()
    committed: set[int] = set()
    committed_lock = threading.Lock()
    slow_taken = threading.Event()
    writers_done = threading.Event()
    pulled: list[int] = []
    non_empty_pages = []

    def commit_with(session, seqs):
        session.commit()
        with committed_lock:
            committed.update(seqs)

    def slow_writer():
        with Session(engine) as session:
            seqs = take_seqs(session, 0, 0, 1)
            slow_taken.set()
            time.sleep(HOLD_S)  # a slow phone's transaction, or a checkpoint stall
            commit_with(session, seqs)
        return seqs

    def fast_writer(writer: int):
        rng = random.Random(writer)
        assert slow_taken.wait(10)
        for round_ in range(ROUNDS):
            with Session(engine) as session:
                seqs = take_seqs(session, writer, round_, rng.randint(1, 3))
                time.sleep(rng.uniform(0, 0.02))  # after taking seqs, before commit
                commit_with(session, seqs)

    def puller():
        with app.app_context():
            cursor = None

            def page():
                nonlocal cursor
                result = pull(cursor_text=cursor, limit=7, epoch=epoch, kept_from=1, person_id="nobody",
                              area_ids=[], roles=[])
                db.session.rollback()
                assert not result["reset"]
                cursor = result["cursor"]
                pulled.extend(change["seq"] for change in result["changes"])
                if result["changes"]:
                    non_empty_pages.append(len(result["changes"]))
                return result

            while not writers_done.is_set():
                page()
                time.sleep(0.005)
            while page()["has_more"]:
                pass
            page()  # one more after the last commit, as the next sync would

    with ThreadPoolExecutor(max_workers=FAST_WRITERS + 2) as pool:
        pulling = pool.submit(puller)
        slow = pool.submit(slow_writer)
        fast = [pool.submit(fast_writer, w) for w in range(1, FAST_WRITERS + 1)]
        slow_seqs = slow.result(timeout=30)
        for future in fast:
            future.result(timeout=30)
        writers_done.set()
        pulling.result(timeout=30)
    return {"committed": committed, "pulled": pulled, "slow": set(slow_seqs), "pages": non_empty_pages}


def test_puller_following_the_cursor_gets_every_committed_change(app):
    outcome = run_writers_and_puller(app, counter_seqs)

    assert len(outcome["committed"]) >= FAST_WRITERS * ROUNDS + 1
    assert sorted(outcome["pulled"]) == outcome["pulled"]  # in seq order, no repeats
    assert set(outcome["pulled"]) == outcome["committed"]
    assert len(outcome["pages"]) >= 2  # the puller really ran alongside the writers


@pytest.fixture
def naive_sequence(app):
    db.session.execute(text("DROP SEQUENCE IF EXISTS naive_change_seq"))
    db.session.execute(text(f"CREATE SEQUENCE naive_change_seq START {NAIVE_START}"))
    db.session.commit()
    yield
    db.session.rollback()
    db.session.execute(text("DROP SEQUENCE IF EXISTS naive_change_seq"))
    db.session.commit()


def test_naive_seq_taken_at_insert_lets_the_puller_skip_a_late_commit(app, naive_sequence):
    outcome = run_writers_and_puller(app, naive_seqs)

    missed = outcome["committed"] - set(outcome["pulled"])
    assert outcome["slow"] == {NAIVE_START}
    assert outcome["slow"] <= missed  # committed, and never seen by a device


# -- two pushes editing one record at once ---------------------------------------------------------


def test_two_pushes_editing_one_site_at_once_keep_both_edits(app, make_area, make_site, enrol, monkeypatch):
    """Both read the site at version 1; both used to write version 2, and the first edit was lost."""
    from server import push
    from server.models import Site
    from tests.conftest import mutation

    area = make_area()
    site = make_site(area)
    site_id = site.id
    from server.models import Role

    enrolled = [enrol(area, name=f"Rep {n}") for n in range(2)]
    tokens = [token for token, _body in enrolled]
    # Coordinators' edits apply at once (a street rep's wait for review), so both write the site.
    for _token, body in enrolled:
        db.session.add(Role(person_id=body["person"]["id"], area_id=area.id, role="coordinator"))
    db.session.commit()
    # Hold each push just after it has read the site, until the other has read it too (or 2 s
    # have passed: with the record locked, the second cannot read until the first commits).
    after_reading = threading.Barrier(2, timeout=2)
    real_check = push._check_site_updates

    def check_then_wait(ctx, items):
        real_check(ctx, items)
        try:
            after_reading.wait()
        except threading.BrokenBarrierError:
            pass

    monkeypatch.setattr(push, "_check_site_updates", check_then_wait)
    patches = [{"notes": "Bins moved to the corner"}, {"lat": 53.5412}]
    answers = []

    def edit(token, patch):
        with app.app_context():
            response = app.test_client().post("/api/sync/v1", headers={"Authorization": f"Bearer {token}"}, json={
                "protocol": 1, "cursor": None, "limit": 10,
                "mutations": [mutation({"id": site_id, "base_version": 1, "patch": patch}, kind="site.update")]})
            answers.append(response.get_json()["results"][0]["status"])

    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(edit, token, patch) for token, patch in zip(tokens, patches)]:
            future.result(timeout=30)

    db.session.expire_all()
    stored = db.session.get(Site, site_id)
    assert sorted(answers) == ["applied", "applied"]
    assert stored.version == 3
    assert stored.notes == "Bins moved to the corner" and stored.lat == 53.5412
