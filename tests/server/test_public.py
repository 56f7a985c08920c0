"""The public page of an area: readable signed out; aggregates and actions, never volunteers."""

from __future__ import annotations

from datetime import datetime, timezone

from server import operations
from server.extensions import db
from server.seed_content import AGREEMENT
from tests.conftest import mutation, street_answers, visit


def test_public_page_shows_agreement_grades_actions_and_no_volunteer(client, make_area, make_site, publish_forms, enrol, sync):
    publish_forms()
    area = make_area("millbrook", "Millbrook")
    operations.publish_agreement_version(operations.draft_agreement_version("millbrook-deal", area, AGREEMENT))
    site = make_site(area, "Canal Street")
    token, _ = enrol(area, name="Rita Secretname")
    shopper, _ = enrol(area, role="mystery_shopper", name="Sam Shopperson")
    now = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    sync(token, [mutation(visit(site, observed_at=now, answers=street_answers("A", litter={"grade": "D"})))])
    action = operations.raise_action(area, "Install a bin", site=site, line_key="litter", assigned_to="Street cleansing")
    operations.update_action(action, {"status": "not_doing", "reason": "Two bins are already within 20 metres."})
    operations.raise_action(area, "Fix the lamp", assigned_to="Street lighting")
    db.session.commit()

    response = client.get("/area/millbrook")
    assert response.status_code == 200
    page = response.text
    assert "Keep your Council Tax as one of the lowest" in page  # our part
    assert "Recycle more, recycle right" in page  # your part
    assert "Green and Clean" in page and 'role="img"' in page
    assert "Two bins are already within 20 metres." in page
    assert "Not doing" in page and "Fix the lamp" in page
    assert "Become a street rep" in page
    for secret in ("Rita Secretname", "Sam Shopperson", "Test phone"):
        assert secret not in page


def test_public_page_of_unknown_area_is_404(client, make_area):
    make_area("millbrook", "Millbrook")
    assert client.get("/area/nowhere").status_code == 404


def test_public_page_without_any_data(client, make_area):
    make_area("quiet", "Quiet Town")
    page = client.get("/area/quiet").text
    assert "has not published its agreement yet" in page
    assert "No actions yet." in page


def test_front_page_links_to_the_public_page(client, make_area):
    make_area("millbrook", "Millbrook")
    assert 'href="/area/millbrook"' in client.get("/").text
