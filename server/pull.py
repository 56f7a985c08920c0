"""The pull half of a sync: the changes a device may see, after its cursor, in seq order."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, func, or_, select

from server import operations
from server.extensions import db
from server.models import Change, ServerState, utcnow
from sync import cursor as cursors

MY_SUBMISSIONS_DAYS = 90


def pull(*, cursor_text, limit: int, epoch: str, kept_from: int, person_id: str,
         area_ids: list[str], roles: list[str]) -> dict:
    """A page of changes for one device; `reset` when its replica must be rebuilt.

    `cursor_text` is whatever the device sent: anything but a cursor this server issued
    (a forged one, a damaged one, one past every seq committed here) means `reset`.
    """
    scope = cursors.scope_fingerprint(area_ids, roles)
    # Read the highest committed seq first: seq order is commit order, so every change up
    # to it is visible to the query below, and a cursor moved up to it skips nothing.
    highest = _highest_seq()
    after, reset = cursors.start_point(cursor_text, epoch=epoch, scope=scope, kept_from=kept_from,
                                       issued_up_to=highest)
    visible = or_(
        and_(Change.area_id.is_(None), Change.person_id.is_(None)),
        Change.area_id.in_(area_ids) if area_ids else False,
        and_(
            Change.person_id == person_id,
            or_(Change.collection != "my_submissions", Change.created_at >= utcnow() - timedelta(days=MY_SUBMISSIONS_DAYS)),
        ),
    )
    rows = db.session.execute(
        select(Change.seq, Change.collection, Change.record_id, Change.op, Change.data)
        .where(Change.seq > after, Change.seq <= highest, visible)
        .order_by(Change.seq)
        .limit(limit + 1)
    ).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1].seq if rows else after
    if not rows and not reset:
        # Nothing new in scope: move the cursor past everything committed so far, so the
        # next pull does not walk other areas' changes again.
        last = max(after, highest)
    return {
        "changes": [
            {"collection": r.collection, "id": r.record_id, "op": r.op, "seq": r.seq,
             **({"data": r.data} if r.op == "put" else {})}
            for r in rows
        ],
        "cursor": cursors.encode(cursors.Cursor(epoch=epoch, seq=last, scope=scope)),
        "has_more": has_more,
        "reset": reset,
    }


def _highest_seq() -> int:
    return db.session.execute(select(func.coalesce(func.max(Change.seq), 0))).scalar_one()


def scope_view(device) -> dict:
    """What a brand-new replica of `device`'s scope would hold: every change from no cursor,
    folded into `{(collection, id): data}` — the view a device's replica must end up equal to."""
    area_ids, roles = operations.device_scope(device.person)
    state = db.session.get(ServerState, 1)
    page = pull(cursor_text=None, limit=10**9, epoch=state.epoch, kept_from=state.changes_kept_from,
                person_id=device.person_id, area_ids=area_ids, roles=roles)
    view: dict = {}
    for change in page["changes"]:
        key = (change["collection"], change["id"])
        if change["op"] == "delete":
            view.pop(key, None)
        else:
            view[key] = change.get("data")
    return view
