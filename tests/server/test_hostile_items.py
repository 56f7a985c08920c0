"""Whatever one mutation holds, it is judged alone: its own `rejected`, the rest of its batch applied.

Each case is pushed between two good visits, on SQLite and (TEST_DATABASE_URL) PostgreSQL,
with `no_server_errors` watching: no input may reach the server's error handler.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from server.extensions import db
from server.models import Answer, MutationLog, Site, Submission
from sync import cursor as cursors
from sync.protocol import MAX_DATA_DEPTH, MAX_PULL_LIMIT, MAX_SAFE_INTEGER
from tests.conftest import mutation, recently, street_answers, visit

# Any hash will do for an item refused for what it holds: that check comes before the hash's.
SOME_HASH = {"hash of": "something else"}


@pytest.fixture
def rep(make_area, make_site, publish_forms, enrol):
    """A street rep's device in an area with one site, the seed's forms published today."""
    area = make_area()
    site = make_site(area)
    versions = publish_forms()
    token, body = enrol(area)
    return SimpleNamespace(area=area, site=site, token=token, versions=versions, device_id=body["device_id"])


def _count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def among_good(sync, rep, bad) -> dict:
    """Push `bad` between two good visits: both good ones are applied; return `bad`'s result."""
    good = [mutation(visit(rep.site), seq=1), mutation(visit(rep.site), seq=3)]
    response = sync(rep.token, [good[0], bad, good[1]])
    assert response.status_code == 200, response.get_json()
    first, result, last = response.get_json()["results"]
    assert (first["status"], last["status"]) == ("applied", "applied"), (first, last)
    stored = set(db.session.execute(select(Submission.id)).scalars())
    assert {g["data"]["id"] for g in good} <= stored
    return result


def refused(result: dict, code: str, field: str | None = None) -> dict:
    """Assert `result` is a rejection with `code` (naming `field`) and a message a person can read."""
    assert result["status"] == "rejected" and result["code"] == code, result
    assert result["message"] and isinstance(result["message"], str)
    if field is not None:
        assert field in result["errors"], result["errors"]
    return result


# -- text -----------------------------------------------------------------------------------


def test_nul_in_visit_notes_is_invalid_text_and_the_rest_applies(rep, sync, no_server_errors):
    data = visit(rep.site) | {"notes": "Gate\x00locked"}
    result = among_good(sync, rep, mutation(data, seq=2, hash_of=SOME_HASH))
    refused(result, "invalid_text", "notes")
    assert db.session.get(Submission, data["id"]) is None


def test_nul_in_answer_note_is_invalid_text_and_the_rest_applies(rep, sync, no_server_errors):
    data = visit(rep.site, answers=street_answers(litter={"grade": "C", "note": "Bins\x00 overflowing"}))
    result = among_good(sync, rep, mutation(data, seq=2, hash_of=SOME_HASH))
    refused(result, "invalid_text", "answers.litter.note")


def test_nul_in_a_new_sites_name_is_invalid_text_and_the_rest_applies(rep, sync, no_server_errors):
    data = visit(None) | {"new_site": {"name": "Alley\x00 behind the chippy"}}
    result = among_good(sync, rep, mutation(data, seq=2, hash_of=SOME_HASH))
    refused(result, "invalid_text", "new_site.name")
    assert _count(Site) == 1


@pytest.mark.parametrize("patch", [{"name": "Canal\x00Street"}, {"notes": "\x00"}])
def test_nul_in_a_site_update_is_invalid_text_and_the_rest_applies(rep, sync, no_server_errors, patch):
    bad = mutation({"id": rep.site.id, "base_version": 1, "patch": patch}, kind="site.update", seq=2, hash_of=SOME_HASH)
    refused(among_good(sync, rep, bad), "invalid_text", f"patch.{next(iter(patch))}")
    db.session.refresh(rep.site)
    assert rep.site.version == 1 and rep.site.name == "Canal Street"


def test_lone_surrogate_in_a_note_is_invalid_text_and_the_rest_applies(rep, sync, no_server_errors):
    # Python's json writes it as "\ud800", which orjson will not read: the body is read again.
    data = visit(rep.site) | {"notes": "broken \ud800 symbol"}
    refused(among_good(sync, rep, mutation(data, seq=2, hash_of=SOME_HASH)), "invalid_text", "notes")


@pytest.mark.parametrize("char", ["\x01", "\x07", "\x1b", "\x7f", "\x85", "\x0b"])
def test_control_characters_in_text_are_invalid_text(rep, sync, no_server_errors, char):
    data = visit(rep.site, answers=street_answers(graffiti={"grade": "D", "note": f"tags{char}"}))
    refused(among_good(sync, rep, mutation(data, seq=2, hash_of=SOME_HASH)), "invalid_text", "answers.graffiti.note")


def test_tab_and_line_breaks_in_text_are_kept(rep, sync, no_server_errors):
    note = "Two lines\r\nand a\ttab\nand more"
    data = visit(rep.site, answers=street_answers(litter={"grade": "C", "note": note}))
    result = among_good(sync, rep, mutation(data, seq=2))
    assert result["status"] == "applied"
    assert db.session.get(Answer, (data["id"], "litter")).note == note


def test_a_bad_key_is_invalid_text_and_is_not_echoed(rep, sync, no_server_errors):
    answers = street_answers() | {"lit\x00ter": {"grade": "A"}}
    result = refused(among_good(sync, rep, mutation(visit(rep.site, answers=answers), seq=2, hash_of=SOME_HASH)),
                     "invalid_text")
    assert list(result["errors"]) == ["answers.lit\ufffdter"]
    row = db.session.get(MutationLog, result["mid"])
    assert row.status == "rejected" and "\x00" not in json.dumps(row.result)


# -- dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize("observed_at", ["0001-01-01T00:00+05:00", "9999-12-31T23:00-05:00",
                                         "1999-12-31T12:00:00+00:00", "2101-01-01T00:00:00+00:00"])
def test_visit_dated_outside_the_years_is_refused_and_the_rest_applies(rep, sync, no_server_errors, observed_at):
    data = visit(rep.site, observed_at=observed_at)
    refused(among_good(sync, rep, mutation(data, seq=2)), "validation_failed", "observed_at")


def _at(delta: timedelta, offset_hours=0) -> str:
    return (datetime.now(timezone.utc) + delta).astimezone(timezone(timedelta(hours=offset_hours))).isoformat()


@pytest.mark.parametrize("observed_at", [_at(timedelta(hours=25)), _at(timedelta(hours=26), -5),
                                         "2031-06-01T10:00:00+00:00"])
def test_visit_dated_more_than_a_day_ahead_is_observed_at_out_of_range(rep, sync, no_server_errors, observed_at):
    result = among_good(sync, rep, mutation(visit(rep.site, observed_at=observed_at), seq=2))
    refused(result, "observed_at_out_of_range", "observed_at")
    assert "more than a day in the future" in result["message"]


def test_visit_dated_less_than_a_day_ahead_is_kept(rep, sync, no_server_errors):
    result = among_good(sync, rep, mutation(visit(rep.site, observed_at=_at(timedelta(hours=23), 9)), seq=2))
    assert result["status"] == "applied"


def test_visit_dated_long_before_its_form_version_is_observed_at_out_of_range(rep, sync, no_server_errors):
    published = rep.versions["street"].published_at
    too_early = (published - timedelta(days=61)).isoformat()
    result = among_good(sync, rep, mutation(visit(rep.site, observed_at=too_early), seq=2))
    refused(result, "observed_at_out_of_range", "observed_at")
    in_time = (published - timedelta(days=59)).isoformat()
    assert among_good(sync, rep, mutation(visit(rep.site, observed_at=in_time), seq=2))["status"] == "applied"


@pytest.mark.parametrize("value", ["0001-01-01T00:00+05:00", "9999-12-31T23:00-05:00", "1999-01-01T10:00:00Z"])
def test_datetime_answer_outside_the_years_is_refused_naming_the_line(make_area, make_site, publish_forms, enrol,
                                                                      sync, no_server_errors, value):
    area = make_area()
    desk = make_site(area, "Town hall front desk")
    publish_forms()
    token, _ = enrol(area, role="mystery_shopper")
    answers = {"scenario": {"value": "Report graffiti"}, "channel": {"value": "phone"},
               "contacted_at": {"value": value}, "treated_well": {"value": "yes"},
               "what_happened": {"value": "Answered quickly."}}
    good = {"scenario": {"value": "Report graffiti"}, "channel": {"value": "phone"},
            "contacted_at": {"value": recently()}, "treated_well": {"value": "yes"},
            "what_happened": {"value": "Answered quickly."}}
    results = sync(token, [mutation(visit(desk, form_id="mystery_shop", answers=answers)),
                           mutation(visit(desk, form_id="mystery_shop", answers=good))]).get_json()["results"]
    refused(results[0], "validation_failed", "answers.contacted_at")
    assert results[1]["status"] == "applied"


# -- numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seq", [2**53, 2**63, 2**64, 2**70, -(2**63)])
def test_seq_beyond_the_safe_integers_is_out_of_range_and_the_rest_applies(rep, sync, no_server_errors, seq):
    bad = mutation(visit(rep.site), seq=seq)
    refused(among_good(sync, rep, bad), "out_of_range", "seq")
    assert db.session.get(Submission, bad["data"]["id"]) is None


def test_seq_at_the_largest_safe_integer_is_applied(rep, sync, no_server_errors):
    item = mutation(visit(rep.site), seq=MAX_SAFE_INTEGER)
    assert among_good(sync, rep, item)["status"] == "applied"
    assert db.session.get(MutationLog, item["mid"]).seq == MAX_SAFE_INTEGER


@pytest.mark.parametrize("accuracy", [2**64, 2**70, float("nan"), float("inf"), -float("inf")])
def test_huge_or_infinite_number_in_data_is_out_of_range(rep, sync, no_server_errors, accuracy):
    data = visit(rep.site) | {"location": {"lat": 53.5, "lng": -2.6, "accuracy_m": accuracy}}
    refused(among_good(sync, rep, mutation(data, seq=2, hash_of=SOME_HASH)), "out_of_range", "location.accuracy_m")


def test_form_version_beyond_the_safe_integers_is_out_of_range(rep, sync, no_server_errors):
    data = visit(rep.site) | {"form": {"id": "street", "version": 2**63}}
    refused(among_good(sync, rep, mutation(data, seq=2)), "out_of_range", "form.version")
    data = visit(rep.site) | {"form": {"id": "street", "version": MAX_SAFE_INTEGER}}
    refused(among_good(sync, rep, mutation(data, seq=2)), "form_version_unknown")


def test_base_version_beyond_the_safe_integers_is_out_of_range(rep, sync, no_server_errors):
    for base, code in ((2**53, "out_of_range"), (2**80, "out_of_range"), (MAX_SAFE_INTEGER, "conflict")):
        item = mutation({"id": rep.site.id, "base_version": base, "patch": {"notes": "Narrow"}}, kind="site.update", seq=2)
        result = among_good(sync, rep, item)
        assert code in (result["status"], result.get("code")), result


# -- nesting ------------------------------------------------------------------------------------


def nested(depth: int):
    """A list `depth` levels deep (the outermost list counts as one)."""
    value: list = []
    for _level in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [MAX_DATA_DEPTH, 256, 600])
def test_data_nested_deeper_than_the_limit_is_too_deep_and_the_rest_applies(rep, sync, no_server_errors, depth):
    # `data` is the first level, so a value `depth` deep inside it nests `depth + 1`.
    data = visit(rep.site) | {"extra": nested(depth)}
    result = refused(among_good(sync, rep, mutation(data, seq=2, hash_of=SOME_HASH)), "too_deep")
    assert list(result["errors"])[0].startswith("extra")
    assert db.session.get(MutationLog, result["mid"]).data is None


def test_data_nested_to_the_limit_is_judged_as_any_other(rep, sync, no_server_errors):
    data = visit(rep.site) | {"extra": nested(MAX_DATA_DEPTH - 1)}
    result = refused(among_good(sync, rep, mutation(data, seq=2)), "validation_failed", "extra")
    assert db.session.get(MutationLog, result["mid"]).data["extra"] == nested(MAX_DATA_DEPTH - 1)


def test_a_body_nested_beyond_any_parser_is_a_400_envelope(rep, client, no_server_errors):
    depth = 200_000
    body = '{"protocol": 1, "mutations": [' + "[" * depth + "]" * depth + "]}"
    response = client.post("/api/sync/v1", data=body, content_type="application/json",
                           headers={"Authorization": f"Bearer {rep.token}"})
    assert response.status_code == 400 and response.get_json()["code"] == "bad_json"


# -- what the forms allow -------------------------------------------------------------------------


def test_checklist_with_no_answer_is_refused_and_the_rest_applies(rep, sync, no_server_errors):
    for answers in ({}, {"our_part_listen": None}):
        data = visit(rep.site, form_id="checklist", answers=answers)
        refused(among_good(sync, rep, mutation(data, seq=2)), "validation_failed", "answers")


def test_unknown_key_inside_an_answer_is_refused_not_stored(rep, sync, no_server_errors):
    data = visit(rep.site, answers=street_answers(litter={"grade": "C", "colour": "green"}))
    result = refused(among_good(sync, rep, mutation(data, seq=2)), "validation_failed", "answers.litter")
    assert "grade" in result["errors"]["answers.litter"][0]
    checklist = visit(rep.site, form_id="checklist", answers={"our_part_listen": {"value": "kept", "grade": "A"}})
    refused(among_good(sync, rep, mutation(checklist, seq=2)), "validation_failed", "answers.our_part_listen")
    assert db.session.get(Submission, data["id"]) is None


def test_optional_line_sent_as_null_is_applied_without_a_row(rep, sync, no_server_errors):
    data = visit(rep.site, form_id="checklist", answers={"our_part_listen": {"value": "kept"}, "your_part_recycle": None})
    assert among_good(sync, rep, mutation(data, seq=2))["status"] == "applied"
    lines = set(db.session.execute(select(Answer.line_key).where(Answer.submission_id == data["id"])).scalars())
    assert lines == {"our_part_listen"}


def test_visit_id_longer_than_a_uuid_is_refused(rep, sync, no_server_errors):
    data = visit(rep.site, submission_id="v" * 40)
    refused(among_good(sync, rep, mutation(data, seq=2)), "validation_failed", "id")


# -- the item's own id --------------------------------------------------------------------------


@pytest.mark.parametrize("mid", ["m" * 100, "bad\x00mid-0000", "\ud800" * 10, 12345678, None])
def test_an_item_with_an_unusable_mid_is_refused_without_echoing_or_logging_it(rep, sync, no_server_errors, mid):
    bad = mutation(visit(rep.site) | {"notes": "x\x00"}, seq=2, hash_of=SOME_HASH) | {"mid": mid}
    result = among_good(sync, rep, bad)
    assert result["status"] == "rejected" and result["mid"] is None
    assert _count(MutationLog) == 2


def test_refused_hostile_item_sent_again_is_a_duplicate_of_its_refusal(rep, sync, no_server_errors):
    bad = mutation(visit(rep.site) | {"notes": "\x00"}, seq=2, hash_of=SOME_HASH)
    refused(among_good(sync, rep, bad), "invalid_text")
    (again,) = sync(rep.token, [bad]).get_json()["results"]
    assert again["status"] == "duplicate" and again["first"]["code"] == "invalid_text"


# -- the pull's cursor and limit -------------------------------------------------------------------


def _forged(payload) -> str:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


FORGED = [
    "", "x", "!!!", "A" * 10_000, "\x00", "\ud800", _forged('{"e": "ep_x", "s": 1e400, "h": "abc"}'),
    _forged({"e": "ep_x", "s": 2**70, "h": "abc"}), _forged({"e": "ep_x", "s": -1, "h": "abc"}),
    _forged({"e": "ep_x", "s": "5", "h": "abc"}), _forged({"e": "ep_x", "s": True, "h": "abc"}),
    _forged({"e": 1, "s": 5, "h": ["abc"]}), _forged([1, 2, 3]), _forged("[" * 300 + "]" * 300), _forged("null"),
    5, 1e300, 2**70, True, [], {"e": "ep"}, ["cursor"],
]


@pytest.mark.parametrize("cursor", FORGED)
def test_forged_or_damaged_cursor_resets(rep, sync, no_server_errors, cursor):
    response = sync(rep.token, cursor=cursor)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["reset"] is True and body["changes"]
    assert cursors.decode(body["cursor"]).seq > 0


def test_cursor_past_every_seq_the_server_issued_resets(rep, sync, no_server_errors):
    body = sync(rep.token).get_json()
    issued = cursors.decode(body["cursor"])
    beyond = cursors.encode(cursors.Cursor(issued.epoch, issued.seq + 1000, issued.scope))
    assert sync(rep.token, cursor=body["cursor"]).get_json()["reset"] is False
    again = sync(rep.token, cursor=beyond).get_json()
    assert again["reset"] is True and again["changes"]


@pytest.mark.parametrize("limit, most", [(0, 1), (-5, 1), (1, 1), (10**6, MAX_PULL_LIMIT), (2**70, MAX_PULL_LIMIT),
                                         (1e300, MAX_PULL_LIMIT), (float("nan"), 500), ("3", 500), (None, 500)])
def test_a_limit_out_of_range_is_brought_into_it(make_area, enrol, sync, no_server_errors, limit, most):
    from server import operations

    area = make_area()
    operations.create_sites(area, [{"name": f"Street {n}"} for n in range(1200)])
    db.session.commit()
    token, _ = enrol(area)
    response = sync(token, limit=limit)
    assert response.status_code == 200, response.get_json()
    changes = response.get_json()["changes"]
    assert len(changes) == min(most, 1201)  # the area and its 1200 sites: nothing else to see yet
    assert response.get_json()["has_more"] is (most < 1201)


# -- enrolment ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Ann's\x00phone", "bell\x07", "\ud800phone", "\x1b[31m"])
def test_enrolment_with_a_control_character_in_the_device_name_is_a_400_with_a_clear_code(
        client, make_area, no_server_errors, name):
    from server import operations
    from server.models import Device

    area = make_area()
    code = operations.issue_invite(area, "street_rep")
    db.session.commit()
    response = client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": code, "device_name": name})
    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == "text_unreadable" and "device_name" in body["errors"]
    assert _count(Device) == 0
    # The code is still good: the volunteer types the name again.
    ok = client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": code, "device_name": "Ann's\tphone"})
    assert ok.status_code == 201


def test_enrolment_with_a_nul_in_the_code_is_a_400(client, make_area, no_server_errors):
    response = client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": "AAAA-\x00BBB-CCCC"})
    assert response.status_code == 400 and response.get_json()["code"] == "text_unreadable"


def test_uuid_mids_of_the_good_items_are_echoed(rep, sync):
    item = mutation(visit(rep.site), mid=str(uuid.uuid4()))
    (result,) = sync(rep.token, [item]).get_json()["results"]
    assert result["mid"] == item["mid"]


# -- corrections (submission.correct) ------------------------------------------------------


@pytest.mark.parametrize("supersedes", [None, 17, "", "x" * 37, "../../etc", ["a", "b"], {"id": "x"}])
def test_a_correction_naming_no_visit_it_could_supersede_fails_validation_alone(rep, sync, no_server_errors, supersedes):
    data = visit(rep.site) | {"supersedes": supersedes}
    refused(among_good(sync, rep, mutation(data, kind="submission.correct", seq=2)), "validation_failed", "supersedes")
    assert db.session.get(Submission, data["id"]) is None


def test_nul_in_a_corrections_supersedes_is_invalid_text_and_the_rest_applies(rep, sync, no_server_errors):
    data = visit(rep.site) | {"supersedes": "0000\x00-0000"}
    refused(among_good(sync, rep, mutation(data, kind="submission.correct", seq=2, hash_of=SOME_HASH)),
            "invalid_text", "supersedes")


def test_a_correction_of_a_visit_that_is_not_there_is_refused_alone(rep, sync, no_server_errors):
    data = visit(rep.site) | {"supersedes": str(uuid.uuid4())}
    refused(among_good(sync, rep, mutation(data, kind="submission.correct", seq=2)), "correction_target_unknown",
            "supersedes")


def test_a_correction_that_supersedes_itself_is_refused_alone(rep, sync, no_server_errors):
    data = visit(rep.site)
    data["supersedes"] = data["id"]
    refused(among_good(sync, rep, mutation(data, kind="submission.correct", seq=2)), "correction_target_unknown")
