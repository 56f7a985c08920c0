"""marshmallow's own messages reach people in the request's language (server.schema_messages).

No translation ships yet, so these tests put a marking "translation" in place of gettext and
look for the marks in what a device is told.
"""

from __future__ import annotations

import pytest
from marshmallow import validate

from server import schema_messages
from server.schema_messages import MARSHMALLOW_MESSAGES, default_messages
from tests.conftest import mutation, visit


@pytest.fixture
def marked(monkeypatch):
    monkeypatch.setattr(schema_messages, "gettext", lambda text: f"«{text}»")


def test_the_catalogue_list_holds_every_marshmallow_default_message():
    assert default_messages() - set(MARSHMALLOW_MESSAGES) == set()


@pytest.mark.parametrize("bounds", [
    {"min": 1}, {"max": 2}, {"min": 1, "min_inclusive": False}, {"max": 2, "max_inclusive": False},
    {"min": 1, "max": 2}, {"min": 1, "max": 2, "min_inclusive": False},
    {"min": 1, "max": 2, "max_inclusive": False}, {"min": 1, "max": 2, "min_inclusive": False, "max_inclusive": False},
])
def test_every_sentence_a_range_builds_is_in_the_catalogue_list(bounds):
    built = validate.Range(**bounds)
    message = built.message_all if "min" in bounds and "max" in bounds else built.message_min if "min" in bounds else built.message_max
    assert str(message) in MARSHMALLOW_MESSAGES


@pytest.fixture
def device(make_area, make_site, publish_forms, enrol):
    area = make_area()
    site = make_site(area)
    publish_forms()
    token, _body = enrol(area)
    return token, site


def test_field_errors_in_a_push_are_translated(device, sync, marked):
    token, site = device
    no_answers = visit(site)
    del no_answers["answers"]
    bad_envelope = mutation(visit(site), seq=2)
    bad_envelope["extra"] = 1
    bad_envelope["mid"] = "not a uuid!"
    results = sync(token, [mutation(no_answers, seq=1), bad_envelope]).get_json()["results"]
    assert results[0]["errors"]["answers"] == ["«Missing data for required field.»"]
    assert results[1]["errors"]["extra"] == ["«Unknown field.»"]
    assert results[1]["errors"]["mid"] == ["«Use a UUID (letters, digits and dashes).»"]


# The sync envelope's `limit` is brought into range rather than refused (so a device cannot
# stall itself); the enrolment envelope's invite code still has bounds that are refused.


def _enrol_with_code(client, code):
    return client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": code, "device_name": "Phone"})


def test_a_bound_in_the_enrolment_envelope_is_translated_with_its_numbers(client, marked):
    response = _enrol_with_code(client, "ab")
    assert response.status_code == 422
    assert response.get_json()["errors"]["code"] == ["«Length must be between {min} and {max}.»"
                                                     .replace("{min}", "4").replace("{max}", "64")]


def test_a_bound_in_a_pushed_item_is_translated_with_its_numbers(device, sync, marked):
    token, site = device
    item = mutation(visit(site), seq=-1)
    (result,) = sync(token, [item]).get_json()["results"]
    assert result["errors"]["seq"] == ["«Must be greater than or equal to {min} and less than or equal to {max}.»"
                                       .replace("{min}", "0").replace("{max}", "9007199254740991")]


def test_without_a_translation_the_words_are_marshmallows_own(client):
    response = _enrol_with_code(client, "ab")
    assert response.get_json()["errors"]["code"] == ["Length must be between 4 and 64."]
