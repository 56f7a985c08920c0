"""The push half of POST /api/sync/v1: exactly once, each item on its own."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from server import operations
from server.extensions import db
from server.models import Action, Answer, MutationAudit, MutationLog, Role, Site, Submission
from tests.conftest import mutation, street_answers, visit


def _results(response):
    assert response.status_code == 200, response.get_json()
    return response.get_json()["results"]


def _count(model):
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def test_push_applies_a_visit_with_its_grades_in_sql(make_area, make_site, publish_forms, enrol, sync):
    area = make_area()
    site = make_site(area)
    publish_forms()
    token, _body = enrol(area)
    item = mutation(visit(site, answers=street_answers("B", litter={"grade": "D", "note": "Bins overflowing"})))
    (result,) = _results(sync(token, [item]))
    assert result["status"] == "applied" and result["mid"] == item["mid"] and result["change_seq"] > 0
    grades = dict(db.session.execute(select(Answer.line_key, Answer.grade)).all())
    assert len(grades) == 12 and grades["litter"] == "D" and grades["groups_loitering"] == "B"
    litter = db.session.get(Answer, (item["data"]["id"], "litter"))
    assert litter.theme == "Green and Clean" and litter.note == "Bins overflowing" and litter.site_id == site.id


def test_push_same_mid_twice_is_duplicate(make_area, make_site, publish_forms, enrol, sync):
    area = make_area()
    site = make_site(area)
    publish_forms()
    token, _body = enrol(area)
    item = mutation(visit(site))
    (first,) = _results(sync(token, [item]))
    (second,) = _results(sync(token, [item]))
    assert second["status"] == "duplicate"
    assert second["change_seq"] == first["change_seq"]
    assert _count(Submission) == 1


def test_same_mid_with_another_hash_is_rejected_and_kept_for_audit(make_area, make_site, publish_forms, enrol, sync):
    area = make_area()
    site = make_site(area)
    publish_forms()
    token, _body = enrol(area)
    item = mutation(visit(site))
    _results(sync(token, [item]))
    altered = visit(site, submission_id=item["data"]["id"], answers=street_answers("D"))
    (result,) = _results(sync(token, [mutation(altered, mid=item["mid"])]))
    assert result["status"] == "rejected" and result["code"] == "payload_hash_mismatch"
    audit = db.session.execute(select(MutationAudit)).scalar_one()
    assert audit.mid == item["mid"] and audit.data["answers"]["litter"]["grade"] == "D"
    assert _count(Submission) == 1


def test_bad_grade_is_rejected_naming_the_line(make_area, make_site, publish_forms, enrol, sync):
    area = make_area()
    site = make_site(area)
    publish_forms()
    token, _body = enrol(area)
    (result,) = _results(sync(token, [mutation(visit(site, answers=street_answers(litter={"grade": "E"})))]))
    assert result["status"] == "rejected" and result["code"] == "validation_failed"
    assert "answers.litter" in result["errors"]
    assert "A, B, C or D" in result["errors"]["answers.litter"][0]
    assert _count(Submission) == 0


def test_missing_line_is_rejected_because_street_lines_are_required(make_area, make_site, publish_forms, enrol, sync):
    area = make_area()
    site = make_site(area)
    publish_forms()
    token, _body = enrol(area)
    answers = street_answers()
    del answers["graffiti"]
    (result,) = _results(sync(token, [mutation(visit(site, answers=answers))]))
    assert result["status"] == "rejected" and "answers.graffiti" in result["errors"]


def test_one_bad_item_never_blocks_the_others(make_area, make_site, publish_forms, enrol, sync):
    area = make_area()
    site = make_site(area)
    publish_forms()
    token, _body = enrol(area)
    good1 = mutation(visit(site), seq=1)
    bad = mutation(visit(site, answers=street_answers(litter={"grade": "Z"})), seq=2)
    broken_envelope = {"mid": str(uuid.uuid4()), "type": "submission.create"}
    good2 = mutation(visit(site), seq=3)
    results = _results(sync(token, [good1, bad, broken_envelope, good2]))
    assert [r["status"] for r in results] == ["applied", "rejected", "rejected", "applied"]
    assert results[2]["code"] == "validation_failed" and "payload_hash" in results[2]["errors"]
    assert _count(Submission) == 2


def test_tampered_data_fails_the_payload_hash_check(make_area, make_site, publish_forms, enrol, sync):
    area = make_area()
    site = make_site(area)
    publish_forms()
    token, _body = enrol(area)
    data = visit(site)
    item = mutation(data, hash_of={**data, "notes": "something else"})
    (result,) = _results(sync(token, [item]))
    assert result["status"] == "rejected" and result["code"] == "payload_hash_invalid"


def test_unknown_form_version_is_rejected(make_area, make_site, publish_forms, enrol, sync):
    area = make_area()
    site = make_site(area)
    publish_forms()
    token, _body = enrol(area)
    (result,) = _results(sync(token, [mutation(visit(site, form_version=9))]))
    assert result["status"] == "rejected" and result["code"] == "form_version_unknown"


def test_retired_form_version_is_still_accepted_and_validated_against_itself(
    make_area, make_site, publish_forms, enrol, sync
):
    area = make_area()
    site = make_site(area)
    versions = publish_forms()
    token, _body = enrol(area)
    # Version 2 drops a line; a rep offline on version 1 still answers the old line.
    definition = dict(versions["street"].definition)
    definition["sections"] = [dict(s, lines=[l for l in s["lines"] if l["key"] != "paths_and_roads"])
                              for s in definition["sections"]]
    operations.publish_form_version(operations.draft_form_version("street", definition))
    operations.retire_form_version(versions["street"])
    db.session.commit()
    old, new = visit(site, form_version=1), visit(site, form_version=2)
    del new["answers"]["paths_and_roads"]
    results = _results(sync(token, [mutation(old), mutation(new)]))
    assert [r["status"] for r in results] == ["applied", "applied"]
    versions_stored = set(db.session.execute(select(Submission.form_version)).scalars())
    assert versions_stored == {1, 2}
    # The old line is not part of version 2: sending it there is an error.
    wrong = visit(site, form_version=2)
    (result,) = _results(sync(token, [mutation(wrong)]))
    assert result["status"] == "rejected" and "answers.paths_and_roads" in result["errors"]


def test_draft_form_version_is_unknown_to_devices(make_area, make_site, publish_forms, enrol, sync):
    area = make_area()
    site = make_site(area)
    versions = publish_forms()
    operations.draft_form_version("street", versions["street"].definition)
    db.session.commit()
    token, _body = enrol(area)
    (result,) = _results(sync(token, [mutation(visit(site, form_version=2))]))
    assert result["code"] == "form_version_unknown"


def test_site_of_another_area_is_refused(make_area, make_site, publish_forms, enrol, sync):
    mine, theirs = make_area(), make_area()
    their_site = make_site(theirs)
    publish_forms()
    token, _body = enrol(mine)
    (result,) = _results(sync(token, [mutation(visit(their_site))]))
    assert result["status"] == "rejected" and result["code"] == "site_unknown"


def test_street_rep_cannot_file_a_mystery_shop(make_area, make_site, publish_forms, enrol, sync):
    area = make_area()
    site = make_site(area)
    publish_forms()
    token, _body = enrol(area, role="street_rep")
    data = visit(site, form_id="mystery_shop", answers={
        "scenario": {"value": "Report graffiti"}, "channel": {"value": "phone"},
        "contacted_at": {"value": "2026-11-20T09:00:00+00:00"}, "treated_well": {"value": "yes"},
        "what_happened": {"value": "Answered quickly."},
    })
    (result,) = _results(sync(token, [mutation(data)]))
    assert result["code"] == "role_not_allowed"


def test_mystery_shop_and_checklist_are_applied_for_a_mystery_shopper(make_area, make_site, publish_forms, enrol, sync):
    area = make_area()
    site = make_site(area, name="Town hall front desk")
    publish_forms()
    token, _body = enrol(area, role="mystery_shopper")
    shop = visit(site, form_id="mystery_shop", answers={
        "scenario": {"value": "Report graffiti"}, "channel": {"value": "in_person"},
        "contacted_at": {"value": "2026-11-20T09:00:00+01:00"},
        "answered_at": {"value": "2026-11-20T09:04:00+01:00"},
        "std_graffiti_5_days": {"value": "not_kept", "note": "Still there after a week"},
        "treated_well": {"value": "partly"}, "what_happened": {"value": "Sent to another desk."},
    })
    checklist = visit(site, form_id="checklist", answers={"our_part_listen": {"value": "partly"},
                                                          "your_part_recycle": {"value": "kept"}})
    results = _results(sync(token, [mutation(shop), mutation(checklist)]))
    assert [r["status"] for r in results] == ["applied", "applied"]
    kinds = set(db.session.execute(select(Submission.kind)).scalars())
    assert kinds == {"mystery_shop", "checklist"}


def test_datetime_without_offset_is_rejected(make_area, make_site, publish_forms, enrol, sync):
    area = make_area()
    site = make_site(area)
    publish_forms()
    token, _body = enrol(area)
    data = visit(site, observed_at="2026-11-20T14:05:00")
    (result,) = _results(sync(token, [mutation(data)]))
    assert result["status"] == "rejected" and "observed_at" in result["errors"]


def test_observed_at_is_kept_as_stated_and_received_at_is_the_servers(make_area, make_site, publish_forms, enrol, sync):
    area = make_area()
    site = make_site(area)
    publish_forms()
    token, _body = enrol(area)
    # A phone with a clock a week slow, in another time zone: its word is kept as it was given.
    stated = (datetime.now(timezone.utc) - timedelta(days=7)).replace(hour=8, minute=0, second=0, microsecond=0)
    data = visit(site, observed_at=stated.replace(tzinfo=timezone(timedelta(hours=-5))).isoformat())
    _results(sync(token, [mutation(data)]))
    stored = db.session.get(Submission, data["id"])
    assert stored.observed_offset == "-05:00"
    assert stored.observed_at.isoformat() == stated.replace(hour=13).isoformat()
    assert stored.received_at.year >= 2026
    assert stored.received_at - stored.observed_at > timedelta(days=6)


def test_new_site_proposed_in_the_field_is_created_once(make_area, publish_forms, enrol, sync):
    area = make_area()
    publish_forms()
    token, _body = enrol(area)
    data = visit(None)
    data["new_site"] = {"name": "Alley behind the chippy", "lat": 53.5, "lng": -2.6}
    item = mutation(data)
    _results(sync(token, [item]))
    _results(sync(token, [item]))
    sites = db.session.execute(select(Site)).scalars().all()
    assert [(s.name, s.status) for s in sites] == [("Alley behind the chippy", "proposed")]
    assert db.session.get(Submission, data["id"]).site_id == sites[0].id


def test_same_mid_twice_in_one_batch_is_stored_once(make_area, make_site, publish_forms, enrol, sync):
    area = make_area()
    site = make_site(area)
    publish_forms()
    token, _body = enrol(area)
    item = mutation(visit(site))
    results = _results(sync(token, [item, item]))
    assert [r["status"] for r in results] == ["applied", "duplicate"]
    assert _count(Submission) == 1


def test_same_visit_under_a_new_mid_is_not_stored_twice(make_area, make_site, publish_forms, enrol, sync):
    """A visit re-sent from an export gets a new mid; its id still identifies it."""
    area = make_area()
    site = make_site(area)
    publish_forms()
    token, _body = enrol(area)
    data = visit(site)
    _results(sync(token, [mutation(data)]))
    (again,) = _results(sync(token, [mutation(data)]))
    assert again["status"] == "duplicate"
    other = dict(data, answers=street_answers("D"))
    (clash,) = _results(sync(token, [mutation(other)]))
    assert clash["status"] == "rejected" and clash["code"] == "submission_exists"
    assert _count(Submission) == 1


def test_rejected_item_sent_again_is_a_duplicate_of_its_rejection(make_area, make_site, publish_forms, enrol, sync):
    area = make_area()
    site = make_site(area)
    publish_forms()
    token, _body = enrol(area)
    item = mutation(visit(site, answers=street_answers(litter={"grade": "Q"})))
    _results(sync(token, [item]))
    (again,) = _results(sync(token, [item]))
    assert again["status"] == "duplicate" and again["first"]["status"] == "rejected"
    assert again["first"]["code"] == "validation_failed"
    assert db.session.get(MutationLog, item["mid"]).data["answers"]["litter"]["grade"] == "Q"


# -- photos ---------------------------------------------------------------------------------

JPEG = b"\xff\xd8\xff\xe0" + b"kerbside-test-photo" * 10


def test_missing_blob_is_deferred_then_applied(client, make_area, make_site, publish_forms, enrol, sync):
    import hashlib

    area = make_area()
    site = make_site(area)
    publish_forms()
    token, _body = enrol(area)
    sha = hashlib.sha256(JPEG).hexdigest()
    item = mutation(visit(site, answers=street_answers(fly_tipping={"grade": "D", "photos": [sha]})))
    (first,) = _results(sync(token, [item]))
    assert first["status"] == "deferred" and first["code"] == "attachment_missing" and first["retry_after_s"] > 0
    assert first["missing"] == [sha]
    assert db.session.get(MutationLog, item["mid"]) is None  # judged afresh next time
    upload = client.put(f"/api/sync/v1/blobs/{sha}", data=JPEG, headers={"Authorization": f"Bearer {token}"})
    assert upload.status_code == 201
    (second,) = _results(sync(token, [item]))
    assert second["status"] == "applied"
    assert db.session.get(Answer, (item["data"]["id"], "fly_tipping")).photos == [sha]


# -- editable records --------------------------------------------------------------------------


def _site_update(site_id, base_version, patch):
    return mutation({"id": site_id, "base_version": base_version, "patch": patch}, kind="site.update")


def _coordinating(enrol, area, name="Coordinator"):
    """A device whose person also coordinates the area: their site edits apply at once (a street
    rep's wait for review: tests/server/test_site_moderation.py), so the merge rules show here."""
    token, body = enrol(area, name=name)
    db.session.add(Role(person_id=body["person"]["id"], area_id=area.id, role="coordinator"))
    db.session.commit()
    return token, body


def test_site_update_on_current_version_applies(make_area, make_site, enrol, sync):
    area = make_area()
    site = make_site(area)
    token, _body = _coordinating(enrol, area)
    (result,) = _results(sync(token, [_site_update(site.id, 1, {"name": "Canal Street (north end)"})]))
    assert result["status"] == "applied"
    db.session.refresh(site)
    assert site.name == "Canal Street (north end)" and site.version == 2


def test_patch_on_stale_base_version_merges_when_other_fields_changed(make_area, make_site, enrol, sync):
    area = make_area()
    site = make_site(area)
    token_a, _ = _coordinating(enrol, area, name="A")
    token_b, _ = _coordinating(enrol, area, name="B")
    _results(sync(token_a, [_site_update(site.id, 1, {"name": "Canal Street (north)"})]))
    (result,) = _results(sync(token_b, [_site_update(site.id, 1, {"notes": "Gate locked after 6pm"})]))
    assert result["status"] == "applied"
    db.session.refresh(site)
    assert (site.name, site.notes, site.version) == ("Canal Street (north)", "Gate locked after 6pm", 3)


def test_patch_on_stale_base_version_conflicts_when_the_same_field_changed(make_area, make_site, enrol, sync):
    area = make_area()
    site = make_site(area)
    token_a, _ = _coordinating(enrol, area, name="A")
    token_b, _ = _coordinating(enrol, area, name="B")
    _results(sync(token_a, [_site_update(site.id, 1, {"name": "Canal Street (north)"})]))
    (result,) = _results(sync(token_b, [_site_update(site.id, 1, {"name": "Canal St"})]))
    assert result["status"] == "conflict"
    assert result["entity_version"] == 2 and result["server_value"]["name"] == "Canal Street (north)"
    db.session.refresh(site)
    assert site.name == "Canal Street (north)" and site.version == 2


def test_duplicate_site_update_does_not_apply_twice(make_area, make_site, enrol, sync):
    area = make_area()
    site = make_site(area)
    token, _ = _coordinating(enrol, area)
    item = _site_update(site.id, 1, {"notes": "Narrow path"})
    _results(sync(token, [item]))
    (again,) = _results(sync(token, [item]))
    assert again["status"] == "duplicate"
    db.session.refresh(site)
    assert site.version == 2


def _action(area, assigned_to="Street cleansing"):
    action = operations.raise_action(area, "Clear the fly-tipping", assigned_to=assigned_to)
    db.session.commit()
    return action


def _action_update(action_id, base_version, patch):
    return mutation({"id": action_id, "base_version": base_version, "patch": patch}, kind="action.update")


def _partner_token(area, enrol, organisation="Street cleansing"):
    token, body = enrol(area)
    person = db.session.get(operations.Person, body["person"]["id"])
    person.organisation = organisation
    person.roles.append(operations.Role(role="partner", area_id=area.id))
    db.session.commit()
    return token


def test_partner_moves_their_action_along_its_lifecycle(make_area, enrol, sync):
    area = make_area()
    action = _action(area)
    token = _partner_token(area, enrol)
    results = _results(sync(token, [
        _action_update(action.id, 1, {"status": "acknowledged"}),
        _action_update(action.id, 2, {"status": "in_progress"}),
        _action_update(action.id, 3, {"status": "done", "public_note": "Cleared on Tuesday."}),
    ]))
    assert [r["status"] for r in results] == ["applied", "applied", "applied"]
    db.session.refresh(action)
    assert (action.status, action.public_note, action.version) == ("done", "Cleared on Tuesday.", 4)


def test_action_cannot_skip_to_a_status_the_lifecycle_forbids(make_area, enrol, sync):
    area = make_area()
    action = _action(area)
    token = _partner_token(area, enrol)
    (result,) = _results(sync(token, [_action_update(action.id, 1, {"status": "done"})]))
    assert result["status"] == "rejected" and result["code"] == "transition_not_allowed"


def test_not_doing_needs_a_reason(make_area, enrol, sync):
    area = make_area()
    action = _action(area)
    token = _partner_token(area, enrol)
    (result,) = _results(sync(token, [_action_update(action.id, 1, {"status": "not_doing"})]))
    assert result["code"] == "reason_required"
    (result,) = _results(sync(token, [_action_update(action.id, 1, {"status": "not_doing",
                                                                     "reason": "Private land: owner contacted."})]))
    assert result["status"] == "applied"


def test_street_rep_cannot_update_an_action(make_area, enrol, sync):
    area = make_area()
    action = _action(area)
    token, _ = enrol(area)
    (result,) = _results(sync(token, [_action_update(action.id, 1, {"status": "acknowledged"})]))
    assert result["code"] == "role_not_allowed"
    db.session.refresh(action)
    assert action.status == "open"


def test_partner_of_another_organisation_cannot_update_the_action(make_area, enrol, sync):
    area = make_area()
    action = _action(area, assigned_to="Police")
    token = _partner_token(area, enrol, organisation="Street cleansing")
    (result,) = _results(sync(token, [_action_update(action.id, 1, {"status": "acknowledged"})]))
    assert result["code"] == "role_not_allowed"
    assert db.session.get(Action, action.id).status == "open"
