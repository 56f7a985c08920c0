"""Form and agreement versions in several languages: which texts a translation covers, and how
a version reads in a language.

A version keeps its text in its first ("source") language, and a translation per language: a
flat mapping from *text keys* to text. A text key names one person-readable text of the version
by the keys the version already has (a line's key, a promise's key), never by what the text
says, so a translation changes no key, no line order and no grade:

    form       title, instructions, scale.A … scale.D, sections.<n>.theme,
               lines.<key>.label, lines.<key>.help, lines.<key>.grades.A … D,
               lines.<key>.options.<n> (a choice line's answer labels; the answer stays the option)
    agreement  title, summary, themes.<key>.name, themes.<key>.strapline,
               our_part.<key>.text, your_part.<key>.text, standards.<key>.text

A text that a translation leaves out (or leaves empty) reads in the source language. Pure
functions over plain data: the server stores and checks translations with them, and a client
can lay one over a version it holds.
"""

from __future__ import annotations

import copy

from sync.protocol import GRADES

MAX_TRANSLATED_TEXT = 2000
AGREEMENT_PARTS = ("our_part", "your_part")


def primary_language(tag) -> str:
    """The primary subtag of a language tag, lower case: "cy" for "cy-GB" or "cy_GB"."""
    return str(tag or "").replace("_", "-").split("-")[0].strip().lower()


def _text(value) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _putter(texts: dict[str, str]):
    """A function that keeps a text under its key, when it is a text at all (not blank, not another type)."""
    def put(key, value):
        if _text(value):
            texts[key] = value
    return put


def form_texts(definition: dict) -> dict[str, str]:
    """Every person-readable text of a form definition, by text key, in the definition's order."""
    texts: dict[str, str] = {}
    put = _putter(texts)
    put("title", definition.get("title"))
    put("instructions", definition.get("instructions"))
    scale = definition.get("scale")
    if isinstance(scale, dict):
        for grade in GRADES:
            put(f"scale.{grade}", scale.get(grade))
    for index, section in enumerate(definition.get("sections") or []):
        if not isinstance(section, dict):
            continue
        put(f"sections.{index}.theme", section.get("theme"))
        for line in section.get("lines") or []:
            if not isinstance(line, dict) or not isinstance(line.get("key"), str):
                continue
            prefix = f"lines.{line['key']}"
            put(f"{prefix}.label", line.get("label"))
            put(f"{prefix}.help", line.get("help"))
            if isinstance(line.get("grades"), dict):
                for grade in GRADES:
                    put(f"{prefix}.grades.{grade}", line["grades"].get(grade))
            if line.get("type") == "choice" and isinstance(line.get("options"), list):
                for n, option in enumerate(line["options"]):
                    put(f"{prefix}.options.{n}", option)
    return texts


def agreement_texts(definition: dict) -> dict[str, str]:
    """Every person-readable text of an agreement definition, by text key, in the definition's order."""
    texts: dict[str, str] = {}
    put = _putter(texts)
    put("title", definition.get("title"))
    put("summary", definition.get("summary"))
    for theme in definition.get("themes") or []:
        if isinstance(theme, dict) and isinstance(theme.get("key"), str):
            put(f"themes.{theme['key']}.name", theme.get("name"))
            put(f"themes.{theme['key']}.strapline", theme.get("strapline"))
    for part in (*AGREEMENT_PARTS, "standards"):
        for item in definition.get(part) or []:
            if isinstance(item, dict) and isinstance(item.get("key"), str):
                put(f"{part}.{item['key']}.text", item.get("text"))
    return texts


def texts_of(kind: str, definition: dict) -> dict[str, str]:
    """`form_texts` or `agreement_texts`, by kind ("form" or "agreement")."""
    return agreement_texts(definition) if kind == "agreement" else form_texts(definition)


def translation_problems(source: dict[str, str], texts) -> dict[str, str]:
    """Why `texts` cannot be a translation of a version whose texts are `source`, by text key.

    Codes: "unknown_key" (a text the version does not have: a translation adds none),
    "not_text", "too_long". Keys `source` has and `texts` lacks are not a problem here: those
    texts read in the source language.
    """
    from sync.validation import readable_text

    if not isinstance(texts, dict):
        return {"": "not_text"}
    problems = {}
    for key, value in texts.items():
        if key not in source:
            problems[key] = "unknown_key"
        elif not isinstance(value, str) or not readable_text(value):
            problems[key] = "not_text"
        elif len(value) > MAX_TRANSLATED_TEXT:
            problems[key] = "too_long"
    return problems


def cleaned(texts: dict) -> dict[str, str]:
    """A translation as stored: trimmed, without the empty texts (they fall back to the source)."""
    return {key: value.strip() for key, value in texts.items() if isinstance(value, str) and value.strip()}


def kept_after_edit(before: dict[str, str], after: dict[str, str], translation: dict[str, str]) -> dict[str, str]:
    """What stays of a translation when a draft's source texts change from `before` to `after`.

    A text whose key went, or whose source words changed, loses its translation: it no longer
    says what the source says, so it reads in the source language until translated again.
    """
    return {key: text for key, text in translation.items() if key in after and before.get(key) == after[key]}


def pick_translation(translations, source_language: str, wanted: str) -> dict[str, str]:
    """The texts of the translation into `wanted` (any tag: "cy-GB"), or {} for the source language or none."""
    language = primary_language(wanted)
    if not isinstance(translations, dict) or not language or language == primary_language(source_language):
        return {}
    for tag, texts in translations.items():
        if primary_language(tag) == language and isinstance(texts, dict):
            return texts
    return {}


def localised_form(definition: dict, texts: dict[str, str]) -> dict:
    """A copy of a form definition with `texts` laid over it. Keys, options and order stay as they are:
    a choice line's translated answer labels go into `option_labels`, its `options` (the answers) stay."""
    shown = copy.deepcopy(definition)
    if not texts:
        return shown

    def over(target: dict, name: str, key: str):
        if _text(texts.get(key)):
            target[name] = texts[key]

    over(shown, "title", "title")
    over(shown, "instructions", "instructions")
    if isinstance(shown.get("scale"), dict):
        for grade in GRADES:
            over(shown["scale"], grade, f"scale.{grade}")
    for index, section in enumerate(shown.get("sections") or []):
        if not isinstance(section, dict):
            continue
        over(section, "theme", f"sections.{index}.theme")
        for line in section.get("lines") or []:
            if not isinstance(line, dict) or not isinstance(line.get("key"), str):
                continue
            prefix = f"lines.{line['key']}"
            over(line, "label", f"{prefix}.label")
            over(line, "help", f"{prefix}.help")
            if isinstance(line.get("grades"), dict):
                for grade in GRADES:
                    over(line["grades"], grade, f"{prefix}.grades.{grade}")
            if line.get("type") == "choice" and isinstance(line.get("options"), list):
                labels = [texts.get(f"{prefix}.options.{n}") for n in range(len(line["options"]))]
                if any(_text(label) for label in labels):
                    line["option_labels"] = [label if _text(label) else None for label in labels]
    return shown


def localised_agreement(definition: dict, texts: dict[str, str]) -> dict:
    """A copy of an agreement definition with `texts` laid over it; keys and order stay as they are."""
    shown = copy.deepcopy(definition)
    if not texts:
        return shown
    for name in ("title", "summary"):
        if _text(texts.get(name)):
            shown[name] = texts[name]
    for theme in shown.get("themes") or []:
        if isinstance(theme, dict):
            for name in ("name", "strapline"):
                key = f"themes.{theme.get('key')}.{name}"
                if _text(texts.get(key)):
                    theme[name] = texts[key]
    for part in (*AGREEMENT_PARTS, "standards"):
        for item in shown.get(part) or []:
            key = f"{part}.{item.get('key')}.text" if isinstance(item, dict) else None
            if key and _text(texts.get(key)):
                item["text"] = texts[key]
    return shown


def localised(kind: str, definition: dict, translations, source_language: str, wanted: str) -> dict:
    """How a version reads in `wanted`: each text translated where a translation has it, else the source's."""
    texts = pick_translation(translations, source_language, wanted)
    if kind == "agreement":
        return localised_agreement(definition, texts)
    return localised_form(definition, texts)
