"""The audit log is a hash chain that `kerbside audit verify` checks; on PostgreSQL it is append-only."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from server import audit
from server.cli import main
from server.extensions import db
from server.models import AuditEntry
from tests.conftest import is_postgres


def _write(count: int, **kwargs):
    for n in range(count):
        audit.record("form.publish", record_type="form_version", record_id=f"street@{n}", area_id="area-1",
                     before={"status": "draft"}, after={"status": "published"}, person_id="p1", device_id=None,
                     **kwargs)
    db.session.commit()


def _damage(sql: str, **params):
    """Raw SQL past the ORM, as someone with database access would; on PostgreSQL the guard is disabled first."""
    with db.engine.begin() as conn:
        if is_postgres():
            conn.execute(text("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only"))
        conn.execute(text(sql), params)
        if is_postgres():
            conn.execute(text("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_append_only"))
    db.session.expire_all()


def test_verify_passes_on_an_intact_chain_of_many_entries(app):
    _write(2500)  # more than two of verify's pages
    verdict = audit.verify()
    assert verdict.intact and verdict.entries == 2500


def test_entries_keep_only_the_changed_fields(app):
    entry = audit.record("action.update", before={"status": "open", "note": "same"},
                         after={"status": "done", "note": "same"}, person_id="p1")
    db.session.commit()
    assert entry.details == {"before": {"status": "open"}, "after": {"status": "done"}}


def test_verify_finds_an_edited_entry(app):
    _write(20)
    _damage("UPDATE audit_entry SET person_id = 'someone-else' WHERE seq = 7")
    verdict = audit.verify()
    assert verdict.broken_at == 7 and "altered" in verdict.problem


def test_verify_finds_edited_details(app):
    _write(5)
    _damage("UPDATE audit_entry SET details = :d WHERE seq = 3", d='{"before": {}, "after": {}}')
    assert audit.verify().broken_at == 3


def test_verify_finds_a_deleted_entry(app):
    _write(20)
    _damage("DELETE FROM audit_entry WHERE seq = 12")
    verdict = audit.verify()
    assert verdict.broken_at == 12 and "missing" in verdict.problem


def test_verify_finds_a_deleted_entry_renumbered_to_hide_the_gap(app):
    _write(10)
    _damage("DELETE FROM audit_entry WHERE seq = 4")
    _damage("UPDATE audit_entry SET seq = seq - 1 WHERE seq > 4")
    assert audit.verify().broken_at == 4


def test_verify_finds_reordered_entries(app):
    _write(10)
    _damage("UPDATE audit_entry SET seq = 1000 WHERE seq = 5")
    _damage("UPDATE audit_entry SET seq = 5 WHERE seq = 6")
    _damage("UPDATE audit_entry SET seq = 6 WHERE seq = 1000")
    assert audit.verify().broken_at == 5


def test_verify_finds_entries_cut_off_the_end(app):
    _write(10)
    _damage("DELETE FROM audit_entry WHERE seq > 8")
    verdict = audit.verify()
    assert verdict.broken_at == 9 and "cut short" in verdict.problem


def test_cli_verify_exits_non_zero_naming_the_broken_entry(app):
    _write(6)
    runner = app.test_cli_runner()
    intact = runner.invoke(main, ["audit", "verify"])
    assert intact.exit_code == 0 and "6 entries" in intact.output
    _damage("UPDATE audit_entry SET action = 'nothing.happened' WHERE seq = 2")
    broken = runner.invoke(main, ["audit", "verify"])
    assert broken.exit_code == 1 and "entry 2" in broken.output


ONLY_POSTGRES = [pytest.mark.postgres, pytest.mark.skipif(not is_postgres(), reason="needs PostgreSQL (TEST_DATABASE_URL); CI runs it")]


@ONLY_POSTGRES[0]
@ONLY_POSTGRES[1]
def test_postgres_refuses_update_and_delete_on_the_audit_log(app):
    _write(3)
    for statement in ("UPDATE audit_entry SET action = 'x' WHERE seq = 1", "DELETE FROM audit_entry WHERE seq = 2"):
        with pytest.raises(DBAPIError, match="append-only"):
            with db.engine.begin() as conn:
                conn.execute(text(statement))
    assert audit.verify().intact


@ONLY_POSTGRES[0]
@ONLY_POSTGRES[1]
def test_concurrent_writers_on_postgres_keep_one_chain(app):
    writers, each = 6, 40
    failures = []
    start = threading.Barrier(writers)

    def write(n):
        with app.app_context():
            try:
                start.wait()
                for i in range(each):
                    audit.record("export.submissions", record_type="area", record_id=f"{n}-{i}", person_id=f"p{n}")
                    db.session.commit()
            except Exception as problem:  # noqa: BLE001  (reported below, not swallowed)
                failures.append(repr(problem))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    verdict = audit.verify()
    assert verdict.intact and verdict.entries == writers * each
    assert db.session.execute(select(func.count()).select_from(AuditEntry)).scalar_one() == writers * each
