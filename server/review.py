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
    rows = _lock(select(Submission.id, Submission.review_status, Submission.review_reason)
                 .where(Submission.area_id == area_id, Submission.id.in_(wanted),
                        Submission.review_status != "accepted"))
    _accept(area_id, rows, reviewer, {"chosen": "selected", "ticked": len(wanted)}, "submission.accept_selected")
    return Accepted(len(rows), True)


def accept_matching(area_id: str, filters: ReviewFilters, confirmed: int, reviewer: Person) -> Accepted:
    """Accept every visit the filters match, if they still number `confirmed`; else change nothing.

    The filters are run again here, in the transaction that changes the visits (rows locked
    on PostgreSQL; SQLite's writing transaction holds the whole database), so visits that
    arrived or were reviewed since the count was shown are noticed, not accepted unseen.
    """
    if not filters.bulk_acceptable:
        return Accepted(0, False, found=0)
    rows = _lock(select(Submission.id, Submission.review_status, Submission.review_reason)
                 .where(*review_conditions(area_id, filters)))
    if len(rows) != confirmed:
        return Accepted(0, False, found=len(rows))
    _accept(area_id, rows, reviewer, {"chosen": "all_matching", "filters": filters.recorded()},
            "submission.accept_matching")
    return Accepted(len(rows), True)


def _lock(query) -> list:
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Submission)
    return db.session.execute(query.order_by(Submission.id)).all()


def _accept(area_id: str, rows: list, reviewer: Person, details: dict, action: str) -> None:
    """Set the rows' visits accepted, tell their phones, and audit each visit and the whole action.

    The action is audited even when it changed nothing (every ticked visit was accepted
    already): the log says what the coordinator asked for, and that it came to none.
    """
    session = db.session
    now = utcnow()
    ids = [row.id for row in rows]
    table = Submission.__table__
    returned = []
    for start in range(0, len(ids), UPDATE_CHUNK):
        returned += session.execute(
            update(table).where(table.c.id.in_(ids[start:start + UPDATE_CHUNK]))
            .values(review_status="accepted", review_reason=None, reviewed_by=reviewer.id, reviewed_at=now)
            .returning(*(table.c[name] for name in (*changes.MY_SUBMISSION_FIELDS, "person_id")))
        ).all()
    if returned:
        changes.write_changes([
            changes.PendingChange("my_submissions", row.id, data=changes.my_submission_record(dict(row._mapping)),
                                  person_id=row.person_id)
            for row in sorted(returned, key=lambda r: r.id)
        ])
    batch = str(uuid.uuid4())
    entries = [{"action": "submission.review", "record_type": "submission", "record_id": row.id, "area_id": area_id,
                "before": {"review_status": row.review_status, "review_reason": row.review_reason},
                "after": {"review_status": "accepted", "review_reason": None}, "details": {"batch": batch}}
               for row in rows]
    entries.append({"action": action, "area_id": area_id,
                    "details": {"batch": batch, "count": len(rows), **details}})
    audit.record_many(entries)
    # The ORM's copies of these visits (if any were loaded) no longer say what the table says.
    session.expire_all()
