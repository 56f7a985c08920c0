"""A volunteer corrects a visit their coordinator flagged, with no signal, in a real Chromium at a
phone's size; back online, the coordinator sees the correction and the original, linked both ways."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DEMO_PASSWORD
from e2e.test_pwa_field import (
    SYNC_TIMEOUT_MS,
    check_screen,
    fill_street_visit,
    go_offline,
    go_online,
    join,
    launch,
    new_volunteer,
    submissions_of,
    waiting_count,
)
from server import operations
from server.extensions import db
from server.models import FormVersion, Person, Submission

REASON = "The litter grade looks like Mill Lane's, not Canal Street's"


def _flag_only_visit(live, name):
    """The coordinator flags the volunteer's one visit, with a reason the phone will show."""

    def work():
        person = db.session.query(Person).filter_by(display_name=name).one()
        (visit,) = db.session.query(Submission).filter_by(person_id=person.id).all()
        coordinator = db.session.query(Person).filter(Person.email.is_not(None)).first()
        operations.review_submission(visit, "flagged", coordinator, REASON)
        db.session.commit()
        return visit.id

    return live.run(work)


def test_volunteer_corrects_a_flagged_visit_offline_and_the_coordinator_sees_both(live_server, playwright, tmp_path):
    code = new_volunteer(live_server, "Rep Correcting", roles=("street_rep",))
    context, page = launch(playwright, tmp_path / "phone")
    join(page, live_server, code)
    fill_street_visit(page, "Canal Street", grade_index=3)  # every line D
    expect(waiting_count(page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)
    flagged_id = _flag_only_visit(live_server, "Rep Correcting")

    # The next sync brings the flag: the home screen says so, with the coordinator's reason.
    page.reload()
    notice = page.locator("#needs-correcting")
    expect(notice.get_by_role("heading", name="1 visit needs correcting")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
    expect(notice).to_contain_text(f"Flagged: {REASON}")
    check_screen(page, "home-needs-correcting")

    # No signal from here on: the correction is made and queued on the phone alone.
    go_offline(context, live_server)
    notice.get_by_role("link", name="Correct this visit").click()
    expect(page.locator("#correcting")).to_contain_text(REASON)
    lines = page.locator("fieldset.line:has(.grades)")
    expect(lines.first).to_be_visible()
    count = lines.count()
    # Pre-filled with the flagged visit's answers (all D) and its site.
    for index in range(count):
        expect(lines.nth(index).locator("input[type=radio][value=D]")).to_be_checked()
    expect(page.get_by_label("Canal Street", exact=True)).to_be_checked()
    lines.first.locator("label.grade").nth(1).click()  # the first line was a B after all
    check_screen(page, "correction-form")
    page.get_by_role("button", name="Save and send").click()
    expect(page.get_by_text("Saved. It will be sent by itself")).to_be_visible()
    expect(waiting_count(page)).to_have_attribute("data-count", "1")
    expect(page.locator("#needs-correcting")).to_have_count(0)  # on its way: not offered again
    page.get_by_role("link", name="My visits").click()
    expect(page.locator(f'li.received[data-id="{flagged_id}"]')).to_contain_text("Your correction is waiting to send.")
    assert len(submissions_of(live_server, "Rep Correcting")) == 1  # nothing reached the server

    go_online(context, live_server)
    expect(waiting_count(page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)
    stored = {submission_id: data for submission_id, _kind, _version, data in submissions_of(live_server, "Rep Correcting")}
    (correction_id,) = set(stored) - {flagged_id}
    assert stored[correction_id]["supersedes"] == flagged_id
    answers = stored[correction_id]["answers"]
    assert sorted(answer["grade"] for answer in answers.values()) == ["B"] + ["D"] * (count - 1)
    expect(page.locator(f'li.received[data-id="{flagged_id}"]')).to_contain_text("Corrected: a later visit replaces this one.",
                                                                               timeout=SYNC_TIMEOUT_MS)
    page.get_by_role("link", name="Home").click()
    expect(page.locator("#needs-correcting")).to_have_count(0)
    context.close()

    # The coordinator's visit page: the original links to its correction, and back.
    desk = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    coordinator = desk.new_page()
    coordinator.goto(live_server.url + "/login")
    coordinator.get_by_label("Email").fill(live_server.details["email"])
    coordinator.get_by_label("Password").fill(DEMO_PASSWORD)
    coordinator.get_by_role("button", name="Sign in").click()
    area = live_server.details["area"]
    coordinator.goto(f"{live_server.url}/coordinator/{area}/submissions/{flagged_id}")
    expect(coordinator.locator("#corrected-by")).to_be_visible()
    coordinator.locator("#corrected-by").get_by_role("link", name="See the correction").click()
    expect(coordinator).to_have_url(f"{live_server.url}/coordinator/{area}/submissions/{correction_id}")
    expect(coordinator.locator("#corrects")).to_be_visible()
    coordinator.locator("#corrects").get_by_role("link", name="See the visit it corrects").click()
    expect(coordinator).to_have_url(f"{live_server.url}/coordinator/{area}/submissions/{flagged_id}")
    desk.close()


def test_correction_of_a_visit_on_a_retired_version_uses_its_successor_carrying_answers_by_line(
        live_server, playwright, tmp_path):
    """Runs last in this module: it retires the street form version every phone uses."""
    code = new_volunteer(live_server, "Rep Successor", roles=("street_rep",))
    context, page = launch(playwright, tmp_path / "phone")
    join(page, live_server, code)
    fill_street_visit(page, "Mill Lane", grade_index=2)  # every line C
    expect(waiting_count(page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)
    flagged_id = _flag_only_visit(live_server, "Rep Successor")

    def republish_without_the_first_line():
        current = db.session.query(FormVersion).filter_by(form_id="street", status="published").one()
        successor = json.loads(json.dumps(current.definition))
        dropped = successor["sections"][0]["lines"].pop(0)
        successor["sections"][0]["lines"].append({
            "key": "pavement_parking", "type": "grade", "label": "Cars parked on the pavement",
            "grades": {"A": "None", "B": "One or two", "C": "Several", "D": "Pavement blocked"}})
        published = operations.publish_form_version(operations.draft_form_version("street", successor))
        operations.retire_form_version(current)
        db.session.commit()
        return current.version, published.version, dropped["key"]

    old_version, new_version, dropped_key = live_server.run(republish_without_the_first_line)
    page.reload()
    notice = page.locator("#needs-correcting")
    expect(notice.get_by_role("link", name="Correct this visit")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
    go_offline(context, live_server)
    notice.get_by_role("link", name="Correct this visit").click()
    expect(page.locator("#correcting")).to_contain_text(
        f"(from version {old_version} to {new_version}). Your answers were copied to the new form")
    expect(page.locator(f"#line-{dropped_key}")).to_have_count(0)
    added = page.locator("#line-pavement_parking")
    expect(added.locator("input[type=radio]:checked")).to_have_count(0)  # a new line starts blank
    carried = page.locator("fieldset.line:has(.grades):not(#line-pavement_parking)")
    for index in range(carried.count()):
        expect(carried.nth(index).locator("input[type=radio][value=C]")).to_be_checked()
    added.locator("label.grade").nth(0).click()
    page.get_by_role("button", name="Save and send").click()
    expect(page.get_by_text("Saved. It will be sent by itself")).to_be_visible()
    expect(waiting_count(page)).to_have_attribute("data-count", "1")
    go_online(context, live_server)
    expect(waiting_count(page)).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)
    stored = {submission_id: (version, data) for submission_id, _kind, version, data in submissions_of(live_server, "Rep Successor")}
    (correction_id,) = set(stored) - {flagged_id}
    version, data = stored[correction_id]
    assert (version, data["supersedes"]) == (new_version, flagged_id)
    assert dropped_key not in data["answers"] and data["answers"]["pavement_parking"] == {"grade": "A"}
    context.close()
