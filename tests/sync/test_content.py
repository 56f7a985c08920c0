"""sync/content.py: which texts a translation covers, and how a version reads in a language."""

from __future__ import annotations

from server.seed_content import AGREEMENT, STREET_FORM, mystery_shop_form
from sync.content import (
    agreement_texts,
    form_texts,
    kept_after_edit,
    localised,
    pick_translation,
    primary_language,
    translation_problems,
)


def test_text_keys_name_texts_by_the_versions_own_keys():
    texts = form_texts(STREET_FORM)
    assert texts["lines.groups_loitering.label"].startswith("Groups loitering")
    assert texts["lines.litter.grades.D"] == "Heavy litter everywhere; bins overflowing"
    assert texts["sections.1.theme"] == "Green and Clean" and texts["scale.A"] == "No problem at all"
    shop = form_texts(mystery_shop_form(AGREEMENT))
    assert shop["lines.channel.options.2"] == "in_person"
    deal = agreement_texts(AGREEMENT)
    assert deal["our_part.listen.text"] == "Listen, be open, honest and friendly"
    assert deal["themes.green_and_clean.strapline"] == "For clean streets"


def test_a_choice_line_keeps_its_answers_and_gets_labels_beside_them():
    shop = mystery_shop_form(AGREEMENT)
    shown = localised("form", shop, {"cy": {"lines.channel.options.0": "Ffôn"}}, "en", "cy-GB")
    channel = next(line for s in shown["sections"] for line in s["lines"] if line["key"] == "channel")
    assert channel["options"] == ["phone", "online", "in_person"]
    assert channel["option_labels"] == ["Ffôn", None, None]


def test_the_source_language_and_languages_without_a_translation_read_as_the_source():
    translations = {"cy": {"title": "Ffurflen"}}
    assert localised("form", STREET_FORM, translations, "en", "en-GB") == STREET_FORM
    assert localised("form", STREET_FORM, translations, "en", "ur") == STREET_FORM
    assert localised("form", STREET_FORM, translations, "en", "CY")["title"] == "Ffurflen"
    assert pick_translation(translations, "cy", "cy") == {}  # a version written in Welsh reads as written
    assert primary_language("ur_PK") == "ur" and primary_language(None) == ""


def test_a_translation_may_not_add_a_text_and_must_be_text():
    source = form_texts(STREET_FORM)
    problems = translation_problems(source, {"title": "Ffurflen", "lines.nope.label": "x", "scale.A": 3,
                                             "scale.B": "a\x00", "scale.C": "x" * 2001})
    assert problems == {"lines.nope.label": "unknown_key", "scale.A": "not_text", "scale.B": "not_text",
                        "scale.C": "too_long"}
    assert translation_problems(source, {"title": "Ffurflen"}) == {}


def test_an_edit_keeps_only_translations_whose_source_is_unchanged():
    before = {"title": "Form", "lines.a.label": "A", "lines.b.label": "B"}
    after = {"title": "Form (spring)", "lines.a.label": "A"}
    assert kept_after_edit(before, after, {"title": "F", "lines.a.label": "Ah", "lines.b.label": "Bee"}) == \
        {"lines.a.label": "Ah"}
