"""No text a volunteer typed reaches a coordinator's CSV as a live spreadsheet formula (OWASP's rule)."""

from __future__ import annotations

import csv
import io

import pytest

from server import csvsafe, operations
from server.extensions import db
from tests.conftest import mutation, sign_in, street_answers, visit

HOSTILE = ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(1)", "\t=1", "\r=1"]


def _formula_cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row
            if cell.startswith(csvsafe.FORMULA_STARTS)]


@pytest.mark.parametrize("cell", HOSTILE)
def test_a_cell_starting_like_a_formula_is_prefixed_with_a_quote(cell):
    assert csvsafe.safe_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["Canal Street", "", " =1", "'quoted", "a=b", "2026-11-20T09:00:00+00:00"])
def test_ordinary_text_is_left_as_it_is(cell):
    assert csvsafe.safe_cell(cell) == cell


def test_real_numbers_stay_numbers_and_text_that_looks_like_one_does_not():
    assert csvsafe.csv_line([-2.63, -1, 0, None, "-2.63"]) == "-2.63,-1,0,,'-2.63\r\n"


@pytest.fixture
def hostile_area(client, make_area, make_site, publish_forms, enrol, sync):
    """An area where a street rep typed formulas into every field they can: notes, a new site's name, an action."""
    publish_forms()
    area = make_area("formulas", "Formulas")
    site = make_site(area, HOSTILE[0])
    token, _ = enrol(area, name="Rita Rep")
    visits = [visit(site, answers=street_answers("C", litter={"grade": "C", "note": text})) for text in HOSTILE]
    visits += [visit(None) | {"new_site": {"name": text}} for text in HOSTILE]
    results = sync(token, [mutation(v, seq=n) for n, v in enumerate(visits, 1)]).get_json()["results"]
    assert [r["status"] for r in results] == ["applied"] * len(visits), results
    for text in HOSTILE:
        operations.raise_action(area, text, site=site, line_key="litter", description=text, assigned_to=text.strip())
    operations.create_person("Cora", email="cora@example.org", password="correct horse battery",
                             roles=[("coordinator", area)])
    db.session.commit()
    sign_in(client, "cora@example.org")
    return area


@pytest.mark.parametrize("export", ["submissions.csv", "actions.csv"])
def test_every_csv_export_neutralises_formula_cells(client, hostile_area, export):
    response = client.get(f"/coordinator/formulas/exports/{export}")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert _formula_cells(text) == []
    cells = {cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row}
    # The text is all there, readable, behind its quote.
    assert {"'" + hostile for hostile in HOSTILE if hostile.strip() == hostile} <= cells


def test_the_check_finds_formulas_in_a_csv_written_without_the_rule(client, hostile_area):
    """Negative control: the same rows written by a plain csv.writer hold live formulas."""
    from server.coordinator import exports

    plain = io.StringIO()
    csv.writer(plain).writerows(exports.submission_rows(db.session, hostile_area.id))
    assert len(_formula_cells(plain.getvalue())) >= len(HOSTILE)
