"""The languages Kerbside ships, in one place: the web pages, the sync API and the field app.

No Flask here (server/pwa_build.py loads this file by path while building the wheel). Names
are Babel locale identifiers (`en_GB`, `cy`, `ur`); pages and the app speak BCP 47 (`en-GB`).
"""

from __future__ import annotations

# The first is the default and the source language: msgids are its text (British English).
# Add a language here once its .po file is complete (docs/translating.md).
LANGUAGES = ("en_GB", "cy", "ur")
DEFAULT = LANGUAGES[0]
# The web pages' language switcher keeps the reader's choice in this cookie (server/web.py).
COOKIE = "kerbside_language"
# Languages written right to left (their pages get dir="rtl").
RIGHT_TO_LEFT = frozenset({"ar", "fa", "he", "ur", "ps", "sd", "ug", "yi"})


def base(locale: str) -> str:
    """The language part of a locale identifier: `en_GB` -> `en`."""
    return str(locale).replace("-", "_").split("_")[0].lower()


def is_english(locale: str) -> bool:
    """Whether `locale` is English, the language the msgids are written in."""
    return base(locale) == "en"


def html_lang(locale) -> str:
    """The BCP 47 tag for an HTML `lang` attribute: `en_GB` -> `en-GB`."""
    return str(locale or DEFAULT).replace("_", "-")


def direction(locale) -> str:
    """`rtl` for a right-to-left language, else `ltr`."""
    return "rtl" if base(locale or DEFAULT) in RIGHT_TO_LEFT else "ltr"


def choose(wanted: str | None, languages) -> str | None:
    """The shipped language a request names (`cy`, `en-GB`, `en`), or None: exact first, then by base language."""
    if not wanted:
        return None
    wanted = str(wanted).strip().replace("-", "_")
    for language in languages:
        if language.lower() == wanted.lower():
            return language
    for language in languages:
        if base(language) == base(wanted):
            return language
    return None
