"""A phone in Welsh shows the demo's street form in Welsh, and what it saves offline is the same
visit, answer for answer, as the coordinator sees it in English.

Elements are found by their structure (addresses, roles of the form's parts), not by the app's
own words: those are in the phone's language too once the interface is translated.
"""

from __future__ import annotations

from playwright.sync_api import expect

from e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DEMO_PASSWORD, PHONE
from e2e.test_pwa_field import SYNC_TIMEOUT_MS, check_screen, go_offline, go_online, new_volunteer, submissions_of, wait_until_offline_ready
from server.seed_content import STREET_FORM
from server.seed_translations import STREET_TRANSLATIONS

WELSH = STREET_TRANSLATIONS["cy"]
LINES = [line for section in STREET_FORM["sections"] for line in section["lines"]]


def in_welsh(page):
    """The app took the phone's language (cy-GB) for its own: Welsh ships, so `lang` is cy."""
    expect(page.locator("html")).to_have_attribute("lang", "cy")


def test_a_welsh_phone_fills_the_street_form_in_welsh_and_the_answers_are_the_same(live_server, playwright, tmp_path):
    code = new_volunteer(live_server, "Rep Cymraeg")
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "phone"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, viewport=PHONE,
        service_workers="allow", locale="cy-GB")
    page = context.pages[0] if context.pages else context.new_page()
    page.goto(f"{live_server.url}/app/")
    assert page.evaluate("navigator.language") == "cy-GB"
    page.locator("main form input").first.fill(code)
    page.locator("main form button[type=submit]").click()
    start = page.locator('a[href="#/new/street"]')
    expect(start).to_be_visible(timeout=SYNC_TIMEOUT_MS)
    wait_until_offline_ready(page)

    # No signal from here on: the form, its translation and the visit all live on the phone.
    go_offline(context, live_server)
    assert page.reload().from_service_worker
    expect(page.locator('a[href="#/new/street"]')).to_be_visible()
    in_welsh(page)
    page.locator('a[href="#/new/street"]').click()
    expect(page.locator("main h1")).to_have_text(WELSH["title"])
    expect(page.locator(".form-section h2").nth(1)).to_have_text(WELSH["sections.1.theme"])
    litter = page.locator("fieldset.line#line-litter")
    expect(litter.locator("legend")).to_contain_text(WELSH["lines.litter.label"])
    expect(litter.locator("label.grade").nth(3)).to_contain_text(WELSH["lines.litter.grades.D"])
    expect(litter.locator("label.grade").nth(3).locator(".letter")).to_have_text("D")  # letters stay Latin
    expect(page.locator("main")).not_to_contain_text(LINES[0]["label"])  # no English left where Welsh is given
    check_screen(page, "street-form-cy")  # axe finds nothing serious; pictured for the docs

    page.locator("input[type=search]").fill("Canal")
    page.locator("label.choice", has_text="Canal Street").first.locator("input").check()
    chosen = {}
    for index, line in enumerate(LINES):
        grade = "ABCD"[index % 4]
        page.locator(f"fieldset.line#line-{line['key']} input[type=radio][value={grade}]").check()
        chosen[line["key"]] = grade
    page.locator("form.visit button[type=submit]").click()
    expect(page.locator("#waiting-count")).to_have_attribute("data-count", "1")
    assert submissions_of(live_server, "Rep Cymraeg") == []

    go_online(context, live_server)
    expect(page.locator("#waiting-count")).to_have_attribute("data-count", "0", timeout=SYNC_TIMEOUT_MS)
    ((submission_id, kind, version, data),) = submissions_of(live_server, "Rep Cymraeg")
    assert (kind, version) == ("street", 2)
    assert {key: answer["grade"] for key, answer in data["answers"].items()} == chosen
    context.close()

    # The coordinator reads the same visit at the desk, in the form's own words.
    desk = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    coordinator = desk.new_page()
    coordinator.goto(f"{live_server.url}/login")
    coordinator.locator("input[type=email], input[name=email]").first.fill(live_server.details["email"])
    coordinator.locator("input[type=password]").first.fill(DEMO_PASSWORD)
    with coordinator.expect_navigation():
        coordinator.locator("main form button[type=submit]").first.click()
    coordinator.goto(f"{live_server.url}/coordinator/{live_server.details['area']}/submissions/{submission_id}")
    answers = coordinator.locator("li.answer")
    expect(answers).to_have_count(len(LINES))
    for index, line in enumerate(LINES):
        expect(answers.nth(index).locator(".answer-line")).to_have_text(line["label"])
        expect(answers.nth(index).locator(".grade")).to_contain_text(chosen[line["key"]])
    desk.close()
