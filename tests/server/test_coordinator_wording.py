"""A coordinator changes a draft's words in plain fields, without editing JSON."""

from __future__ import annotations

import copy

import pytest

from server import operations
from server.coordinator.wording import agreement_with_wording, form_with_wording, new_key
from server.extensions import db
from server.models import AgreementVersion, FormVersion
from server.seed_content import AGREEMENT, STREET_FORM
from tests.conftest import sign_in

PASSWORD = "correct horse battery"
FIRST = STREET_FORM["sections"][0]["lines"][0]["key"]  # groups_loitering
SECOND = STREET_FORM["sections"][0]["lines"][1]["key"]


def test_new_keys_are_made_from_the_words_and_never_repeat():
    assert new_key("Broken paving (trip hazard)", set()) == "broken_paving_trip_hazard"
    assert new_key("Litter", {"litter"}) == "litter_2"
    assert new_key("Litter", {"litter", "litter_2"}) == "litter_3"
    assert new_key("24-hour noise", set()) == "line_24_hour_noise"
    assert new_key("!!!", set()) == "line"


def test_form_wording_changes_labels_and_grades_removes_and_adds_lines():
    before = copy.deepcopy(STREET_FORM)
    after = form_with_wording(STREET_FORM, {
        "title": " Street monitoring (spring) ",
        f"line-{FIRST}-label": "Groups gathering or disorderly behaviour",
        f"line-{FIRST}-grade-C": "Large groups gathering most evenings",
        f"line-{SECOND}-remove": "1",
        "section-0-new-label": "Broken paving",
        **{f"section-0-new-grade-{g}": f"Paving {g}" for g in "ABCD"},
    })
    assert STREET_FORM == before  # the draft's definition is not changed in place
    assert after["title"] == "Street monitoring (spring)"
    lines = after["sections"][0]["lines"]
    assert lines[0]["label"] == "Groups gathering or disorderly behaviour"
    assert lines[0]["grades"]["C"] == "Large groups gathering most evenings"
    assert lines[0]["grades"]["A"] == STREET_FORM["sections"][0]["lines"][0]["grades"]["A"]
    assert SECOND not in [line["key"] for line in lines]
    assert lines[-1] == {"key": "broken_paving", "type": "grade", "label": "Broken paving",
                         "grades": {g: f"Paving {g}" for g in "ABCD"}}
    assert after["sections"][1:] == STREET_FORM["sections"][1:]


def test_agreement_wording_changes_texts_promises_and_standards():
    first_ours, first_yours = AGREEMENT["our_part"][0]["key"], AGREEMENT["your_part"][0]["key"]
    standard = AGREEMENT["standards"][0]["key"]
    after = agreement_with_wording(AGREEMENT, {
        "title": "The Deal 2027",
        f"our_part-{first_ours}-text": "Keep Council Tax low",
        f"your_part-{first_yours}-remove": "1",
        "your_part-new-text": "Report what needs fixing",
        f"standard-{standard}-text": "Bins emptied every week",
        f"standard-{standard}-days": "6",
    })
    assert after["title"] == "The Deal 2027"
    assert after["our_part"][0] == {"key": first_ours, "text": "Keep Council Tax low"}
    assert first_yours not in [p["key"] for p in after["your_part"]]
    assert after["your_part"][-1] == {"key": "report_what_needs_fixing", "text": "Report what needs fixing"}
    assert after["standards"][0]["text"] == "Bins emptied every week" and after["standards"][0]["days"] == 6


@pytest.fixture
def coordinator(client, make_area, publish_forms):
    area = make_area("millbrook", "Millbrook")
    # The area's own forms: a shared form is an admin's to change (issue 9).
    publish_forms(area_id=area.id)
    operations.publish_agreement_version(operations.draft_agreement_version("millbrook-deal", area, AGREEMENT))
    operations.create_person("Cora Coordinator", email="cora@example.org", password=PASSWORD, roles=[("coordinator", area)])
    db.session.commit()
    return sign_in(client, "cora@example.org")


def test_a_form_draft_is_reworded_in_the_browser_and_a_mistake_keeps_the_edits(client, coordinator):
    csrf = coordinator
    assert client.post("/coordinator/millbrook/forms/street/drafts", data={"csrf_token": csrf}).status_code == 302
    page = client.get("/coordinator/millbrook/forms/street/2").text
    assert f'<label for="line-{FIRST}-grade-A">Wording for A</label>' in page
    assert 'name="editor" value="wording"' in page

    # A new line with no wording for D: refused, with the problem beside the line and nothing typed lost.
    words = {"csrf_token": csrf, "editor": "wording", "section-0-new-label": "Broken paving",
             **{f"section-0-new-grade-{g}": f"Paving {g}" for g in "ABC"}}
    refused = client.post("/coordinator/millbrook/forms/street/2", data=words)
    assert refused.status_code == 400
    assert "A graded line needs its own wording for each of A, B, C and D." in refused.text
    assert 'value="Paving C"' in refused.text
    db.session.expire_all()
    assert "broken_paving" not in str(db.session.get(FormVersion, ("street", 2)).definition)

    saved = client.post("/coordinator/millbrook/forms/street/2", data={**words, "section-0-new-grade-D": "Paving D"})
    assert saved.status_code == 302
    db.session.expire_all()
    lines = db.session.get(FormVersion, ("street", 2)).definition["sections"][0]["lines"]
    assert lines[-1]["key"] == "broken_paving" and lines[-1]["grades"]["D"] == "Paving D"


def test_an_agreement_draft_is_reworded_and_a_bad_number_of_days_is_refused(client, coordinator):
    csrf = coordinator
    assert client.post("/coordinator/millbrook/agreement/millbrook-deal/drafts", data={"csrf_token": csrf}).status_code == 302
    standard = AGREEMENT["standards"][0]["key"]
    refused = client.post("/coordinator/millbrook/agreement/millbrook-deal/2",
                          data={"csrf_token": csrf, "editor": "wording", f"standard-{standard}-days": "a week"})
    assert refused.status_code == 400
    assert "A service standard&#39;s days are a whole number, like 5." in refused.text
    saved = client.post("/coordinator/millbrook/agreement/millbrook-deal/2",
                        data={"csrf_token": csrf, "editor": "wording", "title": "The Deal 2027", "our_part-new-text": "Answer every letter"})
    assert saved.status_code == 302
    db.session.expire_all()
    definition = db.session.get(AgreementVersion, ("millbrook-deal", 2)).definition
    assert definition["title"] == "The Deal 2027" and definition["our_part"][-1]["text"] == "Answer every letter"
