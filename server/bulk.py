"""Set-based writes: one statement per table, whatever the number of rows.

On PostgreSQL new rows go in with one `COPY ... FROM STDIN` per table, inside the caller's
transaction: no statement per row to bind and execute (a push of 100 visits writes 1,200
answer rows), and psycopg formats the rows in C. Inserts that must skip existing keys, and
updates of one column, send the rows as one JSON parameter to a single statement over
`json_populate_recordset(...)`.
Elsewhere SQLAlchemy's executemany is used: SQLite runs it row by row in C, without round
trips.
"""

from __future__ import annotations

from operator import itemgetter

from sqlalchemy import JSON, DateTime, Table, bindparam, insert, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from server.jsonio import column_text

_statements: dict = {}


def insert_rows(session, table: Table, rows: list[dict]) -> None:
    """Insert `rows` (dicts with the same keys) into `table` in one statement, in the session's transaction."""
    if not rows:
        return
    columns = list(rows[0])
    if _dialect(session).name == "postgresql" and not _python_defaults(table, columns):
        _copy(session, table, columns, rows)
    else:
        session.execute(insert(table), rows)


def insert_new(session, table: Table, rows: list[dict], key: str) -> list:
    """Insert the `rows` whose `key` is not taken yet (ON CONFLICT DO NOTHING); return their keys."""
    if not rows:
        return []
    dialect = _dialect(session)
    columns = list(rows[0])
    if dialect.name == "postgresql" and not _python_defaults(table, columns):
        quote = dialect.identifier_preparer.quote
        names = ", ".join(quote(name) for name in columns)
        statement = _statement(session, ("insert_new", table.name, tuple(columns), key), lambda: (
            # B608 (bandit) is answered: identifiers come from our own Table, quoted by the dialect; every value is a bound parameter.
            f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({names}) "  # nosec B608
            f"SELECT {names} FROM {_recordset(table, dialect)} ON CONFLICT ({quote(key)}) DO NOTHING RETURNING {quote(key)}"
        ))
        return list(session.execute(statement, {"rows": _json_rows(table, columns, rows, dialect)}).scalars())
    module = postgresql if dialect.name == "postgresql" else sqlite
    statement = module.insert(table).on_conflict_do_nothing(index_elements=[key]).returning(table.c[key])
    return list(session.scalars(statement, rows))


def update_column(session, table: Table, key: str, column: str, values: dict) -> None:
    """Set `column` to `values[k]` on the row whose `key` is k, for every k, in one statement."""
    if not values:
        return
    dialect = _dialect(session)
    if dialect.name == "postgresql":
        quote = dialect.identifier_preparer.quote
        name = dialect.identifier_preparer.format_table(table)
        statement = _statement(session, ("update_column", table.name, key, column), lambda: (
            # B608 (bandit) is answered: identifiers come from our own Table, quoted by the dialect; every value is a bound parameter.
            f"UPDATE {name} SET {quote(column)} = v.{quote(column)} FROM {_recordset(table, dialect)} AS v "  # nosec B608
            f"WHERE {name}.{quote(key)} = v.{quote(key)}"
        ))
        rows = [{key: k, column: v} for k, v in values.items()]
        session.execute(statement, {"rows": _json_rows(table, [key, column], rows, dialect)})
        return
    session.execute(
        update(table).where(table.c[key] == bindparam("b_key")).values({column: bindparam("b_value")}),
        [{"b_key": k, "b_value": v} for k, v in values.items()],
    )


def _dialect(session):
    return session.get_bind().dialect


def _python_defaults(table: Table, columns: list[str]) -> bool:
    """Whether a left-out column has a default SQLAlchemy computes in Python (then it inserts)."""
    given = set(columns)
    return any(c.default is not None and c.name not in given for c in table.columns)


def _json_text(value) -> str:
    # As SQLAlchemy's JSON type stores values: JSON text, None as JSON null. Most JSON cells
    # of a visit's answers are empty: skip the encoder for them.
    return "null" if value is None else column_text(value)


def _converters(table: Table, columns: list[str], dialect) -> list:
    """Per column, the function that turns a Python value into what the driver sends, or None."""
    converters = []
    for name in columns:
        column_type = table.c[name].type
        if isinstance(column_type, JSON):
            converters.append(_json_text)
            continue
        convert = column_type.bind_processor(dialect)
        if convert is not None and isinstance(getattr(column_type, "impl", column_type), DateTime):
            convert = _remembered(convert)
        converters.append(convert)
    return converters


def _remembered(convert):
    """`convert`, each distinct value converted once per call.

    A push's answer rows repeat their visit's time (twelve rows, one moment) and every row
    of a batch shares the time it was received: of 1,600 conversions a batch needs, about
    200 differ. Equal moments convert to the same UTC value, so remembering by value is safe.
    """
    seen: dict = {}

    def run(value):
        found = seen.get(value)
        if found is None:
            found = seen[value] = convert(value)
        return found

    return run


def _statement(session, key, build):
    statement = _statements.get(key)
    if statement is None:
        statement = _statements[key] = text(build())
    return statement


def _recordset(table: Table, dialect) -> str:
    # The rows travel as one JSON array that PostgreSQL turns into records of the table's own
    # type: one parameter, written by orjson, instead of one array per column dumped in Python.
    return f"json_populate_recordset(NULL::{dialect.identifier_preparer.format_table(table)}, CAST(:rows AS JSON))"


def _json_rows(table: Table, columns: list[str], rows: list[dict], dialect) -> str:
    converting = [(name, convert) for name, convert in zip(columns, _converters(table, columns, dialect))
                  if convert and not isinstance(table.c[name].type, JSON)]
    if converting:
        rows = [dict(row) for row in rows]
        for row in rows:
            for name, convert in converting:
                row[name] = convert(row[name])
    return column_text(rows)


def _copy(session, table: Table, columns: list[str], rows: list[dict]):
    connection = session.connection()
    dialect = connection.dialect
    converting = [(n, convert) for n, convert in enumerate(_converters(table, columns, dialect)) if convert]
    values_of = itemgetter(*columns)
    quote = dialect.identifier_preparer.quote
    sql = (f"COPY {dialect.identifier_preparer.format_table(table)} "
           f"({', '.join(quote(name) for name in columns)}) FROM STDIN")
    cursor = connection.connection.driver_connection.cursor()
    try:
        with cursor.copy(sql) as copy:
            for row in rows:
                values = list(values_of(row)) if len(columns) > 1 else [row[columns[0]]]
                for n, convert in converting:
                    values[n] = convert(values[n])
                copy.write_row(values)
    except Exception as exc:
        import psycopg

        if isinstance(exc, psycopg.IntegrityError):
            # Callers treat a clash on a unique key the same way, whichever insert met it.
            raise IntegrityError(sql, None, exc) from exc
        raise
    finally:
        cursor.close()
