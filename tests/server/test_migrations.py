"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from server import create_app
from server.extensions import db
from server.models import ChangeCounter, ServerState
from tests.conftest import TEST_DATABASE_URL, is_postgres


@pytest.fixture
def empty_database_url(tmp_path):
    """An empty database: a SQLite file, or a throwaway schema on the test PostgreSQL."""
    if not is_postgres():
        yield f"sqlite:///{tmp_path / 'migrated.sqlite'}"
        return
    schema = "mig_" + uuid.uuid4().hex[:8]
    admin = create_engine(TEST_DATABASE_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in TEST_DATABASE_URL else "?"
    yield f"{TEST_DATABASE_URL}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def test_upgrade_from_empty_matches_models(empty_database_url, tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "SECRET_KEY": "t", "BLOB_DIR": str(tmp_path)})
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
        assert differences == []
        # The first revision also creates the state rows every server needs.
        assert db.session.get(ServerState, 1).epoch.startswith("ep_")
        assert db.session.get(ChangeCounter, 1).value == 0
        db.session.remove()
        db.engine.dispose()


def test_comparison_notices_a_missing_table(empty_database_url, tmp_path):
    """Negative control: the comparison above does report a schema that differs."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "SECRET_KEY": "t", "BLOB_DIR": str(tmp_path)})
    with app.app_context():
        upgrade()
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE mutation_audit"))
        with db.engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), db.metadata)
        assert any(diff[0] == "add_table" and diff[1].name == "mutation_audit" for diff in differences)
        db.session.remove()
        db.engine.dispose()


def test_migrated_database_refuses_an_answer_without_its_submission(empty_database_url, tmp_path):
    """The guard that replaced the answer's foreign key is installed by the migration, and can
    be taken out and put back (downgrade, upgrade)."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "SECRET_KEY": "t", "BLOB_DIR": str(tmp_path)})
    orphan = text("INSERT INTO answer (submission_id, line_key, theme, area_id, kind, observed_at) "
                  "VALUES ('no-such-visit', 'litter', '', 'area', 'street', CURRENT_TIMESTAMP)")
    with app.app_context():
        upgrade()
        downgrade(revision="9e9d20bb4ecf")
        upgrade()
        with pytest.raises(IntegrityError):
            with db.engine.begin() as conn:
                conn.execute(orphan)
        db.session.remove()
        db.engine.dispose()
