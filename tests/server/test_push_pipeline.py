"""The push reads as one pipeline: a checker per mutation type, one rule for who may do what where."""

from __future__ import annotations

import pytest

from server import operations, push
from server.extensions import db
from sync.protocol import FORM_KINDS, FORM_ROLES, MUTATION_TYPES, STAFF_ROLES
from tests.conftest import mutation, visit


def test_every_mutation_type_of_the_protocol_has_exactly_one_checker():
    # A type added to sync.protocol.MUTATION_TYPES without a checker fails here, not in a push.
    assert set(push.CHECKERS) == set(MUTATION_TYPES)
    assert all(callable(check) for check in push.CHECKERS.values())


def test_every_form_kind_says_which_roles_fill_it():
    assert set(FORM_ROLES) == set(FORM_KINDS)


def test_a_type_without_a_checker_is_refused_alone_not_a_crash(make_area, make_site, publish_forms, enrol, sync,
                                                                monkeypatch, no_server_errors):
    """Negative control for the table test: what a push does if the table ever misses a type."""
    area = make_area()
    site = make_site(area)
    publish_forms()
    token, _ = enrol(area)
    monkeypatch.setattr(push, "CHECKERS", {k: v for k, v in push.CHECKERS.items() if k != "site.update"})
    edit = mutation({"id": site.id, "base_version": 1, "patch": {"notes": "Gate"}}, kind="site.update", seq=2)
    results = sync(token, [mutation(visit(site), seq=1), edit]).get_json()["results"]
    assert results[0]["status"] == "applied"
    assert results[1]["status"] == "rejected" and results[1]["code"] == "type_unsupported"


def _context(roles_by_area: dict) -> push.Context:
    return push.Context(device=None, person=None, area_ids=set(roles_by_area) - {None}, roles_by_area=roles_by_area)


@pytest.mark.parametrize("kind", FORM_KINDS)
def test_who_may_fill_each_kind_of_form(kind):
    for role in ("street_rep", "mystery_shopper", "partner"):
        ctx = _context({"a1": {role}})
        assert ctx.may("a1", FORM_ROLES[kind]) is (role in FORM_ROLES[kind]), (kind, role)
        assert ctx.may("a2", FORM_ROLES[kind]) is False


def test_staff_may_do_anything_in_their_areas_and_an_admin_everywhere():
    for staff in STAFF_ROLES:
        coordinator = _context({"a1": {staff}})
        assert coordinator.may("a1", ("street_rep",)) and coordinator.may("a1", ())
        assert not coordinator.may("a2", ())
    admin = _context({None: {"admin"}})
    assert admin.may("anywhere", ("street_rep",)) and admin.may(None, ())


def test_roles_by_area_is_the_persons_roles_grouped(make_area):
    first, second = make_area(), make_area()
    person = operations.create_person("Sam", roles=[("street_rep", first), ("mystery_shopper", first),
                                                    ("partner", second), ("admin", None)])
    db.session.commit()
    assert operations.roles_by_area(person) == {first.id: {"street_rep", "mystery_shopper"},
                                                second.id: {"partner"}, None: {"admin"}}


def test_an_applied_visit_and_an_applied_edit_carry_their_own_kind_of_rows(make_area, make_site, publish_forms, enrol,
                                                                           sync, monkeypatch):
    area = make_area()
    site = make_site(area)
    publish_forms()
    token, _ = enrol(area)
    seen = []
    insert = push._insert_effects
    monkeypatch.setattr(push, "_insert_effects", lambda items: (seen.extend(i.effect for i in items), insert(items)))
    new_site = visit(None) | {"new_site": {"name": "Back alley"}}
    edit = mutation({"id": site.id, "base_version": 1, "patch": {"name": "Canal St"}}, kind="site.update", seq=3)
    results = sync(token, [mutation(visit(site), seq=1), mutation(new_site, seq=2), edit]).get_json()["results"]
    assert [r["status"] for r in results] == ["applied"] * 3
    # A street rep's edit of a site is held for a coordinator (server/coordinator/sites.py), not applied.
    assert [type(effect) for effect in seen] == [push.NewVisit, push.NewVisit, push.HeldSiteEdit]
    assert results[2]["pending_review"] is True
    visits = [effect for effect in seen if isinstance(effect, push.NewVisit)]
    assert sorted(v.site is None for v in visits) == [False, True]
    assert all(len(v.answers) == 12 for v in visits)
    (held,) = [effect for effect in seen if isinstance(effect, push.HeldSiteEdit)]
    assert held.row["patch"] == {"name": "Canal St"} and held.values["name"] == "Canal St"
    db.session.refresh(site)
    assert site.name == "Canal Street" and site.version == 1
