"""The shape of a push: one transaction, set-based inserts, one validator per form version.

These tests count what reaches the database driver during one sync request. A per-row
implementation (one INSERT per visit and per answer, or a commit per item) would give
INSERT counts that grow with the batch (about 14 per visit of 12 lines) and one COMMIT per
visit; a validator built per submission would be compiled once per visit instead of once
per form version.
"""

from __future__ import annotations

import contextlib
from collections import Counter

import pytest
from sqlalchemy import event, func, select

from server import push, schemas
from server.extensions import db
from server.models import Answer, Submission
from server.seed_content import STREET_FORM
from server import operations
from tests.conftest import mutation, street_answers, visit


@contextlib.contextmanager
def counting_statements():
    """Count the statements sent to the driver (an executemany counts once) and the commits.

    `counts.transactions` lists, per committed transaction, the tables it wrote to.
    """
    counts: Counter = Counter()
    counts.transactions = []
    writes: set = set()

    def before_cursor_execute(conn, cursor, statement, parameters, context, executemany):
        words = statement.split()
        verb = words[0].upper()
        counts[verb] += 1
        if verb in ("INSERT", "UPDATE", "DELETE"):
            table = words[2] if verb in ("INSERT", "DELETE") else words[1]
            writes.add(table.strip('"'))

    def on_commit(conn):
        counts["COMMIT"] += 1
        counts.transactions.append(frozenset(writes))
        writes.clear()

    engine = db.engine
    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    event.listen(engine, "commit", on_commit)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", before_cursor_execute)
        event.remove(engine, "commit", on_commit)


@pytest.fixture
def street_rep(make_area, make_site, publish_forms, enrol):
    area = make_area()
    site = make_site(area)
    publish_forms()
    token, _body = enrol(area)
    return token, site


def push_visits(sync, token, site, count):
    response = sync(token, [mutation(visit(site), seq=n + 1) for n in range(count)])
    assert response.status_code == 200, response.get_json()
    statuses = {result["status"] for result in response.get_json()["results"]}
    assert statuses == {"applied"}, response.get_json()["results"][:2]
    return response


def test_a_push_is_one_transaction_whatever_its_size(street_rep, sync):
    token, site = street_rep
    # The first push of a form version reads its definition once, to build the validator.
    push_visits(sync, token, site, 1)
    with counting_statements() as small:
        push_visits(sync, token, site, 10)
    with counting_statements() as large:
        push_visits(sync, token, site, 100)

    # Submissions, answers, change rows and log rows: a fixed number of set-based inserts.
    assert large["INSERT"] == small["INSERT"], (small, large)
    assert large["INSERT"] <= 6, large
    # Every statement of the request, reads included, is independent of the batch size.
    assert sum(large.values()) == sum(small.values()), (small, large)
    # The push is one transaction, and the answer leaves only after it: the rows are there when we
    # look. Besides it, the request commits only the device's rate count (its own short write,
    # shared by every host) and reads.
    # (On PostgreSQL the visits, answers and changes go in by COPY, which no statement event
    # sees: the push's transaction is the one that logs the mutations and takes the seqs.)
    pushing = [t for t in large.transactions if "mutation_log" in t]
    assert len(pushing) == 1 and "change_counter" in pushing[0], large.transactions
    others = [t for t in large.transactions if "mutation_log" not in t]
    assert all(t <= {"throttle_counter"} for t in others) and sum(bool(t) for t in others) == 1, large.transactions
    assert db.session.execute(select(func.count()).select_from(Submission)).scalar_one() == 111
    assert db.session.execute(select(func.count()).select_from(Answer)).scalar_one() == 111 * 12


def test_the_validator_is_compiled_once_per_form_version(street_rep, sync, monkeypatch):
    token, site = street_rep
    compiled = []
    real_compile = push.compile_form

    def counting_compile(definition):
        compiled.append(definition.get("title"))
        return real_compile(definition)

    monkeypatch.setattr(push, "compile_form", counting_compile)
    monkeypatch.setattr(push, "_validators", {})

    push_visits(sync, token, site, 100)
    push_visits(sync, token, site, 100)
    assert len(compiled) == 1

    # A new version of the form gets its own validator, once; the old one is still served.
    second = operations.draft_form_version("street", STREET_FORM)
    operations.publish_form_version(second)
    db.session.commit()
    response = sync(token, [mutation(visit(site, form_version=second.version), seq=n) for n in range(50)]
                    + [mutation(visit(site, form_version=1), seq=50 + n) for n in range(50)])
    assert {r["status"] for r in response.get_json()["results"]} == {"applied"}
    assert len(compiled) == 2


# -- the quick checks must agree with the schemas they stand in for -------------------------

VALID_VISIT = {
    "id": "3ceaaf30-8142-48ea-91d9-3080f9b439fc", "form": {"id": "street", "version": 2},
    "site_id": "612497e0-5989-4cc9-8ca7-f714f40a2e27", "observed_at": "2026-11-20T14:05:00+01:00",
    "answers": {"litter": {"grade": "C", "note": "By the bins", "photos": ["ab" * 32]}},
}


@pytest.mark.parametrize("extra", [
    {},
    {"notes": "Dry day"},
    {"notes": ""},
    {"area_id": "a-1"},
    {"area_id": None, "new_site": None},
    {"location": None},
    {"location": {"lat": 53, "lng": -2.63}},
    {"location": {"lat": 53.54, "lng": -2.63, "accuracy_m": 12}},
    {"location": {"lat": -90, "lng": 180, "accuracy_m": None}},
])
def test_quick_submission_loads_what_the_schema_loads(app, extra):
    data = {**VALID_VISIT, **extra}
    assert push.quick_submission(data) == schemas.SubmissionCreateSchema().load(data)


@pytest.mark.parametrize("change", [
    {"id": "not a uuid!"},
    {"form": {"id": "street", "version": 0}},
    {"form": {"id": "street", "version": "2"}},
    {"form": {"id": "street", "version": 2, "extra": 1}},
    {"site_id": ""},
    {"site_id": None},
    {"new_site": {"name": "Corner"}},
    {"observed_at": "2026-11-20T14:05:00"},
    {"answers": []},
    {"notes": None},
    {"notes": "x" * 4001},
    {"location": {"lat": 91, "lng": 0}},
    {"location": {"lat": True, "lng": 0}},
    {"location": {"lat": "53.5", "lng": 0}},
    {"location": {"lat": float("nan"), "lng": 0}},
    {"location": {"lat": 0, "lng": 0, "accuracy_m": -1}},
    {"location": {"lat": 0}},
    {"surprise": 1},
])
def test_quick_submission_leaves_every_doubt_to_the_schema(app, change):
    assert push.quick_submission({**VALID_VISIT, **change}) is None


def test_quick_mutation_loads_what_the_schema_loads_and_leaves_doubts_to_it(app):
    good = mutation(VALID_VISIT, seq=0)
    assert push.quick_mutation(good) == schemas.MutationSchema().load(good)
    for change in ({"seq": True}, {"seq": -1}, {"seq": "3"}, {"type": "site.delete"}, {"mid": "x"},
                   {"payload_hash": "sha256:XYZ"}, {"data": []}, {"extra": 1}):
        assert push.quick_mutation({**good, **change}) is None, change
    assert push.quick_mutation(["not", "a", "dict"]) is None


def test_the_sync_answer_holds_only_what_its_schema_declares(street_rep, sync):
    """The sync view answers without dumping through SyncResponseSchema: nothing may differ."""
    token, site = street_rep
    bad = visit(site)
    bad["answers"] = {}
    good = mutation(visit(site))
    photo = visit(site, answers=street_answers(litter={"grade": "C", "photos": ["ab" * 32]}))
    for batch, statuses in (([good, mutation(bad), mutation(photo)], {"applied", "rejected", "deferred"}),
                            ([good], {"duplicate"})):
        body = sync(token, batch).get_json()
        assert {r["status"] for r in body["results"]} == statuses
        assert schemas.SyncResponseSchema().dump(body) == body
