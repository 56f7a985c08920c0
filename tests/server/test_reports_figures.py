"""Checklist results per promise (by month and by site), and mystery shops against the lines a standard names."""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from server import operations, reporting
from server.coordinator.wording import agreement_with_wording
from server.extensions import db
from server.models import AgreementVersion, Person, Submission
from server.seed_content import AGREEMENT
from tests.conftest import mutation, sign_in, street_answers, visit

PASSWORD = "correct horse battery"
PERIOD = reporting.Period(datetime(2026, 9, 1, tzinfo=timezone.utc), datetime(2026, 11, 1, tzinfo=timezone.utc))


def _checklist(site, observed_at, **values):
    return visit(site, form_id="checklist", observed_at=observed_at,
                 answers={key: {"value": value} for key, value in values.items()})


@pytest.fixture
def area(client, make_area, publish_forms):
    publish_forms(published_at=datetime(2026, 8, 1, tzinfo=timezone.utc))
    area = make_area("millbrook", "Millbrook")
    operations.publish_agreement_version(operations.draft_agreement_version("millbrook-deal", area, AGREEMENT))
    operations.create_person("Cora", email="cora@example.org", password=PASSWORD, roles=[("coordinator", area)])
    db.session.commit()
    return area


@pytest.fixture
def checklists(client, area, make_site, enrol, sync):
    market, park = make_site(area, "Market Street"), make_site(area, "Park Road")
    token, _ = enrol(area, name="Rita Rep")
    visits = [
        _checklist(market, "2026-09-10T10:00:00+00:00", our_part_listen="kept", our_part_council_tax="not_kept",
                   your_part_recycle="cant_tell"),
        _checklist(market, "2026-10-12T10:00:00+00:00", our_part_listen="partly", your_part_recycle="kept"),
        _checklist(park, "2026-10-13T10:00:00+00:00", our_part_listen="kept"),
        # Flagged by the coordinator: left out of every figure.
        _checklist(park, "2026-10-14T10:00:00+00:00", our_part_listen="not_kept"),
        # Before the period.
        _checklist(park, "2026-08-20T10:00:00+00:00", our_part_listen="not_kept"),
    ]
    results = sync(token, [mutation(v, seq=n) for n, v in enumerate(visits, 1)]).get_json()["results"]
    assert {r["status"] for r in results} == {"applied"}, results
    coordinator = db.session.execute(select(Person).where(Person.email == "cora@example.org")).scalar_one()
    operations.review_submission(db.session.get(Submission, visits[3]["id"]), "flagged", coordinator, "Duplicate")
    db.session.commit()
    return {"market": market, "park": park}


def test_checklist_counts_per_promise_month_and_site_by_hand(app, area, checklists):
    results = reporting.checklist_results(db.session, area.id, PERIOD)
    assert results.checklists == 3
    assert results.months == ["2026-09", "2026-10"]
    by_key = {p.key: p for p in results.promises}
    # Every promise of the agreement is there, our part first, even those nobody answered.
    assert [p.key for p in results.promises] == (
        [f"our_part_{i['key']}" for i in AGREEMENT["our_part"]] + [f"your_part_{i['key']}" for i in AGREEMENT["your_part"]])
    listen = by_key["our_part_listen"]
    assert listen.text == "Listen, be open, honest and friendly" and listen.part == "our_part"
    assert listen.counts == {"kept": 2, "partly": 1, "not_kept": 0, "cant_tell": 0}
    assert listen.by_month == {"2026-09": {"kept": 1, "partly": 0, "not_kept": 0, "cant_tell": 0},
                               "2026-10": {"kept": 1, "partly": 1, "not_kept": 0, "cant_tell": 0}}
    assert listen.share("kept") == pytest.approx(2 / 3)
    assert listen.short_share("2026-09") == 0 and listen.short_share("2026-10") == pytest.approx(0.5)
    assert by_key["our_part_council_tax"].counts["not_kept"] == 1
    recycle = by_key["your_part_recycle"]
    assert recycle.counts == {"kept": 1, "partly": 0, "not_kept": 0, "cant_tell": 1}
    # "Can't tell" says nothing about the promise: it is left out of the share that fell short.
    assert recycle.short_share("2026-09") is None and recycle.short_share("2026-10") == 0
    assert by_key["your_part_get_online"].total == 0
    sites = {name: counts for _id, name, counts in results.sites}
    assert sites == {
        "Market Street": {"our_part": {"kept": 1, "partly": 1, "not_kept": 1, "cant_tell": 0},
                          "your_part": {"kept": 1, "partly": 0, "not_kept": 0, "cant_tell": 1}},
        "Park Road": {"our_part": {"kept": 1, "partly": 0, "not_kept": 0, "cant_tell": 0},
                      "your_part": {"kept": 0, "partly": 0, "not_kept": 0, "cant_tell": 0}},
    }


def test_checklist_results_page_shows_counts_charts_and_sites(client, area, checklists):
    sign_in(client, "cora@example.org")
    response = client.get("/coordinator/millbrook/checklists?from=2026-09-01&to=2026-10-31")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "3 agreement checklists" in page
    row = re.search(r"<tr><th scope=\"row\">Listen, be open, honest and friendly</th>(.*?)</tr>", page).group(1)
    cells = re.findall(r"<td>(\d+)", row)
    assert cells == ["2", "1", "0", "0", "3"]
    # A chart per promise, drawn like the trends page's, with its figures in words.
    assert page.count('class="chart chart-bars"') == len(AGREEMENT["our_part"]) + len(AGREEMENT["your_part"])
    assert "Oct 2026: 50%" in page
    assert "Market Street" in page and "Park Road" in page
    assert 'href="/coordinator/millbrook/checklists" aria-current="page"' in page


def test_public_page_shows_the_checklist_figures_without_names(client, area, checklists):
    page = client.get("/area/millbrook").get_data(as_text=True)
    assert "Is the agreement being kept?" in page
    row = re.search(r"<tr><th scope=\"row\">Listen, be open, honest and friendly</th>(.*?)</tr>", page).group(1)
    # The public page's own period (the last 90 days) holds the same September and October checklists.
    assert re.findall(r"<td>(\d+)", row) == ["2", "1", "0", "0", "3"]
    assert "Rita" not in page and "Cora" not in page


# -- mystery shops against the matching lines -----------------------------------------------------


@pytest.fixture
def graded(client, area, make_site, enrol, sync):
    site = make_site(area, "Market Street")
    token, _ = enrol(area, name="Rita Rep")
    visits = [visit(site, observed_at="2026-10-01T10:00:00+00:00",
                    answers=street_answers("A", litter={"grade": "C"}, graffiti={"grade": "D"})),
              visit(site, observed_at="2026-10-02T10:00:00+00:00", answers=street_answers("A"))]
    assert {r["status"] for r in sync(token, [mutation(v, seq=n) for n, v in enumerate(visits, 1)])
            .get_json()["results"]} == {"applied"}
    return site


def test_two_standards_of_one_theme_with_different_lines_show_different_figures(app, area, graded):
    summary = reporting.mystery_shop_summary(db.session, area.id, PERIOD)
    rows = {s["key"]: s for s in summary.standards}
    # Bins weekly names bins_on_street and litter: 2 visits x 2 lines, litter C once.
    assert rows["bins_weekly"]["street"] == (4, 1) and rows["bins_weekly"]["compared_with"] == "lines"
    assert rows["bins_weekly"]["lines"] == ["Bins left out on the street", "Litter"]
    # Graffiti removed names graffiti only: D once in 2.
    assert rows["graffiti_5_days"]["street"] == (2, 1)
    assert rows["fly_tipping"]["street"] == (2, 0)
    assert {rows[k]["theme"] for k in ("bins_weekly", "graffiti_5_days", "fly_tipping")} == {"Green and Clean"}
    # A standard that names no lines is compared with its whole theme.
    assert rows["answer_calls"]["compared_with"] == "theme" and rows["answer_calls"]["street"] == (6, 0)


def test_mystery_shops_page_says_which_lines_or_that_it_fell_back_to_the_theme(client, area, graded):
    sign_in(client, "cora@example.org")
    page = client.get("/coordinator/millbrook/mystery-shops?from=2026-09-01&to=2026-10-31").get_data(as_text=True)
    assert "25% <span class=\"hint\">(1/4)</span>" in page and "50% <span class=\"hint\">(1/2)</span>" in page
    assert "Lines: Bins left out on the street, Litter" in page
    assert "No lines named: the whole theme Home Sweet Home" in page


def test_a_standard_names_only_lines_the_street_form_has(app, area):
    broken = copy.deepcopy(AGREEMENT)
    broken["standards"][0]["lines"] = ["litter", "dog_fouling_typo"]
    broken["standards"][1]["lines"] = "litter"
    broken["standards"][2]["lines"] = ["graffiti", "graffiti"]
    errors = operations.agreement_errors(broken, operations.street_line_keys(area.id))
    assert "dog_fouling_typo" in errors["standards.bins_weekly"][0]
    assert errors["standards.missed_bin"] and errors["standards.graffiti_5_days"]
    assert "standards.offensive_graffiti" not in errors
    # With no street form to check against, only the shape is checked.
    assert list(operations.agreement_errors(broken, None)) == ["standards.missed_bin", "standards.graffiti_5_days"]
    assert operations.agreement_errors(AGREEMENT, operations.street_line_keys(area.id)) == {}


def test_saving_a_draft_with_an_unknown_line_is_refused_with_the_reason(client, area):
    csrf = sign_in(client, "cora@example.org")
    client.post("/coordinator/millbrook/agreement/millbrook-deal/drafts", data={"csrf_token": csrf})
    broken = copy.deepcopy(AGREEMENT)
    broken["standards"][0]["lines"] = ["no_such_line"]
    response = client.post("/coordinator/millbrook/agreement/millbrook-deal/2",
                           data={"csrf_token": csrf, "editor": "json", "definition": json.dumps(broken)})
    assert response.status_code == 400
    assert "The street form has no line called no_such_line." in response.get_data(as_text=True)


def test_the_plain_field_editor_ticks_a_standards_lines(client, area):
    csrf = sign_in(client, "cora@example.org")
    client.post("/coordinator/millbrook/agreement/millbrook-deal/drafts", data={"csrf_token": csrf})
    page = client.get("/coordinator/millbrook/agreement/millbrook-deal/2").get_data(as_text=True)
    # A box per street-form line for each standard, the seed's lines already ticked.
    assert re.search(r'name="standard-bins_weekly-lines" value="litter" checked', page)
    assert 'name="standard-bins_weekly-lines" value="graffiti">' in page
    form = MultiDict([("csrf_token", csrf), ("editor", "wording"),
                      ("standard-bins_weekly-lines-shown", "1"), ("standard-bins_weekly-lines", "graffiti"),
                      ("standard-bins_weekly-lines", "fly_tipping"),
                      ("standard-missed_bin-lines-shown", "1")])
    assert client.post("/coordinator/millbrook/agreement/millbrook-deal/2", data=form).status_code == 302
    db.session.expire_all()
    standards = {s["key"]: s for s in db.session.get(AgreementVersion, ("millbrook-deal", 2)).definition["standards"]}
    assert standards["bins_weekly"]["lines"] == ["graffiti", "fly_tipping"]
    assert "lines" not in standards["missed_bin"]  # none ticked: it falls back to its theme
    assert standards["graffiti_5_days"]["lines"] == ["graffiti"]  # its boxes were not sent: unchanged


def test_agreement_with_wording_leaves_lines_alone_when_their_boxes_were_not_shown():
    after = agreement_with_wording(AGREEMENT, {"title": "The Deal"})
    assert [s.get("lines") for s in after["standards"]] == [s.get("lines") for s in AGREEMENT["standards"]]


def test_the_by_site_table_narrows_to_one_promise(client, area, checklists):
    results = reporting.checklist_results(db.session, area.id, PERIOD)
    assert results.site_counts(checklists["market"].id, "our_part_listen") == {
        "kept": 1, "partly": 1, "not_kept": 0, "cant_tell": 0}
    assert results.site_counts(checklists["park"].id, "your_part_recycle") == {
        "kept": 0, "partly": 0, "not_kept": 0, "cant_tell": 0}
    sign_in(client, "cora@example.org")
    page = client.get("/coordinator/millbrook/checklists?from=2026-09-01&to=2026-10-31&promise=our_part_listen"
                      ).get_data(as_text=True)
    assert "“Listen, be open, honest and friendly” at each site" in page
    market = re.search(r"<tr><th scope=\"row\">Market Street</th>(.*?)</tr>", page).group(1)
    assert re.findall(r"<td>(\d+)", market) == ["1", "1", "0", "0"]
    assert '<option value="our_part_listen" selected>' in page
    # An unknown promise shows each part, as with none.
    page = client.get("/coordinator/millbrook/checklists?promise=nonsense").get_data(as_text=True)
    assert "” at each site" not in page and "Each part, all its promises together" in page
