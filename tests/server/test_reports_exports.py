"""Exports partners can use: street visits, mystery shops and checklists as CSV, one XLSX workbook, GeoJSON.

Each with labels and keys, the visit's notes, a period filter, formula-safe cells, streamed,
and each download in the audit log.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import re
import tempfile
from datetime import datetime, timezone

import openpyxl
import pytest
from sqlalchemy import select

from server import operations, privacy
from server.coordinator import exports
from server.extensions import db
from server.models import AuditEntry
from tests.conftest import mutation, sign_in, street_answers, visit

PASSWORD = "correct horse battery"
SEPTEMBER = "2026-09-10T10:00:00+00:00"
OCTOBER = "2026-10-12T10:00:00+00:00"
HOSTILE = '=HYPERLINK("http://evil.example","x")'


def _shop(site, observed_at, **overrides):
    answers = {
        "scenario": {"value": "Report a missed bin"},
        "channel": {"value": "phone"},
        "contacted_at": {"value": observed_at},
        "answered_at": {"value": observed_at.replace("10:00:00", "10:03:00")},
        "std_answer_calls": {"value": "not_kept", "note": "Kept on hold"},
        "std_missed_bin": {"value": "kept"},
        "treated_well": {"value": "partly"},
        "what_happened": {"value": "Passed between two departments."},
    } | overrides
    return visit(site, form_id="mystery_shop", answers=answers, observed_at=observed_at)


def _checklist(site, observed_at, **answers):
    return visit(site, form_id="checklist", answers=answers, observed_at=observed_at)


@pytest.fixture
def world(client, make_area, make_site, publish_forms, enrol, sync):
    publish_forms(published_at=datetime(2026, 8, 1, tzinfo=timezone.utc))
    area = make_area("millbrook", "Millbrook")
    canal = make_site(area, "Canal Street", lat=53.5, lng=-2.6)
    desk = make_site(area, "Town hall desk", lat=None, lng=None)
    rep_token, rep = enrol(area, name="Rita Rep")
    shopper_token, shopper = enrol(area, role="mystery_shopper", name="Sam Shopper")
    september = visit(canal, observed_at=SEPTEMBER, answers=street_answers("A", litter={"grade": "C", "note": "Bags"}))
    september["notes"] = HOSTILE
    october = visit(canal, observed_at=OCTOBER, answers=street_answers("B", graffiti={"grade": "D"}))
    october["notes"] = "Busy market day"
    checklist = _checklist(canal, OCTOBER, our_part_listen={"value": "partly", "note": "-1 for politeness"},
                           your_part_recycle={"value": "kept"})
    checklist["notes"] = "Whole street"
    results = sync(rep_token, [mutation(v, seq=n) for n, v in enumerate((september, october, checklist), 1)])
    assert {r["status"] for r in results.get_json()["results"]} == {"applied"}
    shops = [_shop(desk, SEPTEMBER), _shop(desk, OCTOBER, what_happened={"value": "@SUM(1)"})]
    results = sync(shopper_token, [mutation(v, seq=n) for n, v in enumerate(shops, 1)])
    assert {r["status"] for r in results.get_json()["results"]} == {"applied"}, results.get_json()
    operations.create_person("Cora", email="cora@example.org", password=PASSWORD, roles=[("coordinator", area)])
    db.session.commit()
    sign_in(client, "cora@example.org")
    return {"area": area, "canal": canal, "desk": desk, "rep_id": rep["person"]["id"],
            "shopper_id": shopper["person"]["id"], "september": september,
            "october": october, "checklist": checklist, "shops": shops}


def _rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True), newline="")))


def test_street_visits_csv_has_labels_keys_notes_and_a_pseudonym_not_a_name(app, client, world):
    response = client.get("/coordinator/millbrook/exports/submissions.csv")
    assert response.status_code == 200 and response.is_streamed
    rows = _rows(response)
    assert list(rows[0]) == list(exports.SUBMISSION_COLUMNS)
    litter = [r for r in rows if r["line_key"] == "litter"]
    assert [(r["line_label"], r["grade"], r["grade_wording"], r["note"]) for r in litter] == [
        ("Litter", "C", "Litter building up along the street and in corners", "Bags"),
        ("Litter", "B", "A few items of litter", "")]
    # The visit's own notes, on every row of the visit; a formula among them is neutralised.
    assert {r["visit_notes"] for r in rows if r["submission_id"] == world["september"]["id"]} == {"'" + HOSTILE}
    assert {r["visit_notes"] for r in rows if r["submission_id"] == world["october"]["id"]} == {"Busy market day"}
    (volunteer,) = {r["volunteer"] for r in rows}
    assert re.fullmatch(r"Volunteer [0-9A-F]{6}", volunteer)
    with app.test_request_context():
        assert volunteer == exports.volunteer_pseudonym(world["rep_id"])
    assert {r["review_status_label"] for r in rows} == {"Waiting for review"}
    # Neither the volunteer's name nor their id leaves with the file.
    assert "Rita" not in response.get_data(as_text=True) and world["rep_id"] not in response.get_data(as_text=True)
    # Lines follow the form's order, not the alphabet.
    assert [r["line_key"] for r in rows[:2]] == ["groups_loitering", "noise"]


def test_the_period_filter_keeps_only_visits_in_it(client, world):
    rows = _rows(client.get("/coordinator/millbrook/exports/submissions.csv?from=2026-10-01&to=2026-10-31"))
    assert {r["submission_id"] for r in rows} == {world["october"]["id"]}
    rows = _rows(client.get("/coordinator/millbrook/exports/mystery-shops.csv?to=2026-09-30"))
    assert {r["submission_id"] for r in rows} == {world["shops"][0]["id"]}
    rows = _rows(client.get("/coordinator/millbrook/exports/checklists.csv?from=2026-09-01&to=2026-09-30"))
    assert rows == []
    response = client.get("/coordinator/millbrook/exports/submissions.csv?from=2026-10-01&to=2026-10-31")
    assert "2026-10-01-to-2026-10-31" in response.headers["Content-Disposition"]


def test_a_date_that_is_not_one_is_a_friendly_400(client, world):
    assert client.get("/coordinator/millbrook/exports/checklists.csv?from=yesterday").status_code == 400


def test_mystery_shops_csv_has_a_row_per_standard_and_the_shoppers_pseudonym(app, client, world):
    response = client.get("/coordinator/millbrook/exports/mystery-shops.csv")
    assert response.is_streamed
    rows = _rows(response)
    assert list(rows[0]) == list(exports.SHOP_COLUMNS) and "volunteer" not in rows[0]
    # The shopper by the pseudonym partners already see on actions, never by name or id.
    with app.test_request_context():
        assert {r["shopper"] for r in rows} == {privacy.pseudonym(world["shopper_id"])}
    assert world["shopper_id"] not in response.get_data(as_text=True)
    first = [r for r in rows if r["submission_id"] == world["shops"][0]["id"]]
    assert [(r["standard_key"], r["standard_label"], r["kept"], r["kept_label"], r["comment"]) for r in first] == [
        ("missed_bin", "A reported missed bin collected within 2 working days", "kept", "Kept", ""),
        ("answer_calls", "Phone calls answered within 2 minutes", "not_kept", "Not kept", "Kept on hold"),
    ]
    shop = first[0]
    assert (shop["channel"], shop["channel_label"], shop["minutes_to_answer"], shop["treated_well"],
            shop["treated_well_label"], shop["site_name"]) == ("phone", "Phone", "3.0", "partly", "Partly",
                                                                "Town hall desk")
    assert {r["what_happened"] for r in rows if r["submission_id"] == world["shops"][1]["id"]} == {"'@SUM(1)"}
    assert "Sam" not in response.get_data(as_text=True)


def test_checklists_csv_has_part_promise_and_kept_with_labels(client, world):
    rows = _rows(client.get("/coordinator/millbrook/exports/checklists.csv"))
    assert list(rows[0]) == list(exports.CHECKLIST_COLUMNS)
    assert [(r["part"], r["part_label"], r["promise_key"], r["promise_label"], r["kept"], r["kept_label"],
             r["comment"]) for r in rows] == [
        ("our_part", "Our part", "our_part_listen", "Listen, be open, honest and friendly", "partly", "Partly",
         "'-1 for politeness"),
        ("your_part", "Your part", "your_part_recycle", "Recycle more, recycle right", "kept", "Kept", ""),
    ]
    assert {r["visit_notes"] for r in rows} == {"Whole street"}
    street = _rows(client.get("/coordinator/millbrook/exports/submissions.csv"))
    assert {r["volunteer"] for r in rows} == {street[0]["volunteer"]}


def _workbook(client, query=""):
    response = client.get("/coordinator/millbrook/exports/kerbside.xlsx" + query)
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return openpyxl.load_workbook(io.BytesIO(response.get_data()))


def test_workbook_has_a_sheet_per_kind_and_one_describing_each_column(client, world):
    book = _workbook(client)
    assert book.sheetnames == ["Street visits", "Mystery shops", "Checklists", "Columns"]
    street = list(book["Street visits"].iter_rows(values_only=True))
    assert street[0] == exports.SUBMISSION_COLUMNS and len(street) == 1 + 2 * 12
    checklists = list(book["Checklists"].iter_rows(values_only=True))
    assert checklists[1][checklists[0].index("promise_label")] == "Listen, be open, honest and friendly"
    columns = list(book["Columns"].iter_rows(values_only=True))
    described = {(sheet, column) for sheet, column, words in columns[1:] if words}
    for sheet, names in (("Street visits", exports.SUBMISSION_COLUMNS), ("Mystery shops", exports.SHOP_COLUMNS),
                         ("Checklists", exports.CHECKLIST_COLUMNS)):
        assert {(sheet, name) for name in names} <= described
    assert len(list(book["Mystery shops"].iter_rows())) == 1 + 4


def test_workbook_cells_that_look_like_formulas_are_text(client, world):
    book = _workbook(client)
    sheet = book["Street visits"]
    notes = sheet[1].index(next(c for c in sheet[1] if c.value == "visit_notes"))
    cell = sheet.cell(row=2, column=notes + 1)
    # Stored as the words typed, as text, marked so that Excel never evaluates it.
    assert cell.value == HOSTILE and cell.data_type == "s" and cell.quotePrefix
    shops = book["Mystery shops"]
    what = [c.value for c in shops[1]].index("what_happened")
    assert [(row[what].value, row[what].data_type) for row in shops.iter_rows(min_row=2)][-1] == ("@SUM(1)", "s")
    for ws in book.worksheets:
        assert not [c for row in ws.iter_rows() for c in row if c.data_type == "f"]


def test_xlsx_cell_neutralises_every_formula_start_and_leaves_the_rest(app):
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("x")
    for text in ("=1+2", "+1", "-1", "@A1", "\t=1", "\r=1"):
        cell = exports.xlsx_cell(sheet, text)
        assert cell.data_type == "s" and cell.quotePrefix and cell.value == text
    assert exports.xlsx_cell(sheet, "Canal Street") == "Canal Street"
    assert exports.xlsx_cell(sheet, -2.5) == -2.5
    assert exports.xlsx_cell(sheet, "bell\x07") == "bell"


def test_workbook_period_filter_and_no_temporary_file_left(client, world):
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "kerbside-export-*")))
    book = _workbook(client, "?from=2026-10-01&to=2026-10-31")
    ids = {row[0] for row in book["Street visits"].iter_rows(min_row=2, values_only=True)}
    assert ids == {world["october"]["id"]}
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "kerbside-export-*"))) == before


def test_workbook_is_written_in_write_only_mode_and_sent_in_chunks(app, world, monkeypatch):
    monkeypatch.setattr(exports, "FILE_CHUNK", 1024)
    chunks = exports.workbook_chunks(db.session, world["area"].id, None)
    assert not isinstance(chunks, (bytes, list))
    parts = list(chunks)
    assert len(parts) > 3 and all(len(p) <= 1024 for p in parts)
    openpyxl.load_workbook(io.BytesIO(b"".join(parts)))


def test_sites_geojson_with_a_period(client, world):
    whole = json.loads(client.get("/coordinator/millbrook/exports/sites.geojson").get_data(as_text=True))
    canal = next(f for f in whole["features"] if f["properties"]["name"] == "Canal Street")
    assert canal["properties"]["worst_grade"] == "D" and canal["properties"]["grades"]["litter"] == "B"
    response = client.get("/coordinator/millbrook/exports/sites.geojson?from=2026-09-01&to=2026-09-30")
    assert response.is_streamed
    september = json.loads(response.get_data(as_text=True))
    canal = next(f for f in september["features"] if f["properties"]["name"] == "Canal Street")
    assert canal["properties"]["worst_grade"] == "C" and canal["properties"]["grades"]["litter"] == "C"
    assert canal["properties"]["latest_visit"].startswith("2026-09-10")


def test_each_download_is_audited_with_its_period(client, world):
    client.get("/coordinator/millbrook/exports/checklists.csv?from=2026-10-01&to=2026-10-31").get_data()
    client.get("/coordinator/millbrook/exports/kerbside.xlsx").get_data()
    entries = db.session.execute(select(AuditEntry).where(AuditEntry.action == "export.download")
                                 .order_by(AuditEntry.seq)).scalars().all()
    assert [e.details for e in entries[-2:]] == [
        {"export": "checklists.csv", "from": "2026-10-01", "to": "2026-10-31"}, {"export": "kerbside.xlsx"}]


def test_exports_page_offers_every_download_for_a_period(client, world):
    page = client.get("/coordinator/millbrook/exports?from=2026-10-01&to=2026-10-31").get_data(as_text=True)
    for name in ("kerbside.xlsx", "submissions.csv", "mystery-shops.csv", "checklists.csv", "sites.geojson",
                 "actions.csv"):
        assert f"/coordinator/millbrook/exports/{name}" in page
    assert 'value="2026-10-01"' in page and 'value="2026-10-31"' in page
    assert 'formaction="/coordinator/millbrook/exports/kerbside.xlsx"' in page


def test_a_sheet_that_would_pass_the_spreadsheet_row_limit_carries_on_in_the_next(client, world, monkeypatch):
    monkeypatch.setattr(exports, "MAX_SHEET_ROWS", 10)
    book = _workbook(client)
    assert book.sheetnames[:3] == ["Street visits", "Street visits (2)", "Street visits (3)"]
    sheets = [list(book[name].iter_rows(values_only=True)) for name in book.sheetnames[:3]]
    assert [len(rows) for rows in sheets] == [10, 10, 1 + 24 - 18]
    assert all(rows[0] == exports.SUBMISSION_COLUMNS for rows in sheets)
    # Every graded line once, in order, across the three.
    assert [row[0] for rows in sheets for row in rows[1:]] == [world["september"]["id"]] * 12 + [world["october"]["id"]] * 12


def test_only_to_means_everything_up_to_that_day_and_only_from_everything_since(client, world):
    rows = _rows(client.get("/coordinator/millbrook/exports/submissions.csv?to=2026-09-30"))
    assert {r["submission_id"] for r in rows} == {world["september"]["id"]}
    rows = _rows(client.get("/coordinator/millbrook/exports/submissions.csv?from=2026-10-01"))
    assert {r["submission_id"] for r in rows} == {world["october"]["id"]}
