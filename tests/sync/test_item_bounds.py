"""What one item may hold (sync.validation, sync.cursor): pure rules, no server."""

from __future__ import annotations

import base64
import json

import pytest

from server.seed_content import AGREEMENT, STREET_FORM, checklist_form, mystery_shop_form
from sync import cursor as cursors
from sync.protocol import MAX_CURSOR_CHARS, MAX_DATA_DEPTH, MAX_SAFE_INTEGER
from sync.validation import ContentProblem, FormValidator, content_problem, parse_datetime, readable_text


def nested(depth: int):
    value: list = []
    for _level in range(depth - 1):
        value = [value]
    return value


# -- content_problem ------------------------------------------------------------------------------


def test_an_ordinary_visit_has_no_content_problem():
    visit = {"id": "v-1234567", "form": {"id": "street", "version": 3}, "observed_at": "2026-11-20T14:05:00+00:00",
             "answers": {"litter": {"grade": "C", "note": "Two lines\r\nand\ta tab", "photos": ["ab" * 32]}},
             "location": {"lat": 53.54, "lng": -2.63, "accuracy_m": 12}, "notes": "Café – ñ 🚲", "flag": True,
             "nothing": None, "big": MAX_SAFE_INTEGER, "small": -MAX_SAFE_INTEGER, "float": 1e15}
    assert content_problem(visit) is None


@pytest.mark.parametrize("depth, problem", [(MAX_DATA_DEPTH, None), (MAX_DATA_DEPTH + 1, "too_deep"), (5000, "too_deep")])
def test_nesting_is_counted_from_the_value_itself(depth, problem):
    found = content_problem(nested(depth))
    assert (found.code if found else None) == problem


def test_a_too_deep_part_is_found_where_it_is():
    assert content_problem({"answers": {"litter": nested(MAX_DATA_DEPTH)}}) == ContentProblem(
        "too_deep", "answers.litter" + ".0" * (MAX_DATA_DEPTH - 2))


@pytest.mark.parametrize("text", ["\x00", "a\x00b", "\x01", "\x08", "\x0b", "\x0c", "\x0e", "\x1f", "\x7f", "\x85",
                                  "\x9f", "\ud800", "x\udfff"])
def test_control_characters_and_lone_surrogates_are_invalid_text(text):
    assert content_problem({"notes": text}) == ContentProblem("invalid_text", "notes")
    assert not readable_text(text)


@pytest.mark.parametrize("text", ["\t", "\n", "\r\n", "\u00a0", "\u200b", "🚲", "\U0010fffd", ""])
def test_tab_line_breaks_and_other_characters_are_text(text):
    assert content_problem({"notes": text}) is None and readable_text(text)


def test_a_bad_key_is_named_without_the_bad_characters():
    assert content_problem({"answers": {"lit\x00ter": {}}}) == ContentProblem("invalid_text", "answers.lit\ufffdter")
    assert content_problem({"\ud800": 1}).path == "\ufffd"


@pytest.mark.parametrize("number", [MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 2**63, 2**70, 1e300, -1e300,
                                    float("nan"), float("inf"), -float("inf")])
def test_numbers_beyond_the_safe_integers_or_not_finite_are_out_of_range(number):
    assert content_problem({"location": {"accuracy_m": number}}) == ContentProblem("out_of_range", "location.accuracy_m")
    assert content_problem([1, [2, number]]) == ContentProblem("out_of_range", "1.1")


def test_a_prefix_names_the_place_from_the_envelope():
    assert content_problem({"seq": 2**63}, "") == ContentProblem("out_of_range", "seq")
    assert content_problem(2**63, "seq") == ContentProblem("out_of_range", "seq")


def test_a_deep_value_is_judged_without_recursion():
    # Deeper than Python's recursion limit: a recursive walk would fail here.
    assert content_problem(nested(100_000)).code == "too_deep"


# -- dates ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["0001-01-01T00:00+05:00", "9999-12-31T23:00-05:00", "1999-12-31T23:59:59+00:00",
                                  "2101-01-01T00:00:00+00:00", "2026-11-20T14:05:00", "2026-02-30T10:00:00+00:00"])
def test_dates_outside_the_years_or_without_an_offset_are_not_dates(text):
    assert parse_datetime(text) is None


@pytest.mark.parametrize("text", ["2000-01-01T00:00:00+14:00", "2100-12-31T23:59:59-12:00", "2026-11-20T14:05:00Z"])
def test_dates_at_the_ends_of_the_years_can_be_put_into_utc(text):
    from datetime import timezone

    assert parse_datetime(text).astimezone(timezone.utc).year in (1999, 2000, 2026, 2100, 2101)


def test_a_datetime_answer_outside_the_years_names_its_line():
    validator = FormValidator(mystery_shop_form(AGREEMENT))
    answers = {"scenario": {"value": "Report graffiti"}, "channel": {"value": "phone"},
               "contacted_at": {"value": "0001-01-01T00:00+05:00"}, "treated_well": {"value": "yes"},
               "what_happened": {"value": "Answered quickly."}}
    assert set(validator.validate(answers)) == {"answers.contacted_at"}


# -- answers ------------------------------------------------------------------------------------------


def _street(**overrides):
    answers = {line["key"]: {"grade": "B"} for section in STREET_FORM["sections"] for line in section["lines"]}
    return answers | overrides


def test_a_grade_answer_holds_only_grade_note_and_photos():
    validator = FormValidator(STREET_FORM)
    assert validator.validate(_street(litter={"grade": "C", "note": "Bins", "photos": []})) == {}
    for extra in ({"value": "kept"}, {"colour": "green"}, {"grade": "C", "": 1}):
        assert set(validator.validate(_street(litter={"grade": "C", **extra}))) == {"answers.litter"}, extra


def test_other_answers_hold_only_value_note_and_photos():
    validator = FormValidator(checklist_form(AGREEMENT))
    first = next(iter(validator.lines))
    assert validator.validate({first: {"value": "kept", "note": "Yes", "photos": []}}) == {}
    assert set(validator.validate({first: {"value": "kept", "grade": "A"}})) == {f"answers.{first}"}


# -- cursors ---------------------------------------------------------------------------------------------


def _text(payload) -> str:
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize("text", [
    _text('{"e": "ep_1", "s": 1e400, "h": "abc"}'), _text({"e": "ep_1", "s": 2**70, "h": "abc"}),
    _text({"e": "ep_1", "s": MAX_SAFE_INTEGER + 1, "h": "abc"}), _text({"e": "ep_1", "s": 4.0, "h": "abc"}),
    _text({"e": "ep_1", "s": True, "h": "abc"}), _text({"e": "ep_1", "s": "4", "h": "abc"}),
    _text({"e": 1, "s": 4, "h": "abc"}), _text({"e": "ep_1", "s": 4, "h": None}), _text([1, 2]),
    _text("[" * 200 + "]" * 200), "\ud800", "é", "A" * (MAX_CURSOR_CHARS + 1), 5, None, ["ep_1"],
])
def test_a_forged_cursor_is_invalid_whatever_it_holds(text):
    with pytest.raises(cursors.CursorInvalid):
        cursors.decode(text)
    if text is not None:
        assert cursors.start_point(text, epoch="ep_1", scope="abc", kept_from=1) == cursors.Start(0, True)


def test_a_cursor_past_what_the_server_issued_resets():
    text = cursors.encode(cursors.Cursor("ep_1", 50, "abc"))
    assert cursors.start_point(text, epoch="ep_1", scope="abc", kept_from=1, issued_up_to=50) == cursors.Start(50, False)
    assert cursors.start_point(text, epoch="ep_1", scope="abc", kept_from=1, issued_up_to=49) == cursors.Start(0, True)


def test_the_largest_safe_seq_is_still_a_cursor():
    text = cursors.encode(cursors.Cursor("ep_1", MAX_SAFE_INTEGER, "abc"))
    assert cursors.decode(text).seq == MAX_SAFE_INTEGER
