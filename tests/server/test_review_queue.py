"""Review at scale: the queue's filters, accepting in bulk (ticked, or all matching with a count guard), and
moving through the queue from a visit's page."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from server import audit
from server.extensions import db
from server.models import AuditEntry, Change, ChangeCounter, Submission
from tests.conftest import mutation, sign_in, street_answers, visit

PASSWORD = "correct horse battery"
NOW = datetime.now(timezone.utc).replace(hour=10, minute=0, second=0, microsecond=0)


def _day(days_ago: int) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat()


@pytest.fixture
def queue(client, make_area, make_site, publish_forms, enrol, sync):
    """Millbrook: two sites, two reps, eight visits with known grades and dates; Eastside: one visit of its own."""
    from server import operations

    publish_forms(published_at=NOW - timedelta(days=400))
    area = make_area("millbrook", "Millbrook")
    other = make_area("eastside", "Eastside")
    canal, mill = make_site(area, "Canal Street"), make_site(area, "Mill Lane")
    east = make_site(other, "East Road")
    operations.create_person("Cora Coordinator", email="cora@example.org", password=PASSWORD,
                             roles=[("coordinator", area)])
    operations.create_person("Eli Eastside", email="eli@example.org", password=PASSWORD, roles=[("coordinator", other)])
    operations.create_person("Ada Admin", email="ada@example.org", password=PASSWORD, roles=[("admin", None)])
    db.session.commit()
    rita, rita_body = enrol(area, name="Rita Rep")
    sam, sam_body = enrol(area, name="Sam Second")
    plan = [  # (token, site, grade of every line, litter's grade, days ago)
        (rita, canal, "B", "D", 2), (rita, canal, "A", "A", 5), (rita, mill, "B", "C", 10), (rita, mill, "A", "D", 40),
        (sam, canal, "B", "B", 3), (sam, canal, "C", "C", 20), (sam, mill, "A", "D", 60), (sam, mill, "B", "B", 90),
    ]
    ids = {}
    for n, (token, site, grade, litter, days) in enumerate(plan):
        data = visit(site, observed_at=_day(days), answers=street_answers(grade, litter={"grade": litter}))
        assert sync(token, [mutation(data, seq=n + 1)]).get_json()["results"][0]["status"] == "applied"
        ids[n] = data["id"]
    east_token, _ = enrol(other, name="Otto Other")
    east_visit = visit(east, observed_at=_day(1), answers=street_answers("D"))
    assert sync(east_token, [mutation(east_visit)]).get_json()["results"][0]["status"] == "applied"
    return {"area": area, "canal": canal, "mill": mill, "ids": ids, "plan": plan, "rita": rita_body["person"]["id"],
            "sam": sam_body["person"]["id"], "rita_token": rita, "east_visit": east_visit["id"]}


def _listed(page: str) -> list[str]:
    """The visit ids the queue page lists, in order."""
    return re.findall(r'name="on_page" value="([^"]+)"', page)


def _count(page: str) -> int:
    return int(re.search(r'id="review-count"[^>]*>(\d+) visits? match', page).group(1))


def _expect(queue, keep) -> set[str]:
    return {queue["ids"][n] for n, row in enumerate(queue["plan"]) if keep(*row)}


@pytest.mark.parametrize("args, keep", [
    ({}, lambda *row: True),
    ({"site": "canal"}, lambda token, site, g, litter, days: site.name == "Canal Street"),
    ({"volunteer": "sam"}, lambda token, site, g, litter, days: token == "sam"),
    ({"grade": "D"}, lambda token, site, g, litter, days: "D" in (g, litter)),
    ({"grade": "C"}, lambda token, site, g, litter, days: "C" in (g, litter)),
    ({"from": 30}, lambda token, site, g, litter, days: days <= 30),
    ({"to": 30}, lambda token, site, g, litter, days: days >= 30),
    ({"from": 30, "to": 4}, lambda token, site, g, litter, days: 4 <= days <= 30),
    ({"form": "street"}, lambda *row: True),
    ({"form": "checklist"}, lambda *row: False),
    ({"site": "mill", "grade": "D", "volunteer": "rita"},
     lambda token, site, g, litter, days: site.name == "Mill Lane" and "D" in (g, litter) and token == "rita"),
    ({"site": "canal", "from": 4}, lambda token, site, g, litter, days: site.name == "Canal Street" and days <= 4),
])
def test_each_filter_alone_and_combined_counts_and_lists_exactly(client, queue, args, keep):
    sign_in(client, "cora@example.org")
    tokens = {"rita": queue["rita_token"]}
    query = {}
    for name, value in args.items():
        if name == "site":
            query[name] = queue[value].id
        elif name == "volunteer":
            query[name] = queue[value]
        elif name in ("from", "to"):
            query[name] = (NOW - timedelta(days=value)).date().isoformat()
        else:
            query[name] = value
    page = client.get("/coordinator/millbrook/submissions", query_string=query)
    assert page.status_code == 200
    wanted = {queue["ids"][n] for n, (token, *rest) in enumerate(queue["plan"])
              if keep("rita" if token == tokens["rita"] else "sam", *rest)}
    assert set(_listed(page.text)) == wanted
    assert _count(page.text) == len(wanted)
    assert queue["east_visit"] not in page.text


def test_status_filter_follows_reviews(client, queue):
    csrf = sign_in(client, "cora@example.org")
    first = queue["ids"][0]
    client.post(f"/coordinator/millbrook/submissions/{queue['ids'][1]}",
                data={"csrf_token": csrf, "status": "flagged", "reason": "Wrong street"})
    client.post(f"/coordinator/millbrook/submissions/{first}", data={"csrf_token": csrf, "status": "accepted"})
    assert set(_listed(client.get("/coordinator/millbrook/submissions?status=accepted").text)) == {first}
    assert set(_listed(client.get("/coordinator/millbrook/submissions?status=flagged").text)) == {queue["ids"][1]}
    assert _count(client.get("/coordinator/millbrook/submissions").text) == 6
    assert _count(client.get("/coordinator/millbrook/submissions?status=all").text) == 8


def test_paging_keeps_the_filters(client, queue, monkeypatch):
    from server.coordinator import views

    monkeypatch.setattr(views, "REVIEW_PAGE", 2)
    sign_in(client, "cora@example.org")
    canal = queue["canal"].id
    page = client.get(f"/coordinator/millbrook/submissions?site={canal}").text
    older = re.search(r'<a href="([^"]+)">Older</a>', page).group(1).replace("&amp;", "&")
    assert f"site={canal}" in older and "page=2" in older
    second = client.get(older).text
    assert len(_listed(second)) == 2 and set(_listed(page)).isdisjoint(_listed(second))
    assert _count(second) == 4


def test_accept_selected_accepts_only_ticked_visits_of_the_area(client, queue, sync):
    csrf = sign_in(client, "cora@example.org")
    ticked = [queue["ids"][0], queue["ids"][2], queue["east_visit"]]
    response = client.post("/coordinator/millbrook/submissions/accept-selected?site=" + queue["canal"].id,
                           data={"csrf_token": csrf, "visit": ticked})
    assert response.status_code == 302 and "site=" + queue["canal"].id in response.headers["Location"]
    db.session.expire_all()
    statuses = {i: db.session.get(Submission, i).review_status for i in (*queue["ids"].values(), queue["east_visit"])}
    assert statuses[queue["ids"][0]] == statuses[queue["ids"][2]] == "accepted"
    assert statuses[queue["east_visit"]] == "pending"  # another area's visit is never touched
    assert sum(1 for s in statuses.values() if s == "accepted") == 2
    assert "2 visits accepted." in client.get(response.headers["Location"]).text
    # The volunteer's phone hears of it, as after a single review.
    mine = {c["id"]: c["data"]["review_status"] for c in sync(queue["rita_token"]).get_json()["changes"]
            if c["collection"] == "my_submissions"}
    assert mine[queue["ids"][0]] == mine[queue["ids"][2]] == "accepted"


def test_select_all_on_page_accepts_every_visit_listed(client, queue):
    csrf = sign_in(client, "cora@example.org")
    page = client.get("/coordinator/millbrook/submissions?grade=C").text
    shown = _listed(page)
    response = client.post("/coordinator/millbrook/submissions/accept-selected?grade=C",
                           data={"csrf_token": csrf, "all_on_page": "1", "on_page": shown})
    assert response.status_code == 302
    db.session.expire_all()
    accepted = set(db.session.execute(select(Submission.id).where(Submission.review_status == "accepted")).scalars())
    assert accepted == set(shown) and len(shown) == 2


def test_accept_selected_needs_the_csrf_token(client, queue):
    sign_in(client, "cora@example.org")
    response = client.post("/coordinator/millbrook/submissions/accept-selected", data={"visit": [queue["ids"][0]]})
    assert response.status_code == 400
    assert db.session.get(Submission, queue["ids"][0]).review_status == "pending"


def test_accept_all_matching_confirms_the_exact_count_and_filters(client, queue):
    csrf = sign_in(client, "cora@example.org")
    mill = queue["mill"].id
    confirm = client.get(f"/coordinator/millbrook/submissions/accept-all?site={mill}&grade=D")
    assert confirm.status_code == 200
    text = confirm.text
    assert "2 visits match these filters" in text and "Mill Lane" in text and "any line graded D" in text
    assert 'name="count" value="2"' in text and 'name="csrf_token"' in text
    response = client.post(f"/coordinator/millbrook/submissions/accept-all?site={mill}&grade=D",
                           data={"csrf_token": csrf, "count": "2"})
    assert response.status_code == 302
    db.session.expire_all()
    accepted = set(db.session.execute(select(Submission.id).where(Submission.review_status == "accepted")).scalars())
    assert accepted == {queue["ids"][3], queue["ids"][6]}


def test_accept_all_matching_asks_again_when_more_arrived(client, queue, sync):
    csrf = sign_in(client, "cora@example.org")
    canal = queue["canal"].id
    assert 'name="count" value="4"' in client.get(f"/coordinator/millbrook/submissions/accept-all?site={canal}").text
    late = visit(queue["canal"], observed_at=_day(1))
    assert sync(queue["rita_token"], [mutation(late, seq=50)]).get_json()["results"][0]["status"] == "applied"
    entries_before = db.session.execute(select(func.count()).select_from(AuditEntry)).scalar()
    changes_before = db.session.execute(select(func.max(Change.seq))).scalar()
    refused = client.post(f"/coordinator/millbrook/submissions/accept-all?site={canal}",
                          data={"csrf_token": csrf, "count": "4"})
    assert refused.status_code == 409
    assert "you confirmed 4, and now 5 visits match" in refused.text and 'name="count" value="5"' in refused.text
    db.session.expire_all()
    assert db.session.execute(select(func.count()).select_from(Submission)
                              .where(Submission.review_status == "accepted")).scalar() == 0
    assert db.session.execute(select(func.count()).select_from(AuditEntry)).scalar() == entries_before
    assert db.session.execute(select(func.max(Change.seq))).scalar() == changes_before
    assert db.session.execute(select(ChangeCounter.value)).scalar() == changes_before
    again = client.post(f"/coordinator/millbrook/submissions/accept-all?site={canal}",
                        data={"csrf_token": csrf, "count": "5"})
    assert again.status_code == 302
    db.session.expire_all()
    assert db.session.execute(select(func.count()).select_from(Submission)
                              .where(Submission.review_status == "accepted")).scalar() == 5


def test_accept_all_is_offered_only_for_visits_not_yet_accepted(client, queue):
    csrf = sign_in(client, "cora@example.org")
    assert "Accept all 8 matching visits" not in client.get("/coordinator/millbrook/submissions?status=all").text
    assert "Accept all 8 matching visits" in client.get("/coordinator/millbrook/submissions").text
    response = client.post("/coordinator/millbrook/submissions/accept-all?status=all",
                           data={"csrf_token": csrf, "count": "8"})
    assert response.status_code == 409
    db.session.expire_all()
    assert db.session.execute(select(func.count()).select_from(Submission)
                              .where(Submission.review_status == "accepted")).scalar() == 0


def test_accept_all_matching_accepts_flagged_visits_when_asked(client, queue):
    csrf = sign_in(client, "cora@example.org")
    client.post(f"/coordinator/millbrook/submissions/{queue['ids'][4]}",
                data={"csrf_token": csrf, "status": "flagged", "reason": "Blurred photo"})
    assert 'name="count" value="1"' in client.get("/coordinator/millbrook/submissions/accept-all?status=flagged").text
    client.post("/coordinator/millbrook/submissions/accept-all?status=flagged", data={"csrf_token": csrf, "count": "1"})
    db.session.expire_all()
    found = db.session.get(Submission, queue["ids"][4])
    assert (found.review_status, found.review_reason) == ("accepted", None)


def test_another_areas_coordinator_cannot_bulk_accept(client, queue):
    csrf = sign_in(client, "eli@example.org")
    assert client.get("/coordinator/millbrook/submissions/accept-all").status_code == 404
    assert client.post("/coordinator/millbrook/submissions/accept-all",
                       data={"csrf_token": csrf, "count": "8"}).status_code == 404
    assert client.post("/coordinator/millbrook/submissions/accept-selected",
                       data={"csrf_token": csrf, "visit": list(queue["ids"].values())}).status_code == 404
    # Through their own area's address, Millbrook's visits are not theirs to accept.
    client.post("/coordinator/eastside/submissions/accept-selected",
                data={"csrf_token": csrf, "visit": list(queue["ids"].values())})
    db.session.expire_all()
    assert db.session.execute(select(func.count()).select_from(Submission)
                              .where(Submission.review_status == "accepted")).scalar() == 0


def test_bulk_acceptance_is_audited_once_listing_each_visit_as_a_review_records_it(client, queue):
    csrf = sign_in(client, "ada@example.org")
    canal = queue["canal"].id
    # One of the four was flagged first: the bulk entry keeps its reason as the status it left.
    client.post(f"/coordinator/millbrook/submissions/{queue['ids'][4]}",
                data={"csrf_token": csrf, "status": "flagged", "reason": "Blurred photo"})
    before = db.session.execute(select(func.max(AuditEntry.seq))).scalar()
    client.post(f"/coordinator/millbrook/submissions/accept-all?site={canal}&status=pending",
                data={"csrf_token": csrf, "count": "3"})
    client.post(f"/coordinator/millbrook/submissions/accept-all?site={canal}&status=flagged",
                data={"csrf_token": csrf, "count": "1"})
    db.session.expire_all()
    new = db.session.execute(select(AuditEntry).where(AuditEntry.seq > before).order_by(AuditEntry.seq)).scalars().all()
    assert [e.action for e in new] == ["submission.accept_matching"] * 2
    waiting, flagged = new
    assert waiting.details["count"] == 3 and waiting.details["filters"] == {"status": "pending", "site": canal}
    assert waiting.details["accepted"] == [{"before": {"review_status": "pending"}, "after": {"review_status": "accepted"},
                                            "ids": sorted(queue["ids"][n] for n in (0, 1, 5))}]
    assert flagged.details["accepted"] == [{"before": {"review_status": "flagged", "review_reason": "Blurred photo"},
                                            "after": {"review_status": "accepted", "review_reason": None},
                                            "ids": [queue["ids"][4]]}]
    ada = db.session.execute(select(AuditEntry.person_id).where(AuditEntry.seq == before)).scalar()
    assert waiting.person_id == flagged.person_id == ada is not None and waiting.address == "127.0.0.1"
    assert audit.verify().intact
    # Ticked visits: one entry for the action with the count, the visits it accepted listed.
    client.post("/coordinator/millbrook/submissions/accept-selected",
                data={"csrf_token": csrf, "visit": [queue["ids"][2], queue["ids"][0]]})
    last = db.session.execute(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(2)).scalars().all()
    assert [e.action for e in last] == ["submission.accept_selected", "submission.accept_matching"]
    assert last[0].details["count"] == 1 and last[0].details["ticked"] == 2  # the other was accepted already
    assert last[0].details["accepted"][0]["ids"] == [queue["ids"][2]]
    assert audit.verify().intact


def test_bulk_acceptance_that_accepted_nothing_is_audited_with_no_visits(client, queue):
    csrf = sign_in(client, "cora@example.org")
    client.post("/coordinator/millbrook/submissions/accept-selected", data={"csrf_token": csrf, "visit": [queue["ids"][0]]})
    changes_before = db.session.execute(select(func.count()).select_from(Change)).scalar()
    client.post("/coordinator/millbrook/submissions/accept-selected", data={"csrf_token": csrf, "visit": [queue["ids"][0]]})
    last = db.session.execute(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).scalar_one()
    assert last.action == "submission.accept_selected" and last.details["count"] == 0 and last.details["accepted"] == []
    assert db.session.execute(select(func.count()).select_from(Change)).scalar() == changes_before


def _history(client, visit_id: str, **extra) -> str:
    return client.get("/admin/audit", query_string={"record_id": visit_id, **extra}).text


def test_visit_history_shows_the_bulk_acceptance_that_accepted_it_and_who(client, queue):
    """The admin's audit log filtered by a visit lists the bulk action that accepted it, as it would a review."""
    csrf = sign_in(client, "cora@example.org")
    canal = queue["canal"].id
    client.post(f"/coordinator/millbrook/submissions/{queue['ids'][4]}",
                data={"csrf_token": csrf, "status": "flagged", "reason": "Blurred photo"})
    client.post(f"/coordinator/millbrook/submissions/accept-all?site={canal}&status=flagged",
                data={"csrf_token": csrf, "count": "1"})
    client.post(f"/coordinator/millbrook/submissions/accept-all?site={canal}", data={"csrf_token": csrf, "count": "3"})
    client.post("/coordinator/millbrook/submissions/accept-selected", data={"csrf_token": csrf, "visit": [queue["ids"][2]]})
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 302
    sign_in(client, "ada@example.org")
    rows = lambda page: re.findall(r"<tr>\s*<th scope=\"row\">.*?</tr>", page, re.S)  # noqa: E731
    one = rows(_history(client, queue["ids"][0]))
    assert len(one) == 1 and "All matching visits accepted" in one[0] and "Cora Coordinator" in one[0]
    assert f"submission {queue['ids'][0]}, one of 3 visits accepted together" in one[0]
    assert "&#34;before&#34;: {&#34;review_status&#34;: &#34;pending&#34;}" in one[0]
    assert "&#34;ids&#34;" not in one[0]  # the page shows this visit's change, not the list of 3
    flagged = rows(_history(client, queue["ids"][4]))
    assert [("All matching visits accepted" in r, "Visit reviewed" in r) for r in flagged] == [(True, False), (False, True)]
    assert "Blurred photo" in flagged[0] and "the only visit of this bulk acceptance" in flagged[0]
    ticked = rows(_history(client, queue["ids"][2], record_type="submission"))
    assert len(ticked) == 1 and "Ticked visits accepted" in ticked[0]
    # A visit none of them accepted has no such entry; nor does a record of another kind.
    assert "No entries match." in _history(client, queue["ids"][3])
    assert "No entries match." in _history(client, queue["ids"][0], record_type="site")
    assert "No entries match." in _history(client, queue["east_visit"])
    assert "No entries match." in _history(client, canal)  # an id in a bulk entry's filters is not a visit it accepted
    # The CSV download of the same filter has the entry, with every id it accepted.
    csv_text = client.get("/admin/audit/entries.csv", query_string={"record_id": queue["ids"][0]}).text
    lines = [line for line in csv_text.splitlines()[1:] if "submission.accept_matching" in line]
    assert len(lines) == 1 and all(queue["ids"][n] in lines[0] for n in (0, 1, 5))
    # The unfiltered page shows a bulk entry's visits by their number, not their ids.
    page = client.get("/admin/audit", query_string={"action": "submission.accept_matching"}).text
    assert queue["ids"][1] not in page and "&#34;visits&#34;: 3" in page


def test_bulk_change_rows_are_what_a_single_review_sends(client, queue, sync):
    """The phones' records of visits accepted in bulk equal `my_submission_record` of each visit (built in SQL
    on PostgreSQL), with times whole to the second and with microseconds alike."""
    from server import changes

    csrf = sign_in(client, "cora@example.org")
    last_seq = db.session.execute(select(func.max(Change.seq))).scalar()
    response = client.post("/coordinator/millbrook/submissions/accept-all", data={"csrf_token": csrf, "count": "8"})
    assert response.status_code == 302
    db.session.expire_all()
    written = db.session.execute(select(Change).where(Change.seq > last_seq).order_by(Change.seq)).scalars().all()
    visits = {s.id: s for s in db.session.execute(select(Submission).where(Submission.area_id == queue["area"].id)).scalars()}
    assert [c.record_id for c in written] == sorted(visits)  # in id order, one seq each, after the last
    assert [c.seq for c in written] == list(range(last_seq + 1, last_seq + 9))
    for change in written:
        found = visits[change.record_id]
        expected = changes.my_submission_record({name: getattr(found, name) for name in changes.MY_SUBMISSION_FIELDS})
        assert (change.collection, change.op, change.person_id, change.area_id) == \
            ("my_submissions", "put", found.person_id, None)
        assert change.data == expected
    times = [visit.observed_at for visit in visits.values()] + [visit.received_at for visit in visits.values()]
    assert any(t.microsecond == 0 for t in times) and any(t.microsecond for t in times)
    # And the phone pulls them as after a single review.
    mine = {c["id"]: c["data"] for c in sync(queue["rita_token"]).get_json()["changes"]
            if c["collection"] == "my_submissions"}
    assert mine[queue["ids"][0]]["review_status"] == "accepted"
    assert db.session.execute(select(ChangeCounter.value)).scalar() == last_seq + 8


def test_record_many_chains_like_single_records(app, client, queue):
    """The batch writer's entries verify, and a tampered one is caught (negative control)."""
    with app.test_request_context():
        audit.record_many([{"action": "submission.review", "record_type": "submission", "record_id": str(n),
                            "details": {"n": n}} for n in range(3)])
        audit.record("sign_out")
        db.session.commit()
    assert audit.verify().intact
    from tests.server.test_audit import _damage

    seq = db.session.execute(select(AuditEntry.seq).where(AuditEntry.record_id == "1")).scalar_one()
    db.session.commit()  # outside a request every transaction writes (SQLite): end it before the damage
    _damage("UPDATE audit_entry SET details = :d WHERE seq = :seq", d='{"n": 99}', seq=seq)
    assert audit.verify().broken_at == seq


def test_visit_page_moves_through_the_filtered_queue(client, queue):
    csrf = sign_in(client, "cora@example.org")
    canal = queue["canal"].id
    listed = _listed(client.get(f"/coordinator/millbrook/submissions?site={canal}").text)
    first = client.get(f"/coordinator/millbrook/submissions/{listed[0]}?site={canal}").text
    assert 'rel="prev"' not in first
    assert re.search(rf'href="[^"]*/submissions/{listed[1]}\?[^"]*site={canal}[^"]*" rel="next" accesskey="j"', first)
    middle = client.get(f"/coordinator/millbrook/submissions/{listed[1]}?site={canal}").text
    assert f"/submissions/{listed[0]}?" in middle and f"/submissions/{listed[2]}?" in middle
    assert 'accesskey="a"' in middle and "<kbd>j</kbd>" in middle
    # Saving a review goes to the next visit of the same queue, filters kept.
    saved = client.post(f"/coordinator/millbrook/submissions/{listed[0]}?site={canal}",
                        data={"csrf_token": csrf, "status": "accepted"})
    assert saved.status_code == 302
    assert f"/submissions/{listed[1]}?" in saved.headers["Location"] and f"site={canal}" in saved.headers["Location"]
    # The last one leads back to the (filtered) list.
    last = client.post(f"/coordinator/millbrook/submissions/{listed[-1]}?site={canal}",
                       data={"csrf_token": csrf, "status": "accepted"})
    assert last.headers["Location"].split("?")[0].endswith("/coordinator/millbrook/submissions")
    assert db.session.execute(select(func.count()).select_from(Change)).scalar() > 0


def test_hostile_filter_values_are_answered_not_failed(client, queue):
    sign_in(client, "cora@example.org")
    for query in ("grade=%00", "site=" + "x" * 5000, "status=nonsense", "from=2026-13-45", "volunteer='--", "page=-4"):
        response = client.get("/coordinator/millbrook/submissions?" + query)
        assert response.status_code in (200, 400), query
    assert client.post("/coordinator/millbrook/submissions/accept-all?from=2026-13-45", data={}).status_code == 400


def test_batch_canonical_form_is_byte_for_byte_the_single_one(app):
    """The batch writer's shortcut encodes exactly what `canonical()` does, whatever the values."""
    from server.models import utcnow

    encoded = {}
    base = {"seq": 1, "at": utcnow(), "action": "submission.review", "person_id": "p", "device_id": None,
            "record_type": "submission", "record_id": "r", "area_id": "a", "address": "127.0.0.1", "prev_hash": "0" * 64}
    for details in ({"t": True, "f": False, "big": 10**20, "neg": -3},
                    {"batch": "b", "before": {"review_status": "flagged", "review_reason": "Ünïcode \\u2028 \"q\""}},
                    {"n": 1.5, "list": [3, 1, {"z": 1, "a": None}]}, {}, {"b": 1, "a": 2}, {"a": 2, "b": 1}):
        for seq, record_id in ((1, "r"), (2, 'quote " and \\ and \n and é and \u2028')):
            fields = {**base, "seq": seq, "record_id": record_id, "details": details}
            assert audit._canonical_in_batch(fields, encoded) == audit.canonical(fields)
