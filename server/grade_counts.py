"""Street grades kept counted per (area, UTC day, line, theme, grade), in step with the visits.

`reporting.counted_visits()` says which visits every figure counts: not flagged, not
superseded by a correction. The trends page, the dashboard's grade strips and the mystery
shops' comparison count those visits' street grades over whole days; at 1,000,000 visits a
year of one area is 300,000 answer rows, about 200 ms of CPU to read however it is indexed.
So the counts are kept in `street_grade_count` by every transaction that changes what
`counted_visits()` counts:

- a push writing new visits (and corrections: the visit a correction supersedes was
  flagged, so it had already left the counts) adds their grades (server/push.py);
- a review that flags a visit takes its grades out, one that un-flags it puts them back
  (operations.review_submission, and review.py's bulk acceptance of flagged visits).

Moving a visit to another site (a site merged or rejected) and erasing a person change
neither the area nor a grade nor whether the visit counts, so they leave the counts alone.

Counts are written after the transaction has taken the change counter (every writer of
visits takes it), always in key order, so two transactions never wait on each other's
count rows in opposite orders. `rebuild()` (`kerbside grade-counts rebuild`) counts them
again from the answers, for data loaded around these paths (a restore, a bulk load).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timezone

from sqlalchemy import Date, and_, cast, delete, func, insert, literal_column, select

from server.models import Answer, StreetGradeCount, Submission

TABLE = StreetGradeCount.__table__
KEY = ("area_id", "day", "line_key", "theme", "grade")
# Visit ids per SELECT ... WHERE submission_id IN (...).
CHUNK = 1000


def utc_day(moment: datetime) -> date:
    """The UTC day of an aware timestamp (the day its grades are counted on)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(timezone.utc).date()


def answer_deltas(answers, sign: int = 1) -> Counter:
    """The counts that answer rows (dicts as the push writes them) add (`sign` 1) or take away (-1)."""
    deltas: Counter = Counter()
    for answer in answers:
        if answer["kind"] == "street" and answer.get("grade") is not None:
            deltas[(answer["area_id"], utc_day(answer["observed_at"]), answer["line_key"], answer["theme"] or "",
                    answer["grade"])] += sign
    return deltas


def visit_deltas(session, visit_ids, sign: int) -> Counter:
    """The counts of these visits' street grades, times `sign`, read from their answers.

    Superseded visits are skipped: no review makes one count again, and it left the counts
    when its correction arrived (it was flagged then).
    """
    deltas: Counter = Counter()
    ids = sorted(set(visit_ids))
    for start in range(0, len(ids), CHUNK):
        rows = session.execute(
            select(Answer.area_id, Answer.observed_at, Answer.line_key, Answer.theme, Answer.grade)
            .join(Submission, Submission.id == Answer.submission_id)
            .where(Answer.submission_id.in_(ids[start:start + CHUNK]), Answer.kind == "street",
                   Answer.grade.is_not(None), Submission.superseded_by_id.is_(None)))
        for row in rows:
            deltas[(row.area_id, utc_day(row.observed_at), row.line_key, row.theme or "", row.grade)] += sign
    return deltas


def apply(session, deltas: Counter) -> None:
    """Add `deltas` to the kept counts, in key order, in the session's transaction."""
    rows = [dict(zip(KEY, key)) | {"graded": n} for key, n in sorted(deltas.items()) if n]
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert
    statement = upsert(TABLE)
    statement = statement.on_conflict_do_update(index_elements=list(KEY),
                                                set_={"graded": TABLE.c.graded + statement.excluded.graded})
    session.execute(statement, rows)


def visits_counted(session, visit_ids) -> None:
    """These visits now count (new, or no longer flagged): add their grades."""
    apply(session, visit_deltas(session, visit_ids, 1))


def visits_left_out(session, visit_ids) -> None:
    """These visits no longer count (flagged): take their grades away."""
    apply(session, visit_deltas(session, visit_ids, -1))


def day_of(session, column):
    """The UTC day of a timestamp column, as SQL (the `day` the counts are kept under)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone(literal_column("'UTC'"), column), Date)
    # SQLite keeps UTC timestamps as 'YYYY-MM-DD HH:MM:SS...': its date() is the UTC day.
    return func.date(column)


def _counted_grades(area_id: str | None):
    conditions = [Answer.kind == "street", Answer.grade.is_not(None), Submission.review_status != "flagged",
                  Submission.superseded_by_id.is_(None)]
    if area_id is not None:
        conditions.append(Answer.area_id == area_id)
    return and_(*conditions)


def rebuild(session, area_id: str | None = None) -> int:
    """Count the kept counts again from the answers (one area, or all); returns how many rows were written."""
    removed = delete(TABLE)
    if area_id is not None:
        removed = removed.where(TABLE.c.area_id == area_id)
    session.execute(removed)
    day = day_of(session, Answer.observed_at)
    counted = (select(Answer.area_id, day, Answer.line_key, Answer.theme, Answer.grade, func.count())
               .join(Submission, Submission.id == Answer.submission_id)
               .where(_counted_grades(area_id))
               .group_by(Answer.area_id, day, Answer.line_key, Answer.theme, Answer.grade)
               # Written in key order, so an area's days lie together on few pages (as visits arriving day by day put them).
               .order_by(Answer.area_id, day, Answer.line_key, Answer.theme, Answer.grade))
    session.execute(insert(TABLE).from_select([*KEY, "graded"], counted))
    kept = select(func.count()).select_from(TABLE)
    if area_id is not None:
        kept = kept.where(TABLE.c.area_id == area_id)
    return session.execute(kept).scalar_one()


def kept(session, area_id: str) -> dict:
    """The kept counts of an area: {(day, line_key, theme, grade): n}, zeros left out."""
    rows = session.execute(select(TABLE.c.day, TABLE.c.line_key, TABLE.c.theme, TABLE.c.grade, TABLE.c.graded)
                           .where(TABLE.c.area_id == area_id, TABLE.c.graded != 0))
    return {(_as_date(r.day), r.line_key, r.theme, r.grade): r.graded for r in rows}


def from_rows(session, area_id: str) -> dict:
    """The same counts, counted from the area's answers and visits now (what `kept` must equal)."""
    counts: Counter = Counter()
    rows = session.execute(select(Answer.observed_at, Answer.line_key, Answer.theme, Answer.grade)
                           .join(Submission, Submission.id == Answer.submission_id)
                           .where(_counted_grades(area_id)))
    for row in rows:
        counts[(utc_day(row.observed_at), row.line_key, row.theme or "", row.grade)] += 1
    return dict(counts)


def _as_date(value) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value
