"""The pure protocol rules in sync/: canonical JSON, hashes, backoff, cursors, merges, forms."""

from __future__ import annotations

import hashlib
import random

import pytest

from server.seed_content import AGREEMENT, STREET_FORM, checklist_form, mystery_shop_form
from sync import cursor as cursors
from sync.merge import action_transition_error, merge_patch
from sync.protocol import backoff_delay, canonical_json, is_final, payload_hash
from sync.validation import FormValidator, definition_errors, parse_datetime

PHOTO = "a" * 64

# -- canonical JSON and payload hashes ----------------------------------------------------------


def test_canonical_json_sorts_keys_at_every_depth_without_spaces():
    assert canonical_json({"b": 1, "a": {"d": [1, 2], "c": None}}) == b'{"a":{"c":null,"d":[1,2]},"b":1}'


def test_canonical_json_keeps_non_ascii_as_utf8_bytes():
    assert canonical_json({"note": "Café – ñ 🚲"}) == '{"note":"Café – ñ 🚲"}'.encode("utf-8")
    assert b"\\u" not in canonical_json({"note": "é"})


def test_payload_hash_is_sha256_of_the_canonical_bytes():
    data = {"z": "é", "a": 1}
    assert payload_hash(data) == "sha256:" + hashlib.sha256('{"a":1,"z":"é"}'.encode()).hexdigest()


def test_payload_hash_ignores_key_order_but_not_values():
    assert payload_hash({"a": 1, "b": 2}) == payload_hash({"b": 2, "a": 1})
    assert payload_hash({"a": 1, "b": 2}) != payload_hash({"a": 1, "b": 3})


# -- backoff and final statuses -------------------------------------------------------------------


def test_first_retry_waits_one_second():
    assert {backoff_delay(1, random.Random(seed)) for seed in range(20)} == {1.0}


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8, 9, 12, 30, 1000])
def test_backoff_stays_between_one_second_and_five_minutes(attempt):
    rng = random.Random(attempt)
    delays = [backoff_delay(attempt, rng) for _ in range(200)]
    assert all(1.0 <= d <= min(300.0, 2 ** (attempt - 1)) for d in delays)


@pytest.mark.parametrize("attempt", [1025, 5000, 10**6])
def test_backoff_after_a_thousand_failures_still_waits_at_most_five_minutes(attempt):
    # Found by bench/faults.py: attempt 1025 raised OverflowError (2 ** 1024 as a float) and
    # ended every sync of a device whose item kept failing.
    assert 1.0 <= backoff_delay(attempt, random.Random(attempt)) <= 300.0


def test_backoff_is_jittered_so_devices_do_not_retry_in_step():
    rng = random.Random(3)
    delays = [backoff_delay(10, rng) for _ in range(50)]
    assert len(set(delays)) > 40 and max(delays) > 200


def test_only_applied_duplicate_conflict_and_rejected_are_final():
    assert all(is_final(s) for s in ("applied", "duplicate", "conflict", "rejected"))
    assert not any(is_final(s) for s in ("deferred", "pending", "", "error"))


# -- cursors ------------------------------------------------------------------------------------


def test_cursor_round_trips():
    cursor = cursors.Cursor(epoch="ep_1", seq=42, scope="abc")
    assert cursors.decode(cursors.encode(cursor)) == cursor


def test_cursor_of_same_epoch_and_scope_continues_after_its_seq():
    text = cursors.encode(cursors.Cursor("ep_1", 42, "abc"))
    assert cursors.start_point(text, epoch="ep_1", scope="abc", kept_from=1) == cursors.Start(42, False)


def test_no_cursor_starts_from_the_beginning_without_reset():
    assert cursors.start_point(None, epoch="ep_1", scope="abc", kept_from=1) == cursors.Start(0, False)


def test_cursor_from_another_epoch_resets():
    text = cursors.encode(cursors.Cursor("ep_old", 42, "abc"))
    assert cursors.start_point(text, epoch="ep_new", scope="abc", kept_from=1) == cursors.Start(0, True)


def test_cursor_for_another_scope_resets():
    text = cursors.encode(cursors.Cursor("ep_1", 42, cursors.scope_fingerprint(["a1"], ["street_rep"])))
    scope = cursors.scope_fingerprint(["a1", "a2"], ["street_rep"])
    assert cursors.start_point(text, epoch="ep_1", scope=scope, kept_from=1) == cursors.Start(0, True)


@pytest.mark.parametrize("garbage", ["", "not a cursor", "e30", "eyJlIjoxfQ", "!!!"])
def test_garbage_cursor_resets(garbage):
    assert cursors.start_point(garbage, epoch="ep_1", scope="abc", kept_from=1) == cursors.Start(0, True)


def test_cursor_older_than_the_kept_history_resets():
    text = cursors.encode(cursors.Cursor("ep_1", 10, "abc"))
    assert cursors.start_point(text, epoch="ep_1", scope="abc", kept_from=11) == cursors.Start(10, False)
    assert cursors.start_point(text, epoch="ep_1", scope="abc", kept_from=12) == cursors.Start(0, True)


def test_negative_seq_cursor_is_invalid():
    with pytest.raises(cursors.CursorInvalid):
        cursors.decode(cursors.encode(cursors.Cursor("ep_1", -1, "abc")))


def test_scope_fingerprint_ignores_order():
    assert cursors.scope_fingerprint(["b", "a"], ["partner", "street_rep"]) == cursors.scope_fingerprint(
        ["a", "b"], ["street_rep", "partner"])


# -- field-level merge --------------------------------------------------------------------------


def test_patch_on_current_version_is_applied():
    result = merge_patch({"name": "Canal St", "notes": ""}, 3, {"name": 2}, 3, {"notes": "Bins by the gate"})
    assert result.outcome == "applied" and result.version == 4
    assert result.values == {"name": "Canal St", "notes": "Bins by the gate"}
    assert result.field_versions == {"name": 2, "notes": 4} and result.changed == ("notes",)


def test_patch_on_stale_base_version_merges_when_other_fields_changed():
    result = merge_patch({"name": "Canal Street", "notes": ""}, 5, {"name": 5}, 3, {"notes": "Gate"})
    assert result.outcome == "merged" and result.version == 6
    assert result.values == {"name": "Canal Street", "notes": "Gate"}


def test_patch_on_stale_base_version_conflicts_when_the_same_field_changed():
    values = {"name": "Canal Street", "notes": "Someone else's"}
    result = merge_patch(values, 5, {"notes": 4}, 3, {"notes": "Mine"})
    assert result.outcome == "conflict" and result.changed == ("notes",)
    assert result.values == values and result.version == 5


def test_patch_on_base_newer_than_server_conflicts():
    result = merge_patch({"notes": ""}, 2, {}, 7, {"notes": "From the future"})
    assert result.outcome == "conflict" and result.version == 2


def test_patch_that_changes_nothing_bumps_no_field_version():
    result = merge_patch({"notes": "same"}, 1, {"notes": 1}, 1, {"notes": "same"})
    assert result.outcome == "applied" and result.changed == () and result.field_versions == {"notes": 1}


# -- action transitions -------------------------------------------------------------------------


@pytest.mark.parametrize(("current", "new"), [("open", "acknowledged"), ("acknowledged", "in_progress"),
                                              ("in_progress", "done"), ("done", "in_progress"),
                                              ("not_doing", "open"), ("open", "open")])
def test_allowed_action_transitions(current, new):
    assert action_transition_error(current, new, None) is None


@pytest.mark.parametrize(("current", "new"), [("open", "done"), ("done", "open"), ("in_progress", "acknowledged")])
def test_action_cannot_skip_or_go_back(current, new):
    assert action_transition_error(current, new, None) == "transition_not_allowed"


def test_not_doing_needs_a_public_reason():
    assert action_transition_error("open", "not_doing", "  ") == "reason_required"
    assert action_transition_error("open", "not_doing", "Private land; passed to the landlord") is None


def test_unknown_action_status_is_refused():
    assert action_transition_error("open", "finished", None) == "unknown_status"


# -- forms and answers ----------------------------------------------------------------------------

STREET_KEYS = [line["key"] for section in STREET_FORM["sections"] for line in section["lines"]]


def street_answers(**overrides):
    return {key: {"grade": "B"} for key in STREET_KEYS} | overrides


def mystery_answers(**overrides):
    return {
        "scenario": {"value": "Report fly-tipping"},
        "channel": {"value": "phone"},
        "contacted_at": {"value": "2026-11-20T09:30:00+00:00"},
        "treated_well": {"value": "yes"},
        "what_happened": {"value": "They logged it and gave me a reference."},
    } | overrides


@pytest.mark.parametrize("definition", [STREET_FORM, checklist_form(AGREEMENT), mystery_shop_form(AGREEMENT)],
                         ids=["street", "checklist", "mystery_shop"])
def test_seed_forms_are_valid_definitions(definition):
    assert definition_errors(definition) == {}


def test_street_form_with_an_optional_grade_line_is_refused():
    broken = {**STREET_FORM, "sections": [{"theme": "x", "lines": [
        {**STREET_FORM["sections"][0]["lines"][0], "optional": True}]}]}
    assert "sections.0.lines.0" in definition_errors(broken)


def test_complete_street_visit_is_valid():
    assert FormValidator(STREET_FORM).validate(street_answers()) == {}


def test_street_visit_missing_a_line_is_refused():
    answers = street_answers()
    del answers["noise"]
    assert set(FormValidator(STREET_FORM).validate(answers)) == {"answers.noise"}


def test_street_visit_with_a_bad_grade_is_refused():
    assert set(FormValidator(STREET_FORM).validate(street_answers(noise={"grade": "E"}))) == {"answers.noise"}
    assert "answers.noise" in FormValidator(STREET_FORM).validate(street_answers(noise={"grade": "a"}))


def test_answer_to_a_line_the_form_does_not_have_is_refused():
    errors = FormValidator(STREET_FORM).validate(street_answers(parking={"grade": "A"}))
    assert set(errors) == {"answers.parking"}


def test_answers_must_be_an_object():
    assert FormValidator(STREET_FORM).validate(["noise"]) == {"answers": ["Kerbside could not read the answers. Update the app, then fill in the visit again."]}


def test_optional_checklist_lines_may_be_left_out_but_not_all_of_them():
    validator = FormValidator(checklist_form(AGREEMENT))
    # A checklist with nothing answered says nothing: at least one line is answered.
    assert validator.validate({}) == {"answers": ["Answer at least one line."]}
    first = next(iter(validator.lines))
    assert validator.validate({first: None}) == {"answers": ["Answer at least one line."]}
    assert validator.validate({first: {"value": "partly"}}) == {}
    assert first in "".join(validator.validate({first: {"value": "mostly"}}))


def test_mystery_shop_needs_its_required_lines_but_not_the_optional_ones():
    validator = FormValidator(mystery_shop_form(AGREEMENT))
    assert validator.validate(mystery_answers()) == {}
    answers = mystery_answers()
    del answers["what_happened"]
    assert set(validator.validate(answers)) == {"answers.what_happened"}
    assert set(validator.validate(mystery_answers(channel={"value": "carrier pigeon"}))) == {"answers.channel"}


def test_datetime_answer_needs_a_time_zone_offset():
    validator = FormValidator(mystery_shop_form(AGREEMENT))
    errors = validator.validate(mystery_answers(contacted_at={"value": "2026-11-20T09:30:00"}))
    assert set(errors) == {"answers.contacted_at"}
    assert validator.validate(mystery_answers(answered_at={"value": "2026-11-20T10:00:00-05:00"})) == {}
    assert parse_datetime("2026-11-20T09:30:00Z") is not None and parse_datetime(20261120) is None


def test_photos_are_a_short_list_of_sha256_hashes():
    validator = FormValidator(STREET_FORM)
    assert validator.validate(street_answers(noise={"grade": "C", "photos": [PHOTO]})) == {}
    for bad in (["not-a-hash"], PHOTO, [PHOTO.upper()], [PHOTO] * 11):
        assert set(validator.validate(street_answers(noise={"grade": "C", "photos": bad}))) == {"answers.noise"}
    answers = street_answers(noise={"grade": "C", "photos": [PHOTO]}, litter={"grade": "D", "photos": ["b" * 64]})
    assert validator.photos(answers) == {PHOTO, "b" * 64}


def test_note_is_text_of_at_most_2000_characters():
    validator = FormValidator(STREET_FORM)
    assert validator.validate(street_answers(noise={"grade": "B", "note": "é" * 2000})) == {}
    assert set(validator.validate(street_answers(noise={"grade": "B", "note": "x" * 2001}))) == {"answers.noise"}


def test_sync_package_imports_no_server_flask_or_sqlalchemy():
    import subprocess
    import sys

    code = ("import sys, sync.client, sync.export, sync.transport, sync.cursor, sync.merge, sync.validation; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'flask', 'sqlalchemy', 'server'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
