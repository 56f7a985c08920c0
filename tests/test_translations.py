"""Every shipped language is complete: each message of messages.pot has a translation in the
language's .po file, with the same placeholders as the English (`{count}`, `%(name)s`).

It runs for every language in config LANGUAGES except English (the msgids are English). A
language is switched on by adding it to LANGUAGES (server/languages.py) once its .po is
complete; this test then holds it to that. The negative controls below show it can fail.
"""

from __future__ import annotations

import os
import re

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from server import languages
from server.config import DEFAULTS
from server.pwa_build import TRANSLATIONS_DIR

TEMPLATE = os.path.join(TRANSLATIONS_DIR, "messages.pot")
# {name} (the field app's), %(name)s (Python's, Flask-Babel's) and bare %s / %d.
PLACEHOLDER = re.compile(r"\{(\w+)\}|%\((\w+)\)[sdifr]|%([sdif])")


def placeholders(text: str) -> set[str]:
    """The placeholders in a message's text: `{count}`, `%(name)s`, `%s`."""
    return {match.group(0) for match in PLACEHOLDER.finditer(text or "")}


def problems(template: Catalog, catalog: Catalog) -> list[str]:
    """What keeps `catalog` from being complete against `template`: missing, fuzzy, empty, wrong placeholders."""
    found = []
    nplurals = catalog.num_plurals
    for message in template:
        if not message.id:
            continue
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        entry = catalog.get(message.id)
        if entry is None:
            found.append(f"missing: {key!r}")
            continue
        if entry.fuzzy:
            found.append(f"fuzzy: {key!r}")
            continue
        english = set().union(*(placeholders(text) for text in (message.id if isinstance(message.id, tuple) else (message.id,))))
        forms = entry.string if isinstance(entry.string, (tuple, list)) else (entry.string,)
        if isinstance(message.id, tuple) and len(forms) != nplurals:
            found.append(f"plural forms: {key!r} has {len(forms)}, the language has {nplurals}")
            continue
        if not all(forms):
            found.append(f"untranslated: {key!r}")
            continue
        translated = [placeholders(form) for form in forms]
        if set().union(*translated) != english or any(not form <= english for form in translated):
            found.append(f"placeholders: {key!r} has {sorted(set().union(*translated))}, the English {sorted(english)}")
    return found


def _read(path: str, locale=None) -> Catalog:
    with open(path, "rb") as handle:
        return read_po(handle, locale=locale)


def test_every_shipped_language_translates_every_message_with_the_same_placeholders():
    template = _read(TEMPLATE)
    shipped = [language for language in DEFAULTS["LANGUAGES"] if not languages.is_english(language)]
    report = {}
    for language in shipped:
        path = os.path.join(TRANSLATIONS_DIR, language, "LC_MESSAGES", "messages.po")
        assert os.path.isfile(path), f"{language} is shipped but has no {path}"
        found = problems(template, _read(path, language))
        if found:
            report[language] = found[:20] + ([f"... and {len(found) - 20} more"] if len(found) > 20 else [])
    assert report == {}


def _catalog(locale: str, entries) -> Catalog:
    catalog = Catalog(locale=locale)
    for msgid, text, flags in entries:
        catalog.add(msgid, text, flags=flags)
    return catalog


def test_negative_control_each_kind_of_gap_is_found():
    template = _catalog("en_GB", [("Hello {name}", "", ()), ("Signed in as %(name)s", "", ()),
                                  (("1 visit needs correcting", "{count} visits need correcting"), ("", ""), ()),
                                  ("Save", "", ()), ("Delete", "", ()), ("Open", "", ())])
    complete = _catalog("cy", [
        ("Hello {name}", "Helo {name}", ()), ("Signed in as %(name)s", "Wedi mewngofnodi fel %(name)s", ()),
        (("1 visit needs correcting", "{count} visits need correcting"),
         ("{count} ymweliad", "1 ymweliad", "{count} ymweliad", "{count} ymweliad", "{count} ymweliad", "{count} ymweliad"), ()),
        ("Save", "Cadw", ()), ("Delete", "Dileu", ()), ("Open", "Agor", ())])
    assert problems(template, complete) == []
    broken = _catalog("cy", [
        ("Hello {name}", "Helo {enw}", ()),                              # a renamed placeholder
        ("Signed in as %(name)s", "Wedi mewngofnodi", ()),              # a lost placeholder
        (("1 visit needs correcting", "{count} visits need correcting"), ("{count} ymweliad", "1 ymweliad"), ()),
        ("Save", "Cadw", ("fuzzy",)),                                  # fuzzy is not translated
        ("Delete", "", ())])                                           # empty; "Open" missing
    assert problems(template, broken) == [
        "placeholders: 'Hello {name}' has ['{enw}'], the English ['{name}']",
        "placeholders: 'Signed in as %(name)s' has [], the English ['%(name)s']",
        "plural forms: '1 visit needs correcting' has 2, the language has 6",
        "fuzzy: 'Save'", "untranslated: 'Delete'", "missing: 'Open'"]


def test_negative_control_the_placeholder_less_singular_of_a_plural_is_allowed_but_not_an_extra_one():
    template = _catalog("en_GB", [(("{n} day", "{n} days"), ("", ""), ())])
    urdu = _catalog("ur", [(("{n} day", "{n} days"), ("{n} دن", "{n} دن {extra}"), ())])
    assert problems(template, urdu) == ["placeholders: '{n} day' has ['{extra}', '{n}'], the English ['{n}']"]


def test_negative_control_a_shipped_catalogue_with_a_gap_fails():
    # The real Welsh and Urdu files, each with one message taken out and one placeholder renamed:
    # the check above must name both.
    template = _read(TEMPLATE)
    for language in ("cy", "ur"):
        catalog = _read(os.path.join(TRANSLATIONS_DIR, language, "LC_MESSAGES", "messages.po"), language)
        assert problems(template, catalog) == [], language
        with_placeholder = [m for m in catalog if m.id and isinstance(m.id, str) and "%(" in m.id]
        dropped, renamed = with_placeholder[0], with_placeholder[1]
        catalog.delete(dropped.id, dropped.context)
        renamed.string = re.sub(r"%\((\w+)\)", r"%(\1_x)", renamed.string)
        found = problems(template, catalog)
        assert found[0] == f"missing: {dropped.id!r}" or f"missing: {dropped.id!r}" in found, language
        assert any(line.startswith(f"placeholders: {renamed.id!r}") for line in found), language
        assert len(found) == 2, (language, found)
