"""Forms and agreements in several languages: a translation is not a new version, keeps every key,
reaches phones through the change log, and leaves figures and exports as they were."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select

from server import operations, reporting
from server.extensions import db
from server.models import AuditEntry, Change, FormVersion
from server.seed_content import AGREEMENT, STREET_FORM, checklist_form, mystery_shop_form
from server.seed_translations import (
    AGREEMENT_TRANSLATIONS,
    CHECKLIST_TRANSLATIONS,
    MYSTERY_SHOP_TRANSLATIONS,
    OLD_STREET_TRANSLATIONS,
    STREET_TRANSLATIONS,
)
from sync.content import agreement_texts, form_texts, localised
from tests.conftest import mutation, sign_in, street_answers, visit

PASSWORD = "correct horse battery"
CHOICES = ["cy", "ur"]


def _full(texts: dict, source: dict) -> dict:
    """A translation as the page posts it: every text of the version, empty where not translated."""
    return {key: texts.get(key, "") for key in source}


@pytest.fixture
def area_forms(make_area, make_site, publish_forms):
    area = make_area("millbrook", "Millbrook")
    versions = publish_forms(area_id=area.id)
    deal = operations.publish_agreement_version(operations.draft_agreement_version("millbrook-deal", area, AGREEMENT))
    site = make_site(area, "Canal Street")
    operations.create_person("Cora", email="cora@example.org", password=PASSWORD, roles=[("coordinator", area)])
    db.session.commit()
    return {"area": area, "street": versions["street"], "deal": deal, "site": site}


def _translate_street(version, texts=None):
    source = form_texts(version.definition)
    return operations.set_translation("form", version, "cy", _full(texts or STREET_TRANSLATIONS["cy"], source),
                                      choices=CHOICES)


def test_a_translation_keeps_every_key_and_is_not_a_new_version(area_forms):
    street = area_forms["street"]
    definition = dict(street.definition)
    _translate_street(street)
    db.session.commit()
    versions = db.session.execute(select(func.count()).select_from(FormVersion)
                                  .where(FormVersion.form_id == street.form_id)).scalar_one()
    assert versions == 1 and street.version == 1 and street.status == "published"
    assert street.definition == definition  # keys, lines, order and grades exactly as published
    assert street.translations["cy"]["lines.litter.label"] == "Sbwriel"
    shown = localised("form", street.definition, street.translations, street.language, "cy-GB")
    keys = [line["key"] for section in shown["sections"] for line in section["lines"]]
    assert keys == [line["key"] for section in definition["sections"] for line in section["lines"]]
    litter = next(line for section in shown["sections"] for line in section["lines"] if line["key"] == "litter")
    assert litter["label"] == "Sbwriel" and set(litter["grades"]) == {"A", "B", "C", "D"}


def test_empty_texts_fall_back_to_the_source_language(area_forms):
    street = area_forms["street"]
    _translate_street(street, {"title": "Ffurflen", "lines.noise.label": "   "})
    assert street.translations == {"cy": {"title": "Ffurflen"}}
    shown = localised("form", street.definition, street.translations, street.language, "cy")
    noise = next(line for section in shown["sections"] for line in section["lines"] if line["key"] == "noise")
    assert shown["title"] == "Ffurflen" and noise["label"] == "Noise"
    # Every text empty: the translation goes.
    operations.set_translation("form", street, "cy", _full({}, form_texts(street.definition)), choices=CHOICES)
    assert street.translations == {}


@pytest.mark.parametrize("change, field", [
    (lambda texts: texts | {"lines.no_such_line.label": "Dim"}, "texts"),  # adds a text the version lacks
    (lambda texts: {k: v for k, v in texts.items() if k != "lines.litter.label"}, "texts"),  # drops one
    (lambda texts: texts | {"title": "tab\x00"}, "texts.title"),
    (lambda texts: texts | {"title": "t" * 2001}, "texts.title"),
])
def test_a_bad_translation_is_refused_and_nothing_changes(area_forms, change, field):
    street = area_forms["street"]
    texts = change(_full(STREET_TRANSLATIONS["cy"], form_texts(street.definition)))
    with pytest.raises(operations.OperationError) as refused:
        operations.set_translation("form", street, "cy", texts, choices=CHOICES)
    assert refused.value.code == "translation_invalid" and field in refused.value.errors
    assert street.translations == {}


def test_a_language_not_offered_is_refused(area_forms):
    street = area_forms["street"]
    with pytest.raises(operations.OperationError) as refused:
        operations.set_translation("form", street, "fr", {}, choices=CHOICES)
    assert "language" in refused.value.errors


def test_the_page_saves_a_translation_of_a_published_version_with_an_audit_entry(client, area_forms):
    csrf = sign_in(client, "cora@example.org", PASSWORD)
    street = area_forms["street"]
    page = client.get("/coordinator/millbrook/forms/street/1/translation?lang=cy")
    assert page.status_code == 200
    assert "Litter" in page.text and 'lang="cy"' in page.text and "Welsh" in page.text
    fields = {f"text-{key}": value for key, value in _full(STREET_TRANSLATIONS["cy"],
                                                           form_texts(street.definition)).items()}
    saved = client.post("/coordinator/millbrook/forms/street/1/translation",
                        data={"csrf_token": csrf, "lang": "cy", **fields})
    assert saved.status_code == 302
    db.session.expire_all()
    assert db.session.get(FormVersion, ("street", 1)).translations["cy"]["title"] == STREET_TRANSLATIONS["cy"]["title"]
    entry = db.session.execute(select(AuditEntry).order_by(AuditEntry.seq.desc())).scalars().first()
    assert entry.action == "form.translate" and entry.record_id == "street@1"
    assert entry.details["language"] == "cy" and entry.details["after"]["lines.litter.label"] == "Sbwriel"
    assert entry.details["before"]["lines.litter.label"] is None
    # Shown again with what was saved, and Urdu fields right to left.
    again = client.get("/coordinator/millbrook/forms/street/1/translation?lang=cy")
    assert "Sbwriel" in again.text
    urdu = client.get("/coordinator/millbrook/agreement/millbrook-deal/1/translation?lang=ur")
    assert urdu.status_code == 200 and 'dir="rtl"' in urdu.text


def test_the_page_refuses_a_bad_translation_with_a_400_and_keeps_what_was_typed(client, area_forms):
    csrf = sign_in(client, "cora@example.org", PASSWORD)
    street = area_forms["street"]
    fields = {f"text-{key}": value for key, value in _full(STREET_TRANSLATIONS["cy"],
                                                           form_texts(street.definition)).items()}
    fields["text-lines.litter.label"] = "Sbwriel " * 300  # over 2,000 characters
    fields["text-lines.gone.label"] = "Wedi mynd"
    refused = client.post("/coordinator/millbrook/forms/street/1/translation",
                          data={"csrf_token": csrf, "lang": "cy", **fields})
    assert refused.status_code == 400
    assert "does not match this version" in refused.text and "within 2000 characters" in refused.text
    assert STREET_TRANSLATIONS["cy"]["lines.noise.label"] in refused.text  # what was typed stays on the page
    db.session.expire_all()
    assert db.session.get(FormVersion, ("street", 1)).translations == {}
    assert client.get("/coordinator/millbrook/forms/street/1/translation?lang=fr").status_code == 400
    unknown = client.post("/coordinator/millbrook/forms/street/1/translation", data={"csrf_token": csrf, "lang": "xx"})
    assert unknown.status_code == 400


def test_a_coordinator_cannot_translate_a_shared_form(client, area_forms):
    operations.publish_form_version(operations.draft_form_version("shared-street", STREET_FORM))
    db.session.commit()
    csrf = sign_in(client, "cora@example.org", PASSWORD)
    assert client.get("/coordinator/millbrook/forms/shared-street/1/translation").status_code == 200
    posted = client.post("/coordinator/millbrook/forms/shared-street/1/translation", data={"csrf_token": csrf})
    assert posted.status_code == 403


def test_a_phone_receives_the_translation_and_an_old_phone_reads_the_same_record(area_forms, enrol, sync):
    token, _ = enrol(area_forms["area"])
    first = sync(token).get_json()
    before = next(c for c in first["changes"] if c["id"] == "street@1")["data"]
    assert before["translations"] == {} and before["language"] == "en"
    _translate_street(area_forms["street"])
    deal = area_forms["deal"]
    operations.set_translation("agreement", deal, "ur",
                               _full(AGREEMENT_TRANSLATIONS["ur"], agreement_texts(deal.definition)), choices=CHOICES)
    db.session.commit()
    later = sync(token, cursor=first["cursor"]).get_json()
    changed = {c["id"]: c for c in later["changes"]}
    assert set(changed) == {"street@1", "millbrook-deal@1"}
    street = changed["street@1"]["data"]
    assert street["translations"]["cy"]["lines.litter.grades.D"] == STREET_TRANSLATIONS["cy"]["lines.litter.grades.D"]
    assert changed["millbrook-deal@1"]["data"]["translations"]["ur"]["title"] == AGREEMENT_TRANSLATIONS["ur"]["title"]
    # A phone that knows nothing of translations reads every field it knew, unchanged.
    old_fields = {k: v for k, v in street.items() if k not in ("translations", "language")}
    assert old_fields == {k: v for k, v in before.items() if k not in ("translations", "language")}
    # And its visit, filled in English or Welsh alike (answers by key), is applied.
    pushed = sync(token, [mutation(visit(area_forms["site"]))], cursor=later["cursor"]).get_json()
    assert pushed["results"][0]["status"] == "applied"


def test_translating_a_draft_writes_no_change_and_a_retired_agreement_is_not_sent_back(area_forms):
    draft = operations.draft_form_version("street", STREET_FORM, area_id=area_forms["area"].id)
    deal_two = operations.draft_agreement_version("millbrook-deal", area_forms["area"], AGREEMENT)
    operations.publish_agreement_version(deal_two)
    db.session.commit()
    count = db.session.execute(select(func.count()).select_from(Change)).scalar_one()
    _translate_street(draft)
    old_deal = area_forms["deal"]
    assert old_deal.status == "retired"
    operations.set_translation("agreement", old_deal, "cy",
                               _full(AGREEMENT_TRANSLATIONS["cy"], agreement_texts(old_deal.definition)), choices=CHOICES)
    db.session.commit()
    assert db.session.execute(select(func.count()).select_from(Change)).scalar_one() == count
    assert draft.translations["cy"] and old_deal.translations["cy"]


def test_a_new_draft_keeps_the_translations_and_an_edit_drops_only_what_changed(client, area_forms):
    _translate_street(area_forms["street"])
    db.session.commit()
    csrf = sign_in(client, "cora@example.org", PASSWORD)
    assert client.post("/coordinator/millbrook/forms/street/drafts", data={"csrf_token": csrf}).status_code == 302
    draft = db.session.get(FormVersion, ("street", 2))
    assert draft.translations == area_forms["street"].translations
    edited = {**draft.definition, "title": "Street monitoring (spring)"}
    sections = [dict(section) for section in edited["sections"]]
    sections[0] = {**sections[0], "lines": [line for line in sections[0]["lines"] if line["key"] != "noise"]}
    operations.update_form_draft(draft, {**edited, "sections": sections})
    kept = draft.translations["cy"]
    assert "title" not in kept  # its English changed: it reads in English until translated again
    assert not any(key.startswith("lines.noise.") for key in kept)  # the line went
    assert kept["lines.litter.label"] == "Sbwriel"


def test_answers_under_a_welsh_form_count_with_english_ones_in_figures_and_exports(client, area_forms, enrol, sync):
    _translate_street(area_forms["street"])
    db.session.commit()
    welsh_token, _ = enrol(area_forms["area"], name="Carys")
    english_token, _ = enrol(area_forms["area"], name="Ann")
    site = area_forms["site"]
    welsh = visit(site, answers=street_answers("A", litter={"grade": "D"}))
    english = visit(site, answers=street_answers("A", litter={"grade": "C"}))
    assert sync(welsh_token, [mutation(welsh)]).get_json()["results"][0]["status"] == "applied"
    assert sync(english_token, [mutation(english)]).get_json()["results"][0]["status"] == "applied"
    figures = reporting.street_grades_by_line(db.session, area_forms["area"].id, reporting.Period.last_days(30))
    assert figures["litter"] == (2, 2) and figures["noise"] == (2, 0)
    sign_in(client, "cora@example.org", PASSWORD)
    rows = list(csv.DictReader(io.StringIO(client.get("/coordinator/millbrook/exports/submissions.csv").text)))
    litter = [row for row in rows if row["line_key"] == "litter"]
    assert sorted(row["grade"] for row in litter) == ["C", "D"]
    # Exports keep the source language's words, whichever language the visit was filled in.
    assert {row["line_label"] for row in litter} == {"Litter"}
    assert {row["theme"] for row in litter} == {"Green and Clean"}
    assert "Sbwriel" not in client.get("/coordinator/millbrook/exports/submissions.csv").text


@pytest.mark.parametrize("definition, translations", [
    (STREET_FORM, STREET_TRANSLATIONS),
    ({**STREET_FORM, "instructions": "Place an X in the correct box."}, OLD_STREET_TRANSLATIONS),
    (checklist_form(AGREEMENT), CHECKLIST_TRANSLATIONS),
    (mystery_shop_form(AGREEMENT), MYSTERY_SHOP_TRANSLATIONS),
    (AGREEMENT, AGREEMENT_TRANSLATIONS),
])
def test_the_demo_translates_every_text_into_welsh_and_urdu(definition, translations):
    source = agreement_texts(definition) if definition is AGREEMENT else form_texts(definition)
    for language in ("cy", "ur"):
        assert set(translations[language]) == set(source), language
        assert all(text.strip() for text in translations[language].values()), language
        # Translated, not copied: only a word Welsh borrows as it is reads the same.
        same = [key for key, text in translations[language].items() if text == source[key]]
        assert same in ([], ["lines.graffiti.label"]), (language, same)


def test_the_demo_ships_its_agreement_and_forms_in_welsh_and_urdu(app):
    from server import demo
    from server.models import AgreementVersion

    demo.load_demo(months=1)
    versions = db.session.execute(select(FormVersion)).scalars().all()
    assert {v.sync_id for v in versions} == {"street@1", "street@2", "checklist@1", "mystery_shop@1"}
    for version in versions:
        for language in ("cy", "ur"):
            assert set(version.translations[language]) == set(form_texts(version.definition)), version.sync_id
    (deal,) = db.session.execute(select(AgreementVersion)).scalars().all()
    assert set(deal.translations["ur"]) == set(agreement_texts(deal.definition))
    record = next(c for c in db.session.execute(select(Change).where(Change.record_id == "street@2")).scalars())
    assert record.data["translations"]["cy"]["title"] == STREET_TRANSLATIONS["cy"]["title"]


def test_the_public_page_shows_the_agreement_in_the_pages_language(app, client, area_forms, monkeypatch):
    deal = area_forms["deal"]
    operations.set_translation("agreement", deal, "cy",
                               _full(AGREEMENT_TRANSLATIONS["cy"], agreement_texts(deal.definition)), choices=CHOICES)
    db.session.commit()
    english = client.get("/area/millbrook").text
    assert AGREEMENT["our_part"][0]["text"] in english
    # Which language the page is in is flask_babel's choice (Accept-Language, once Welsh is shipped).
    from server import public

    monkeypatch.setattr(public, "get_locale", lambda: "cy")
    welsh = client.get("/area/millbrook").text
    assert AGREEMENT_TRANSLATIONS["cy"]["our_part.council_tax.text"] in welsh
    assert AGREEMENT["our_part"][0]["text"] not in welsh
