"""The change log that devices pull from.

`seq` comes from the single counter row, taken inside the write transaction and as late
as possible in it: the row lock is held until commit, so `seq` order is commit order on
PostgreSQL as on SQLite, and a reader following `seq > cursor` can never skip a change
that commits late.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update

from server import bulk
from server.extensions import db
from server.models import Change, ChangeCounter, utcnow


@dataclass
class PendingChange:
    collection: str
    record_id: str
    op: str = "put"
    data: dict | None = None
    area_id: str | None = None
    person_id: str | None = None


def take_seqs(session, count: int) -> list[int]:
    """Reserve `count` consecutive seq numbers; the counter row stays locked until commit."""
    if count <= 0:
        return []
    # On the table, not the mapped class: the same SQL without the ORM's bookkeeping for an update.
    counter = ChangeCounter.__table__
    last = session.execute(
        update(counter).where(counter.c.id == 1).values(value=counter.c.value + count).returning(counter.c.value)
    ).scalar_one()
    return list(range(last - count + 1, last + 1))


def write_changes(changes: list[PendingChange], session=None) -> list[int]:
    """Write change rows for `changes` in the current transaction; call it last, just before commit."""
    session = session or db.session
    seqs = take_seqs(session, len(changes))
    if seqs:
        now = utcnow()
        bulk.insert_rows(
            session,
            Change.__table__,
            [
                {
                    "seq": seq,
                    "collection": change.collection,
                    "record_id": change.record_id,
                    "op": change.op,
                    "area_id": change.area_id,
                    "person_id": change.person_id,
                    "data": change.data,
                    "created_at": now,
                }
                for seq, change in zip(seqs, changes)
            ],
        )
    return seqs


def site_change(site) -> PendingChange:
    """What phones pull about a site: an approved site goes to its area, a proposed one only to its proposer.

    A merged or rejected site leaves every replica of the area: the proposer's, and those of
    phones that got it before sites were moderated (a delete of a record a replica never had
    changes nothing there, and tells no more than an id).
    """
    if site.status == "proposed" and site.proposed_by:
        return PendingChange("sites", site.id, data=site.to_sync(), person_id=site.proposed_by)
    if site.status in ("merged", "rejected"):
        return PendingChange("sites", site.id, op="delete", area_id=site.area_id)
    # Approved, or proposed before moderation by no one known (it reached the area then).
    return PendingChange("sites", site.id, data=site.to_sync(), area_id=site.area_id)


def site_record_for(site, values: dict) -> dict:
    """A site as one phone sees it with its own edit laid over (an edit waiting for review)."""
    return site.to_sync() | values | {"pending_edit": True}


def action_change(action) -> PendingChange:
    return PendingChange("actions", action.id, data=action.to_sync(), area_id=action.area_id)


def form_change(form_version) -> PendingChange:
    return PendingChange(
        "forms", form_version.sync_id, data=form_version.to_sync(), area_id=form_version.form.area_id
    )


def agreement_change(agreement_version) -> PendingChange:
    return PendingChange(
        "agreements",
        agreement_version.sync_id,
        data=agreement_version.to_sync(),
        area_id=agreement_version.agreement.area_id,
    )


def area_change(area) -> PendingChange:
    return PendingChange("areas", area.id, data=area.to_sync(), area_id=area.id)


MY_SUBMISSION_FIELDS = ("id", "form_id", "form_version", "kind", "site_id", "observed_at", "received_at",
                        "review_status", "review_reason", "supersedes_id", "superseded_by_id", "data")


def submission_change(submission) -> PendingChange:
    """The `my_submissions` record of a stored visit, after its review changed."""
    row = {name: getattr(submission, name) for name in MY_SUBMISSION_FIELDS}
    return PendingChange("my_submissions", submission.id, data=my_submission_record(row), person_id=submission.person_id)


def my_submission_record(row: dict) -> dict:
    """What a volunteer sees of their own visit: when it arrived and how it was reviewed."""
    return {
        "id": row["id"],
        "form": {"id": row["form_id"], "version": row["form_version"]},
        "kind": row["kind"],
        "site_id": row["site_id"],
        "observed_at": row["observed_at"].isoformat(),
        "received_at": row["received_at"].isoformat(),
        "review_status": row.get("review_status") or "pending",
        "review_reason": row.get("review_reason"),
        "supersedes": row.get("supersedes_id"),
        "superseded_by": row.get("superseded_by_id"),
        **_to_correct(row),
    }


def _to_correct(row: dict) -> dict:
    """What a phone needs to correct a flagged visit it may no longer hold: its answers, notes and time.

    Only while the visit waits for its correction, so other records stay small.
    """
    data = row.get("data") or {}
    if row.get("review_status") != "flagged" or row.get("superseded_by_id") or not isinstance(data, dict):
        return {}
    return {"answers": data.get("answers") or {}, "notes": data.get("notes") or "",
            "observed_at_stated": data.get("observed_at")}


def device_message(message_id: str, text: str, *, area_id=None, person_id=None, data=None) -> PendingChange:
    return PendingChange(
        "device", message_id, data={"id": message_id, "message": text, **(data or {})},
        area_id=area_id, person_id=person_id,
    )
