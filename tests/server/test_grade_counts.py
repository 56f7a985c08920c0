"""The street grades kept counted (server/grade_counts.py) stay equal to counting the rows, after
every path that writes or reviews visits: a push, a correction, a review that flags or un-flags,
the bulk acceptances, a site merged or rejected, a person erased; and the trends and figures read
from them give what counting the answers gives.

Runs on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text, update

from server import grade_counts, operations, privacy, reporting, review
from server.cli import grade_counts_rebuild_command
from server.coordinator import sites as moderation
from server.extensions import db
from server.models import Site, StreetGradeCount, Submission
from server.push import proposed_site_id
from server.reporting import ReviewFilters
from tests.conftest import mutation, recently, street_answers, visit

_seq = itertools.count(1)


def _push(sync, token, *data, kind="submission.create"):
    results = sync(token, [mutation(d, kind=kind, seq=next(_seq)) for d in data]).get_json()["results"]
    assert [r["status"] for r in results] == ["applied"] * len(data), results
    return results


def _in_step(area) -> dict:
    """The kept counts of the area, after checking they equal counting its rows now."""
    db.session.expire_all()
    kept = grade_counts.kept(db.session, area.id)
    assert kept == grade_counts.from_rows(db.session, area.id)
    return kept


@pytest.fixture
def world(make_area, make_site, publish_forms, enrol, sync):
    """An area (and another) with a rep who has pushed six visits over three days, and a coordinator."""
    publish_forms(published_at=datetime.now(timezone.utc) - timedelta(days=60))
    area, other = make_area("millbrook", "Millbrook"), make_area("eastside", "Eastside")
    canal, mill, far = make_site(area, "Canal Street"), make_site(area, "Mill Lane"), make_site(other, "Far Road")
    token, body = enrol(area, name="Rita Rep")
    far_token, _far = enrol(other, name="Eve Elsewhere")
    visits = [visit(canal if n % 2 else mill, observed_at=recently(days=n // 2),
                    answers=street_answers("ABCD"[n % 4], litter={"grade": "D"})) for n in range(6)]
    _push(sync, token, *visits)
    _push(sync, far_token, visit(far, answers=street_answers("C")))
    coordinator = operations.create_person("Cora Coordinator", roles=[("coordinator", area)])
    db.session.commit()
    return {"area": area, "other": other, "canal": canal, "mill": mill, "token": token, "visits": visits,
            "coordinator": coordinator, "person_id": body["person"]["id"]}


def _flag(world, index, reason="Wrong site"):
    operations.review_submission(db.session.get(Submission, world["visits"][index]["id"]), "flagged",
                                 world["coordinator"], reason)
    db.session.commit()


def test_push_counts_the_new_visits_grades(world):
    kept = _in_step(world["area"])
    assert sum(kept.values()) == 6 * 12
    assert sum(n for (day, line, theme, grade), n in kept.items() if line == "litter" and grade == "D") == 6
    # Another area's visit is counted under that area alone.
    assert sum(_in_step(world["other"]).values()) == 12


def test_review_that_flags_takes_the_grades_out_and_unflagging_puts_them_back(world):
    _flag(world, 0)
    assert sum(_in_step(world["area"]).values()) == 5 * 12
    # Flagged again with another reason: no change in what counts.
    _flag(world, 0, reason="Still the wrong site")
    assert sum(_in_step(world["area"]).values()) == 5 * 12
    operations.review_submission(db.session.get(Submission, world["visits"][0]["id"]), "accepted", world["coordinator"])
    db.session.commit()
    assert sum(_in_step(world["area"]).values()) == 6 * 12
    # Accepted to pending counts the same.
    operations.review_submission(db.session.get(Submission, world["visits"][0]["id"]), "pending", world["coordinator"])
    db.session.commit()
    assert sum(_in_step(world["area"]).values()) == 6 * 12


def test_correction_counts_the_new_visit_and_not_the_one_it_supersedes(world, sync):
    _flag(world, 1)
    fixed = {**visit(world["canal"], observed_at=recently(days=5), answers=street_answers("A")),
             "supersedes": world["visits"][1]["id"]}
    _push(sync, world["token"], fixed, kind="submission.correct")
    kept = _in_step(world["area"])
    assert sum(kept.values()) == 6 * 12
    assert db.session.get(Submission, world["visits"][1]["id"]).superseded_by_id == fixed["id"]
    # The superseded visit stays out even when its flag is lifted afterwards (by ticks or by a review).
    review.accept_selected(world["area"].id, [world["visits"][1]["id"]], world["coordinator"])
    db.session.commit()
    assert sum(_in_step(world["area"]).values()) == 6 * 12


def test_accepting_ticked_flagged_visits_counts_them_again(world):
    _flag(world, 2)
    _flag(world, 3)
    assert sum(_in_step(world["area"]).values()) == 4 * 12
    ids = [world["visits"][n]["id"] for n in (2, 3, 4)]  # two flagged, one waiting
    assert review.accept_selected(world["area"].id, ids, world["coordinator"]).count == 3
    db.session.commit()
    assert sum(_in_step(world["area"]).values()) == 6 * 12


def test_accepting_all_matching_flagged_visits_counts_them_again(world):
    _flag(world, 4)
    _flag(world, 5)
    filters = ReviewFilters(status="flagged")
    assert review.accept_matching(world["area"].id, filters, 2, world["coordinator"]).changed
    db.session.commit()
    assert sum(_in_step(world["area"]).values()) == 6 * 12
    # Everything waiting, accepted in one go: nothing was left out, so nothing moves.
    assert review.accept_matching(world["area"].id, ReviewFilters(status="pending"), 4, world["coordinator"]).changed
    db.session.commit()
    assert sum(_in_step(world["area"]).values()) == 6 * 12


def _proposed_visit(world, sync):
    proposing = visit(None, observed_at=recently(days=7), answers=street_answers("D"))
    proposing["new_site"] = {"name": "Canal Stret", "lat": 53.5401, "lng": -2.6301}
    _push(sync, world["token"], proposing)
    return db.session.get(Site, proposed_site_id(proposing["id"]))


def test_merging_a_proposed_site_keeps_the_counts_in_step(world, sync):
    site = _proposed_visit(world, sync)
    before = _in_step(world["area"])
    assert sum(before.values()) == 7 * 12
    assert moderation.merge_site(db.session, site, world["canal"]) == 1
    db.session.commit()
    assert _in_step(world["area"]) == before


def test_rejecting_a_proposed_site_keeps_the_counts_in_step(world, sync):
    site = _proposed_visit(world, sync)
    before = _in_step(world["area"])
    assert moderation.reject_site(db.session, site, "Not a street") == 1
    db.session.commit()
    assert _in_step(world["area"]) == before


def test_erasing_a_person_keeps_their_visits_counted(world):
    before = _in_step(world["area"])
    privacy.erase_person(world["person_id"])
    db.session.commit()
    assert _in_step(world["area"]) == before and sum(before.values()) == 6 * 12


def test_comparison_notices_a_visit_flagged_around_the_paths(world):
    """Negative control: a visit flagged by a bare UPDATE leaves the kept counts behind, and the
    comparison says so; the rebuild puts them right."""
    db.session.execute(update(Submission).where(Submission.id == world["visits"][0]["id"])
                       .values(review_status="flagged"))
    db.session.commit()
    with pytest.raises(AssertionError):
        _in_step(world["area"])
    assert grade_counts.rebuild(db.session, world["area"].id) > 0
    db.session.commit()
    assert sum(_in_step(world["area"]).values()) == 5 * 12


def test_rebuild_command_counts_every_area_again(app, world):
    db.session.execute(text("DELETE FROM street_grade_count"))
    db.session.execute(update(Submission).where(Submission.id == world["visits"][0]["id"])
                       .values(review_status="flagged"))
    db.session.commit()
    result = app.test_cli_runner().invoke(grade_counts_rebuild_command)
    assert result.exit_code == 0, result.output
    assert "rows" in result.output
    assert sum(_in_step(world["area"]).values()) == 5 * 12
    assert sum(_in_step(world["other"]).values()) == 12
    # One area only, by its slug; an unknown slug is refused.
    db.session.execute(text("DELETE FROM street_grade_count"))
    db.session.commit()
    assert app.test_cli_runner().invoke(grade_counts_rebuild_command, ["--area", "eastside"]).exit_code == 0
    db.session.expire_all()
    assert grade_counts.kept(db.session, world["area"].id) == {}
    assert sum(_in_step(world["other"]).values()) == 12
    assert app.test_cli_runner().invoke(grade_counts_rebuild_command, ["--area", "nowhere"]).exit_code != 0


def _whole_days():
    return reporting.Period.last_days(4)


def _around_visits():
    """From half an hour before the oldest visits to now: both ends inside a day, with visits in the part-days."""
    now = datetime.now(timezone.utc)
    return reporting.Period(now - timedelta(days=2, hours=1, minutes=30), now)


def _across_midnight():
    days = reporting.Period.last_days(4)
    return reporting.Period(days.start + timedelta(hours=5), days.end - timedelta(hours=7, minutes=30))


@pytest.mark.parametrize("period_of", [_whole_days, _around_visits, _across_midnight])
def test_figures_from_kept_counts_equal_counting_the_answers(world, period_of):
    """The trends, the dashboard's grade strips and the per-line figures, for whole days and for
    periods that start and end inside a day (the part-days are counted from the answers)."""
    _flag(world, 0)
    period = period_of()
    area_id = world["area"].id
    expected = reporting.street_grade_counts_from_answers(db.session, area_id, period)
    assert sum(expected.values()) > 0
    assert reporting.street_grade_counts(db.session, area_id, period) == expected
    by_theme, by_line = reporting.trend_tables(db.session, area_id, period)
    for table, index in ((by_theme, 1), (by_line, 2)):
        cells = {}
        for key, n in expected.items():
            graded, bad = cells.get((key[0], key[index]), (0, 0))
            cells[(key[0], key[index])] = (graded + n, bad + (n if key[3] in "CD" else 0))
        assert table.cells == cells
        assert table.keys == sorted({k for _m, k in cells})
    shares = reporting.grade_shares_by_theme(db.session, area_id, period)
    assert {theme: counts["total"] for theme, counts in shares.items()} == \
        {k[1]: sum(n for key, n in expected.items() if key[1] == k[1]) for k in expected}
    lines = reporting.street_grades_by_line(db.session, area_id, period)
    assert lines == {k[2]: by_line_sum(expected, k[2]) for k in expected}


def by_line_sum(expected, line):
    return (sum(n for key, n in expected.items() if key[2] == line),
            sum(n for key, n in expected.items() if key[2] == line and key[3] in "CD"))


def test_figures_read_the_kept_counts(world):
    """The figures come from the kept counts: emptied, the trends show nothing (a negative control
    for the test above, which would pass as well if the figures still counted the answers)."""
    period = reporting.Period.last_days(4)
    assert reporting.trend_tables(db.session, world["area"].id, period)[1].keys
    db.session.execute(text("DELETE FROM street_grade_count"))
    db.session.commit()
    assert reporting.trend_tables(db.session, world["area"].id, period)[1].keys == []
    assert db.session.query(StreetGradeCount).count() == 0
