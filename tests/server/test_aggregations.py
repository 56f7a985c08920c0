"""The coordinator's aggregations: a known set of visits gives a known priority list, trend table and coverage.

Runs on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import insert

from server import grade_counts, operations
from server import reporting
from server.extensions import db
from server.models import Answer, Person, Submission
from server.seed_content import STREET_FORM
from tests.conftest import mutation, street_answers, visit


# The visits are pushed as a phone's are, so they lie in a year before now (the server refuses a
# visit dated ahead of its clock), and their forms are dated as published before them.
YEAR = datetime.now(timezone.utc).year - 1


def when(month: int, day: int) -> str:
    return datetime(YEAR, month, day, 10, 0, tzinfo=timezone.utc).isoformat()


@pytest.fixture
def known(make_area, make_site, publish_forms, enrol, sync):
    """Five sites and nine visits by two reps; one visit flagged by the coordinator."""
    publish_forms(published_at=datetime(YEAR, 1, 1, tzinfo=timezone.utc))
    area = make_area("known", "Known")
    other = make_area("elsewhere", "Elsewhere")
    s1, s2, s3, s4, s5 = (make_site(area, name) for name in ("S1 Canal", "S2 Mill", "S3 Park", "S4 Wharf", "S5 Quay"))
    elsewhere = make_site(other, "Elsewhere Street")
    ann, _ = enrol(area, name="Ann")
    bob, _ = enrol(area, name="Bob")
    other_rep, _ = enrol(other, name="Olu")
    flagged_id = "00000000-0000-4000-8000-00000000f1a9"
    by_ann = [
        visit(s1, observed_at=when(1, 10), answers=street_answers("B")),
        visit(s1, observed_at=when(2, 10), answers=street_answers("B", litter={"grade": "D", "note": "Bins overflowing"})),
        visit(s2, observed_at=when(1, 5), answers=street_answers("B", graffiti={"grade": "C"}, noise={"grade": "A"})),
        visit(s2, observed_at=when(2, 5), answers=street_answers("B", graffiti={"grade": "C"}, noise={"grade": "A"})),
        visit(s2, observed_at=when(3, 5), answers=street_answers("B", graffiti={"grade": "C"}, noise={"grade": "B"})),
    ]
    by_bob = [
        visit(s3, observed_at=when(1, 1), answers=street_answers("B", litter={"grade": "D"})),
        visit(s3, observed_at=when(3, 1), answers=street_answers("B", litter={"grade": "A"})),
        visit(s4, observed_at=when(2, 1), answers=street_answers("B", fly_tipping={"grade": "C"})),
        visit(s4, observed_at=when(3, 1), answers=street_answers("B", fly_tipping={"grade": "D"}), submission_id=flagged_id),
    ]
    for token, visits in ((ann, by_ann), (bob, by_bob),
                          (other_rep, [visit(elsewhere, observed_at=when(2, 2), answers=street_answers("D"))])):
        results = sync(token, [mutation(v, seq=n) for n, v in enumerate(visits, 1)]).get_json()["results"]
        assert {r["status"] for r in results} == {"applied"}, results
    coordinator = operations.create_person("Coord", email="c@example.org", password="pw", roles=[("coordinator", area)])
    operations.review_submission(db.session.get(Submission, flagged_id), "flagged", coordinator, "Wrong street")
    db.session.commit()
    return {"area": area, "sites": (s1, s2, s3, s4, s5)}


Q1 = reporting.Period(datetime(YEAR, 1, 1, tzinfo=timezone.utc), datetime(YEAR, 4, 1, tzinfo=timezone.utc))


def test_priority_list_ranks_d_then_worsening_then_longest_lasting(known):
    rows = reporting.priority_list(db.session, known["area"].id, Q1)
    assert [(r.site_name, r.line_key, r.grade, r.previous_grade) for r in rows] == [
        ("S1 Canal", "litter", "D", "B"),
        ("S2 Mill", "graffiti", "C", "C"),  # C since 5 January: longer than S4's
        ("S4 Wharf", "fly_tipping", "C", None),  # the flagged D visit does not count
        ("S2 Mill", "noise", "B", "A"),  # not C/D, but worse than before
    ]
    assert rows[0].worsened and not rows[1].worsened
    assert rows[1].since == datetime(YEAR, 1, 5, 10, tzinfo=timezone.utc)
    assert rows[0].since == datetime(YEAR, 2, 10, 10, tzinfo=timezone.utc)
    assert rows[3].since is None


def test_priority_list_links_to_the_latest_visit(known):
    rows = reporting.priority_list(db.session, known["area"].id, Q1)
    latest = db.session.get(Submission, rows[1].submission_id)
    assert latest.observed_at == datetime(YEAR, 3, 5, 10, tzinfo=timezone.utc)


def test_priority_list_as_of_an_earlier_period(known):
    february = reporting.Period(datetime(YEAR, 2, 1, tzinfo=timezone.utc), datetime(YEAR, 3, 1, tzinfo=timezone.utc))
    rows = reporting.priority_list(db.session, known["area"].id, february)
    # S3's D from January was last seen before February: not a priority for February.
    assert [(r.site_name, r.line_key, r.grade) for r in rows] == [
        ("S1 Canal", "litter", "D"), ("S2 Mill", "graffiti", "C"), ("S4 Wharf", "fly_tipping", "C")]


def test_priority_list_limit(known):
    assert len(reporting.priority_list(db.session, known["area"].id, Q1, limit=2)) == 2


def test_trend_table_by_theme(known):
    table = reporting.trend_table(db.session, known["area"].id, Q1, by="theme")
    assert table.months == [f"{YEAR}-01", f"{YEAR}-02", f"{YEAR}-03"]
    assert table.keys == ["Green and Clean", "Home Sweet Home", "Peace and Quiet"]
    assert table.counts(f"{YEAR}-01", "Green and Clean") == (15, 2)
    assert table.counts(f"{YEAR}-02", "Green and Clean") == (15, 3)
    assert table.counts(f"{YEAR}-03", "Green and Clean") == (10, 1)
    assert table.counts(f"{YEAR}-03", "Peace and Quiet") == (8, 0)
    assert table.share(f"{YEAR}-02", "Green and Clean") == pytest.approx(0.2)


def test_trend_table_by_line(known):
    table = reporting.trend_table(db.session, known["area"].id, Q1, by="line")
    assert table.counts(f"{YEAR}-01", "litter") == (3, 1)
    assert table.counts(f"{YEAR}-02", "litter") == (3, 1)
    assert table.counts(f"{YEAR}-03", "litter") == (2, 0)
    assert table.share(f"{YEAR}-03", "graffiti") == pytest.approx(0.5)
    assert len(table.keys) == 12


def test_coverage(known):
    s1, s2, s3, s4, s5 = known["sites"]
    period = reporting.Period(datetime(YEAR, 2, 1, tzinfo=timezone.utc), datetime(YEAR, 4, 1, tzinfo=timezone.utc))
    result = reporting.coverage(db.session, known["area"].id, period, overdue_days=30)
    assert {(s.name, n) for s, n in result.monitored} == {("S1 Canal", 1), ("S2 Mill", 2), ("S3 Park", 1), ("S4 Wharf", 1)}
    # Never visited first, then the longest unvisited.
    assert [s.name for s, _last in result.overdue] == ["S5 Quay", "S4 Wharf", "S1 Canal", "S3 Park"]
    assert result.volunteers == [("Ann", 3), ("Bob", 2)]
    assert result.total_sites == 5


def test_latest_worst_grades(known):
    grades = {g.name: g.worst for g in reporting.latest_worst_grades(db.session, known["area"].id)}
    assert grades == {"S1 Canal": "D", "S2 Mill": "C", "S3 Park": "B", "S4 Wharf": "C", "S5 Quay": None}


def test_site_history_newest_first(known):
    s2 = known["sites"][1]
    history = reporting.site_history(db.session, s2.id)
    assert [v.grades["noise"] for v in history] == ["B", "A", "A"]


def test_grade_shares_by_theme(known):
    shares = reporting.grade_shares_by_theme(db.session, known["area"].id, Q1)
    assert shares["Green and Clean"]["total"] == 40
    assert shares["Green and Clean"]["D"] == 2
    assert shares["Green and Clean"]["C"] == 4


def test_month_bucket_agrees_with_python(known):
    from sqlalchemy import select
    from server.models import Answer

    months = set(db.session.execute(select(reporting.month_bucket(db.session, Answer.observed_at))).scalars())
    assert months == {f"{YEAR}-01", f"{YEAR}-02", f"{YEAR}-03"}


def test_people_scoped_to_area(known):
    people = reporting.volunteer_devices(db.session, known["area"].id)
    assert [p.display_name for p, _roles, _devices in people] == ["Ann", "Bob"]
    assert all(len(devices) == 1 for _p, _r, devices in people)
    assert db.session.query(Person).count() == 4


# -- a random history, checked against figures worked out from every visit in Python -----------

LINES = [(line["key"], section["theme"]) for section in STREET_FORM["sections"] for line in section["lines"]]
SPRING = reporting.Period(datetime(2025, 3, 1, tzinfo=timezone.utc), datetime(2025, 6, 1, tzinfo=timezone.utc))


@pytest.fixture
def history(make_area, make_site, publish_forms):
    """Eight sites with a year of visits each grading every line; some flagged, some after the period.

    Street 0 is written by hand: B, then C, then a flagged A, then D at the latest visit, so
    its litter problem started with the C (the flagged A does not break the run). Street 1's
    litter was never graded A or B, so its problem started at its first visit.
    """
    publish_forms()
    area = make_area("history", "History")
    make_area("next-door", "Next door")
    sites = [make_site(area, f"Street {n}") for n in range(8)]
    rep = operations.create_person("Rep", roles=[("street_rep", area)])
    db.session.commit()
    rng = random.Random(4)
    visits = []  # (site_id, observed_at, flagged, {line_key: grade})

    def add(site, observed_at, grades, flagged=False):
        visits.append((site.id, observed_at, flagged, grades))

    base = datetime(2025, 1, 1, 9, tzinfo=timezone.utc)
    every = {key: "A" for key, _theme in LINES}
    for days, grade, flagged in ((10, "B", False), (40, "C", False), (70, "A", True), (100, "D", False)):
        add(sites[0], base + timedelta(days=days), every | {"litter": grade}, flagged)
    for n, site in enumerate(sites[1:], 1):
        badness = n % 4
        for _visit in range(rng.randrange(8, 25)):
            grades = {key: "ABCD"[max(0, min(3, round(rng.gauss(badness * 0.8, 0.9))))] for key, _theme in LINES}
            if n == 1:
                grades["litter"] = rng.choice("CD")
            add(site, base + timedelta(days=rng.uniform(0, 200), minutes=rng.randrange(600)), grades,
                flagged=rng.random() < 0.12)
    submissions, answers = [], []
    for site_id, observed_at, flagged, grades in visits:
        submission_id = str(uuid.uuid4())
        submissions.append({
            "id": submission_id, "form_id": "street", "form_version": 1, "kind": "street", "area_id": area.id,
            "site_id": site_id, "person_id": rep.id, "observed_at": observed_at, "observed_offset": "+00:00",
            "received_at": observed_at, "notes": "", "payload_hash": "sha256:" + submission_id, "data": {},
            "review_status": "flagged" if flagged else "accepted"})
        answers += [{"submission_id": submission_id, "line_key": key, "theme": theme, "grade": grades[key],
                     "area_id": area.id, "site_id": site_id, "kind": "street", "observed_at": observed_at}
                    for key, theme in LINES]
    db.session.execute(insert(Submission), submissions)
    db.session.execute(insert(Answer), answers)
    # Written around the push, as a bulk load is: the kept street grade counts are counted again.
    grade_counts.rebuild(db.session)
    db.session.commit()
    return {"area": area, "sites": sites, "visits": visits}


def expected_priorities(visits, period):
    """The priority list's (site, line, grade, previous grade, since), from every visit in turn."""
    by_site: dict[str, list] = {}
    for site_id, observed_at, flagged, grades in sorted(visits, key=lambda v: v[1]):
        if not flagged and observed_at < period.end:
            by_site.setdefault(site_id, []).append((observed_at, grades))
    expected = set()
    for site_id, seen in by_site.items():
        latest_at, latest = seen[-1]
        if latest_at < period.start:
            continue
        before = seen[-2][1] if len(seen) > 1 else {}
        for key, grade in latest.items():
            previous = before.get(key)
            if grade not in "CD" and not (previous and grade > previous):
                continue
            since = None
            if grade in "CD":
                good = [n for n, (_at, grades) in enumerate(seen) if grades[key] in "AB"]
                since = seen[good[-1] + 1][0] if good else seen[0][0]
            expected.add((site_id, key, grade, previous, since))
    return expected


@pytest.mark.parametrize("period", [SPRING, reporting.Period(datetime(2025, 1, 1, tzinfo=timezone.utc),
                                                           datetime(2026, 1, 1, tzinfo=timezone.utc))])
def test_priority_list_agrees_with_every_visit(history, period):
    rows = reporting.priority_list(db.session, history["area"].id, period)
    got = {(r.site_id, r.line_key, r.grade, r.previous_grade, r.since) for r in rows}
    expected = expected_priorities(history["visits"], period)
    assert got == expected
    assert sum(1 for row in expected if row[4] is not None) >= 10


def test_priority_since_skips_flagged_visits_and_counts_from_the_first_visit(history):
    rows = {(r.site_name, r.line_key): r for r in reporting.priority_list(db.session, history["area"].id, SPRING)}
    base = datetime(2025, 1, 1, 9, tzinfo=timezone.utc)
    assert rows[("Street 0", "litter")].since == base + timedelta(days=40)
    street_1 = [v for v in history["visits"] if v[0] == history["sites"][1].id and not v[2] and v[1] < SPRING.end]
    assert rows[("Street 1", "litter")].since == min(v[1] for v in street_1)


def test_trend_tables_agree_with_every_visit(history):
    by_theme, by_line = reporting.trend_tables(db.session, history["area"].id, SPRING)
    theme_of = dict(LINES)
    expected_theme, expected_line = {}, {}
    for _site, observed_at, flagged, grades in history["visits"]:
        if flagged or not SPRING.start <= observed_at < SPRING.end:
            continue
        month = observed_at.strftime("%Y-%m")
        for key, grade in grades.items():
            for cells, cell in ((expected_theme, (month, theme_of[key])), (expected_line, (month, key))):
                graded, bad = cells.get(cell, (0, 0))
                cells[cell] = (graded + 1, bad + (grade in "CD"))
    assert by_theme.cells == expected_theme and by_line.cells == expected_line
    assert by_line.keys == sorted(theme_of) and by_theme.keys == sorted(set(theme_of.values()))
    assert by_line.months == ["2025-03", "2025-04", "2025-05"]
    assert reporting.trend_table(db.session, history["area"].id, SPRING, by="theme").cells == expected_theme
