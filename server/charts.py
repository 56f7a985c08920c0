"""Charts drawn on the server as SVG: no JavaScript, colours from kerbside.css, text alternatives.

Each chart is an `<svg role="img">` with a `<title>` and a `<desc>` that says in words what
it shows; the page puts the same figures in a table next to it. Bars carry their numbers
as text, so nothing depends on colour alone.

The charts have no viewBox: an SVG with one is scaled as a picture, its text with it, so a
chart drawn 666 units wide and shown in a 320 px column had 6 px labels. Here a user unit is
a CSS pixel, so text keeps the size kerbside.css gives it (at least 12 px) at every width;
positions along the width are percentages, so the bars stretch or shrink with the column and
only the text is of fixed size. The label column and the room left after the longest bar
are sized for the longest label ("Sept 2026", "100%") at the narrowest chart a phone shows.

In a right-to-left language (Urdu) a chart is read from the right: every position along the
width is mirrored (`_Along`), so the labels stand on the right and the bars grow leftwards,
and the SVG's `direction` is rtl, which makes each `text-anchor` ("start", "end") and the
text's own order (a month and its year) right for that reader.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

from flask_babel import format_date, get_locale, gettext as _
from markupsafe import Markup, escape

from server import languages

GRADE_CLASSES = {"A": "grade-a", "B": "grade-b", "C": "grade-c", "D": "grade-d"}

# share_bars geometry: percentages of the chart's width, pixels down it.
LABEL_END, PLOT_WIDTH = 30, 56  # month labels in [0, 30%), bars in [30%, 86%), their numbers after
AXIS_HEIGHT, ROW, BAR, NOTE_LINE = 22, 26, 16, 15


class _Along:
    """Positions along a chart's width, in percent, as its reader reads: from the left, or from the right."""

    def __init__(self):
        self.direction = languages.direction(get_locale())
        self.mirrored = self.direction == "rtl"

    def at(self, percent: float) -> float:
        """Where a point `percent` of the way along the reading direction lies, from the left."""
        return 100 - percent if self.mirrored else percent

    def span(self, start: float, width: float) -> float:
        """The left edge of a part that begins `start` of the way along and is `width` wide."""
        return 100 - start - width if self.mirrored else start

    def gap(self, pixels: int) -> int:
        """A small offset in the reading direction (a bar's number just after its end)."""
        return -pixels if self.mirrored else pixels


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{round(share * 100)}%"


def month_label(month: str) -> str:
    """'2025-12' as the reader's language writes a month and year: "Dec 2025" in English."""
    year, number = (int(part) for part in month.split("-"))
    return format_date(date(year, number, 1), "MMM yyyy")


def partial_months(months: list[str], start: datetime, end: datetime, now: datetime) -> dict[str, str]:
    """The months of `months` that the period [start, end) or the calendar does not cover whole,
    each with words saying so: "so far" for the month still running, else the days it covers."""
    notes = {}
    today = now.date()
    last_day = (end - timedelta(days=1)).date()
    for month in months:
        year, number = (int(part) for part in month.split("-"))
        first, last = date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])
        shown_from, shown_to = max(first, start.date()), min(last, last_day)
        if first <= today <= last and shown_to >= today:
            notes[month] = _("so far")
        elif shown_from > first and shown_to < last:
            notes[month] = _("%(first)s to %(last)s", first=format_date(shown_from, "d MMM"),
                             last=format_date(shown_to, "d MMM"))
        elif shown_from > first:
            notes[month] = _("from %(day)s", day=format_date(shown_from, "d MMM"))
        elif shown_to < last:
            notes[month] = _("to %(day)s", day=format_date(shown_to, "d MMM"))
    return notes


def share_bars(chart_id: str, title: str, months: list[str], shares: list[float | None], description: str,
               partial: dict[str, str] | None = None) -> Markup:
    """A bar per month, one row each: the share of grades that were C or D (0–100%).

    `partial` names the months the figures do not cover whole, with words to print under the
    month (see `partial_months`): their bar is hatched and outlined with dashes, and the words
    say it, so the difference does not rest on the pattern alone.
    """
    partial = partial or {}
    along = _Along()
    cid = escape(chart_id)
    heights = [ROW + (NOTE_LINE if month in partial else 0) for month in months]
    height = AXIS_HEIGHT + sum(heights) + 4
    parts = [
        f'<svg id="{cid}" class="chart chart-bars" role="img" aria-labelledby="{cid}-t {cid}-d" '
        f'width="100%" height="{height}" direction="{along.direction}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{cid}-t">{escape(title)}</title>',
        f'<desc id="{cid}-d">{escape(description)}</desc>',
    ]
    if partial:
        # The hatching is drawn in user space (pixels): it looks the same on every bar at any width.
        parts.append(f'<defs><pattern id="{cid}-hatch" class="chart-hatch" width="6" height="6" '
                     f'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
                     f'<rect class="chart-hatch-line" width="3" height="6"/></pattern></defs>')
    for fraction, anchor in ((0, "start"), (0.5, "middle"), (1, "end")):
        x = along.at(LABEL_END + PLOT_WIDTH * fraction)
        parts.append(f'<line class="chart-rule" x1="{x}%" x2="{x}%" y1="{AXIS_HEIGHT - 4}" y2="{height - 2}"/>')
        parts.append(f'<text class="chart-axis" x="{x}%" y="{AXIS_HEIGHT - 8}" '
                     f'text-anchor="{anchor}">{round(fraction * 100)}%</text>')
    y = AXIS_HEIGHT
    for month, share, row_height in zip(months, shares, heights):
        middle = y + ROW / 2
        # A few pixels in from the chart's edge: an italic note's first letter leans out of it otherwise.
        label_x, inset = along.at(0), along.gap(3)
        parts.append(f'<text class="chart-axis chart-month" x="{label_x}%" dx="{inset}" y="{middle + 4:.1f}">'
                     f'{escape(month_label(month))}</text>')
        note = partial.get(month)
        if note:
            parts.append(f'<text class="chart-axis chart-note" x="{label_x}%" dx="{inset}" '
                         f'y="{middle + 4 + NOTE_LINE:.1f}">{escape(note)}</text>')
        if share is not None:
            bar = max(PLOT_WIDTH * share, 0.4)
            if note:
                look = f'class="chart-bar chart-bar-partial" fill="url(#{cid}-hatch)"'
            else:
                level = "chart-bar-high" if share >= 0.5 else "chart-bar-mid" if share >= 0.2 else "chart-bar-low"
                look = f'class="chart-bar {level}"'
            parts.append(f'<rect {look} x="{along.span(LABEL_END, bar):g}%" y="{middle - BAR / 2:.1f}" '
                         f'width="{bar:.2f}%" height="{BAR}"/>')
            value_x = LABEL_END + bar
        else:
            value_x = LABEL_END
        parts.append(f'<text class="chart-value" x="{along.at(value_x):.2f}%" dx="{along.gap(4)}" '
                     f'y="{middle + 4:.1f}">{_percent(share)}</text>')
        y += row_height
    parts.append("</svg>")
    # B704 (bandit) is answered: every interpolated text is escape()d and the rest are numbers we compute.
    return Markup("".join(parts))  # nosec B704


def grade_strip(chart_id: str, title: str, counts: dict, description: str) -> Markup:
    """One horizontal bar split into A, B, C and D by their share, each part labelled with its letter.

    Parts are placed in percentages of the strip's width and the letters keep their CSS size;
    a part narrower than 6% (too narrow for its letter on a phone) goes unlabelled, and the
    figures beside the strip give every grade in words.
    """
    height = 36
    along = _Along()
    total = sum(counts.get(g, 0) for g in "ABCD")
    cid = escape(chart_id)
    parts = [
        f'<svg id="{cid}" class="chart chart-strip" role="img" aria-labelledby="{cid}-t {cid}-d" '
        f'width="100%" height="{height}" direction="{along.direction}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{cid}-t">{escape(title)}</title>',
        f'<desc id="{cid}-d">{escape(description)}</desc>',
    ]
    x = 0.0
    for grade in "ABCD":
        n = counts.get(grade, 0)
        if not total or not n:
            continue
        part = 100 * n / total
        parts.append(f'<rect class="{GRADE_CLASSES[grade]}" x="{along.span(x, part):.2f}%" y="0" '
                     f'width="{part:.2f}%" height="{height}"/>')
        if part >= 6:
            parts.append(f'<text class="chart-letter" x="{along.at(x + part / 2):.2f}%" y="{height / 2 + 6}" '
                         f'text-anchor="middle">{grade}</text>')
        x += part
    parts.append("</svg>")
    # B704 (bandit) is answered: every interpolated text is escape()d and the rest are numbers we compute.
    return Markup("".join(parts))  # nosec B704
