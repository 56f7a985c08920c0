"""Exports: CSV of graded lines and of actions, GeoJSON of sites; streamed a page at a time."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from server import operations
from server.coordinator import exports
from server.extensions import db
from tests.conftest import mutation, street_answers, visit

PASSWORD = "export password"


@pytest.fixture
def area_with_visits(client, make_area, make_site, publish_forms, enrol, sync):
    publish_forms()
    area = make_area("millbrook", "Millbrook")
    other = make_area("eastside", "Eastside")
    canal = make_site(area, "Canal Street", lat=53.5, lng=-2.6)
    park = make_site(area, "Park, no location", lat=None, lng=None)
    token, _ = enrol(area, name="Rita Rep")
    # A week of visits a month ago: recent enough for forms published today.
    start = datetime.now(timezone.utc).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=30)
    visits = [visit(canal if n % 2 else park, observed_at=(start + timedelta(days=n)).isoformat(),
                    answers=street_answers("C" if n == 6 else "A")) for n in range(7)]
    assert {r["status"] for r in sync(token, [mutation(v, seq=n) for n, v in enumerate(visits, 1)]).get_json()["results"]} == {"applied"}
    other_token, _ = enrol(other, name="Otto")
    sync(other_token, [mutation(visit(make_site(other, "East Road")))])
    operations.raise_action(area, "Sweep Canal Street", site=canal, line_key="litter", assigned_to="Street cleansing")
    operations.create_person("Cora", email="cora@example.org", password=PASSWORD, roles=[("coordinator", area)])
    db.session.commit()
    client.get("/login")
    with client.session_transaction() as session:
        csrf = session["csrf"]
    client.post("/login", data={"email": "cora@example.org", "password": PASSWORD, "csrf_token": csrf})
    return {"area": area, "canal": canal, "park": park, "visits": visits}


def test_submissions_csv_has_one_row_per_graded_line_in_order(client, area_with_visits):
    response = client.get("/coordinator/millbrook/exports/submissions.csv")
    assert response.status_code == 200 and response.is_streamed
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 7 * 12
    assert {r["site_name"] for r in rows} == {"Canal Street", "Park, no location"}
    assert rows[0]["submission_id"] == area_with_visits["visits"][0]["id"]
    assert rows[-1]["submission_id"] == area_with_visits["visits"][-1]["id"]
    assert [r["grade"] for r in rows if r["submission_id"] == area_with_visits["visits"][6]["id"]] == ["C"] * 12
    assert "East Road" not in response.get_data(as_text=True)


def test_submission_rows_page_through_without_losing_or_repeating(app, area_with_visits):
    # Two visits per page: the keyset must carry on exactly where each page ended.
    rows = list(exports.submission_rows(db.session, area_with_visits["area"].id, page=2))
    ids = [r[0] for r in rows[::12]]
    assert ids == [v["id"] for v in area_with_visits["visits"]]


def test_actions_csv(client, area_with_visits):
    rows = list(csv.DictReader(io.StringIO(client.get("/coordinator/millbrook/exports/actions.csv").get_data(as_text=True))))
    assert [(r["title"], r["site_name"], r["status"], r["assigned_to"]) for r in rows] == [
        ("Sweep Canal Street", "Canal Street", "open", "Street cleansing")]


def test_sites_geojson(client, area_with_visits):
    response = client.get("/coordinator/millbrook/exports/sites.geojson")
    assert response.mimetype == "application/geo+json"
    collection = json.loads(response.get_data(as_text=True))
    features = {f["properties"]["name"]: f for f in collection["features"]}
    assert collection["type"] == "FeatureCollection"
    assert features["Canal Street"]["geometry"] == {"type": "Point", "coordinates": [-2.6, 53.5]}
    assert features["Park, no location"]["geometry"] is None
    # The last visit (day 6, all C) was to the park.
    assert features["Park, no location"]["properties"]["worst_grade"] == "C"
    assert features["Park, no location"]["properties"]["grades"]["litter"] == "C"
    assert features["Canal Street"]["properties"]["worst_grade"] == "A"
