"""Every answer belongs to a stored submission: checked once per statement, not once per row.

The rule is a foreign key's, but a foreign key checks each inserted row with its own lookup
and row lock. A push of 100 visits writes 1,200 answer rows, and those 1,200 checks were a
third of PostgreSQL's work for the push (bench/ingest.py, 10 devices: about 2,300 visits/s
with the foreign key, 3,150 without). On PostgreSQL the triggers below check the whole
statement's rows with one anti-join over its transition table; on SQLite, whose triggers
are per row anyway, they do what the foreign key did.

What the rule covers, as the foreign key did: an answer cannot be inserted, or moved, to a
submission that does not exist, and a submission with answers cannot be deleted or renumbered.
What it does not: the row lock that stopped a concurrent transaction deleting a submission
while its answers were being inserted. Submissions are never deleted (visits are flagged,
not removed), so nothing in Kerbside can take that path.

The migration that installed these calls `install`; a change to them needs a new revision.
On SQLite a batch migration of either table recreates it without its triggers: such a
revision must call `install` again (it is idempotent).
"""

from __future__ import annotations

from sqlalchemy import DDL, Table, event

_POSTGRESQL_ANSWER = [
    """
    CREATE OR REPLACE FUNCTION kerbside_answers_have_submissions() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        -- One probe per submission, not per answer row: a push's 1,200 rows name 100 submissions.
        IF EXISTS (SELECT 1 FROM (SELECT DISTINCT submission_id FROM new_answers) a
                   WHERE NOT EXISTS (SELECT 1 FROM submission s WHERE s.id = a.submission_id)) THEN
            RAISE EXCEPTION 'an answer refers to a submission that does not exist' USING ERRCODE = 'foreign_key_violation';
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE OR REPLACE TRIGGER answer_insert_has_submission AFTER INSERT ON answer
    REFERENCING NEW TABLE AS new_answers FOR EACH STATEMENT EXECUTE FUNCTION kerbside_answers_have_submissions()
    """,
    """
    CREATE OR REPLACE TRIGGER answer_update_has_submission AFTER UPDATE ON answer
    REFERENCING NEW TABLE AS new_answers FOR EACH STATEMENT EXECUTE FUNCTION kerbside_answers_have_submissions()
    """,
]

_POSTGRESQL_SUBMISSION = [
    """
    CREATE OR REPLACE FUNCTION kerbside_submissions_keep_answers() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM old_submissions o JOIN answer a ON a.submission_id = o.id
                   WHERE NOT EXISTS (SELECT 1 FROM submission s WHERE s.id = o.id)) THEN
            RAISE EXCEPTION 'a submission with answers cannot be removed' USING ERRCODE = 'foreign_key_violation';
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE OR REPLACE TRIGGER submission_delete_keeps_answers AFTER DELETE ON submission
    REFERENCING OLD TABLE AS old_submissions FOR EACH STATEMENT EXECUTE FUNCTION kerbside_submissions_keep_answers()
    """,
    """
    CREATE OR REPLACE TRIGGER submission_update_keeps_answers AFTER UPDATE ON submission
    REFERENCING OLD TABLE AS old_submissions FOR EACH STATEMENT EXECUTE FUNCTION kerbside_submissions_keep_answers()
    """,
]

_SQLITE_ANSWER = [
    """
    CREATE TRIGGER IF NOT EXISTS answer_insert_has_submission BEFORE INSERT ON answer
    WHEN NOT EXISTS (SELECT 1 FROM submission WHERE id = NEW.submission_id)
    BEGIN SELECT RAISE(ABORT, 'an answer refers to a submission that does not exist'); END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS answer_update_has_submission BEFORE UPDATE OF submission_id ON answer
    WHEN NOT EXISTS (SELECT 1 FROM submission WHERE id = NEW.submission_id)
    BEGIN SELECT RAISE(ABORT, 'an answer refers to a submission that does not exist'); END
    """,
]

_SQLITE_SUBMISSION = [
    """
    CREATE TRIGGER IF NOT EXISTS submission_delete_keeps_answers BEFORE DELETE ON submission
    WHEN EXISTS (SELECT 1 FROM answer WHERE submission_id = OLD.id)
    BEGIN SELECT RAISE(ABORT, 'a submission with answers cannot be removed'); END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS submission_update_keeps_answers BEFORE UPDATE OF id ON submission
    WHEN NEW.id <> OLD.id AND EXISTS (SELECT 1 FROM answer WHERE submission_id = OLD.id)
    BEGIN SELECT RAISE(ABORT, 'a submission with answers cannot be removed'); END
    """,
]

_STATEMENTS = {
    ("postgresql", "answer"): _POSTGRESQL_ANSWER,
    ("postgresql", "submission"): _POSTGRESQL_SUBMISSION,
    ("sqlite", "answer"): _SQLITE_ANSWER,
    ("sqlite", "submission"): _SQLITE_SUBMISSION,
}


def statements(dialect: str, table: str) -> list[str]:
    """The statements that guard `table` on `dialect` (none for a database we don't run on)."""
    return _STATEMENTS.get((dialect, table), [])


def install(connection) -> None:
    """Create the guards on an existing schema (the migration's way)."""
    for table in ("submission", "answer"):
        for statement in statements(connection.dialect.name, table):
            connection.exec_driver_sql(statement)


_TRIGGERS = {"answer": ("answer_insert_has_submission", "answer_update_has_submission"),
             "submission": ("submission_delete_keeps_answers", "submission_update_keeps_answers")}
_FUNCTIONS = ("kerbside_answers_have_submissions", "kerbside_submissions_keep_answers")


def uninstall(connection) -> None:
    """Remove the guards (a downgrade puts the foreign key back instead)."""
    postgresql = connection.dialect.name == "postgresql"
    for table, triggers in _TRIGGERS.items():
        for trigger in triggers:
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger}" + (f" ON {table}" if postgresql else ""))
    if postgresql:
        for function in _FUNCTIONS:
            connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS {function}()")


def attach(table: Table) -> None:
    """Create the guards whenever `table` is created from the models (create_all, the tests' way)."""
    for dialect in ("postgresql", "sqlite"):
        for statement in statements(dialect, table.name):
            event.listen(table, "after_create", DDL(statement).execute_if(dialect=dialect))


# -- the audit log is append-only -------------------------------------------------------------
#
# On PostgreSQL a trigger refuses UPDATE and DELETE on audit_entry, so not even a bug in
# Kerbside can rewrite history; someone who can disable the trigger can, and then
# `kerbside audit verify` finds the damage by the hash chain. TRUNCATE is not refused: the
# tests empty every table between cases with it, and it needs the table owner's rights.
# SQLite, the single-machine default, has only the hash chain.

_POSTGRESQL_APPEND_ONLY = [
    """
    CREATE OR REPLACE FUNCTION kerbside_audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        -- No format placeholders: the driver would read them as its own.
        RAISE EXCEPTION USING MESSAGE = 'the audit log is append-only: ' || TG_OP || ' is refused',
                              ERRCODE = 'insufficient_privilege';
    END $$
    """,
    """
    CREATE OR REPLACE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_entry
    FOR EACH ROW EXECUTE FUNCTION kerbside_audit_is_append_only()
    """,
]


def install_append_only(connection) -> None:
    """Create the audit log's guard on an existing schema (the migration's way)."""
    if connection.dialect.name == "postgresql":
        for statement in _POSTGRESQL_APPEND_ONLY:
            connection.exec_driver_sql(statement)


def uninstall_append_only(connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("DROP TRIGGER IF EXISTS audit_entry_append_only ON audit_entry")
        connection.exec_driver_sql("DROP FUNCTION IF EXISTS kerbside_audit_is_append_only()")


def attach_append_only(table: Table) -> None:
    """Create the audit log's guard whenever its table is created from the models (the tests' way)."""
    for statement in _POSTGRESQL_APPEND_ONLY:
        event.listen(table, "after_create", DDL(statement).execute_if(dialect="postgresql"))
