"""The language machinery: one catalogue source for the field app, plural forms, the language a
page or the sync API speaks, the switcher's cookie, and `lang`/`dir` on every page."""

from __future__ import annotations

import gettext
import json
import os
import re
import subprocess

import pytest
from babel.messages.catalog import Catalog
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po, write_po
from flask_babel import refresh

from server import languages, pwa_build, pwa_messages
from server.pwa import DEFAULT_SOURCE_DIR

PLURAL_MODULE = os.path.join(DEFAULT_SOURCE_DIR, "js", "plural.js")
POT = os.path.join(pwa_build.TRANSLATIONS_DIR, "messages.pot")
WELSH = "(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n==3 ? 3 : n==6 ? 4 : 5)"


def node_plural_indices(expressions: list[str], upto: int = 200) -> list:
    """pwa/js/plural.js's answer for n = 0..upto for each expression (or the error it throws), run by Node."""
    script = (f"import {{ compilePlural }} from {json.dumps('file://' + PLURAL_MODULE)};\n"
              "const out = [];\n"
              f"for (const text of {json.dumps(expressions)}) {{\n"
              "  try { const pick = compilePlural(text); out.push(Array.from({ length: " + str(upto + 1) + " }, (_, n) => pick(n))); }\n"
              "  catch (error) { out.push(String(error.name)); }\n"
              "}\nconsole.log(JSON.stringify(out));\n")
    done = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


# -- plural forms ---------------------------------------------------------------------------------


def test_the_apps_plural_evaluator_agrees_with_gettext_for_babels_rules():
    # Babel's own rule for each language, and the brief's spelling of Welsh; gettext (which
    # Babel's Translations use) is the reference, for n = 0..200.
    locales = ["cy", "ur", "en_GB", "ar", "pl", "ru", "ga", "sl", "lt", "ro", "cs", "fr", "ja"]
    expressions = [get_plural(locale).plural_expr for locale in locales] + [WELSH, "n%10==1 && n%100!=11 ? 0 : n != 0 ? 1 : 2"]
    got = node_plural_indices(expressions)
    for expression, indices in zip(expressions, got):
        reference = gettext.c2py(expression)
        assert indices == [reference(n) for n in range(201)], expression
    assert get_plural("cy").num_plurals == 6 and got[0][:8] == [0, 1, 2, 3, 5, 5, 4, 5]


def test_the_plural_evaluator_refuses_what_is_not_a_plural_expression():
    got = node_plural_indices(["alert(1)", "n == 1 ? 0", "constructor", "n ? 1 : 0 ; fetch('/')", "(n != 1"], upto=1)
    assert got == ["SyntaxError"] * 5


# -- one source: the field app's messages ---------------------------------------------------------


def test_every_field_app_message_is_in_the_extracted_template():
    with open(POT, "rb") as handle:
        template = read_po(handle)
    for key, message in pwa_messages.MESSAGES.items():
        msgid = tuple(message) if isinstance(message, tuple) else message
        entry = template.get(msgid[0] if isinstance(msgid, tuple) else msgid)
        assert entry is not None, f"{key}: not extracted (re-run pybabel extract)"
        if isinstance(msgid, tuple):
            assert entry.id == msgid, key
        assert any(location[0] == "server/pwa_messages.py" for location in entry.locations), key


def test_the_app_has_no_catalogue_of_its_own():
    with open(os.path.join(DEFAULT_SOURCE_DIR, "js", "messages.js"), encoding="utf-8") as handle:
        source = handle.read()
    assert "CATALOGUES" not in source and '"Settings"' not in source and "Kept" not in source


def _write_po(folder, language, entries):
    catalog = Catalog(locale=language)
    for msgid, text, flags in entries:
        catalog.add(msgid, text, flags=flags)
    path = folder / language / "LC_MESSAGES" / "messages.po"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as handle:
        write_po(handle, catalog)


def test_a_catalogue_lists_translated_messages_and_plurals_in_the_languages_forms(tmp_path):
    welsh_days = ["{n} diwrnod", "{n} diwrnod", "{n} ddiwrnod", "{n} diwrnod", "{n} niwrnod", "{n} diwrnod"]
    _write_po(tmp_path, "cy", [("Settings", "Gosodiadau", ()), ("Home", "Cartref", ("fuzzy",)),
                               ("Send now", "", ()), (("{n} day", "{n} days"), welsh_days, ()),
                               (("{n} hour", "{n} hours"), ["{n} awr"] * 3 + [""] * 3, ())])
    catalogue = pwa_build.field_catalogue("cy", str(tmp_path))
    assert catalogue[""] == {"language": "cy", "dir": "ltr", "nplurals": 6,
                             "plural": get_plural("cy").plural_expr}
    assert catalogue["nav_settings"] == catalogue["settings_title"] == "Gosodiadau"
    assert catalogue["days"] == welsh_days
    # Fuzzy, empty, and a plural missing forms are left out: the default catalogue fills them.
    assert "nav_home" not in catalogue and "send_now" not in catalogue and "hours" not in catalogue
    english = pwa_build.field_catalogue("en_GB", str(tmp_path))
    assert set(english) == set(pwa_messages.MESSAGES) | {""}
    assert english["correct_count"] == ["1 visit needs correcting", "{count} visits need correcting"]
    assert english["nav_settings"] == "Settings" and english[""]["language"] == "en-GB"
    urdu = pwa_build.field_catalogue("ur", str(tmp_path))
    assert urdu[""]["dir"] == "rtl" and urdu[""]["nplurals"] == 2 and set(urdu) == {""}


def test_the_build_ships_one_catalogue_per_language_and_precaches_them_all(tmp_path):
    info = pwa_build.build(DEFAULT_SOURCE_DIR, str(tmp_path), ["en_GB", "cy", "ur"])
    assert info["languages"] == ["en-GB", "cy", "ur"]
    base = f"/app/assets/{info['version']}/"
    for tag in ("en-GB", "cy", "ur"):
        name = f"i18n/{tag}.json"
        assert name in info["files"] and base + name in info["precache"]
        with open(tmp_path / "assets" / info["version"] / name, encoding="utf-8") as handle:
            assert json.load(handle)[""]["language"] == tag
    with open(tmp_path / "assets" / info["version"] / "js" / "languages.js", encoding="utf-8") as handle:
        module = handle.read()
    assert '"tag": "ur", "name": "اردو", "dir": "rtl"' in module and 'DEFAULT_LANGUAGE = "en-GB"' in module
    # Another language shipped is another version: a phone updates to get it.
    assert pwa_build.build(DEFAULT_SOURCE_DIR, str(tmp_path / "two"), ["en_GB", "cy"])["version"] != info["version"]


def test_compiled_catalogues_are_written_only_when_stale(tmp_path):
    _write_po(tmp_path, "cy", [("Settings", "Gosodiadau", ())])
    assert pwa_build.compile_translations(str(tmp_path)) == ["cy"]
    assert pwa_build.compile_translations(str(tmp_path)) == []
    with open(tmp_path / "cy" / "LC_MESSAGES" / "messages.mo", "rb") as handle:
        assert gettext.GNUTranslations(handle).gettext("Settings") == "Gosodiadau"


# -- the language of a page -----------------------------------------------------------------------


@pytest.fixture
def three_languages(app):
    app.config["LANGUAGES"] = ["en_GB", "cy", "ur"]
    return app


def html_attributes(response) -> tuple[str, str]:
    found = re.search(r'<html lang="([^"]+)" dir="([^"]+)">', response.get_data(as_text=True))
    return found.groups()


@pytest.mark.parametrize("header, expected", [
    ("cy", ("cy", "ltr")), ("ur-PK,ur;q=0.9", ("ur", "rtl")), ("en-US,en;q=0.8", ("en-GB", "ltr")),
    ("fr-FR,cy;q=0.5", ("cy", "ltr")), ("de", ("en-GB", "ltr")), ("", ("en-GB", "ltr")),
])
def test_pages_follow_accept_language_with_lang_and_dir(three_languages, client, header, expected):
    headers = {"Accept-Language": header} if header else {}
    for path in ("/", "/login", "/no-such-page"):
        assert html_attributes(client.get(path, headers=headers)) == expected, path


def test_the_shipped_languages_are_british_english_welsh_and_urdu(app):
    assert app.config["LANGUAGES"] == ["en_GB", "cy", "ur"]


def test_a_server_shipping_english_alone_offers_no_switcher(app, client):
    app.config["LANGUAGES"] = ["en_GB"]
    page = client.get("/", headers={"Accept-Language": "cy"})
    assert html_attributes(page) == ("en-GB", "ltr")
    assert "language-switcher" not in page.get_data(as_text=True)


def test_every_page_offers_the_switcher_back_to_itself(three_languages, client):
    page = client.get("/login?next=%2Fcoordinator%2F", headers={"Accept-Language": "cy"}).get_data(as_text=True)
    links = re.findall(r'<a href="(/language\?[^"]+)" lang="([^"]+)"[^>]*>([^<]+)</a>', page)
    assert [(tag, name) for _href, tag, name in links] == [("en-GB", "English"), ("cy", "Cymraeg"), ("ur", "اردو")]
    assert links[2][0] == "/language?to=ur&amp;next=%2Flogin%3Fnext%3D%252Fcoordinator%252F"
    assert 'lang="cy" hreflang="cy" dir="ltr" aria-current="true"' in page


def test_the_switcher_keeps_the_choice_in_a_cookie_and_goes_back(three_languages, client):
    response = client.get("/language?to=ur&next=/login%3Fx%3D1", headers={"Accept-Language": "cy"})
    assert response.status_code == 303 and response.headers["Location"] == "/login?x=1"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{languages.COOKIE}=ur;") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # The cookie outranks the browser's languages.
    assert html_attributes(client.get("/", headers={"Accept-Language": "cy"})) == ("ur", "rtl")
    client.get("/language?to=cy&next=/")
    # The test's app context outlives requests here (not in a server): forget its remembered locale.
    refresh()
    assert html_attributes(client.get("/", headers={"Accept-Language": "ur"})) == ("cy", "ltr")


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/", "/\\evil.example/", "\\\\evil.example", "/\\/evil.example",
    "javascript:alert(1)", "evil.example", "/\tevil", "/%0d%0aSet-Cookie:x=1", "http:/evil.example", "",
])
def test_the_switcher_never_sends_the_reader_off_the_site(three_languages, client, target):
    response = client.get("/language", query_string={"to": "cy", "next": target})
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\")), location
    if target in ("", "javascript:alert(1)", "evil.example", "http:/evil.example") or "evil.example" in target:
        assert location == "/"


def test_the_switcher_refuses_a_language_not_shipped(three_languages, client):
    for wanted in ("fr", "", "../../etc", "cy;evil"):
        response = client.get("/language", query_string={"to": wanted, "next": "/"})
        assert response.status_code == 400 and "Set-Cookie" not in response.headers, wanted


def test_same_site_path_allows_paths_with_queries_only():
    from server.web import same_site_path

    assert same_site_path("/area/millbrook?from=2026-01-01#top") == "/area/millbrook?from=2026-01-01#top"
    assert same_site_path("/") == "/"
    for bad in ("//x", "/\\x", "https://x/", "x", "/a\nb", "/a\\b", None):
        assert same_site_path(bad) is None, bad


def test_the_sync_apis_messages_follow_the_devices_language(app, client):
    app.config["LANGUAGES"] = ["en_GB", "cy"]
    welsh = client.get("/api/sync/v1/no-such-thing", headers={"Accept-Language": "cy"})
    refresh()  # the test's app context outlives the request (see above)
    english = client.get("/api/sync/v1/no-such-thing", headers={"Accept-Language": "en-GB"})
    assert welsh.status_code == english.status_code == 404
    message = "There is nothing at this address. Check the address, or go back to the front page."
    assert english.get_json()["message"] == message
    assert welsh.get_json()["message"] == _shipped_translation("cy", message) != message


def _shipped_translation(language: str, message: str) -> str:
    with open(os.path.join(pwa_build.TRANSLATIONS_DIR, language, "LC_MESSAGES", "messages.po"), "rb") as handle:
        return read_po(handle, locale=language).get(message).string


def test_language_choice_matches_base_languages():
    shipped = ["en_GB", "cy", "ur"]
    assert languages.choose("en", shipped) == "en_GB"
    assert languages.choose("EN-gb", shipped) == "en_GB"
    assert languages.choose("ur-PK", shipped) == "ur"
    assert languages.choose("fr", shipped) is None and languages.choose(None, shipped) is None
    assert languages.html_lang("en_GB") == "en-GB" and languages.direction("ur") == "rtl" and languages.direction("cy") == "ltr"


def test_the_web_manifest_names_its_language_as_bcp_47(client):
    assert client.get("/app/manifest.webmanifest").get_json()["lang"] == "en-GB"
