"""The sync pull bench's data (bench/sync_pull.py) is what it says, so its figures mean something."""

from __future__ import annotations

import random

from sqlalchemy import select, update

from bench import sync_pull
from server import operations
from server.extensions import db
from server.models import Change, ServerState, Site
from sync import cursor as cursors


def _history_area(client, sites=20, rows=13_000):
    sync_pull.publish_forms()
    area = sync_pull.make_area("history", sites, agreements=0)
    for agreement in ("history-deal-0", "history-deal-1"):
        operations.publish_agreement_version(operations.draft_agreement_version(agreement, area, sync_pull.AGREEMENT))
    db.session.commit()
    made = sync_pull.build_history(area, rows, random.Random(7))
    return area, made


def test_history_leaves_the_tables_as_a_first_sync_shows_them(app, client):
    area, made = _history_area(client)
    token = sync_pull.enrol(client, area)

    records = sync_pull.first_sync(client, token)["records"]

    assert made["edited_sites"] == 20 and made["ghost_rows"] == 12_000
    assert sync_pull.live_problems(records, area) == []
    assert sum(1 for key in records if key[0] == "sites") == 20
    assert sorted(key[1] for key in records if key[0] == "agreements") == ["history-deal-0@21", "history-deal-1@21"]


def test_the_live_check_sees_a_site_the_history_left_at_another_version(app, client):
    """Negative control: a table that disagrees with the history is reported."""
    area, _made = _history_area(client)
    token = sync_pull.enrol(client, area)
    records = sync_pull.first_sync(client, token)["records"]
    site_id = db.session.execute(select(Site.id).where(Site.area_id == area.id, Site.status == "approved")).scalars().first()
    db.session.execute(update(Site).where(Site.id == site_id).values(version=Site.version + 1))
    db.session.commit()

    assert sync_pull.live_problems(records, area) == ["1 sites at another version than the table's"]


def test_a_cursor_behind_the_area_pulls_exactly_that_many_of_its_changes(app, client):
    areas = []
    for n in range(3):
        area = operations.create_area(f"area-{n}", f"Area {n}")
        areas.append({"id": area.id, "area": area, "sites": [f"site-{n}-{s}" for s in range(sync_pull.SITES_PER_AREA)]})
    db.session.commit()
    token = sync_pull.enrol(client, areas[0]["area"])
    first = client.post("/api/sync/v1", json={"protocol": 1, "cursor": None, "mutations": []},
                        headers={"Authorization": f"Bearer {token}"}).get_json()
    sync_pull.fill_areas(3_000, areas, 0, random.Random(3))
    cursor = sync_pull.cursor_behind(db.session.get(ServerState, 1).epoch, cursors.decode(first["cursor"]).scope,
                                     areas[0]["id"], 100)

    page = client.post("/api/sync/v1", json={"protocol": 1, "cursor": cursor, "mutations": []},
                       headers={"Authorization": f"Bearer {token}"}).get_json()

    assert len(page["changes"]) == 100 and not page["has_more"] and not page["reset"]
    area_of = dict(db.session.execute(select(Change.seq, Change.area_id)).all())
    assert {area_of[change["seq"]] for change in page["changes"]} == {areas[0]["id"]}
