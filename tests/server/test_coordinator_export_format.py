"""The submissions CSV writes each visit's columns once: the text must be what writing whole rows gives."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

from server.coordinator import exports
from server.extensions import db
from tests.conftest import mutation, street_answers, visit

NOTES = ["plain", "with, a comma", 'said "no"', "two\nlines", "carriage\r\nreturn", "", " leading space"]


def test_csv_text_is_what_whole_rows_give(app, make_area, make_site, publish_forms, enrol, sync):
    publish_forms()
    area = make_area("quoting", "Quoting")
    sites = [make_site(area, "Canal Street"), make_site(area, 'The "Wharf", east end')]
    token, _ = enrol(area, name="Rita Rep")
    # A week of visits a month ago: recent enough for forms published today.
    start = datetime.now(timezone.utc).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=30)
    visits = [visit(sites[n % 2], observed_at=(start + timedelta(days=n)).isoformat(),
                    answers=street_answers("B", litter={"grade": "C", "note": note}, graffiti={"grade": "D", "note": note}))
              for n, note in enumerate(NOTES)]
    results = sync(token, [mutation(v, seq=n) for n, v in enumerate(visits, 1)]).get_json()["results"]
    assert {r["status"] for r in results} == {"applied"}

    text = "".join(exports.submissions_csv_chunks(db.session, area.id))
    expected = io.StringIO()
    writer = csv.writer(expected)
    writer.writerow(exports.SUBMISSION_COLUMNS)
    writer.writerows(exports.submission_rows(db.session, area.id))
    assert text == expected.getvalue()

    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == len(NOTES) * 12
    assert [r["note"] for r in rows if r["line_key"] == "litter"] == NOTES
    assert {r["site_name"] for r in rows} == {"Canal Street", 'The "Wharf", east end'}
