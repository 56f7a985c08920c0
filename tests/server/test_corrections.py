"""A volunteer corrects a flagged visit: `submission.correct` judged like every mutation, and
the corrected visit left out of every figure and export (only the latest counts).

Runs on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from server import operations, reporting
from server.coordinator import exports
from server.extensions import db
from server.models import AuditEntry, FormVersion, Person, Role, Submission
from server.seed_content import AGREEMENT
from tests.conftest import is_postgres, mutation, street_answers, visit


def _results(response):
    assert response.status_code == 200, response.get_json()
    return response.get_json()["results"]


def correction(site, supersedes, **kwargs):
    """`submission.correct` data: a whole new visit naming the visit it supersedes."""
    return {**visit(site, **kwargs), "supersedes": supersedes}


def _correct(data, **kwargs):
    return mutation(data, kind="submission.correct", **kwargs)


@pytest.fixture
def flagged(make_area, make_site, publish_forms, enrol, sync):
    """A street rep's visit graded litter D, flagged by the coordinator; returns what the tests need."""

    def make(area=None, reason="Litter was graded at the wrong site", **visit_kwargs):
        area = area or make_area()
        site = make_site(area)
        if not db.session.execute(select(FormVersion)).first():
            publish_forms(published_at=datetime.now(timezone.utc) - timedelta(days=30))
        token, body = enrol(area)
        data = visit(site, answers=street_answers("B", litter={"grade": "D"}), **visit_kwargs)
        first = sync(token, [mutation(data)]).get_json()
        assert first["results"][0]["status"] == "applied"
        coordinator = operations.create_person("Coordinator", roles=[("coordinator", area)])
        operations.review_submission(db.session.get(Submission, data["id"]), "flagged", coordinator, reason)
        db.session.commit()
        return {"area": area, "site": site, "token": token, "data": data, "cursor": first["cursor"],
                "coordinator": coordinator, "person_id": body["person"]["id"]}

    return make


# -- applied ----------------------------------------------------------------------------------


def test_flagged_visit_reaches_its_volunteer_with_the_answers_to_correct(flagged, sync):
    f = flagged()
    body = sync(f["token"], cursor=f["cursor"]).get_json()
    (mine,) = [c["data"] for c in body["changes"] if c["collection"] == "my_submissions"]
    assert mine["review_status"] == "flagged" and mine["review_reason"] == "Litter was graded at the wrong site"
    assert mine["answers"]["litter"] == {"grade": "D"}
    assert mine["observed_at_stated"] == f["data"]["observed_at"]
    assert mine["superseded_by"] is None and mine["supersedes"] is None


def test_correction_is_a_new_pending_visit_and_the_flagged_one_is_kept_superseded(flagged, sync):
    f = flagged()
    fixed = correction(f["site"], f["data"]["id"], answers=street_answers("B", litter={"grade": "A"}))
    (result,) = _results(sync(f["token"], [_correct(fixed)], cursor=f["cursor"]))
    assert result["status"] == "applied", result
    new, old = db.session.get(Submission, fixed["id"]), db.session.get(Submission, f["data"]["id"])
    db.session.refresh(old)
    assert (new.review_status, new.supersedes_id, new.superseded_by_id) == ("pending", old.id, None)
    assert (old.review_status, old.superseded_by_id, old.review_reason) == ("flagged", new.id,
                                                                           "Litter was graded at the wrong site")
    entry = db.session.execute(select(AuditEntry).where(AuditEntry.action == "submission.correct")).scalar_one()
    assert (entry.record_id, entry.details, entry.person_id) == (new.id, {"supersedes": old.id}, f["person_id"])


def test_after_a_correction_the_flagged_visit_leaves_the_volunteers_list(flagged, sync):
    f = flagged()
    mid_cursor = sync(f["token"], cursor=f["cursor"]).get_json()["cursor"]
    fixed = correction(f["site"], f["data"]["id"])
    body = sync(f["token"], [_correct(fixed)], cursor=mid_cursor).get_json()
    mine = {c["id"]: c["data"] for c in body["changes"] if c["collection"] == "my_submissions"}
    assert mine[f["data"]["id"]]["superseded_by"] == fixed["id"]
    assert "answers" not in mine[f["data"]["id"]]  # nothing left to correct
    assert mine[fixed["id"]]["supersedes"] == f["data"]["id"]
    assert mine[fixed["id"]]["review_status"] == "pending"


def test_correction_sent_again_is_a_duplicate(flagged, sync):
    f = flagged()
    item = _correct(correction(f["site"], f["data"]["id"]))
    assert _results(sync(f["token"], [item]))[0]["status"] == "applied"
    (again,) = _results(sync(f["token"], [item]))
    assert again["status"] == "duplicate" and again["first"]["status"] == "applied"
    # The same correction under a new mid (restored from an export) is not stored twice either.
    (renamed,) = _results(sync(f["token"], [_correct(item["data"])]))
    assert renamed["status"] == "duplicate"
    assert db.session.execute(select(Submission.id).where(Submission.supersedes_id == f["data"]["id"])).scalars().all() \
        == [item["data"]["id"]]


def test_correction_on_a_published_successor_of_a_retired_version_is_applied(flagged, sync):
    f = flagged()
    street = db.session.execute(select(FormVersion).where(FormVersion.form_id == "street")).scalar_one()
    successor = operations.publish_form_version(operations.draft_form_version("street", street.definition))
    operations.retire_form_version(street)
    db.session.commit()
    fixed = correction(f["site"], f["data"]["id"], form_version=successor.version)
    (result,) = _results(sync(f["token"], [_correct(fixed)]))
    assert result["status"] == "applied", result


# -- refused -----------------------------------------------------------------------------------


def test_a_visit_corrected_already_is_a_conflict(flagged, sync):
    f = flagged()
    assert _results(sync(f["token"], [_correct(correction(f["site"], f["data"]["id"]))]))[0]["status"] == "applied"
    (second,) = _results(sync(f["token"], [_correct(correction(f["site"], f["data"]["id"]))]))
    assert (second["status"], second["code"]) == ("conflict", "visit_already_corrected")
    assert second["server_value"]["superseded_by"] is not None


def test_two_corrections_of_one_visit_in_one_batch_apply_only_the_first(flagged, sync):
    f = flagged()
    one, two = correction(f["site"], f["data"]["id"]), correction(f["site"], f["data"]["id"])
    results = _results(sync(f["token"], [_correct(one), _correct(two, seq=2)]))
    assert [r["status"] for r in results] == ["applied", "conflict"]
    assert results[1]["server_value"]["superseded_by"] == one["id"]
    assert db.session.get(Submission, two["id"]) is None


def test_correcting_a_visit_that_is_not_flagged_is_refused(flagged, sync):
    f = flagged()
    operations.review_submission(db.session.get(Submission, f["data"]["id"]), "accepted", f["coordinator"])
    db.session.commit()
    (result,) = _results(sync(f["token"], [_correct(correction(f["site"], f["data"]["id"]))]))
    assert (result["status"], result["code"]) == ("rejected", "correction_not_flagged")
    assert result["errors"] == {"supersedes": ["Not flagged."]}


def test_correcting_someone_elses_visit_is_refused_as_unknown(flagged, enrol, sync):
    f = flagged()
    other_token, _ = enrol(f["area"], name="Someone else")
    (theirs,) = _results(sync(other_token, [_correct(correction(f["site"], f["data"]["id"]))]))
    (unknown,) = _results(sync(other_token, [_correct(correction(f["site"], str(uuid.uuid4())))]))
    # The same answer either way: another person's visit is not told apart from one that does not exist.
    assert (theirs["status"], theirs["code"]) == (unknown["status"], unknown["code"]) == ("rejected", "correction_target_unknown")
    assert db.session.get(Submission, f["data"]["id"]).superseded_by_id is None


def test_correction_with_another_form_is_refused(flagged, sync):
    f = flagged()
    checklist = correction(f["site"], f["data"]["id"], form_id="checklist",
                           answers={"our_part_listen": {"value": "partly"}, "your_part_recycle": {"value": "kept"}})
    (result,) = _results(sync(f["token"], [_correct(checklist)]))
    assert (result["status"], result["code"]) == ("rejected", "correction_form_differs")


def test_correction_in_another_area_is_refused(make_area, make_site, flagged, sync):
    area, elsewhere = make_area(), make_area()
    f = flagged(area)
    db.session.add(Role(person_id=f["person_id"], role="street_rep", area_id=elsewhere.id))
    db.session.commit()
    (result,) = _results(sync(f["token"], [_correct(correction(make_site(elsewhere, "Far Street"), f["data"]["id"]))]))
    assert (result["status"], result["code"]) == ("rejected", "correction_form_differs")


def test_correction_without_supersedes_fails_validation_and_a_bad_visit_is_refused_as_any(flagged, sync):
    f = flagged()
    bare = visit(f["site"])
    bad = correction(f["site"], f["data"]["id"], answers=street_answers("B", litter={"grade": "E"}))
    results = _results(sync(f["token"], [_correct(bare), _correct(bad, seq=2)]))
    assert [(r["status"], r.get("code")) for r in results] == [("rejected", "validation_failed")] * 2, results
    assert "supersedes" in results[0]["errors"]
    assert "litter" in json.dumps(results[1]["errors"])


# -- only the latest counts --------------------------------------------------------------------


YEAR = datetime.now(timezone.utc).year - 1


@pytest.fixture
def corrected(make_area, make_site, publish_forms, enrol, sync):
    """A visit graded litter D, flagged, corrected to litter A (dated a day earlier, the volunteer fixed
    the date too), and then - by a second look - accepted by the coordinator after all.

    Accepting it makes only the "superseded" rule keep it out of the figures: each test
    below would count it without that rule (its D, its later date, its visit).
    """
    publish_forms(published_at=datetime(YEAR, 1, 1, tzinfo=timezone.utc))
    area = make_area("corrected", "Corrected")
    site = make_site(area, "Mill Lane")
    token, _ = enrol(area, name="Ann")
    shopper, _ = enrol(area, role="mystery_shopper", name="Sam")
    operations.publish_agreement_version(operations.draft_agreement_version("deal", area, AGREEMENT))
    coordinator = operations.create_person("Coordinator", roles=[("coordinator", area)])
    original = visit(site, observed_at=datetime(YEAR, 3, 10, 10, tzinfo=timezone.utc).isoformat(),
                     answers=street_answers("B", litter={"grade": "D"}))
    shop = visit(site, form_id="mystery_shop", observed_at=datetime(YEAR, 3, 10, 9, tzinfo=timezone.utc).isoformat(),
                 answers={"scenario": {"value": "Report graffiti"}, "channel": {"value": "phone"},
                          "contacted_at": {"value": f"{YEAR}-03-10T09:00:00+00:00"},
                          "answered_at": {"value": f"{YEAR}-03-10T09:30:00+00:00"},
                          "std_graffiti_5_days": {"value": "not_kept"}, "treated_well": {"value": "partly"},
                          "what_happened": {"value": "Sent to another desk."}})
    assert _results(sync(token, [mutation(original)]))[0]["status"] == "applied"
    assert _results(sync(shopper, [mutation(shop)]))[0]["status"] == "applied"
    for data in (original, shop):
        operations.review_submission(db.session.get(Submission, data["id"]), "flagged", coordinator, "Check it")
    db.session.commit()
    fixed = correction(site, original["id"], observed_at=datetime(YEAR, 3, 9, 10, tzinfo=timezone.utc).isoformat(),
                       answers=street_answers("B", litter={"grade": "A"}))
    fixed_shop = {**shop, "id": str(uuid.uuid4()), "supersedes": shop["id"],
                  "answers": {**shop["answers"], "std_graffiti_5_days": {"value": "kept"},
                              "answered_at": {"value": f"{YEAR}-03-10T09:01:00+00:00"}}}
    assert _results(sync(token, [_correct(fixed)]))[0]["status"] == "applied"
    assert _results(sync(shopper, [_correct(fixed_shop)]))[0]["status"] == "applied"
    for data in (original, shop):
        operations.review_submission(db.session.get(Submission, data["id"]), "accepted", coordinator)
    db.session.commit()
    period = reporting.Period(datetime(YEAR, 1, 1, tzinfo=timezone.utc), datetime(YEAR + 1, 1, 1, tzinfo=timezone.utc))
    return {"area": area, "site": site, "original": original, "fixed": fixed, "shop": shop, "fixed_shop": fixed_shop,
            "period": period}


def test_predicate_is_what_leaves_the_superseded_visit_out(corrected):
    """Negative control: the superseded visit is accepted now, so the flagged rule alone would count it."""
    old = db.session.get(Submission, corrected["original"]["id"])
    assert old.review_status == "accepted" and old.superseded_by_id == corrected["fixed"]["id"]
    counted = set(db.session.execute(select(Submission.id).where(reporting.counted_visits())).scalars())
    assert corrected["original"]["id"] not in counted and corrected["fixed"]["id"] in counted


def test_grade_shares_count_only_the_correction(corrected):
    shares = reporting.grade_shares_by_theme(db.session, corrected["area"].id, corrected["period"])
    lines = len(street_answers())
    assert sum(theme["total"] for theme in shares.values()) == lines
    assert sum(theme["D"] for theme in shares.values()) == 0


def test_trends_count_only_the_correction(corrected):
    _by_theme, by_line = reporting.trend_tables(db.session, corrected["area"].id, corrected["period"])
    assert by_line.counts(f"{YEAR}-03", "litter") == (1, 0)


def test_priorities_and_map_use_the_correction_as_the_latest_visit(corrected):
    area_id = corrected["area"].id
    assert reporting.priority_list(db.session, area_id, corrected["period"]) == []
    (site,) = reporting.latest_worst_grades(db.session, area_id)
    assert (site.submission_id, site.worst) == (corrected["fixed"]["id"], "B")
    assert reporting.latest_line_grades(db.session, area_id)[corrected["site"].id]["litter"] == "A"


def test_coverage_counts_the_corrected_visit_once(corrected):
    found = reporting.coverage(db.session, corrected["area"].id, corrected["period"])
    assert [(site.id, n) for site, n in found.monitored] == [(corrected["site"].id, 1)]
    assert dict(found.volunteers)["Ann"] == 1


def test_mystery_shop_comparison_counts_only_the_corrected_shop(corrected):
    summary = reporting.mystery_shop_summary(db.session, corrected["area"].id, corrected["period"])
    assert summary.shops == 1
    (graffiti,) = [s for s in summary.standards if s["key"] == "graffiti_5_days"]
    assert (graffiti["kept"], graffiti["not_kept"]) == (1, 0)
    (phone,) = summary.channels
    assert phone["median_minutes"] == 1
    assert sum(graded for graded, _bad in summary.street_by_theme.values()) == len(street_answers())


def test_public_page_counts_only_the_correction(client, flagged, sync):
    f = flagged()  # litter D, flagged; then corrected to A and the original accepted after all
    fixed = correction(f["site"], f["data"]["id"], answers=street_answers("B", litter={"grade": "A"}))
    assert _results(sync(f["token"], [_correct(fixed)]))[0]["status"] == "applied"
    operations.review_submission(db.session.get(Submission, f["data"]["id"]), "accepted", f["coordinator"])
    db.session.commit()
    page = client.get(f"/area/{f['area'].slug}").get_data(as_text=True)
    assert page.count('<span class="grade grade-d">D</span> 0%') == len(page.split('class="theme-strip"')) - 1 > 0


def test_exports_leave_the_superseded_visit_out(corrected):
    text = "".join(exports.submissions_csv_chunks(db.session, corrected["area"].id))
    ids = {row["submission_id"] for row in csv.DictReader(io.StringIO(text))}
    assert ids == {corrected["fixed"]["id"]}
    geojson = json.loads("".join(exports.sites_geojson_chunks(db.session, corrected["area"].id)))
    (feature,) = geojson["features"]
    assert feature["properties"]["grades"]["litter"] == "A"


def test_coordinator_sees_both_visits_linked_both_ways(client, flagged, sync, app):
    from tests.conftest import sign_in

    f = flagged()
    fixed = correction(f["site"], f["data"]["id"])
    assert _results(sync(f["token"], [_correct(fixed)]))[0]["status"] == "applied"
    operations.create_person("Cora", email="cora@example.org", password="correct horse battery",
                             roles=[("coordinator", f["area"])])
    db.session.commit()
    sign_in(client, "cora@example.org")
    base = f"/coordinator/{f['area'].slug}/submissions"
    original = client.get(f"{base}/{f['data']['id']}").get_data(as_text=True)
    assert 'id="corrected-by"' in original and f'{base}/{fixed["id"]}"' in original
    newer = client.get(f"{base}/{fixed['id']}").get_data(as_text=True)
    assert 'id="corrects"' in newer and f'{base}/{f["data"]["id"]}"' in newer
    assert 'id="corrected-by"' not in newer


@pytest.mark.postgres
@pytest.mark.skipif(not is_postgres(), reason="needs PostgreSQL (TEST_DATABASE_URL): SQLite runs pushes one at a time")
def test_two_phones_correcting_one_visit_at_once_store_one_correction(app, client, flagged, monkeypatch):
    """The same volunteer's two phones correct one visit at the same moment: one applies, the other is the conflict."""
    from server import push

    f = flagged()
    person = db.session.get(Person, f["person_id"])
    code = operations.issue_invite(f["area"], "street_rep", person=person)
    db.session.commit()
    second = client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": code, "device_name": "Second phone"})
    tokens = [f["token"], second.get_json()["token"]]
    # Each push waits, after judging its correction, until the other has judged its own too (or
    # 2 s pass: with the flagged visit's row locked, the second cannot judge until the first commits).
    judged = threading.Barrier(2, timeout=2)
    real_check = push.CHECKERS["submission.correct"]

    def check_then_wait(ctx, items):
        real_check(ctx, items)
        if items:
            try:
                judged.wait()
            except threading.BrokenBarrierError:
                pass

    monkeypatch.setitem(push.CHECKERS, "submission.correct", check_then_wait)
    answers = []

    def correct(token):
        with app.app_context():
            response = app.test_client().post("/api/sync/v1", headers={"Authorization": f"Bearer {token}"}, json={
                "protocol": 1, "cursor": None, "limit": 10,
                "mutations": [_correct(correction(f["site"], f["data"]["id"]))]})
            answers.append((response.status_code, response.get_json()["results"][0]))

    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(correct, token) for token in tokens]:
            future.result(timeout=30)
    assert sorted((status, result["status"]) for status, result in answers) == [(200, "applied"), (200, "conflict")]
    db.session.expire_all()
    assert len(db.session.execute(select(Submission.id).where(Submission.supersedes_id == f["data"]["id"])).all()) == 1
