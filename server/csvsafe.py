"""CSV that a spreadsheet opens as text: no cell from a volunteer runs as a formula.

The files go to partners, who open them in Excel, LibreOffice or Google Sheets. A cell
that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is read there as a formula
(`=HYPERLINK(…)`, `+cmd|' /C calc'!A0`), so OWASP's rule is applied to every text cell:
such a cell is prefixed with a single quote, which spreadsheets show as text and which a
reader of the raw CSV can strip. Real numbers (Python `int` and `float` values that the
server itself writes, like a negative longitude) are written as they are, so they stay
numbers; text that only looks like a number ("-2+3", "-0.5" typed by a rep) is text and
is prefixed. Every CSV the server writes goes through `writer()` or `csv_line()`.
"""

from __future__ import annotations

import csv
import io

# OWASP "CSV Injection": the characters that make a spreadsheet treat a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """`value` as a spreadsheet shows it literally: text starting like a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(values) -> list:
    """Every cell of a row through `safe_cell`."""
    return [safe_cell(value) for value in values]


class SafeWriter:
    """`csv.writer` whose rows are neutralised cell by cell before they are written."""

    def __init__(self, stream, **options):
        self._writer = csv.writer(stream, **options)

    def writerow(self, values):
        return self._writer.writerow(safe_row(values))

    def writerows(self, rows):
        for values in rows:
            self._writer.writerow(safe_row(values))


def writer(stream, **options) -> SafeWriter:
    """A CSV writer for files people open in a spreadsheet."""
    return SafeWriter(stream, **options)


def csv_line(values) -> str:
    """One neutralised CSV row as text, with its CRLF."""
    buffer = io.StringIO()
    writer(buffer).writerow(values)
    return buffer.getvalue()
