"""The coordinator's aggregations, as plain functions over a session.

They read `Answer` rows (one per answered line, with area, site, theme, kind and time
copied on) so SQL does the counting over a million rows; latest and previous grades come
from window functions, which SQLite (3.25+) and PostgreSQL both have. Which visits count is
one rule, `counted_visits()`: visits a coordinator flagged, and visits a correction
superseded, are left out of every figure.
"""

from __future__ import annotations

import statistics
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import Date, and_, case, exists, func, literal, literal_column, or_, select, text, union_all

from server.models import (
    Action,
    AgreementVersion,
    Agreement,
    Answer,
    Device,
    Form,
    FormVersion,
    Person,
    Site,
    StreetGradeCount,
    Submission,
)
from sync.validation import parse_datetime

BAD = ("C", "D")
GRADES = ("A", "B", "C", "D")


@dataclass(frozen=True)
class Period:
    """Half-open time range [start, end) in UTC."""

    start: datetime
    end: datetime

    @classmethod
    def last_days(cls, days: int, now: datetime | None = None) -> Period:
        """The `days` days up to now (to the end of today, so today's visits count)."""
        now = now or datetime.now(timezone.utc)
        end = datetime(now.year, now.month, now.day, tzinfo=timezone.utc) + timedelta(days=1)
        return cls(end - timedelta(days=days), end)

    @property
    def last_day(self) -> datetime:
        return self.end - timedelta(days=1)


def month_bucket(session, column):
    """'YYYY-MM' of a UTC timestamp column, on SQLite and on PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        # Literal SQL text (not bound parameters) so the same expression can be grouped on.
        return func.to_char(func.timezone(literal_column("'UTC'"), column), literal_column("'YYYY-MM'"))
    return func.strftime(literal_column("'%Y-%m'"), column)


def latest_only():
    """Visits no correction has superseded: only the latest word on a visit counts (figures and exports)."""
    return Submission.superseded_by_id.is_(None)


def counted_visits():
    """The visits every figure counts: not flagged, and not superseded by a correction."""
    return and_(Submission.review_status != "flagged", latest_only())


def _counted_answers(area_id: str):
    left_out = select(Submission.id).where(Submission.area_id == area_id, ~counted_visits())
    return Answer.submission_id.not_in(left_out)


def _street_grades(area_id: str):
    return and_(Answer.area_id == area_id, Answer.kind == "street", Answer.grade.is_not(None), _counted_answers(area_id))


# -- priority list -------------------------------------------------------------------------


@dataclass
class Priority:
    site_id: str
    site_name: str
    line_key: str
    theme: str
    grade: str
    previous_grade: str | None
    observed_at: datetime
    submission_id: str
    since: datetime | None

    @property
    def worsened(self) -> bool:
        return self.previous_grade is not None and self.grade > self.previous_grade


def priority_list(session, area_id: str, period: Period, limit: int | None = None) -> list[Priority]:
    """Site × line pairs graded C or D at the site's latest visit in the period, or worse than at the visit before.

    Ranked D before C (before B), worsening first, then the longest-lasting problem first
    (`since`: the first visit of the current unbroken run of C/D grades for that line).

    Latest and previous visits are read per approved site of the area, backwards along the
    site's (site, observed_at) index, two visits deep: the cost follows the number of sites,
    not of visits (a window over the area's visits read and sorted 50,000 rows at 1,000,000
    visits). Only those visits' answers are read, and the start of each problem is found by
    reading each line's history back only as far as its last A or B.

    The list shows approved sites only: a proposed site waits on the moderation page (its
    visits still count in the area's figures). A visit's site is always one of its area's
    (a merge moves visits only to an approved site of the same area).
    """
    def nth_latest(n: int):
        return (select(Submission.id)
                .where(Submission.site_id == Site.id, Submission.area_id == area_id, Submission.kind == "street",
                       counted_visits(), Submission.observed_at < period.end)
                .order_by(Submission.observed_at.desc(), Submission.id.desc()).limit(1).offset(n)
                .correlate(Site).scalar_subquery())

    sites = session.execute(select(Site.id, Site.name, nth_latest(0).label("latest"), nth_latest(1).label("previous"))
                            .where(Site.area_id == area_id, Site.status == "approved")).all()
    names = {row.id: row.name for row in sites}
    observed = dict(session.execute(select(Submission.id, Submission.observed_at).where(
        Submission.id.in_([row.latest for row in sites if row.latest]))).all())
    # A site counts when its latest visit falls in the period; its previous one may be older.
    latest = {row.id: (row.latest, _aware(observed[row.latest])) for row in sites
              if row.latest and _aware(observed[row.latest]) >= period.start}
    previous = {row.id: row.previous for row in sites if row.id in latest and row.previous}
    if not latest:
        return []
    wanted = {visit[0] for visit in latest.values()} | set(previous.values())
    grades: dict[str, dict[str, tuple]] = {}
    for row in session.execute(select(Answer.submission_id, Answer.line_key, Answer.theme, Answer.grade)
                               .where(Answer.submission_id.in_(wanted), Answer.grade.is_not(None))):
        grades.setdefault(row.submission_id, {})[row.line_key] = (row.theme, row.grade)
    candidates = []
    for site_id, (submission_id, observed_at) in latest.items():
        before = grades.get(previous.get(site_id), {})
        for line_key, (theme, grade) in grades.get(submission_id, {}).items():
            previous_grade = before.get(line_key, (None, None))[1]
            if grade in BAD or (previous_grade is not None and grade > previous_grade):
                candidates.append((site_id, line_key, theme, grade, previous_grade, observed_at, submission_id))
    since = _problem_starts(session, area_id, period, {c[6] for c in candidates if c[3] in BAD})
    rows = [
        Priority(site_id=c[0], site_name=names.get(c[0], ""), line_key=c[1], theme=c[2], grade=c[3],
                 previous_grade=c[4], observed_at=c[5], submission_id=c[6],
                 since=since.get((c[0], c[1])) if c[3] in BAD else None)
        for c in candidates
    ]
    rows.sort(key=lambda r: (-ord(r.grade), not r.worsened, r.since is None, r.since or r.observed_at,
                             r.observed_at, r.site_name, r.line_key))
    return rows[:limit] if limit else rows


def _problem_starts(session, area_id: str, period: Period, latest_ids: set) -> dict[tuple, datetime]:
    """For each line graded C or D at one of `latest_ids`: the first visit after the line's last A or B.

    Only the recent history is read: per (site, line), an index scan backwards from the
    period's end stops at the last A/B, and a scan forwards from there finds the site's
    next visit (every grade line of a street form is required, so each visit after the
    last A/B graded the line C or D). A line never graded A/B counts from its first grade.
    """
    if not latest_ids:
        return {}
    earlier = Answer.__table__.alias("earlier")
    # Visits left out (flagged, superseded) are skipped row by row (a key lookup) rather than with
    # NOT IN a list of the area's such visits, which PostgreSQL would cost per outer row and so JIT-compile.
    left_out = exists().where(Submission.id == earlier.c.submission_id, ~counted_visits())
    in_scope = and_(earlier.c.site_id == Answer.site_id, earlier.c.line_key == Answer.line_key,
                    earlier.c.area_id == area_id, earlier.c.kind == "street", earlier.c.grade.is_not(None),
                    ~left_out, earlier.c.observed_at < period.end)
    last_good = (select(earlier.c.observed_at)
                 .where(in_scope, earlier.c.grade.not_in(BAD))
                 .order_by(earlier.c.observed_at.desc()).limit(1)
                 .correlate(Answer).scalar_subquery())
    first_seen = (select(earlier.c.observed_at).where(in_scope)
                  .order_by(earlier.c.observed_at).limit(1)
                  .correlate(Answer).scalar_subquery())
    marks = (select(Answer.site_id, Answer.line_key, last_good.label("last_good"), first_seen.label("first_seen"))
             .where(Answer.submission_id.in_(latest_ids), Answer.grade.in_(BAD))
             .subquery())
    following = (select(Submission.observed_at)
                 .where(Submission.site_id == marks.c.site_id, Submission.area_id == area_id,
                        Submission.kind == "street", counted_visits(),
                        Submission.observed_at > marks.c.last_good, Submission.observed_at < period.end)
                 .order_by(Submission.observed_at).limit(1)
                 .correlate(marks).scalar_subquery())
    query = select(marks.c.site_id, marks.c.line_key, marks.c.last_good, marks.c.first_seen,
                   following.label("following"))
    starts = {}
    with _without_jit(session):
        for row in session.execute(query):
            start = row.first_seen if row.last_good is None else row.following
            if start is not None:
                starts[(row.site_id, row.line_key)] = _aware(start)
    return starts


@contextmanager
def _without_jit(session):
    """PostgreSQL costs each correlated index probe pessimistically: a few hundred lines would
    cross `jit_above_cost`, and compiling takes a second where running takes milliseconds."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    previous = session.execute(text("SELECT current_setting('jit')")).scalar()
    session.execute(text("SELECT set_config('jit', 'off', true)"))
    try:
        yield
    finally:
        session.execute(text("SELECT set_config('jit', :previous, true)"), {"previous": previous})


def _aware(value):
    """Timestamps from aggregates lose their column type on SQLite: parse and make them UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


# -- trends --------------------------------------------------------------------------------


@dataclass
class TrendTable:
    """Share of C/D grades per (month, key): `cells[(month, key)] = (graded, c_or_d)`."""

    months: list[str]
    keys: list[str]
    cells: dict = field(default_factory=dict)

    def share(self, month: str, key: str) -> float | None:
        graded, bad = self.cells.get((month, key), (0, 0))
        return bad / graded if graded else None

    def counts(self, month: str, key: str) -> tuple[int, int]:
        return self.cells.get((month, key), (0, 0))


def months_between(period: Period) -> list[str]:
    """Every 'YYYY-MM' the period touches, in order."""
    months, year, month = [], period.start.year, period.start.month
    # The period's last instant (its last day's start would lose the hours of a period ending inside a month's first day).
    last = period.end - timedelta(microseconds=1)
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def trend_table(session, area_id: str, period: Period, by: str = "line") -> TrendTable:
    """Month by month, the share of street grades that were C or D, by line or by theme."""
    if by not in ("line", "theme"):
        raise ValueError("by must be 'line' or 'theme'")
    by_theme, by_line = trend_tables(session, area_id, period)
    return by_line if by == "line" else by_theme


def month_ranges(period: Period) -> list[tuple[str, datetime, datetime]]:
    """The period cut at UTC month boundaries: ('YYYY-MM', start, end) for every month it touches."""
    start, end = period.start.astimezone(timezone.utc), period.end.astimezone(timezone.utc)
    ranges = []
    for month in months_between(Period(start, end)):
        year, number = int(month[:4]), int(month[5:])
        first = datetime(year, number, 1, tzinfo=timezone.utc)
        following = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=timezone.utc)
        ranges.append((month, max(start, first), min(end, following)))
    return ranges


def trend_tables(session, area_id: str, period: Period) -> tuple[TrendTable, TrendTable]:
    """Both trend tables, (by theme, by line), from the kept counts of the period's street grades.

    A year of one area at 1,000,000 visits is 300,000 answer rows, about 200 ms of CPU to count
    however it is read; its kept counts (server/grade_counts.py) are a few thousand rows.
    """
    ranges = month_ranges(period)
    months = [month for month, _start, _end in ranges]
    by_theme, by_line = TrendTable(months=months, keys=[]), TrendTable(months=months, keys=[])
    for (month, theme, line_key, grade), n in street_grade_counts(session, area_id, period).items():
        bad = n if grade in BAD else 0
        for table, key in ((by_theme, theme), (by_line, line_key)):
            graded, was_bad = table.cells.get((month, key), (0, 0))
            table.cells[(month, key)] = (graded + n, was_bad + bad)
    for table in (by_theme, by_line):
        table.keys = sorted({key for _month, key in table.cells})
    return by_theme, by_line


def street_grade_counts(session, area_id: str, period: Period) -> Counter:
    """The area's counted street grades in the period: {(month, theme, line_key, grade): n}, zeros left out.

    The whole UTC days of the period are read from the kept counts; a period that starts or
    ends inside a day (the pages' periods never do) has those hours counted from the answers.
    """
    start, end = period.start.astimezone(timezone.utc), period.end.astimezone(timezone.utc)
    first = _midnight(start) if _midnight(start) == start else _midnight(start) + timedelta(days=1)
    last = _midnight(end)
    counts: Counter = Counter()
    if first <= last:
        if first < last:
            counts.update(_kept_grade_counts(session, area_id, Period(first, last)))
        edges = [Period(start, first), Period(last, end)]
    else:  # within one day
        edges = [Period(start, end)]
    for edge in edges:
        if edge.start < edge.end:
            counts.update(_counted_from_answers(session, area_id, edge))
    return Counter({key: n for key, n in counts.items() if n})


def _midnight(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, moment.day, tzinfo=timezone.utc)


def _months_of(ranges, type_):
    """The month ranges as rows (month, starts, ends) to join on."""
    rows = [select(literal(month).label("month"), literal(start, type_).label("starts"),
                   literal(end, type_).label("ends")) for month, start, end in ranges]
    return (union_all(*rows) if len(rows) > 1 else rows[0]).subquery("months")


def _kept_grade_counts(session, area_id: str, days: Period) -> Counter:
    """Kept counts over whole UTC days, grouped by month, theme, line and grade."""
    kept = StreetGradeCount.__table__
    months_of = _months_of([(month, start.date(), end.date()) for month, start, end in month_ranges(days)], Date())
    query = (select(months_of.c.month, kept.c.theme, kept.c.line_key, kept.c.grade, func.sum(kept.c.graded))
             .select_from(months_of)
             .join(kept, and_(kept.c.area_id == area_id, kept.c.day >= months_of.c.starts, kept.c.day < months_of.c.ends))
             .group_by(months_of.c.month, kept.c.theme, kept.c.line_key, kept.c.grade))
    return Counter({(month, theme, line_key, grade): int(n or 0)
                    for month, theme, line_key, grade, n in session.execute(query)})


def _counted_from_answers(session, area_id: str, hours: Period, month: str | None = None) -> Counter:
    """The same counts read from the answers themselves, for hours within one month (of one UTC day, here)."""
    month = month or hours.start.astimezone(timezone.utc).strftime("%Y-%m")
    query = (select(Answer.theme, Answer.line_key, Answer.grade, func.count())
             .where(_street_grades(area_id), Answer.observed_at >= hours.start, Answer.observed_at < hours.end)
             .group_by(Answer.theme, Answer.line_key, Answer.grade))
    return Counter({(month, theme, line_key, grade): int(n) for theme, line_key, grade, n in session.execute(query)})


def street_grade_counts_from_answers(session, area_id: str, period: Period) -> Counter:
    """What `street_grade_counts` gives, counted from the answers month by month (to check the kept counts)."""
    counts: Counter = Counter()
    for month, start, end in month_ranges(period):
        counts.update(_counted_from_answers(session, area_id, Period(start, end), month))
    return Counter({key: n for key, n in counts.items() if n})


def grade_shares_by_theme(session, area_id: str, period: Period) -> dict[str, dict[str, int]]:
    """Count of each grade per theme over the period: {theme: {"A": n, ..., "total": n}}."""
    shares: dict[str, dict[str, int]] = {}
    for (_month, theme_name, _line, grade), n in street_grade_counts(session, area_id, period).items():
        theme = shares.setdefault(theme_name, {g: 0 for g in GRADES} | {"total": 0})
        theme[grade] += n
        theme["total"] += n
    return shares


def street_grades_by_line(session, area_id: str, period: Period) -> dict[str, tuple[int, int]]:
    """Street grades per line over the period: {line_key: (graded, c_or_d)}."""
    lines: dict[str, tuple[int, int]] = {}
    for (_month, _theme, line_key, grade), n in street_grade_counts(session, area_id, period).items():
        graded, bad = lines.get(line_key, (0, 0))
        lines[line_key] = (graded + n, bad + (n if grade in BAD else 0))
    return lines

@dataclass
class SiteVisit:
    submission_id: str
    observed_at: datetime
    review_status: str
    grades: dict


def site_history(session, site_id: str, limit: int = 60) -> list[SiteVisit]:
    """A site's street visits, newest first, each with its grade per line."""
    visits = session.execute(
        select(Submission.id, Submission.observed_at, Submission.review_status)
        .where(Submission.site_id == site_id, Submission.kind == "street")
        .order_by(Submission.observed_at.desc(), Submission.id.desc())
        .limit(limit)
    ).all()
    by_id = {v.id: SiteVisit(v.id, v.observed_at, v.review_status, {}) for v in visits}
    if by_id:
        for row in session.execute(
            select(Answer.submission_id, Answer.line_key, Answer.grade)
            .where(Answer.submission_id.in_(list(by_id)), Answer.grade.is_not(None))
        ):
            by_id[row.submission_id].grades[row.line_key] = row.grade
    return list(by_id.values())


# -- map -----------------------------------------------------------------------------------


@dataclass
class SiteGrade:
    site_id: str
    name: str
    lat: float | None
    lng: float | None
    worst: str | None
    observed_at: datetime | None
    submission_id: str | None
    bad_lines: int = 0


def latest_worst_grades(session, area_id: str, site_ids=None, period: Period | None = None) -> list[SiteGrade]:
    """Each street site of the area with the worst grade of its latest counted visit (not flagged, not superseded), in `period` if given."""
    visits = (
        select(
            Submission.id, Submission.site_id, Submission.observed_at,
            func.row_number().over(partition_by=Submission.site_id,
                                   order_by=(Submission.observed_at.desc(), Submission.id.desc())).label("rn"),
        )
        .where(Submission.area_id == area_id, Submission.kind == "street", counted_visits())
    )
    if period is not None:
        visits = visits.where(Submission.observed_at >= period.start, Submission.observed_at < period.end)
    ranked = visits.subquery()
    latest = select(ranked.c.id, ranked.c.site_id, ranked.c.observed_at).where(ranked.c.rn == 1).subquery()
    worst = (
        select(latest.c.site_id, latest.c.id, latest.c.observed_at, func.max(Answer.grade).label("worst"),
               func.sum(case((Answer.grade.in_(BAD), 1), else_=0)).label("bad_lines"))
        .join(Answer, Answer.submission_id == latest.c.id)
        .group_by(latest.c.site_id, latest.c.id, latest.c.observed_at)
    )
    found = {row.site_id: row for row in session.execute(worst)}
    sites = street_sites(session, area_id)
    if site_ids is not None:
        sites = [s for s in sites if s.id in site_ids]
    result = []
    for site in sites:
        row = found.get(site.id)
        result.append(SiteGrade(site.id, site.name, site.lat, site.lng,
                                row.worst if row else None, _aware(row.observed_at) if row else None,
                                row.id if row else None, int(row.bad_lines or 0) if row else 0))
    return result


def latest_line_grades(session, area_id: str, period: Period | None = None) -> dict[str, dict[str, str]]:
    """Each site's latest grade per line, in `period` if given: {site_id: {line_key: grade}}."""
    a = Answer
    grades_query = (
        select(a.site_id, a.line_key, a.grade,
               func.row_number().over(partition_by=(a.site_id, a.line_key),
                                      order_by=(a.observed_at.desc(), a.submission_id.desc())).label("rn"))
        .where(_street_grades(area_id))
    )
    if period is not None:
        grades_query = grades_query.where(a.observed_at >= period.start, a.observed_at < period.end)
    ranked = grades_query.subquery()
    grades: dict[str, dict[str, str]] = {}
    for row in session.execute(select(ranked.c.site_id, ranked.c.line_key, ranked.c.grade).where(ranked.c.rn == 1)):
        grades.setdefault(row.site_id, {})[row.line_key] = row.grade
    return grades


def street_sites(session, area_id: str) -> list[Site]:
    """The area's approved sites that reps walk: all but those only ever used for shops and checklists.

    Sites proposed in the field, and those merged or rejected, are not on the map, the
    coverage lists or the trends' site list: they wait on the moderation page.
    """
    # Two probes of each site's (site, observed_at) index rather than grouping the area's every visit.
    visited = exists().where(Submission.site_id == Site.id, Submission.area_id == area_id)
    walked = exists().where(Submission.site_id == Site.id, Submission.area_id == area_id, Submission.kind == "street")
    return session.execute(select(Site).where(Site.area_id == area_id, Site.status == "approved", or_(~visited, walked))
                           .order_by(Site.name)).scalars().all()


# -- coverage ------------------------------------------------------------------------------


@dataclass
class Coverage:
    monitored: list  # (Site, visits in period)
    overdue: list  # (Site, last visit or None)
    volunteers: list  # (display name, role names, visits in period)
    overdue_days: int

    @property
    def total_sites(self) -> int:
        return len({s.id for s, _n in self.monitored} | {s.id for s, _l in self.overdue})


def coverage(session, area_id: str, period: Period, overdue_days: int = 30) -> Coverage:
    """Sites monitored in the period, sites not visited for `overdue_days` before its end, visits per volunteer."""
    counted = and_(Submission.area_id == area_id, counted_visits())
    in_period = and_(counted, Submission.observed_at >= period.start, Submission.observed_at < period.end)
    visits = dict(session.execute(
        select(Submission.site_id, func.count()).where(in_period, Submission.kind == "street")
        .group_by(Submission.site_id)
    ).all())
    # Each site's last visit read backwards along its (site, observed_at) index: a few rows a
    # site, where a max() grouped over the area read every visit it ever had.
    last_visit = (select(Submission.observed_at)
                  .where(Submission.site_id == Site.id, counted, Submission.kind == "street",
                         Submission.observed_at < period.end)
                  .order_by(Submission.observed_at.desc()).limit(1).correlate(Site).scalar_subquery())
    last = {k: _aware(v) for k, v in session.execute(select(Site.id, last_visit).where(Site.area_id == area_id)).all()
            if v is not None}
    cutoff = period.end - timedelta(days=overdue_days)
    monitored, overdue = [], []
    for site in street_sites(session, area_id):
        if visits.get(site.id):
            monitored.append((site, visits[site.id]))
        if last.get(site.id) is None or last[site.id] < cutoff:
            overdue.append((site, last.get(site.id)))
    overdue.sort(key=lambda pair: (pair[1] is not None, pair[1] or datetime.min.replace(tzinfo=timezone.utc)))
    volunteers = session.execute(
        select(Person.id, Person.display_name, func.count(Submission.id).label("visits"))
        .join(Submission, Submission.person_id == Person.id)
        .where(in_period)
        .group_by(Person.id, Person.display_name)
        .order_by(func.count(Submission.id).desc(), Person.display_name)
    ).all()
    return Coverage(monitored=monitored, overdue=overdue,
                    volunteers=[(row.display_name, row.visits) for row in volunteers], overdue_days=overdue_days)


# -- mystery shops -------------------------------------------------------------------------

# Which promised response time applies to a contact made by each channel.
CHANNEL_STANDARD = {"phone": "answer_calls", "online": "reply_online"}


@dataclass
class ShopSummary:
    shops: int
    # dicts: key, text, theme, kept, partly, not_kept, cant_tell, graded; `street` (graded, c_or_d) from
    # the street-form lines the standard names (`compared_with` "lines", their labels in `lines`), or
    # from its whole theme when it names none (`compared_with` "theme")
    standards: list
    channels: list  # dicts: channel, shops, answered, median_minutes, promised_minutes, within
    street_by_theme: dict  # theme name -> (graded, c_or_d) for the same period


def _promised_minutes(standard: dict) -> float | None:
    if standard.get("minutes") is not None:
        return float(standard["minutes"])
    if standard.get("days") is not None:
        return float(standard["days"]) * 24 * 60
    return None


def current_agreement(session, area_id: str) -> AgreementVersion | None:
    """The area's published agreement version, if it has one."""
    return session.execute(
        select(AgreementVersion).join(Agreement)
        .where(Agreement.area_id == area_id, AgreementVersion.status == "published")
        .order_by(AgreementVersion.published_at.desc())
    ).scalars().first()


def mystery_shop_summary(session, area_id: str, period: Period) -> ShopSummary:
    """Standards met and response times against the promised ones, beside street grades by theme."""
    agreement = current_agreement(session, area_id)
    definition = agreement.definition if agreement else {}
    standards = {s["key"]: s for s in definition.get("standards", [])}
    theme_names = {t["key"]: t["name"] for t in definition.get("themes", [])}
    rows = session.execute(
        select(Answer.submission_id, Answer.line_key, Answer.value)
        .where(Answer.area_id == area_id, Answer.kind == "mystery_shop", _counted_answers(area_id),
               Answer.observed_at >= period.start, Answer.observed_at < period.end)
    ).all()
    shops: dict[str, dict] = {}
    for row in rows:
        shops.setdefault(row.submission_id, {})[row.line_key] = row.value
    met = {key: {"kept": 0, "partly": 0, "not_kept": 0, "cant_tell": 0} for key in standards}
    for answers in shops.values():
        for line_key, value in answers.items():
            key = line_key.removeprefix("std_")
            if line_key.startswith("std_") and key in met and value in met[key]:
                met[key][value] += 1
    street = {theme: (counts["total"], counts["C"] + counts["D"])
              for theme, counts in grade_shares_by_theme(session, area_id, period).items()}
    by_line = street_grades_by_line(session, area_id, period)
    labels = street_lines(session, area_id)
    standard_rows = []
    for key, counts in met.items():
        graded = counts["kept"] + counts["partly"] + counts["not_kept"]
        theme = theme_names.get(standards[key].get("theme"), "")
        named = [line for line in standards[key].get("lines") or [] if isinstance(line, str)]
        if named:
            # The standard names the street-form lines it concerns: compare with those only.
            pairs = [by_line.get(line, (0, 0)) for line in named]
            compared = (sum(p[0] for p in pairs), sum(p[1] for p in pairs))
            basis = "lines"
        else:
            compared, basis = street.get(theme), "theme"
        standard_rows.append({"key": key, "text": standards[key]["text"], "theme": theme, "graded": graded,
                              "street": compared, "compared_with": basis,
                              "lines": [labels.get(line, {}).get("label", line) for line in named], **counts})
    channels: dict[str, dict] = {}
    for answers in shops.values():
        channel = answers.get("channel") or "unknown"
        entry = channels.setdefault(channel, {"channel": channel, "shops": 0, "times": []})
        entry["shops"] += 1
        contacted, answered = parse_datetime(answers.get("contacted_at")), parse_datetime(answers.get("answered_at"))
        if contacted and answered:
            entry["times"].append((answered - contacted).total_seconds() / 60)
    channel_rows = []
    for channel, entry in sorted(channels.items()):
        standard = standards.get(CHANNEL_STANDARD.get(channel, ""))
        promised = _promised_minutes(standard) if standard else None
        times = entry["times"]
        channel_rows.append({
            "channel": channel, "shops": entry["shops"], "answered": len(times),
            "median_minutes": statistics.median(times) if times else None,
            "promised_minutes": promised, "standard": standard["text"] if standard else None,
            "within": sum(1 for t in times if promised is not None and t <= promised) if promised else None,
        })
    return ShopSummary(shops=len(shops), standards=standard_rows, channels=channel_rows, street_by_theme=street)


# -- agreement checklists ------------------------------------------------------------------

KEPT_VALUES = ("kept", "partly", "not_kept", "cant_tell")
PARTS = ("our_part", "your_part")


def _kept_counts() -> dict[str, int]:
    return {value: 0 for value in KEPT_VALUES}


@dataclass
class PromiseResult:
    """How often one promise of the agreement was found kept: counts of each answer, overall and per month."""

    key: str  # the checklist line's key, e.g. "our_part_listen"
    part: str  # "our_part" or "your_part"
    text: str
    counts: dict = field(default_factory=_kept_counts)
    by_month: dict = field(default_factory=dict)  # 'YYYY-MM' -> counts

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def share(self, value: str, month: str | None = None) -> float | None:
        """`value`'s share of every answer (can't tell included), overall or in one month."""
        counts = self.counts if month is None else self.by_month.get(month, {})
        total = sum(counts.values())
        return counts.get(value, 0) / total if total else None

    def short_share(self, month: str) -> float | None:
        """In `month`, the share of answers that could tell which found the promise partly or not kept."""
        counts = self.by_month.get(month, {})
        told = counts.get("kept", 0) + counts.get("partly", 0) + counts.get("not_kept", 0)
        return (counts.get("partly", 0) + counts.get("not_kept", 0)) / told if told else None


@dataclass
class ChecklistResults:
    """Checklist answers over a period, per promise (overall and by month) and per site and part."""

    months: list[str]
    checklists: int
    promises: list  # PromiseResult, our part first, in the agreement's order
    sites: list  # (site_id or None, site name, {part: counts})
    by_site: dict = field(default_factory=dict)  # (site_id, promise key) -> counts

    def site_counts(self, site_id, key: str) -> dict:
        """One promise's counts at one site."""
        return self.by_site.get((site_id, key), _kept_counts())


def checklist_lines(session, area_id: str | None = None) -> dict[str, dict]:
    """Line key -> {label, part} from the checklist forms' versions, the newest wording winning."""
    lines: dict[str, dict] = {}
    for section, line in _form_lines(session, "checklist", area_id):
        if line.get("type") == "kept":
            part = section.get("part") or next((p for p in PARTS if line["key"].startswith(p + "_")), "")
            lines[line["key"]] = {"label": line.get("label", line["key"]), "part": part}
    return lines


def checklist_results(session, area_id: str, period: Period) -> ChecklistResults:
    """For each promise of our part and your part: kept / partly / not kept / can't tell, by month and by site.

    Promises come from the area's published agreement (the checklist line of promise `k` of
    our part is `our_part_k`); a promise answered in the period but no longer in the agreement
    is shown too, with its wording from the checklist form. Flagged and corrected checklists are left out.
    """
    counted = and_(Answer.area_id == area_id, Answer.kind == "checklist", _counted_answers(area_id),
                   Answer.value.in_(KEPT_VALUES),
                   Answer.observed_at >= period.start, Answer.observed_at < period.end)
    month = month_bucket(session, Answer.observed_at)
    rows = session.execute(
        select(month.label("month"), Answer.line_key, Answer.site_id, Answer.value, func.count().label("n"))
        .where(counted).group_by(month, Answer.line_key, Answer.site_id, Answer.value)
    ).all()
    agreement = current_agreement(session, area_id)
    definition = agreement.definition if agreement else {}
    promises: dict[str, PromiseResult] = {}
    for part in PARTS:
        for item in definition.get(part) or []:
            if isinstance(item, dict) and item.get("key"):
                key = f"{part}_{item['key']}"
                promises[key] = PromiseResult(key=key, part=part, text=str(item.get("text") or item["key"]))
    known = checklist_lines(session, area_id)
    per_site: dict = {}
    by_site: dict = {}
    for row in rows:
        promise = promises.get(row.line_key)
        if promise is None:
            line = known.get(row.line_key, {})
            part = line.get("part") or next((p for p in PARTS if row.line_key.startswith(p + "_")), "")
            if part not in PARTS:
                continue
            promise = promises[row.line_key] = PromiseResult(key=row.line_key, part=part,
                                                             text=line.get("label", row.line_key))
        n = int(row.n)
        promise.counts[row.value] += n
        promise.by_month.setdefault(row.month, _kept_counts())[row.value] += n
        site = per_site.setdefault(row.site_id, {part: _kept_counts() for part in PARTS})
        site[promise.part][row.value] += n
        by_site.setdefault((row.site_id, promise.key), _kept_counts())[row.value] += n
    names = dict(session.execute(select(Site.id, Site.name).where(Site.area_id == area_id)).all())
    sites = sorted(((site_id, names.get(site_id, ""), counts) for site_id, counts in per_site.items()),
                   key=lambda s: (s[0] is None, s[1]))
    checklists = session.execute(
        select(func.count()).select_from(Submission)
        .where(Submission.area_id == area_id, Submission.kind == "checklist", counted_visits(),
               Submission.observed_at >= period.start, Submission.observed_at < period.end)
    ).scalar()
    ordered = sorted(promises.values(), key=lambda p: PARTS.index(p.part))
    return ChecklistResults(months=months_between(period), checklists=int(checklists or 0), promises=ordered,
                            sites=sites, by_site=by_site)


# -- labels, actions, people ---------------------------------------------------------------


def street_lines(session, area_id: str | None = None) -> dict[str, dict]:
    """Line key -> {label, theme} from the street forms' versions, the newest wording winning."""
    return {line["key"]: {"label": line.get("label", line["key"]), "theme": section.get("theme", "")}
            for section, line in _form_lines(session, "street", area_id)}


def _form_lines(session, kind: str, area_id: str | None):
    """(section, line) of every published or retired version of the area's forms of `kind` (shared
    ones included), oldest published first, so that a later wording of a key wins."""
    versions = session.execute(
        select(FormVersion).join(Form)
        .where(Form.kind == kind, FormVersion.status != "draft",
               or_(Form.area_id.is_(None), Form.area_id == area_id))
        .order_by(FormVersion.published_at)
    ).scalars().all()
    for version in versions:
        for section in version.definition.get("sections", []):
            for line in section.get("lines", []):
                yield section, line


def open_actions_by_line(session, area_id: str) -> dict[tuple, Action]:
    """The newest action not yet closed for each (site, line), to link from the priority list."""
    actions = session.execute(
        select(Action).where(Action.area_id == area_id, Action.status.not_in(("done", "not_doing")),
                             Action.site_id.is_not(None))
        .order_by(Action.created_at)
    ).scalars().all()
    return {(a.site_id, a.line_key): a for a in actions}


def volunteer_devices(session, area_id: str) -> list[tuple[Person, list[str], list[Device]]]:
    """The area's street reps and mystery shoppers, each with their roles and devices."""
    from server.models import Role

    people = session.execute(
        select(Person).join(Role).where(Role.area_id == area_id, Role.role.in_(("street_rep", "mystery_shopper")))
        .order_by(Person.display_name).distinct()
    ).scalars().all()
    devices: dict[str, list] = {}
    if people:
        for device in session.execute(
            select(Device).where(Device.person_id.in_([p.id for p in people])).order_by(Device.created_at)
        ).scalars():
            devices.setdefault(device.person_id, []).append(device)
    return [(p, sorted({r.role for r in p.roles if r.area_id == area_id}), devices.get(p.id, [])) for p in people]


# -- review queue ----------------------------------------------------------------------------
#
# The coordinator's queue of synced visits, newest arrivals first. Every filter is a condition
# on the submission row itself (the grade filter an EXISTS over the visit's answers), so the
# same conditions count the queue, page it, find a visit's neighbours and pick the visits that
# a bulk acceptance changes: what the coordinator saw counted is what gets accepted.

REVIEW_STATUSES = ("pending", "accepted", "flagged")


@dataclass(frozen=True)
class ReviewFilters:
    """What the review queue is narrowed to; empty strings (and no period) mean "any"."""

    status: str = "pending"  # one of REVIEW_STATUSES, or "all"
    site_id: str = ""
    person_id: str = ""
    form_id: str = ""
    kind: str = ""
    grade: str = ""  # visits with any line graded this letter
    period: Period | None = None

    @property
    def bulk_acceptable(self) -> bool:
        """Only a queue of visits that are not accepted yet is offered for acceptance in bulk."""
        return self.status in ("pending", "flagged")

    def args(self) -> dict:
        """The query arguments that ask for this queue again (links, the pager, the visit page)."""
        shown = {"status": self.status, "site": self.site_id, "volunteer": self.person_id, "form": self.form_id,
                 "kind": self.kind, "grade": self.grade}
        if self.period is not None:
            shown |= {"from": self.period.start.date().isoformat(), "to": self.period.last_day.date().isoformat()}
        return {name: value for name, value in shown.items() if value}

    def recorded(self) -> dict:
        """The filters as the audit log keeps them (ids, letters and ISO dates; no names)."""
        return self.args()


def review_conditions(area_id: str, filters: ReviewFilters) -> list:
    """WHERE conditions over `Submission` for the area's queue as filtered.

    A visit its volunteer has corrected is not in the queue: the correction is (and its page
    links to the visit it replaces), so accepting "all matching" never accepts a replaced visit.
    """
    conditions = [Submission.area_id == area_id, latest_only()]
    if filters.status in REVIEW_STATUSES:
        conditions.append(Submission.review_status == filters.status)
    if filters.site_id:
        conditions.append(Submission.site_id == filters.site_id)
    if filters.person_id:
        conditions.append(Submission.person_id == filters.person_id)
    if filters.form_id:
        conditions.append(Submission.form_id == filters.form_id)
    if filters.kind:
        conditions.append(Submission.kind == filters.kind)
    if filters.grade:
        conditions.append(exists().where(Answer.submission_id == Submission.id, Answer.grade == filters.grade))
    if filters.period is not None:
        conditions += [Submission.observed_at >= filters.period.start, Submission.observed_at < filters.period.end]
    return conditions


def review_count(session, area_id: str, filters: ReviewFilters) -> int:
    """The exact number of visits in the filtered queue."""
    return session.execute(select(func.count()).select_from(Submission)
                           .where(*review_conditions(area_id, filters))).scalar_one()


def review_page(session, area_id: str, filters: ReviewFilters, page: int, size: int) -> tuple[list, bool]:
    """One page of the filtered queue (rows of Submission, site_name, person_name), and whether more follow."""
    query = (select(Submission, Site.name.label("site_name"), Person.display_name.label("person_name"))
             .outerjoin(Site, Site.id == Submission.site_id).join(Person, Person.id == Submission.person_id)
             .where(*review_conditions(area_id, filters))
             .order_by(Submission.received_at.desc(), Submission.id)
             .offset((page - 1) * size).limit(size + 1))
    rows = session.execute(query).all()
    return rows[:size], len(rows) > size


def review_neighbours(session, area_id: str, filters: ReviewFilters, visit: Submission) -> tuple[str | None, str | None]:
    """The ids of the visits before and after `visit` in the filtered queue's order (newest arrival first).

    Found from the visit's own place (arrival time, then id), so they are right whether or
    not the visit itself still matches the filters (it no longer does once it is reviewed).
    """
    conditions = review_conditions(area_id, filters)
    at, key = visit.received_at, visit.id
    newer = session.execute(
        select(Submission.id).where(*conditions, or_(Submission.received_at > at,
                                                     and_(Submission.received_at == at, Submission.id < key)))
        .order_by(Submission.received_at, Submission.id.desc()).limit(1)).scalar()
    older = session.execute(
        select(Submission.id).where(*conditions, or_(Submission.received_at < at,
                                                     and_(Submission.received_at == at, Submission.id > key)))
        .order_by(Submission.received_at.desc(), Submission.id).limit(1)).scalar()
    return newer, older


@dataclass
class ReviewChoices:
    """What the queue's filter menus offer: the area's sites, the people who sent its visits, its forms."""

    sites: list  # (id, name)
    people: list  # (id, display name)
    forms: list  # (id, kind, title of its newest version)


def review_choices(session, area_id: str) -> ReviewChoices:
    """The options of the review queue's filters for one area."""
    sites = session.execute(select(Site.id, Site.name).where(Site.area_id == area_id).order_by(Site.name)).all()
    senders = select(Submission.person_id).where(Submission.area_id == area_id).distinct().subquery()
    people = session.execute(select(Person.id, Person.display_name).where(Person.id.in_(select(senders.c.person_id)))
                             .order_by(Person.display_name, Person.id)).all()
    forms = session.execute(select(Form.id, Form.kind).where(or_(Form.area_id.is_(None), Form.area_id == area_id))
                            .order_by(Form.kind, Form.id)).all()
    titles = {}
    for form_id, definition in session.execute(
            select(FormVersion.form_id, FormVersion.definition)
            .where(FormVersion.form_id.in_([f.id for f in forms])).order_by(FormVersion.version)):
        titles[form_id] = (definition or {}).get("title") or form_id
    return ReviewChoices(sites=[tuple(r) for r in sites], people=[tuple(r) for r in people],
                         forms=[(f.id, f.kind, titles.get(f.id, f.id)) for f in forms])
