"""The field app in another language: chosen in Settings, kept, and working offline in it.

The server ships Welsh and Urdu for these tests (config LANGUAGES), built into a folder of
their own. cy.po is the shipped Welsh ("Settings" is "Gosodiadau"); what it might lack
is shown in English.
"""

from __future__ import annotations

import contextlib

from playwright.sync_api import expect

from e2e.test_pwa_field import SYNC_TIMEOUT_MS, go_offline, join, launch, new_volunteer


@contextlib.contextmanager
def shipping(live, tmp_path, languages):
    """The live server ships `languages` (its own build folder) for the duration."""
    before = list(live.app.config["LANGUAGES"])
    live.app.config.update(LANGUAGES=list(languages), PWA_BUILD_DIR=str(tmp_path / "build-languages"))
    try:
        yield
    finally:
        live.app.config.update(LANGUAGES=before)
        live.app.config.pop("PWA_BUILD_DIR")


def test_language_chosen_in_settings_is_kept_and_works_offline(live_server, playwright, tmp_path):
    with shipping(live_server, tmp_path, ["en_GB", "cy", "ur"]):
        code = new_volunteer(live_server, "Rep Cymraeg")
        context, page = launch(playwright, tmp_path / "phone")
        join(page, live_server, code)
        # The phone speaks English: the app follows it.
        expect(page.locator("html")).to_have_attribute("lang", "en-GB")
        page.get_by_role("link", name="Settings").click()
        choice = page.get_by_role("group", name="Language")
        expect(choice.get_by_role("radio")).to_have_count(4)

        # Urdu: right to left, at once (no reload), the screen in Urdu.
        choice.get_by_label("اردو").check()
        expect(page.locator("html")).to_have_attribute("dir", "rtl")
        expect(page.locator("html")).to_have_attribute("lang", "ur")
        expect(page.get_by_role("link", name="سیٹنگز")).to_be_visible()

        # Welsh: the screen is redrawn in it.
        # (By its id: the group is named "Iaith" once the screen is redrawn in Welsh.)
        page.locator("#language-choice").get_by_label("Cymraeg").check()
        expect(page.locator("html")).to_have_attribute("lang", "cy")
        expect(page.locator("html")).to_have_attribute("dir", "ltr")
        expect(page.get_by_role("link", name="Gosodiadau")).to_be_visible()
        expect(page.get_by_role("heading", name="Gosodiadau")).to_be_visible()
        # Every shipped catalogue is in the worker's cache, so any of them works offline.
        cached = page.evaluate("""async () => {
            const found = [];
            for (const name of await caches.keys()) {
                if (!name.startsWith("kerbside-static-")) continue;
                for (const request of await (await caches.open(name)).keys()) found.push(new URL(request.url).pathname);
            }
            return found.filter((path) => path.includes("/i18n/")).map((path) => path.split("/").pop()).sort();
        }""")
        assert cached == ["cy.json", "en-GB.json", "ur.json"]

        # No signal, the app reloaded: still Welsh, from the phone alone.
        go_offline(context, live_server)
        response = page.reload()
        assert response.from_service_worker
        expect(page.locator("html")).to_have_attribute("lang", "cy")
        expect(page.get_by_role("heading", name="Gosodiadau")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
        # The home screen too, offline: its nav link and its form button in Welsh.
        page.get_by_role("link", name="Hafan").click()
        expect(page.get_by_role("link", name="Ymweliad monitro stryd")).to_be_visible()
        context.close()

        # Closed and reopened with no signal: the choice is kept.
        context, page = launch(playwright, tmp_path / "phone", live_server)
        response = page.goto(f"{live_server.url}/app/#/settings")
        assert response.from_service_worker
        expect(page.get_by_role("link", name="Gosodiadau")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
        expect(page.get_by_role("group", name="Iaith").get_by_label("Cymraeg")).to_be_checked()
        context.close()
