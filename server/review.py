"""Accepting visits in bulk: the ones ticked on a page of the queue, or every visit a filter matches.

One review is audited as `submission.review` with the status before and after. A bulk
acceptance is audited as one entry for the whole action (its count and filters, who and
when) that lists the visits it accepted, grouped by what each was before, with what a
single review records for them: `{"before": …, "after": …, "ids": [...]}`. A visit's
history in the audit log (the admin page filtered by the record) finds that entry by the
visit's id (`history_condition`), so it reads the same however the visit was accepted. One
entry instead of one per visit: hashing and writing 5,000 chained entries was a third of
the post at 100,000 visits (bench/dashboard.py).

The volunteer's phone hears of each acceptance through a `my_submissions` change, as
after a single review. On PostgreSQL the change rows are built from the UPDATE's own
RETURNING in the same statement, so no visit travels to Python and back.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, case, cast, false, func, insert, literal, literal_column, null, select, true, update
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by

from server import audit, changes, grade_counts
from server.extensions import db
from server.models import AuditEntry, Change, ChangeCounter, Person, Submission, utcnow
from server.reporting import ReviewFilters, review_conditions

# Ticked visits come from one page of the queue; more than this in one post is not a page.
MOST_SELECTED = 500
# Ids per UPDATE ... WHERE id IN (...): well within every backend's limit on bound values.
UPDATE_CHUNK = 1000
# The audit actions of a bulk acceptance; each lists the visits it accepted under "accepted".
BULK_ACTIONS = ("submission.accept_selected", "submission.accept_matching")
ACCEPTED = {"review_status": "accepted", "review_reason": None}


@dataclass
class Accepted:
    """What a bulk acceptance did: how many visits it changed, or why it changed none."""

    count: int
    changed: bool
    found: int | None = None  # for "all matching": how many match now, when that is not what was confirmed


@dataclass
class Before:
    """The visits a bulk acceptance changed that were alike before: same status, same reason."""

    status: str
    reason: str | None
    ids: list[str]


def accept_selected(area_id: str, ids: list[str], reviewer: Person) -> Accepted:
    """Accept the ticked visits that are the area's and not accepted yet; others are left alone."""
    wanted = list(dict.fromkeys(i for i in ids if i))[:MOST_SELECTED]
    if not wanted:
        return Accepted(0, False)
    groups = _set_accepted([Submission.area_id == area_id, Submission.id.in_(wanted),
                            Submission.review_status != "accepted"], reviewer)
    count = _record(area_id, groups, {"chosen": "selected", "ticked": len(wanted)}, "submission.accept_selected")
    return Accepted(count, True)


def accept_matching(area_id: str, filters: ReviewFilters, confirmed: int, reviewer: Person) -> Accepted:
    """Accept every visit the filters match, if they still number `confirmed`; else change nothing.

    The filters are run again here, in the statement that changes the visits, so visits
    that arrived or were reviewed since the count was shown are noticed, not accepted
    unseen: when the number changed, the caller rolls the change back (the visits, their
    change rows and the change counter alike) and asks again.
    """
    if not filters.bulk_acceptable:
        return Accepted(0, False, found=0)
    groups = _set_accepted(review_conditions(area_id, filters), reviewer)
    found = sum(len(group.ids) for group in groups)
    if found != confirmed:
        return Accepted(0, False, found=found)
    _record(area_id, groups, {"chosen": "all_matching", "filters": filters.recorded()}, "submission.accept_matching")
    return Accepted(found, True)


def _set_accepted(conditions: list, reviewer: Person) -> list[Before]:
    """Accept the visits matching `conditions` and write their phones' change rows; what each was before."""
    values = {**ACCEPTED, "reviewed_by": reviewer.id, "reviewed_at": utcnow()}
    if db.session.get_bind().dialect.name == "postgresql":
        return _set_accepted_postgresql(conditions, values)
    return _set_accepted_sqlite(conditions, values)


def _set_accepted_postgresql(conditions: list, values: dict) -> list[Before]:
    """One statement: the UPDATE, the change counter moved by its count, the change rows, and the ids grouped.

    The UPDATE joins the matching rows (locked, and their conditions checked again if
    another review changed them meanwhile) to read their old status: a list of ids in the
    statement would be compared with every row of the table. Its RETURNING feeds the
    change rows (built by `_my_submission_json`, the same record as
    `changes.my_submission_record`) and the seq numbers, taken from the counter row as
    `changes.take_seqs` does and in id order as the Python path writes them; the counter
    stays locked until commit, as after any other write of changes.
    """
    table, counter, change = Submission.__table__, ChangeCounter.__table__, Change.__table__
    old = (select(table.c.id.label("old_id"), table.c.review_status.label("old_status"),
                  table.c.review_reason.label("old_reason"))
           .where(*conditions).with_for_update().subquery("old"))
    # The conditions outside too, so the planner reaches the rows by the area's index, not a scan of all.
    accepted = (update(table).where(table.c.id == old.c.old_id, *conditions).values(**values)
                .returning(*(table.c[name] for name in (*changes.MY_SUBMISSION_FIELDS, "person_id") if name != "data"),
                           old.c.old_status, old.c.old_reason)
                .cte("accepted"))
    total = select(func.count()).select_from(accepted).scalar_subquery()
    taken = (update(counter).where(counter.c.id == 1, total > 0).values(value=counter.c.value + total)
             .returning((counter.c.value - total).label("first_before")).cte("taken"))
    numbered = select(accepted, func.row_number().over(order_by=accepted.c.id).label("n")).cte("numbered")
    rows = (select(taken.c.first_before + numbered.c.n, literal_column("'my_submissions'"), numbered.c.id,
                   literal_column("'put'"), null(), numbered.c.person_id, _my_submission_json(numbered),
                   literal(utcnow(), change.c.created_at.type))
            .select_from(numbered.join(taken, true())))
    written = insert(change).from_select(
        ["seq", "collection", "record_id", "op", "area_id", "person_id", "data", "created_at"], rows).cte("written")
    grouped = (select(accepted.c.old_status, accepted.c.old_reason,
                      func.array_agg(aggregate_order_by(accepted.c.id, accepted.c.id)))
               .group_by(accepted.c.old_status, accepted.c.old_reason)
               .add_cte(written))
    return [Before(status, reason, list(ids)) for status, reason, ids in db.session.execute(grouped)]


def _iso(moment):
    """A timestamptz as Python's `isoformat()` writes an aware UTC datetime (microseconds only when not zero)."""
    utc = func.timezone(literal_column("'UTC'"), moment)
    fraction = case((func.date_trunc(literal_column("'second'"), utc) == utc, literal_column("''")),
                    else_=func.to_char(utc, literal_column("'.US'")))
    return func.concat(func.to_char(utc, literal_column("'YYYY-MM-DD\"T\"HH24:MI:SS'")), fraction,
                       literal_column("'+00:00'"))


def _my_submission_json(row):
    """`changes.my_submission_record` in SQL, for a visit just accepted (so nothing to correct)."""
    def key(name):
        return literal_column(f"'{name}'")
    return func.json_build_object(
        key("id"), row.c.id,
        key("form"), func.json_build_object(key("id"), row.c.form_id, key("version"), row.c.form_version),
        key("kind"), row.c.kind, key("site_id"), row.c.site_id,
        key("observed_at"), _iso(row.c.observed_at), key("received_at"), _iso(row.c.received_at),
        key("review_status"), row.c.review_status, key("review_reason"), row.c.review_reason,
        key("supersedes"), row.c.supersedes_id, key("superseded_by"), row.c.superseded_by_id,
        type_=Change.__table__.c.data.type)


def _set_accepted_sqlite(conditions: list, values: dict) -> list[Before]:
    """SQLite's writing transaction already holds the database: read the rows, then update them by key,
    a chunk of ids at a time, and write their change rows as any review does."""
    session = db.session
    table = Submission.__table__
    before = {row.id: row for row in session.execute(
        select(table.c.id, table.c.review_status, table.c.review_reason).where(*conditions))}
    ids = sorted(before)
    after = [table.c[name] for name in (*changes.MY_SUBMISSION_FIELDS, "person_id") if name != "data"]
    pending = []
    for start in range(0, len(ids), UPDATE_CHUNK):
        rows = session.execute(update(table).where(table.c.id.in_(ids[start:start + UPDATE_CHUNK]))
                               .values(**values).returning(*after)).all()
        # RETURNING's order is not promised: the phones' rows go in id order, as on PostgreSQL.
        for row in sorted(rows, key=lambda r: r.id):
            pending.append(changes.PendingChange("my_submissions", row.id, person_id=row.person_id,
                                                 data=changes.my_submission_record(row._mapping)))
    changes.write_changes(pending)
    groups: dict[tuple, list[str]] = {}
    for visit_id in ids:
        groups.setdefault((before[visit_id].review_status, before[visit_id].review_reason), []).append(visit_id)
    return [Before(status, reason, grouped) for (status, reason), grouped in groups.items()]


def _record(area_id: str, groups: list[Before], details: dict, action: str) -> int:
    """Audit the whole action in one entry, listing the visits it accepted; return how many it accepted.

    The action is audited even when it changed nothing (every ticked visit was accepted
    already): the log says what the coordinator asked for, and that it came to none.
    """
    # Flagged visits accepted count again: their grades rejoin the kept counts (superseded ones stay out).
    grade_counts.visits_counted(db.session, [visit_id for group in groups if group.status == "flagged"
                                             for visit_id in group.ids])
    accepted = []
    for group in sorted(groups, key=lambda g: (g.status, g.reason or "")):
        # What changed, as a single review records it (only the fields that differ).
        before, after = audit.changed_fields({"review_status": group.status, "review_reason": group.reason},
                                             ACCEPTED)
        accepted.append({"before": before, "after": after, "ids": sorted(group.ids)})
    count = sum(len(group["ids"]) for group in accepted)
    audit.record(action, area_id=area_id, details={"count": count, **details, "accepted": accepted})
    # The ORM's copies of these visits (if any were loaded) no longer say what the table says.
    db.session.expire_all()
    return count


# -- a visit's history in the audit log ---------------------------------------------------------


def history_condition(visit_id: str):
    """WHERE over `AuditEntry`: the bulk acceptances that list `visit_id` among the visits they accepted.

    Only the visit's own area's bulk entries are read (by the area's index); the test of the
    list is the backend's own JSON containment. An id that is no visit (visits are never
    deleted: erasure de-identifies them) matches none, so looking up a person or a device
    never reads every bulk entry of the log.
    """
    entry = AuditEntry.__table__
    area_id = db.session.execute(select(Submission.area_id).where(Submission.id == visit_id)).scalar()
    if area_id is None:
        return false()
    narrowed = [entry.c.action.in_(BULK_ACTIONS), entry.c.area_id == area_id]
    if db.session.get_bind().dialect.name == "postgresql":
        probe = literal({"accepted": [{"ids": [visit_id]}]}, JSONB)
        return and_(*narrowed, cast(entry.c.details, JSONB).op("@>")(probe))
    groups = func.json_each(entry.c.details, "$.accepted").table_valued("value").alias("bulk_group")
    listed = func.json_each(groups.c.value, "$.ids").table_valued("value").alias("bulk_id")
    return and_(*narrowed, select(listed.c.value).select_from(groups).join(listed, true())
                .where(listed.c.value == visit_id).exists())


def accepted_visit(details: dict, visit_id: str) -> dict | None:
    """What a bulk acceptance did to one visit, as a single review records it; None if it did not accept it."""
    for group in (details or {}).get("accepted") or ():
        if visit_id in group.get("ids", ()):
            return {"before": group.get("before"), "after": group.get("after")}
    return None


def details_shown(details: dict) -> dict:
    """A bulk acceptance's details with each list of ids replaced by its length, for a page (the CSV keeps all)."""
    if not isinstance((details or {}).get("accepted"), list):
        return details
    return {**details, "accepted": [{**{k: v for k, v in group.items() if k != "ids"},
                                     "visits": len(group.get("ids", ()))} for group in details["accepted"]]}
