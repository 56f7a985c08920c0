"""The pull half of a sync: the changes a device may see, after its cursor, in seq order."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased

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

    A device with nothing yet (no cursor, or told to reset) first receives the current state
    of its scope: each live record once, as its latest change says, and nothing about
    records deleted since, however long the area's history. Its cursor then carries the seq
    that state was read up to, and from there it follows the log like any other device.
    """
    scope = cursors.scope_fingerprint(area_ids, roles)
    # Read the highest committed seq first: seq order is commit order, so every change up
    # to it is visible to the queries below, and a cursor moved up to it skips nothing.
    highest = _highest_seq()
    start = cursors.start_point(cursor_text, epoch=epoch, scope=scope, kept_from=kept_from,
                                issued_up_to=highest)
    page = _page(start, limit=limit, epoch=epoch, scope=scope, highest=highest, person_id=person_id,
                 area_ids=area_ids)
    follows_from = start.after if start.upto is None else start.upto
    if cursor_text is not None and not start.reset and follows_from < _kept_from() - 1:
        # `kerbside compact` committed between reading `kept_from` and the log (on PostgreSQL
        # each statement sees what was committed when it began): the log this cursor needs may
        # have lost a delete, so the replica is rebuilt, as for any cursor older than the log.
        page = _page(cursors.Start(0, True), limit=limit, epoch=epoch, scope=scope, highest=highest,
                     person_id=person_id, area_ids=area_ids)
    return page


def _page(start: cursors.Start, *, limit: int, epoch: str, scope: str, highest: int, person_id: str,
          area_ids: list[str]) -> dict:
    """The changes after `start` up to `highest`, at most `limit`, and the cursor past them."""
    visible = _visible_to(person_id, area_ids)
    rows, upto = [], None
    if start.after == 0 or start.upto is not None:
        upto = highest if start.upto is None else start.upto
        rows = _current_state(visible, after=start.after, upto=upto, limit=limit + 1)
    if len(rows) <= limit:  # the current state fits this page: the log after it fills the rest
        after = start.after if upto is None else upto
        rows += _log(visible, after=after, highest=highest, limit=limit + 1 - len(rows))
    has_more = len(rows) > limit
    rows = rows[:limit]
    if has_more and upto is not None and rows[-1].seq <= upto:
        # The page ended inside the current state: the next one goes on with it.
        cursor = cursors.Cursor(epoch=epoch, seq=rows[-1].seq, scope=scope, upto=upto)
    elif has_more or (rows and upto is None):
        cursor = cursors.Cursor(epoch=epoch, seq=rows[-1].seq, scope=scope)
    else:
        # Nothing more in scope up to the highest committed seq: move the cursor past it, so
        # the next pull does not walk other areas' changes again.
        cursor = cursors.Cursor(epoch=epoch, seq=max(start.after, highest), scope=scope)
    return {
        "changes": [
            {"collection": r.collection, "id": r.record_id, "op": r.op, "seq": r.seq,
             **({"data": r.data} if r.op == "put" else {})}
            for r in rows
        ],
        "cursor": cursors.encode(cursor),
        "has_more": has_more,
        "reset": start.reset,
    }


COLUMNS = (Change.seq, Change.collection, Change.record_id, Change.op, Change.data)


def _visible_to(person_id: str, area_ids: list[str]):
    """The change rows a device may see, as a condition on a change table (or an alias of it)."""
    def visible(change):
        return or_(
            and_(change.area_id.is_(None), change.person_id.is_(None)),
            change.area_id.in_(area_ids) if area_ids else False,
            and_(
                change.person_id == person_id,
                or_(change.collection != "my_submissions",
                    change.created_at >= utcnow() - timedelta(days=MY_SUBMISSIONS_DAYS)),
            ),
        )
    return visible


def _log(visible, *, after: int, highest: int, limit: int) -> list:
    """Every change the device may see after `after`, in seq order."""
    if limit <= 0:
        return []
    return db.session.execute(
        select(*COLUMNS).where(Change.seq > after, Change.seq <= highest, visible(Change))
        .order_by(Change.seq).limit(limit)
    ).all()


def _current_state(visible, *, after: int, upto: int, limit: int) -> list:
    """The latest change of each live record the device may see, up to `upto`, in seq order.

    A record whose latest visible change is a delete is left out; one changed after `upto`
    is left out too, since the log from `upto` brings it. Found by the index on
    (collection, record_id, seq): one probe per change row in scope.
    """
    newer = aliased(Change)
    superseded = (select(newer.seq)
                  .where(newer.collection == Change.collection, newer.record_id == Change.record_id,
                         newer.seq > Change.seq, visible(newer))
                  .exists())
    return db.session.execute(
        select(*COLUMNS).where(Change.seq > after, Change.seq <= upto, Change.op == "put", visible(Change),
                               ~superseded)
        .order_by(Change.seq).limit(limit)
    ).all()


def _kept_from() -> int:
    return db.session.execute(select(ServerState.changes_kept_from).where(ServerState.id == 1)).scalar_one()


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
