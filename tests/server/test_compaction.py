"""First syncs bounded by what is live, and `kerbside compact` (issue 11, point 3).

A new or reset device receives each live record of its scope once, as its latest change
says, and nothing about records deleted since; compaction removes the changes no device can
need, and a device whose cursor is older than what the log keeps is told to reset.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from server import changes, compaction, operations
from server.cli import main as kerbside
from server.extensions import db
from server.models import Change, Site, utcnow
from sync import cursor as cursors


def _pull_all(sync, token, limit=500, cursor=None, between_pages=None):
    """Follow has_more to the end; every change and the last body."""
    seen = []
    while True:
        body = sync(token, cursor=cursor, limit=limit).get_json()
        seen.extend(body["changes"])
        cursor = body["cursor"]
        if not body["has_more"]:
            return seen, body
        if between_pages:
            between_pages()


def _fold(changes_, replica=None):
    """A replica after applying `changes_` in order, as a client keeps it: {(collection, id): data}."""
    replica = dict(replica or {})
    for change in changes_:
        key = (change["collection"], change["id"])
        if change["op"] == "delete":
            replica.pop(key, None)
        else:
            replica[key] = change["data"]
    return replica


def _history(area, *, renames: int):
    """An area whose sites were renamed `renames` times each, and one site merged away."""
    sites = operations.create_sites(area, [{"name": f"Street {n}"} for n in range(5)])
    db.session.commit()
    for round_ in range(renames):
        for site in sites:
            site.name = f"{site.name.split(' (')[0]} ({round_})"
            site.version += 1
        changes.write_changes([changes.site_change(site) for site in sites])
        db.session.commit()
    gone = sites[-1]
    gone.status = "merged"
    gone.merged_into_id = sites[0].id
    changes.write_changes([changes.site_change(gone)])
    db.session.commit()
    return sites


def _change_rows() -> int:
    return db.session.execute(select(func.count()).select_from(Change)).scalar_one()


def _age_every_change(days: int):
    db.session.execute(update(Change).values(created_at=utcnow() - timedelta(days=days)))
    db.session.commit()


def test_a_first_sync_receives_each_live_record_once_and_no_deletes(make_area, enrol, sync):
    area = make_area()
    sites = _history(area, renames=20)
    token, _ = enrol(area)
    seen, last = _pull_all(sync, token)
    site_changes = [c for c in seen if c["collection"] == "sites"]
    # Four live sites, each once, with its latest name; the merged one is not mentioned at all.
    assert sorted(c["id"] for c in site_changes) == sorted(s.id for s in sites[:4])
    assert {c["data"]["name"] for c in site_changes} == {f"Street {n} (19)" for n in range(4)}
    assert all(c["op"] == "put" for c in seen)
    assert len({(c["collection"], c["id"]) for c in seen}) == len(seen)
    # And the device then follows the log as any other does.
    sites[0].name = "Street 0 renamed"
    sites[0].version += 1
    changes.write_changes([changes.site_change(sites[0])])
    db.session.commit()
    body = sync(token, cursor=last["cursor"]).get_json()
    assert [(c["id"], c["data"]["name"]) for c in body["changes"]] == [(sites[0].id, "Street 0 renamed")]


def test_a_site_record_says_nothing_its_change_already_says(make_area, make_site, enrol, sync):
    area = make_area()
    site = make_site(area, name="Canal Street")
    token, _ = enrol(area)
    seen, _last = _pull_all(sync, token)
    (record,) = [c for c in seen if c["collection"] == "sites"]
    assert record["id"] == site.id
    assert "id" not in record["data"] and "proposed" not in record["data"]
    assert record["data"]["status"] == "approved" and record["data"]["name"] == "Canal Street"


def test_a_first_sync_over_many_pages_ends_equal_to_the_log_while_records_change(make_area, enrol, sync):
    """Pages of the current state while a coordinator renames, adds and merges sites in between."""
    area = make_area()
    sites = _history(area, renames=3)
    sites += operations.create_sites(area, [{"name": f"Lane {n}"} for n in range(30)])
    db.session.commit()
    token, _ = enrol(area)
    step = iter(range(1000))

    def coordinator_works():
        n = next(step)
        site = sites[n % 4]
        site.name, site.version = f"Moved {n}", site.version + 1
        pending = [changes.site_change(site)]
        if n == 1:
            late = sites[6]
            late.status = "merged"
            pending.append(changes.site_change(late))
        changes.write_changes(pending)
        db.session.commit()
        if n == 2:
            operations.create_sites(area, [{"name": "Added while filling"}])
            db.session.commit()

    seen, last = _pull_all(sync, token, limit=4, between_pages=coordinator_works)
    replica = _fold(seen)
    # What a device that had followed the whole log from the start would hold.
    everything = db.session.execute(select(Change).where(Change.area_id == area.id).order_by(Change.seq)).scalars()
    expected = _fold({"collection": c.collection, "id": c.record_id, "op": c.op, "data": c.data} for c in everything)
    mine = {key: value for key, value in replica.items() if key[0] in ("sites", "areas")}
    assert mine == expected
    assert ("sites", sites[6].id) not in replica and any(v.get("name") == "Added while filling" for v in replica.values())
    assert cursors.decode(last["cursor"]).upto is None  # filled, and following the log now


def test_compact_removes_what_no_device_needs_and_a_first_sync_is_unchanged(make_area, enrol, sync):
    area = make_area()
    _history(area, renames=40)
    token, _ = enrol(area)
    before, _ = _pull_all(sync, token)
    rows_before = _change_rows()
    _age_every_change(days=60)

    report = compaction.compact(keep_days=30)

    # Each live site's 40 renames, and the merged site's 41 changes up to its delete; then the delete.
    assert (report.replaced, report.deleted_records) == (4 * 40 + 41, 1)
    assert report.remaining == _change_rows() == rows_before - 4 * 40 - 41 - 1
    assert report.kept_from == operations.server_state().changes_kept_from > report.kept_from_before
    fresh_token, _ = enrol(area)
    after, _ = _pull_all(sync, fresh_token)
    key = lambda c: (c["collection"], c["id"])  # noqa: E731
    assert sorted(map(key, after)) == sorted(map(key, before)) and _fold(after) == _fold(before)
    # Only one change per record of the area is left: a first sync reads no more rows than it sends.
    area_rows = db.session.execute(select(func.count()).where(Change.area_id == area.id)).scalar_one()
    assert area_rows == len([c for c in after if c["collection"] in ("sites", "areas")])


def test_compact_leaves_the_period_kept_whole(make_area, enrol, sync):
    area = make_area()
    sites = _history(area, renames=5)
    rows = _change_rows()
    kept_from = operations.server_state().changes_kept_from
    report = compaction.compact(keep_days=30)  # every change is from today
    assert (report.replaced, report.deleted_records, report.remaining) == (0, 0, rows)
    assert operations.server_state().changes_kept_from == kept_from
    token, _ = enrol(area)
    seen, last = _pull_all(sync, token)
    # A device that synced today continues after a later compaction without a reset.
    _age_every_change(days=60)
    compaction.compact(keep_days=30)
    sites[0].name, sites[0].version = "After compaction", sites[0].version + 1
    changes.write_changes([changes.site_change(sites[0])])
    db.session.commit()
    body = sync(token, cursor=last["cursor"]).get_json()
    assert body["reset"] is False and [c["data"]["name"] for c in body["changes"]] == ["After compaction"]


def test_a_device_whose_cursor_is_older_than_the_log_resets_and_drops_what_was_deleted(make_area, enrol, sync):
    """The delete it never received is gone from the log; the reset is what removes the site."""
    area = make_area()
    (kept, merged) = operations.create_sites(area, [{"name": "Kept street"}, {"name": "Merged street"}])
    db.session.commit()
    token, _ = enrol(area)
    seen, last = _pull_all(sync, token)
    replica = _fold(seen)
    assert ("sites", merged.id) in replica
    merged.status, merged.merged_into_id = "merged", kept.id
    changes.write_changes([changes.site_change(merged)])
    db.session.commit()
    _age_every_change(days=60)
    report = compaction.compact(keep_days=30)
    assert (report.replaced, report.deleted_records) == (1, 1)  # the site's put, then its delete
    body = sync(token, cursor=last["cursor"]).get_json()
    assert body["reset"] is True
    rebuilt = _fold(body["changes"])
    assert ("sites", merged.id) not in rebuilt and ("sites", kept.id) in rebuilt


def test_a_pull_that_read_the_log_state_before_a_compaction_still_resets(make_area, enrol, sync):
    """On PostgreSQL a compaction can commit between a pull's statements: the pull checks again."""
    area = make_area()
    (site,) = operations.create_sites(area, [{"name": "A street"}])
    db.session.commit()
    token, body = enrol(area)
    _seen, last = _pull_all(sync, token)
    site.name, site.version = "A street renamed", site.version + 1
    changes.write_changes([changes.site_change(site)])
    db.session.commit()
    _age_every_change(days=60)
    compaction.compact(keep_days=30)
    state = operations.server_state()
    person = db.session.get(operations.Person, body["person"]["id"])
    area_ids, roles = operations.device_scope(person)
    from server.pull import pull

    page = pull(cursor_text=last["cursor"], limit=100, epoch=state.epoch, kept_from=1,  # read before compact
                person_id=person.id, area_ids=area_ids, roles=roles)
    assert page["reset"] is True and any(c["collection"] == "sites" for c in page["changes"])


def test_a_proposed_site_merged_away_leaves_its_proposers_first_sync(make_area, enrol, sync):
    """The proposer's copy went to them alone, its delete to the area: the record is gone for both."""
    area = make_area()
    token, body = enrol(area)
    (target,) = operations.create_sites(area, [{"name": "Real street"}])
    proposed = Site(area_id=area.id, name="Real stret", status="proposed", proposed_by=body["person"]["id"])
    db.session.add(proposed)
    db.session.flush()
    changes.write_changes([changes.site_change(proposed)])
    db.session.commit()
    proposed.status, proposed.merged_into_id = "merged", target.id
    changes.write_changes([changes.site_change(proposed)])
    db.session.commit()
    for step in ("as it is", "compacted"):
        seen, _ = _pull_all(sync, enrol(area)[0] if step == "compacted" else token)
        assert ("sites", proposed.id) not in _fold(seen), step
        _age_every_change(days=60)
        compaction.compact(keep_days=30)


def test_kerbside_compact_prints_counts(app, make_area):
    area = make_area()
    _history(area, renames=3)
    _age_every_change(days=60)
    result = app.test_cli_runner().invoke(kerbside, ["compact", "--keep-days", "30"])
    assert result.exit_code == 0, result.output
    assert "Changes a later one replaced: 16" in result.output  # 4 live sites × 3 renames, the merged one's 4
    assert "Changes of deleted records: 1" in result.output
    refused = app.test_cli_runner().invoke(kerbside, ["compact", "--keep-days", "-1"])
    assert refused.exit_code != 0


def test_a_page_that_ends_where_the_current_state_ends_does_not_replay_the_log(make_area, enrol, sync):
    """The current state's last records fill a page exactly while newer changes wait in the log:
    the next page starts after the current state, not back in the history it already summed up."""
    area = make_area()
    sites = _history(area, renames=3)
    probe, _ = enrol(area)
    live = len(_pull_all(sync, probe)[0])
    if live % 2:
        operations.create_sites(area, [{"name": "Evening street"}])
        db.session.commit()
        live += 1
    # The history's last changes come after every live record's latest: a site that lived a moment.
    (brief,) = operations.create_sites(area, [{"name": "Street that lived a moment"}])
    db.session.commit()
    brief.status, brief.merged_into_id = "merged", sites[0].id
    changes.write_changes([changes.site_change(brief)])
    db.session.commit()
    limit = live // 2
    token, _ = enrol(area)
    first = sync(token, limit=limit).get_json()
    assert len(first["changes"]) == limit and first["has_more"]
    sites[0].name, sites[0].version = "Renamed while filling", sites[0].version + 1
    changes.write_changes([changes.site_change(sites[0])])
    db.session.commit()
    seen, _ = _pull_all(sync, token, limit=limit, cursor=first["cursor"])
    seen = first["changes"] + seen
    # Every live record once, and the rename once more from the log: nothing replayed from the history.
    assert len(seen) == live + 1 and brief.id not in {c["id"] for c in seen}
    assert [c["data"]["name"] for c in seen if c["id"] == sites[0].id] == ["Street 0 (2)", "Renamed while filling"]
