"""Sites are moderated: proposed sites reach only their proposer until a coordinator decides,
street reps' site edits wait for review, and each decision reaches the phones that hold the site."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server import operations, reporting
from server.coordinator import sites as moderation
from server.extensions import db
from server.models import Action, Answer, AuditEntry, Device, Site, SiteEdit, Submission
from server.pull import scope_view
from server.push import proposed_site_id
from tests.conftest import mutation, sign_in, street_answers, visit

PASSWORD = "correct horse battery"


@pytest.fixture
def world(client, make_area, make_site, publish_forms, enrol, sync):
    """An area with two approved sites, a coordinator, and two reps: Rita proposes a site with a D visit."""
    publish_forms()
    area = make_area("millbrook", "Millbrook")
    other_area = make_area("eastside", "Eastside")
    canal = make_site(area, "Canal Street", lat=53.5400, lng=-2.6300)
    mill = make_site(area, "Mill Lane", lat=53.5600, lng=-2.6500)
    operations.create_person("Cora Coordinator", email="cora@example.org", password=PASSWORD,
                             roles=[("coordinator", area)])
    operations.create_person("Eli Eastside", email="eli@example.org", password=PASSWORD,
                             roles=[("coordinator", other_area)])
    db.session.commit()
    rita, rita_body = enrol(area, name="Rita Rep")
    sam, sam_body = enrol(area, name="Sam Second")
    proposing = visit(None, answers=street_answers("B", litter={"grade": "D"}))
    proposing["new_site"] = {"name": "Canal Stret", "lat": 53.5401, "lng": -2.6301}
    (result,) = sync(rita, [mutation(proposing, seq=1)]).get_json()["results"]
    assert result["status"] == "applied", result
    site_id = proposed_site_id(proposing["id"])
    return {"area": area, "canal": canal, "mill": mill, "rita": rita, "sam": sam, "site_id": site_id,
            "rita_device": rita_body["device_id"], "sam_device": sam_body["device_id"],
            "rita_person": rita_body["person"]["id"], "visit_id": proposing["id"]}


def _view(device_id) -> dict:
    view = scope_view(db.session.get(Device, device_id))
    db.session.rollback()
    return view


def _pulled_sites(sync, token) -> dict:
    """What a fresh replica of this phone would hold of sites, through the real sync answer."""
    held, cursor = {}, None
    while True:
        body = sync(token, cursor=cursor).get_json()
        for change in body["changes"]:
            if change["collection"] == "sites":
                if change["op"] == "delete":
                    held.pop(change["id"], None)
                else:
                    held[change["id"]] = change["data"]
        cursor = body["cursor"]
        if not body["has_more"]:
            return held


def _decide(client, csrf, site_id, **form):
    return client.post(f"/coordinator/millbrook/sites-waiting/sites/{site_id}", data={"csrf_token": csrf, **form})


# -- pull visibility -----------------------------------------------------------------------------


def test_proposed_site_goes_to_its_proposer_alone(world, sync):
    rita, sam = _pulled_sites(sync, world["rita"]), _pulled_sites(sync, world["sam"])
    assert rita[world["site_id"]]["status"] == "proposed" and rita[world["site_id"]]["proposed"] is True
    assert world["site_id"] not in sam
    assert {world["canal"].id, world["mill"].id} <= sam.keys()
    site = db.session.get(Site, world["site_id"])
    assert site.status == "proposed" and site.proposed_by == world["rita_person"]


def test_another_phone_cannot_send_visits_to_someone_elses_proposed_site(world, sync):
    sneaky = visit(db.session.get(Site, world["site_id"]))
    (result,) = sync(world["sam"], [mutation(sneaky)]).get_json()["results"]
    assert result["status"] == "rejected" and result["code"] == "site_unknown"
    # The proposer may go on visiting it.
    (mine,) = sync(world["rita"], [mutation(visit(db.session.get(Site, world["site_id"])))]).get_json()["results"]
    assert mine["status"] == "applied"


def test_proposed_site_is_not_on_the_map_coverage_priorities_or_action_form_but_its_visits_count(world, client):
    area_id = world["area"].id
    period = reporting.Period.last_days(90)
    assert world["site_id"] not in {s.id for s in reporting.street_sites(db.session, area_id)}
    assert world["site_id"] not in {s.site_id for s in reporting.latest_worst_grades(db.session, area_id)}
    assert world["site_id"] not in {p.site_id for p in reporting.priority_list(db.session, area_id, period)}
    cover = reporting.coverage(db.session, area_id, period)
    assert world["site_id"] not in {s.id for s, _n in cover.monitored} | {s.id for s, _l in cover.overdue}
    # The visit itself counts in the area's figures: its D for litter is there.
    shares = reporting.grade_shares_by_theme(db.session, area_id, period)
    assert sum(counts["D"] for counts in shares.values()) == 1
    assert dict(cover.volunteers)["Rita Rep"] == 1
    sign_in(client, "cora@example.org")
    form = client.get(f"/coordinator/millbrook/actions/new?site_id={world['site_id']}")
    assert form.status_code == 200 and "Canal Stret" not in form.get_data(as_text=True)


# -- the queue -----------------------------------------------------------------------------------


def test_dashboard_queue_counts_what_waits_and_links_to_the_page(world, client, sync, make_site):
    site = db.session.get(Site, world["canal"].id)
    sync(world["sam"], [mutation({"id": site.id, "base_version": 1, "patch": {"name": "Canal St"}}, kind="site.update")])
    sign_in(client, "cora@example.org")
    page = client.get("/coordinator/millbrook/").get_data(as_text=True)
    assert "1 site proposed in the field" in page and "1 change to a site by a street rep" in page
    assert "/coordinator/millbrook/sites-waiting#proposed-sites" in page
    queue = client.get("/coordinator/millbrook/sites-waiting")
    text = queue.get_data(as_text=True)
    assert queue.status_code == 200
    assert "Canal Stret" in text and "Rita Rep" in text and "1 visit" in text
    # The nearest existing site by distance is named, with how far it is.
    assert "Canal Street — 13 m away" in text
    assert "Canal St" in text and "Sam Second" in text


def test_nearest_sites_put_the_closest_first_then_the_most_alike_by_name(world):
    proposed = Site(name="Mil Lane", lat=None, lng=None)
    named = moderation.nearest_sites(proposed, [world["canal"], world["mill"]])
    assert [n.site.name for n in named][0] == "Mill Lane"
    placed = Site(name="Somewhere", lat=53.5599, lng=-2.6499)
    near = moderation.nearest_sites(placed, [world["canal"], world["mill"]])
    assert near[0].site.name == "Mill Lane" and near[0].metres < 20
    # A shared word counts: "Towpath steps" is most like the towpath, not the street with similar letters.
    towpath = Site(name="Towpath (Lock 4 to Lock 6)", lat=None, lng=None)
    hope = Site(name="Hope Street", lat=None, lng=None)
    alike = moderation.nearest_sites(Site(name="Towpath steps", lat=None, lng=None), [hope, towpath])
    assert [n.site.name for n in alike] == ["Towpath (Lock 4 to Lock 6)", "Hope Street"]


def test_another_areas_coordinator_cannot_see_or_decide(world, client):
    csrf = sign_in(client, "eli@example.org")
    assert client.get("/coordinator/millbrook/sites-waiting").status_code == 404
    assert _decide(client, csrf, world["site_id"], decision="approve", name="Mine").status_code == 404
    assert db.session.get(Site, world["site_id"]).status == "proposed"


# -- approve, rename, merge, reject ---------------------------------------------------------------


def test_approving_sends_the_site_to_every_phone_of_the_area(world, client, sync):
    csrf = sign_in(client, "cora@example.org")
    response = _decide(client, csrf, world["site_id"], decision="approve", name="Canal Stret")
    assert response.status_code == 302
    site = db.session.get(Site, world["site_id"])
    db.session.refresh(site)
    assert site.status == "approved" and site.version == 1
    sam = _pulled_sites(sync, world["sam"])
    assert sam[world["site_id"]]["status"] == "approved"
    assert _view(world["rita_device"])[("sites", world["site_id"])] == site.to_sync()
    assert world["site_id"] in {s.id for s in reporting.street_sites(db.session, world["area"].id)}
    (entry,) = db.session.execute(select(AuditEntry).where(AuditEntry.action == "site.approve")).scalars()
    assert entry.record_id == world["site_id"] and entry.details["after"] == {"status": "approved"}


def test_renaming_on_approval_reaches_both_phones_under_the_new_name(world, client, sync):
    csrf = sign_in(client, "cora@example.org")
    _decide(client, csrf, world["site_id"], decision="approve", name="  Canal Street towpath ")
    site = db.session.get(Site, world["site_id"])
    db.session.refresh(site)
    assert (site.name, site.version, site.field_versions["name"]) == ("Canal Street towpath", 2, 2)
    for token in (world["rita"], world["sam"]):
        assert _pulled_sites(sync, token)[site.id]["name"] == "Canal Street towpath"
    (entry,) = db.session.execute(select(AuditEntry).where(AuditEntry.action == "site.approve")).scalars()
    assert entry.details["before"]["name"] == "Canal Stret" and entry.details["after"]["name"] == "Canal Street towpath"


def test_merge_needs_the_box_ticked(world, client):
    csrf = sign_in(client, "cora@example.org")
    response = _decide(client, csrf, world["site_id"], decision="merge", target_id=world["canal"].id)
    assert response.status_code == 400 and "Tick the box" in response.get_data(as_text=True)
    assert db.session.get(Site, world["site_id"]).status == "proposed"
    assert db.session.get(Submission, world["visit_id"]).site_id == world["site_id"]


def test_merging_moves_the_visits_and_the_proposers_phone_follows(world, client, sync):
    action = operations.raise_action(world["area"], "Litter at the towpath", site=db.session.get(Site, world["site_id"]))
    db.session.commit()
    action_id = action.id
    before_sam = _view(world["sam_device"])
    csrf = sign_in(client, "cora@example.org")
    response = _decide(client, csrf, world["site_id"], decision="merge", target_id=world["canal"].id, confirm="yes")
    assert response.status_code == 302
    db.session.expire_all()
    site = db.session.get(Site, world["site_id"])
    assert site.status == "merged" and site.merged_into_id == world["canal"].id
    assert db.session.get(Submission, world["visit_id"]).site_id == world["canal"].id
    assert {a.site_id for a in db.session.execute(select(Answer).where(Answer.submission_id == world["visit_id"]))
            .scalars()} == {world["canal"].id}
    assert db.session.get(Action, action_id).site_id == world["canal"].id
    rita = _view(world["rita_device"])
    assert ("sites", world["site_id"]) not in rita
    assert rita[("my_submissions", world["visit_id"])]["site_id"] == world["canal"].id
    notice = rita[("device", f"site-merged:{world['site_id']}")]
    assert notice["code"] == "site_merged" and notice["target_name"] == "Canal Street"
    # The other phone never had the site; what it holds is unchanged.
    sam = _view(world["sam_device"])
    assert {k for k in sam if k[0] == "sites"} == {k for k in before_sam if k[0] == "sites"}
    (entry,) = db.session.execute(select(AuditEntry).where(AuditEntry.action == "site.merge")).scalars()
    assert entry.details["visits_moved"] == 1 and entry.details["after"]["merged_into_id"] == world["canal"].id


def test_merging_into_a_site_that_is_not_approved_is_refused(world, client, sync, enrol):
    other = visit(None)
    other["new_site"] = {"name": "Another alley"}
    sync(world["sam"], [mutation(other)])
    csrf = sign_in(client, "cora@example.org")
    response = _decide(client, csrf, world["site_id"], decision="merge", target_id=proposed_site_id(other["id"]),
                       confirm="yes")
    assert response.status_code == 400
    assert db.session.get(Site, world["site_id"]).status == "proposed"


def test_rejecting_keeps_the_visits_with_no_site_and_tells_the_proposer(world, client, sync):
    csrf = sign_in(client, "cora@example.org")
    assert _decide(client, csrf, world["site_id"], decision="reject", reason="", confirm="yes").status_code == 400
    response = _decide(client, csrf, world["site_id"], decision="reject", reason="That is Canal Street.",
                       confirm="yes")
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Site, world["site_id"]).status == "rejected"
    stored = db.session.get(Submission, world["visit_id"])
    assert stored is not None and stored.site_id is None
    assert {a.site_id for a in db.session.execute(select(Answer).where(Answer.submission_id == world["visit_id"]))
            .scalars()} == {None}
    rita = _view(world["rita_device"])
    assert ("sites", world["site_id"]) not in rita
    assert rita[("my_submissions", world["visit_id"])]["site_id"] is None
    notice = rita[("device", f"site-rejected:{world['site_id']}")]
    assert notice["code"] == "site_rejected" and notice["reason"] == "That is Canal Street."
    assert notice["site_name"] == "Canal Stret"
    assert ("device", f"site-rejected:{world['site_id']}") not in _view(world["sam_device"])
    (entry,) = db.session.execute(select(AuditEntry).where(AuditEntry.action == "site.reject")).scalars()
    assert entry.details["reason"] == "That is Canal Street." and entry.details["visits_kept"] == 1
    # Still counted in the area's figures (a rejected site's visit is a real visit).
    shares = reporting.grade_shares_by_theme(db.session, world["area"].id, reporting.Period.last_days(90))
    assert sum(counts["D"] for counts in shares.values()) == 1


def test_a_site_is_decided_once(world, client):
    csrf = sign_in(client, "cora@example.org")
    _decide(client, csrf, world["site_id"], decision="approve", name="Canal Stret")
    again = _decide(client, csrf, world["site_id"], decision="reject", reason="No", confirm="yes")
    assert again.status_code == 400 and "already decided" in again.get_data(as_text=True)
    assert db.session.get(Site, world["site_id"]).status == "approved"


def test_visits_sent_late_to_a_merged_or_rejected_site_follow_the_decision(world, sync, app):
    late = [visit(db.session.get(Site, world["site_id"])) for _ in range(2)]
    with app.test_request_context():
        moderation.merge_site(db.session, db.session.get(Site, world["site_id"]), db.session.get(Site, world["canal"].id))
        db.session.commit()
    (first,) = sync(world["rita"], [mutation(late[0])]).get_json()["results"]
    assert first["status"] == "applied"
    assert db.session.get(Submission, late[0]["id"]).site_id == world["canal"].id
    assert _view(world["rita_device"])[("my_submissions", late[0]["id"])]["site_id"] == world["canal"].id

    rejected = visit(None)
    rejected["new_site"] = {"name": "Nowhere"}
    sync(world["rita"], [mutation(rejected)])
    nowhere = proposed_site_id(rejected["id"])
    with app.test_request_context():
        moderation.reject_site(db.session, db.session.get(Site, nowhere), "Not a place")
        db.session.commit()
    then = visit(db.session.get(Site, nowhere))
    (second,) = sync(world["rita"], [mutation(then)]).get_json()["results"]
    assert second["status"] == "applied"
    assert db.session.get(Submission, then["id"]).site_id is None


# -- street reps' edits --------------------------------------------------------------------------


def _edit(site_id, patch, base_version=1):
    return mutation({"id": site_id, "base_version": base_version, "patch": patch}, kind="site.update")


def test_street_reps_edit_is_held_and_shown_only_on_their_phone(world, sync, client):
    (result,) = sync(world["sam"], [_edit(world["canal"].id, {"name": "Canal St (rude word)"})]).get_json()["results"]
    assert result["status"] == "applied" and result["pending_review"] is True
    canal = db.session.get(Site, world["canal"].id)
    db.session.refresh(canal)
    assert canal.name == "Canal Street" and canal.version == 1
    (held,) = db.session.execute(select(SiteEdit)).scalars()
    assert held.status == "pending" and held.patch == {"name": "Canal St (rude word)"}
    sam = _view(world["sam_device"])[("sites", canal.id)]
    assert sam["name"] == "Canal St (rude word)" and sam["pending_edit"] is True
    assert _view(world["rita_device"])[("sites", canal.id)]["name"] == "Canal Street"
    public = client.get("/area/millbrook").get_data(as_text=True)
    assert "rude word" not in public


def test_a_stale_edit_is_a_conflict_at_once_not_a_held_edit(world, sync):
    canal = db.session.get(Site, world["canal"].id)
    canal.name, canal.version, canal.field_versions = "Canal Street North", 2, {"name": 2}
    db.session.commit()
    (result,) = sync(world["sam"], [_edit(canal.id, {"name": "Canal St"}, base_version=1)]).get_json()["results"]
    assert result["status"] == "conflict"
    assert db.session.execute(select(SiteEdit)).first() is None


def test_accepting_an_edit_applies_it_for_every_phone(world, sync, client):
    sync(world["sam"], [_edit(world["canal"].id, {"notes": "Gate locked after 6pm"})])
    (held,) = db.session.execute(select(SiteEdit)).scalars()
    csrf = sign_in(client, "cora@example.org")
    response = client.post(f"/coordinator/millbrook/sites-waiting/edits/{held.id}",
                           data={"csrf_token": csrf, "decision": "accept"})
    assert response.status_code == 302
    db.session.expire_all()
    canal = db.session.get(Site, world["canal"].id)
    assert canal.notes == "Gate locked after 6pm" and canal.version == 2
    assert db.session.get(SiteEdit, held.id).status == "accepted"
    for device in (world["sam_device"], world["rita_device"]):
        assert _view(device)[("sites", canal.id)] == canal.to_sync()
    (entry,) = db.session.execute(select(AuditEntry).where(AuditEntry.action == "site.edit_accept")).scalars()
    assert entry.details["after"] == {"notes": "Gate locked after 6pm"}


def test_refusing_an_edit_puts_the_site_back_on_the_reps_phone_and_says_why(world, sync, client):
    sync(world["sam"], [_edit(world["canal"].id, {"name": "Canal St"})])
    (held,) = db.session.execute(select(SiteEdit)).scalars()
    csrf = sign_in(client, "cora@example.org")
    client.post(f"/coordinator/millbrook/sites-waiting/edits/{held.id}",
                data={"csrf_token": csrf, "decision": "refuse", "reason": "The sign says Canal Street."})
    db.session.expire_all()
    canal = db.session.get(Site, world["canal"].id)
    assert canal.name == "Canal Street" and canal.version == 1
    sam = _view(world["sam_device"])
    assert sam[("sites", canal.id)] == canal.to_sync()
    notice = sam[("device", f"site-edit-refused:{held.id}")]
    assert notice["code"] == "site_edit_refused" and notice["reason"] == "The sign says Canal Street."
    assert db.session.get(SiteEdit, held.id).status == "refused"
    assert db.session.execute(select(AuditEntry).where(AuditEntry.action == "site.edit_refuse")).scalar_one()


def test_proposer_editing_their_own_waiting_site_changes_the_proposal(world, sync):
    (result,) = sync(world["rita"], [_edit(world["site_id"], {"name": "Canal Street towpath"})]).get_json()["results"]
    assert result["status"] == "applied" and "pending_review" not in result
    site = db.session.get(Site, world["site_id"])
    db.session.refresh(site)
    assert site.name == "Canal Street towpath" and site.status == "proposed"
    assert ("sites", site.id) not in _view(world["sam_device"])
    (other,) = sync(world["sam"], [_edit(world["site_id"], {"name": "Mine now"})]).get_json()["results"]
    assert other["status"] == "rejected" and other["code"] == "not_found"


# -- whatever a coordinator's browser posts -------------------------------------------------------

HOSTILE = ["\x00", "a\x00b", "t" * 100_000, "", "   ", "\r\n"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_names_reasons_and_targets_are_refused_kindly(world, client, no_server_errors, value):
    csrf = sign_in(client, "cora@example.org")
    for form in ({"decision": "approve", "name": value},
                 {"decision": "merge", "target_id": value, "confirm": "yes"},
                 {"decision": "reject", "reason": value, "confirm": "yes"},
                 {"decision": value}):
        response = _decide(client, csrf, world["site_id"], **form)
        assert response.status_code == 400, (form, response.status_code)
    assert db.session.get(Site, world["site_id"]).status == "proposed"


def test_the_proposers_personal_data_export_lists_their_proposals_and_changes(world, sync, app):
    from server import privacy

    sync(world["rita"], [_edit(world["canal"].id, {"notes": "Gate"})])
    exported = privacy.export_person(world["rita_person"])
    assert [(s["id"], s["name"], s["status"]) for s in exported["sites_they_proposed"]] == [
        (world["site_id"], "Canal Stret", "proposed")]
    (change,) = exported["site_changes_they_proposed"]
    assert change["site_id"] == world["canal"].id and change["patch"] == {"notes": "Gate"}
    assert change["status"] == "pending"
    assert privacy.export_person(_person_of(world["sam_device"]))["sites_they_proposed"] == []


def _person_of(device_id):
    return db.session.get(Device, device_id).person_id


def test_erasing_the_proposer_keeps_the_proposal_for_the_coordinator_and_off_other_phones(world, sync, app):
    from server import privacy

    sync(world["rita"], [_edit(world["canal"].id, {"notes": "Gate"})])
    report = privacy.erase_person(world["rita_person"], via="cli")
    db.session.commit()
    assert report.counts["site_proposals_unattributed"] == 2  # the proposed site and the held edit
    site = db.session.get(Site, world["site_id"])
    assert site.status == "proposed" and site.proposed_by == privacy.ERASED_PERSON_ID
    assert db.session.execute(select(SiteEdit.person_id)).scalar_one() == privacy.ERASED_PERSON_ID
    assert moderation.waiting_counts(db.session, world["area"].id) == (1, 1)
    assert ("sites", world["site_id"]) not in _view(world["sam_device"])
    moderation.approve_site(db.session, site)
    db.session.commit()
    assert ("sites", world["site_id"]) in _view(world["sam_device"])


def test_the_migration_keeps_sites_proposed_before_moderation_waiting_with_their_proposer(tmp_path):
    """A site proposed before this revision was on every phone; after it, it waits for a coordinator."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    from server import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'old.sqlite'}", "SECRET_KEY": "t",
                      "BLOB_DIR": str(tmp_path)})
    with app.app_context():
        upgrade(revision="b2d4f6a8c0e2")
        now = "2026-11-30 10:00:00"
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO area (id, slug, name, description, keep_photo_location, created_at) "
                              "VALUES ('a1', 'a', 'A', '', 0, :now)"), {"now": now})
            conn.execute(text("INSERT INTO person (id, display_name, must_change_password, created_at) "
                              "VALUES ('p1', 'Rita', 0, :now)"), {"now": now})
            for site_id, proposed in (("s1", 0), ("s2", 1)):
                conn.execute(text("INSERT INTO site (id, area_id, name, notes, proposed, version, field_versions, "
                                  "created_at, updated_at) VALUES (:id, 'a1', :id, '', :proposed, 1, '{}', :now, :now)"),
                             {"id": site_id, "proposed": proposed, "now": now})
            conn.execute(text("INSERT INTO submission (id, form_id, form_version, kind, area_id, site_id, person_id, "
                              "observed_at, observed_offset, received_at, notes, payload_hash, data, review_status) "
                              "VALUES ('v1', 'street', 1, 'street', 'a1', 's2', 'p1', :now, '+00:00', :now, '', "
                              "'sha256:x', '{}', 'pending')"), {"now": now})
        upgrade()
        with db.engine.connect() as conn:
            rows = dict((r.id, (r.status, r.proposed_by)) for r in conn.execute(
                text("SELECT id, status, proposed_by FROM site ORDER BY id")))
        assert rows == {"s1": ("approved", None), "s2": ("proposed", "p1")}
        downgrade(revision="b2d4f6a8c0e2")
        with db.engine.connect() as conn:
            assert dict(conn.execute(text("SELECT id, proposed FROM site")).all()) == {"s1": 0, "s2": 1}
        upgrade()  # and up again, over the columns SQLite kept
        with db.engine.connect() as conn:
            assert dict(conn.execute(text("SELECT id, status FROM site")).all()) == {"s1": "approved", "s2": "proposed"}
        db.session.remove()
        db.engine.dispose()
