"""Set-based inserts: one statement per table, whatever the number of rows.

On PostgreSQL new rows go in with one `COPY ... FROM STDIN` per table, inside the caller's
transaction: no statement per row to bind and execute (a push of 100 visits writes 1,200
answer rows), and psycopg formats the rows in C. Elsewhere SQLAlchemy's executemany is
used: SQLite runs it row by row in C, without round trips.
"""

from __future__ import annotations

import json

from sqlalchemy import JSON, Table, insert
from sqlalchemy.exc import IntegrityError


def insert_rows(session, table: Table, rows: list[dict]) -> None:
    """Insert `rows` (dicts with the same keys) into `table` in one statement, in the session's transaction."""
    if not rows:
        return
    columns = list(rows[0])
    if session.get_bind().dialect.name == "postgresql" and not _python_defaults(table, columns):
        _copy(session, table, columns, rows)
    else:
        session.execute(insert(table), rows)


def _python_defaults(table: Table, columns: list[str]) -> bool:
    """Whether a left-out column has a default SQLAlchemy computes in Python (then it inserts)."""
    given = set(columns)
    return any(c.default is not None and c.name not in given for c in table.columns)


def _copy(session, table: Table, columns: list[str], rows: list[dict]):
    connection = session.connection()
    dialect = connection.dialect
    converters = []
    for name in columns:
        column_type = table.c[name].type
        if isinstance(column_type, JSON):
            # As SQLAlchemy's JSON type stores them: json.dumps text, None as JSON null.
            converters.append(_json_text)
        else:
            converters.append(column_type.bind_processor(dialect))
    quote = dialect.identifier_preparer.quote
    sql = (f"COPY {dialect.identifier_preparer.format_table(table)} "
           f"({', '.join(quote(name) for name in columns)}) FROM STDIN")
    cursor = connection.connection.driver_connection.cursor()
    try:
        with cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row([
                    value if convert is None else convert(value)
                    for value, convert in zip((row[name] for name in columns), converters)
                ])
    except Exception as exc:
        import psycopg

        if isinstance(exc, psycopg.IntegrityError):
            # Callers treat a clash on a unique key the same way, whichever insert met it.
            raise IntegrityError(sql, None, exc) from exc
        raise
    finally:
        cursor.close()


def _json_text(value) -> str:
    # Most JSON cells of a visit's answers are empty: skip the encoder for them.
    return "null" if value is None else json.dumps(value)
