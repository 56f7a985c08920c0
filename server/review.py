"""Accepting visits in bulk: the ones ticked on a page of the queue, or every visit a filter matches.

One review is audited as `submission.review` with the status before and after; a bulk
acceptance writes that same entry for each visit it changes (so a visit's history in the
audit log reads the same however it was accepted) plus one entry for the bulk action with
its count and filters, all carrying one batch id. The volunteer's phone hears of each
acceptance through a `my_submissions` change, as after a single review.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update

from server import audit, changes
from server.extensions import db
from server.models import Person, Submission, utcnow
from server.reporting import ReviewFilters, review_conditions

# Ticked visits come from one page of the queue; more than this in one post is not a page.
MOST_SELECTED = 500
# Ids per UPDATE ... WHERE id IN (...): well within every backend's limit on bound values.
UPDATE_CHUNK = 1000


@dataclass
class Accepted:
    """What a bulk acceptance did: how many visits it changed, or why it changed none."""

    count: int
    changed: bool
    found: int | None = None  # for "all matching": how many match now, when that is not what was confirmed


def accept_selected(area_id: str, ids: list[str], reviewer: Person) -> Accepted:
    """Accept the ticked visits that are the area's and not accepted yet; others are left alone."""
    wanted = list(dict.fromkeys(i for i in ids if i))[:MOST_SELECTED]
    if not wanted:
        return Accepted(0, False)
    changed = _set_accepted([Submission.area_id == area_id, Submission.id.in_(wanted),
                             Submission.review_status != "accepted"], reviewer)
    _record(area_id, changed, {"chosen": "selected", "ticked": len(wanted)}, "submission.accept_selected")
    return Accepted(len(changed), True)


def accept_matching(area_id: str, filters: ReviewFilters, confirmed: int, reviewer: Person) -> Accepted:
    """Accept every visit the filters match, if they still number `confirmed`; else change nothing.

    The filters are run again here, in the statement that changes the visits, so visits
    that arrived or were reviewed since the count was shown are noticed, not accepted
    unseen: when the number changed, the caller rolls the change back and asks again.
    """
    if not filters.bulk_acceptable:
        return Accepted(0, False, found=0)
    changed = _set_accepted(review_conditions(area_id, filters), reviewer)
    if len(changed) != confirmed:
        return Accepted(0, False, found=len(changed))
    _record(area_id, changed, {"chosen": "all_matching", "filters": filters.recorded()},
            "submission.accept_matching")
    return Accepted(len(changed), True)


def _set_accepted(conditions: list, reviewer: Person) -> list:
    """Accept the visits matching `conditions`; rows of what each was before and the phones' fields after.

    On PostgreSQL one UPDATE joins the matching rows (locked, and their conditions checked
    again if another review changed them meanwhile) and returns their old status: a list
    of ids in the statement would be compared with every row of the table. SQLite's
    writing transaction already holds the database: it reads the rows, then updates them by
    key, a chunk of ids at a time.
    """
    session = db.session
    table = Submission.__table__
    values = {"review_status": "accepted", "review_reason": None, "reviewed_by": reviewer.id, "reviewed_at": utcnow()}
    after = [table.c[name] for name in (*changes.MY_SUBMISSION_FIELDS, "person_id")]
    if session.get_bind().dialect.name == "postgresql":
        old = (select(table.c.id.label("old_id"), table.c.review_status.label("old_status"),
                      table.c.review_reason.label("old_reason"))
               .where(*conditions).with_for_update().subquery("old"))
        # The conditions outside too, so the planner reaches the rows by the area's index, not a scan of all.
        return session.execute(update(table).where(table.c.id == old.c.old_id, *conditions).values(**values)
                               .returning(*after, old.c.old_status, old.c.old_reason)).all()
    before = {row.id: row for row in session.execute(
        select(table.c.id, table.c.review_status.label("old_status"), table.c.review_reason.label("old_reason"))
        .where(*conditions))}
    ids = sorted(before)
    changed = []
    for start in range(0, len(ids), UPDATE_CHUNK):
        for row in session.execute(update(table).where(table.c.id.in_(ids[start:start + UPDATE_CHUNK]))
                                   .values(**values).returning(*after)):
            changed.append({**row._mapping, "old_status": before[row.id].old_status,
                            "old_reason": before[row.id].old_reason})
    return changed


def _record(area_id: str, changed: list, details: dict, action: str) -> None:
    """Tell the phones of each accepted visit, and audit each visit and the whole action.

    The action is audited even when it changed nothing (every ticked visit was accepted
    already): the log says what the coordinator asked for, and that it came to none.
    """
    rows = sorted((r if isinstance(r, dict) else dict(r._mapping) for r in changed), key=lambda r: r["id"])
    if rows:
        changes.write_changes([
            changes.PendingChange("my_submissions", row["id"], data=changes.my_submission_record(row),
                                  person_id=row["person_id"])
            for row in rows
        ])
    batch = str(uuid.uuid4())
    # What changed, as a single review records it (only the fields that differ), worked out once
    # per kind of visit before (waiting, or flagged with a reason) rather than once per visit.
    changed_by_kind: dict[tuple, dict] = {}
    entries = []
    for row in rows:
        kind = (row["old_status"], row["old_reason"])
        change = changed_by_kind.get(kind)
        if change is None:
            before, after = audit.changed_fields({"review_status": kind[0], "review_reason": kind[1]},
                                                 {"review_status": "accepted", "review_reason": None})
            change = changed_by_kind[kind] = {"batch": batch, "before": before, "after": after}
        entries.append({"action": "submission.review", "record_type": "submission", "record_id": row["id"],
                        "area_id": area_id, "details": change})
    entries.append({"action": action, "area_id": area_id,
                    "details": {"batch": batch, "count": len(rows), **details}})
    audit.record_many(entries)
    # The ORM's copies of these visits (if any were loaded) no longer say what the table says.
    db.session.expire_all()
