"""The pull half of POST /api/sync/v1: scoped, paginated, resettable."""

from __future__ import annotations

from server import operations
from server.extensions import db
from tests.conftest import mutation, visit


def _pull_all(sync, token, limit, cursor=None):
    """Follow has_more to the end; return every change and the final body."""
    seen, pages = [], 0
    while True:
        body = sync(token, cursor=cursor, limit=limit).get_json()
        seen.extend(body["changes"])
        cursor = body["cursor"]
        pages += 1
        if not body["has_more"]:
            return seen, body, pages


def test_pagination_across_1000_changes_returns_every_change_once(make_area, enrol, sync):
    area = make_area()
    operations.create_sites(area, [{"name": f"Street {n}"} for n in range(1000)])
    db.session.commit()
    token, _ = enrol(area)
    seen, last, pages = _pull_all(sync, token, limit=37)
    seqs = [change["seq"] for change in seen]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    site_names = {c["data"]["name"] for c in seen if c["collection"] == "sites"}
    assert len(site_names) == 1000
    assert pages == -(-len(seen) // 37) or pages == -(-len(seen) // 37) + 1
    # Nothing new: the next pull is empty and keeps the place.
    again = sync(token, cursor=last["cursor"], limit=37).get_json()
    assert again["changes"] == [] and again["has_more"] is False and again["reset"] is False


def test_a_device_never_receives_another_areas_sites(make_area, make_site, enrol, sync):
    mine, theirs = make_area(), make_area()
    make_site(mine, name="My street")
    make_site(theirs, name="Their street")
    token, _ = enrol(mine)
    seen, _last, _pages = _pull_all(sync, token, limit=500)
    names = {c["data"]["name"] for c in seen if c["collection"] == "sites"}
    areas = {c["id"] for c in seen if c["collection"] == "areas"}
    assert names == {"My street"} and areas == {mine.id}


def test_changes_after_the_cursor_arrive_on_the_next_pull(make_area, make_site, enrol, sync):
    area = make_area()
    token, _ = enrol(area)
    _seen, last, _ = _pull_all(sync, token, limit=100)
    make_site(area, name="New street")
    body = sync(token, cursor=last["cursor"]).get_json()
    assert [c["data"]["name"] for c in body["changes"]] == ["New street"]


def test_cursor_from_another_epoch_resets(make_area, make_site, enrol, sync):
    area = make_area()
    make_site(area)
    token, _ = enrol(area)
    _seen, last, _ = _pull_all(sync, token, limit=100)
    old_epoch = last["server_epoch"]
    operations.start_new_epoch()
    body = sync(token, cursor=last["cursor"]).get_json()
    assert body["reset"] is True and body["server_epoch"] != old_epoch
    assert any(c["collection"] == "sites" for c in body["changes"])  # rebuilt from the start


def test_garbled_cursor_resets_instead_of_failing(make_area, enrol, sync):
    area = make_area()
    token, _ = enrol(area)
    body = sync(token, cursor="not-a-cursor").get_json()
    assert body["reset"] is True


def test_cursor_older_than_the_kept_history_resets(make_area, make_site, enrol, sync):
    area = make_area()
    make_site(area)
    token, _ = enrol(area)
    _seen, last, _ = _pull_all(sync, token, limit=100)
    operations.server_state().changes_kept_from = 10_000
    db.session.commit()
    assert sync(token, cursor=last["cursor"]).get_json()["reset"] is True


def test_joining_another_area_resets_so_its_records_arrive(make_area, make_site, enrol, sync):
    first, second = make_area(), make_area()
    make_site(second, name="Second area street")
    token, body = enrol(first)
    _seen, last, _ = _pull_all(sync, token, limit=100)
    person = db.session.get(operations.Person, body["person"]["id"])
    person.roles.append(operations.Role(role="street_rep", area_id=second.id))
    db.session.commit()
    again = sync(token, cursor=last["cursor"]).get_json()
    assert again["reset"] is True
    assert "Second area street" in {c["data"]["name"] for c in again["changes"] if c["collection"] == "sites"}


def test_my_submissions_show_review_status_after_review(make_area, make_site, publish_forms, enrol, sync):
    area = make_area()
    site = make_site(area)
    publish_forms()
    token, _ = enrol(area)
    other_token, _ = enrol(area, name="Someone else")
    data = visit(site)
    first = sync(token, [mutation(data)]).get_json()
    coordinator = operations.create_person("Coordinator", roles=[("coordinator", area)])
    submission = db.session.get(operations.Submission, data["id"])
    operations.review_submission(submission, "flagged", coordinator, "Photo shows a different street")
    db.session.commit()
    body = sync(token, cursor=first["cursor"]).get_json()
    (mine,) = [c for c in body["changes"] if c["collection"] == "my_submissions"]
    assert mine["data"]["review_status"] == "flagged"
    assert mine["data"]["review_reason"] == "Photo shows a different street"
    theirs, _last, _ = _pull_all(sync, other_token, limit=500)
    assert not [c for c in theirs if c["collection"] == "my_submissions"]


def test_published_forms_and_agreements_are_pulled_and_drafts_are_not(make_area, enrol, sync, publish_forms):
    from server.seed_content import AGREEMENT

    area = make_area()
    versions = publish_forms()
    operations.draft_form_version("street", versions["street"].definition)  # a draft: not for devices
    agreement = operations.draft_agreement_version("deal", area, AGREEMENT)
    operations.publish_agreement_version(agreement)
    db.session.commit()
    token, _ = enrol(area)
    seen, _last, _ = _pull_all(sync, token, limit=500)
    forms = {c["id"] for c in seen if c["collection"] == "forms"}
    assert forms == {"street@1", "checklist@1", "mystery_shop@1"}
    (deal,) = [c for c in seen if c["collection"] == "agreements"]
    assert deal["data"]["our_part"][0]["text"] == "Keep your Council Tax as one of the lowest"
    assert deal["data"]["your_part"][0]["text"] == "Recycle more, recycle right"


def test_retiring_a_form_tells_devices(make_area, enrol, sync, publish_forms):
    area = make_area()
    versions = publish_forms()
    token, _ = enrol(area)
    # A successor first: the only published version of a form that phones use cannot be retired.
    operations.publish_form_version(operations.draft_form_version("street", versions["street"].definition))
    db.session.commit()
    _seen, last, _ = _pull_all(sync, token, limit=500)
    operations.retire_form_version(versions["street"])
    db.session.commit()
    body = sync(token, cursor=last["cursor"]).get_json()
    by_collection = {c["collection"]: c for c in body["changes"]}
    assert by_collection["forms"]["data"]["status"] == "retired"
    assert "still be accepted" in by_collection["device"]["data"]["message"]


def test_replicas_pulled_step_by_step_equal_the_scope_view_through_site_moderation(make_area, make_site, publish_forms,
                                                                                   enrol, sync):
    """A proposer and another phone pull after each decision; each replica equals scope_view."""
    from server.coordinator import sites as moderation
    from server.models import Device, Site
    from server.pull import scope_view
    from server.push import proposed_site_id

    area = make_area()
    canal = make_site(area)
    publish_forms()
    phones = {name: enrol(area, name=name) for name in ("proposer", "other")}
    replicas = {name: {} for name in phones}
    cursors = {name: None for name in phones}

    def pull_everyone():
        for name, (token, _body) in phones.items():
            seen, last, _pages = _pull_all(sync, token, limit=3, cursor=cursors[name])
            cursors[name] = last["cursor"]
            for change in seen:
                key = (change["collection"], change["id"])
                if change["op"] == "delete":
                    replicas[name].pop(key, None)
                else:
                    replicas[name][key] = change["data"]
            view = scope_view(db.session.get(Device, _body["device_id"]))
            db.session.rollback()
            assert replicas[name] == view, name

    proposals = []
    for name in ("Towpath", "Canal Stret", "Skip"):
        data = visit(None)
        data["new_site"] = {"name": name}
        sync(phones["proposer"][0], [mutation(data)])
        proposals.append(proposed_site_id(data["id"]))
    pull_everyone()
    assert {("sites", s) for s in proposals} <= replicas["proposer"].keys()
    assert not {("sites", s) for s in proposals} & replicas["other"].keys()
    for decide in (lambda: moderation.approve_site(db.session, db.session.get(Site, proposals[0]), "Towpath steps"),
                   lambda: moderation.merge_site(db.session, db.session.get(Site, proposals[1]),
                                                 db.session.get(Site, canal.id)),
                   lambda: moderation.reject_site(db.session, db.session.get(Site, proposals[2]), "A skip")):
        decide()
        db.session.commit()
        pull_everyone()
    for name in phones:
        held = {key[1] for key in replicas[name] if key[0] == "sites"}
        assert held == {canal.id, proposals[0]}, name
