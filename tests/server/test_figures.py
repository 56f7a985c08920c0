"""Readable figures (issue 10, point 8): chart text in CSS pixels, months from Babel, the partial
month marked, exact counts on the dashboard, the overdue window as a field, and each person
landing on their own work after signing in."""

from __future__ import annotations

import re
from pathlib import Path
from datetime import datetime, timedelta, timezone

import pytest
from flask_babel import force_locale, refresh

from server import charts, operations, reporting
from server.extensions import db
from tests.conftest import mutation, sign_in, street_answers, visit

PASSWORD = "correct horse battery"


@pytest.fixture
def area_with_visits(client, make_area, make_site, publish_forms, enrol, sync):
    """Seven sites, each graded D on every line today: far more than five priorities."""
    publish_forms(published_at=datetime.now(timezone.utc) - timedelta(days=400))
    area = make_area("millbrook", "Millbrook")
    sites = [make_site(area, f"Site {n}") for n in range(7)]
    operations.create_person("Cora Coordinator", email="cora@example.org", password=PASSWORD,
                             roles=[("coordinator", area)])
    db.session.commit()
    token, _body = enrol(area, name="Rita Rep")
    visits = [visit(site, answers=street_answers("D")) for site in sites]
    results = sync(token, [mutation(v, seq=n) for n, v in enumerate(visits, 1)]).get_json()["results"]
    assert {r["status"] for r in results} == {"applied"}, results
    return {"area": area, "sites": sites}


# -- charts -------------------------------------------------------------------------------------


def _svg_texts(svg: str) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg)


def test_charts_have_no_viewbox_so_their_text_is_never_scaled(app):
    with app.test_request_context():
        bars = str(charts.share_bars("c", "Title", ["2026-01", "2026-02"], [0.25, None], "words"))
        strip = str(charts.grade_strip("s", "Title", {"A": 3, "B": 1, "C": 0, "D": 1, "total": 5}, "words"))
    for svg in (bars, strip):
        assert "viewBox" not in svg
        assert 'width="100%"' in svg
    # Positions along the width are percentages; the text is sized by kerbside.css in px.
    assert re.search(r'<rect class="chart-bar chart-bar-mid" x="30%" y="[\d.]+" width="14.00%"', bars)
    css = Path("server/static/kerbside.css").read_text(encoding="utf-8")
    for name in ("chart-axis", "chart-value", "chart-note", "chart-letter"):
        size = re.search(r"\." + name + r" \{[^}]*font-size: (\d+)px", css)
        assert size and int(size.group(1)) >= 12, name


def test_charts_read_from_the_right_in_urdu(app):
    """Right to left: labels at the right edge, bars growing leftwards, grade A first from the right."""
    def draw(language):
        with app.test_request_context(headers={"Accept-Language": language}):
            refresh()  # the test's app context outlives each request, and Flask-Babel keeps its locale there
            return (str(charts.share_bars("c", "T", ["2026-01"], [0.25], "d")),
                    str(charts.grade_strip("s", "T", {"A": 3, "B": 1, "C": 0, "D": 1}, "d")))

    bars, strip = draw("ur")
    assert 'direction="rtl"' in bars and 'direction="rtl"' in strip
    # The bar (14% wide) ends at the label column's edge, 30% in from the right: it starts at 56%.
    assert re.search(r'<rect class="chart-bar chart-bar-mid" x="56%" y="[\d.]+" width="14.00%"', bars)
    assert re.search(r'<text class="chart-axis chart-month" x="100%" dx="-3"', bars)
    assert re.search(r'<text class="chart-value" x="56.00%" dx="-4"', bars)
    # A is 60% of the strip: from the right edge, so its left edge is at 40%.
    assert '<rect class="grade-a" x="40.00%" y="0" width="60.00%"' in strip
    ltr_bars, ltr_strip = draw("en-GB")
    assert 'direction="ltr"' in ltr_bars and '<rect class="grade-a" x="0.00%" y="0" width="60.00%"' in ltr_strip
    assert re.search(r'<text class="chart-value" x="44.00%" dx="4"', ltr_bars)


def test_month_labels_come_from_babel_in_the_pages_language(app):
    with app.test_request_context():
        with force_locale("en_GB"):
            assert charts.month_label("2025-12") == "Dec 2025"
            svg = str(charts.share_bars("c", "T", ["2025-12", "2026-01"], [0.5, 0.1], "d"))
        with force_locale("fr"):
            french = charts.month_label("2025-12")
    assert "Dec 2025" in _svg_texts(svg) and "Jan 2026" in _svg_texts(svg)
    assert "25-12" not in svg
    assert french.startswith("déc") and french.endswith("2025")


def test_the_running_month_is_hatched_and_says_so_far(app):
    now = datetime(2026, 12, 1, 15, 0, tzinfo=timezone.utc)
    period = reporting.Period.last_days(90, now=now)
    months = reporting.months_between(period)
    with app.test_request_context(), force_locale("en_GB"):
        partial = charts.partial_months(months, period.start, period.end, now)
        svg = str(charts.share_bars("c", "T", months, [0.5] * len(months), "d", partial=partial))
    # 90 days to the end of 1 Dec start on 3 Sep: September is cut, December has only begun.
    assert months == ["2026-09", "2026-10", "2026-11", "2026-12"]
    assert partial == {"2026-09": "from 3 Sept", "2026-12": "so far"}
    assert "so far" in _svg_texts(svg)
    # Two hatched, dash-outlined bars (the cut months); the whole months are plain.
    assert svg.count('class="chart-bar chart-bar-partial" fill="url(#c-hatch)"') == 2
    assert svg.count('class="chart-bar chart-bar-high"') == 2
    assert '<pattern id="c-hatch"' in svg


def test_a_period_ending_before_today_marks_only_the_cut_months(app):
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    start, end = datetime(2026, 10, 1, tzinfo=timezone.utc), datetime(2026, 11, 21, tzinfo=timezone.utc)
    with app.test_request_context(), force_locale("en_GB"):
        assert charts.partial_months(["2026-10", "2026-11"], start, end, now) == {"2026-11": "to 20 Nov"}


def test_trends_page_shows_month_names_and_the_running_month(client, area_with_visits):
    sign_in(client, "cora@example.org")
    page = client.get("/coordinator/millbrook/trends").get_data(as_text=True)
    this_month = datetime.now(timezone.utc).strftime("%Y-%m")
    with client.application.test_request_context():
        label = charts.month_label(this_month)
    assert f">{label}</text>" in page and "so far" in page
    # The table beside the charts names the months the same way.
    assert re.search(r'<th scope="row">' + re.escape(label) + r' <span class="hint">\(so far\)</span></th>', page)
    assert not re.search(r">\d\d-\d\d<", page)


# -- the dashboard ------------------------------------------------------------------------------


def test_dashboard_counts_every_priority_exactly(client, area_with_visits):
    sign_in(client, "cora@example.org")
    page = client.get("/coordinator/millbrook/").get_data(as_text=True)
    total = len(reporting.priority_list(db.session, area_with_visits["area"].id, reporting.Period.last_days(90)))
    db.session.rollback()
    assert total > 5
    figure = re.search(r'<span class="figure-number">([^<]*)</span> <span class="figure-label">priorities', page)
    assert figure.group(1) == str(total)
    assert "+" not in figure.group(1)
    # The top five are listed, with a link to all of them by number.
    assert page.count('<li class="card">') == 5
    assert f"See all {total} priorities" in page


# -- the overdue window ---------------------------------------------------------------------------


def test_overdue_window_is_a_labelled_field_kept_in_links(client, area_with_visits):
    sign_in(client, "cora@example.org")
    page = client.get("/coordinator/millbrook/coverage?overdue=14").get_data(as_text=True)
    assert '<label for="period-overdue">' in page
    assert re.search(r'<input id="period-overdue" name="overdue" type="number" min="1" max="365"[^>]*value="14"', page)
    assert "no visit in the 14 days" in page
    dashboard = client.get("/coordinator/millbrook/?overdue=14").get_data(as_text=True)
    assert 'value="14"' in dashboard
    assert re.search(r'href="/coordinator/millbrook/coverage\?[^"]*overdue=14', dashboard)
    assert "no visit in 14 days" in dashboard


@pytest.mark.parametrize("typed", ["0", "366", "ten", "-3", "1.5"])
def test_overdue_window_out_of_range_is_refused_with_a_message(client, area_with_visits, typed):
    sign_in(client, "cora@example.org")
    for path in ("/coordinator/millbrook/coverage", "/coordinator/millbrook/"):
        response = client.get(f"{path}?overdue={typed}")
        page = response.get_data(as_text=True)
        assert response.status_code == 400, path
        assert "whole number of days from 1 to 365" in page
        assert 'aria-invalid="true"' in page
        # What was typed stays in the field, to be corrected.
        assert f'value="{typed}"' in page


# -- where people land after signing in -------------------------------------------------------------


def _sign_in_location(client, email, next_path=None):
    client.get("/login")
    with client.session_transaction() as session:
        token = session["csrf"]
    path = "/login" + (f"?next={next_path}" if next_path else "")
    response = client.post(path, data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    return response.headers["Location"]


def test_each_person_lands_on_their_own_work(client, make_area):
    one, two = make_area("millbrook", "Millbrook"), make_area("eastside", "Eastside")
    operations.create_person("Cora", email="cora@example.org", password=PASSWORD, roles=[("coordinator", one)])
    operations.create_person("Cole", email="cole@example.org", password=PASSWORD,
                             roles=[("coordinator", one), ("coordinator", two)])
    operations.create_person("Pat", email="pat@example.org", password=PASSWORD, organisation="Cleansing",
                             roles=[("partner", two)])
    operations.create_person("Ada", email="ada@example.org", password=PASSWORD, roles=[("admin", None)])
    db.session.commit()
    landings = {}
    for email in ("cora@example.org", "cole@example.org", "pat@example.org", "ada@example.org"):
        landings[email] = _sign_in_location(client, email)
        client.post("/logout", data={"csrf_token": _csrf(client)})
    assert landings == {
        "cora@example.org": "/coordinator/millbrook/",
        "cole@example.org": "/coordinator/",
        "pat@example.org": "/coordinator/eastside/actions",
        "ada@example.org": "/admin/people",
    }


def test_a_safe_next_still_wins_and_an_unsafe_one_is_ignored(client, make_area):
    area = make_area("millbrook", "Millbrook")
    operations.create_person("Cora", email="cora@example.org", password=PASSWORD, roles=[("coordinator", area)])
    db.session.commit()
    assert _sign_in_location(client, "cora@example.org", "/coordinator/millbrook/trends") == "/coordinator/millbrook/trends"
    client.post("/logout", data={"csrf_token": _csrf(client)})
    assert _sign_in_location(client, "cora@example.org", "//evil.example/") == "/coordinator/millbrook/"


def _csrf(client):
    with client.session_transaction() as session:
        return session.get("csrf", "")
