"""Shared forms belong to admins; a coordinator makes and publishes their area's own copy."""

from __future__ import annotations

import json

import pytest

from server import operations
from server.extensions import db
from server.models import Form, FormVersion
from tests.conftest import mutation, sign_in, visit

PASSWORD = "correct horse battery"


@pytest.fixture
def world(app, client, make_area, make_site, publish_forms, enrol):
    """Two areas on the shared forms, a coordinator of the first and an admin."""
    publish_forms()
    north, south = make_area("north", "North"), make_area("south", "South")
    north_site, south_site = make_site(north, "North Street"), make_site(south, "South Street")
    operations.create_person("Cora", email="cora@example.org", password=PASSWORD, roles=[("coordinator", north)])
    operations.create_person("Ada", email="ada@example.org", password=PASSWORD, roles=[("admin", None)])
    db.session.commit()
    north_token, _ = enrol(north, name="Nell")
    south_token, _ = enrol(south, name="Sam")
    return {"north": north, "south": south, "north_site": north_site, "south_site": south_site,
            "north_token": north_token, "south_token": south_token}


def _street_versions():
    return {(v.form_id, v.version): v.status for v in db.session.execute(db.select(FormVersion)).scalars()}


@pytest.mark.parametrize("path, method", [
    ("/coordinator/north/forms/street/drafts", "post"),
    ("/coordinator/north/forms/street/1/publish", "post"),
    ("/coordinator/north/forms/street/1/retire", "post"),
    ("/coordinator/north/forms/street/1", "post"),
])
def test_a_coordinator_cannot_change_a_shared_form(client, world, path, method):
    csrf = sign_in(client, "cora@example.org")
    before = _street_versions()
    response = client.open(path, method=method.upper(), data={"csrf_token": csrf, "definition": "{}"})
    assert response.status_code == 403
    db.session.expire_all()
    assert _street_versions() == before


def test_a_coordinator_can_still_read_a_shared_form(client, world):
    sign_in(client, "cora@example.org")
    page = client.get("/coordinator/north/forms/street/1")
    assert page.status_code == 200
    assert "Only an admin can change" in page.get_data(as_text=True)
    forms_page = client.get("/coordinator/north/forms").get_data(as_text=True)
    assert "/coordinator/north/forms/street/copy" in forms_page
    assert "/coordinator/north/forms/street/1/retire" not in forms_page


def test_an_admin_drafts_publishes_and_retires_a_shared_form(client, world):
    csrf = sign_in(client, "ada@example.org")
    assert client.post("/coordinator/north/forms/street/drafts", data={"csrf_token": csrf}).status_code == 302
    assert client.post("/coordinator/north/forms/street/2/publish", data={"csrf_token": csrf}).status_code == 302
    assert client.post("/coordinator/north/forms/street/1/retire", data={"csrf_token": csrf}).status_code == 302
    db.session.expire_all()
    assert _street_versions()[("street", 2)] == "published"
    assert _street_versions()[("street", 1)] == "retired"


def _publish_north_copy(client, title="North's street check"):
    csrf = sign_in(client, "cora@example.org")
    response = client.post("/coordinator/north/forms/street/copy", data={"csrf_token": csrf})
    assert response.status_code == 302
    copy = db.session.execute(db.select(Form).where(Form.copy_of == "street")).scalar_one()
    edited = {**copy.versions[0].definition, "title": title}
    page = client.post(f"/coordinator/north/forms/{copy.id}/1",
                       data={"csrf_token": csrf, "editor": "json", "definition": json.dumps(edited)})
    assert page.status_code == 302
    assert client.post(f"/coordinator/north/forms/{copy.id}/1/publish", data={"csrf_token": csrf}).status_code == 302
    db.session.expire_all()
    return db.session.get(Form, copy.id)


def test_a_coordinators_copy_is_the_areas_own_and_keeps_the_line_keys(client, world):
    copy = _publish_north_copy(client)
    shared = db.session.get(Form, "street")
    assert copy.area_id == world["north"].id and copy.copy_of == "street" and copy.kind == "street"
    assert copy.versions[0].status == "published"

    def keys(definition):
        return [line["key"] for section in definition["sections"] for line in section["lines"]]

    assert keys(copy.versions[0].definition) == keys(shared.versions[0].definition)
    assert operations.replaced_shared_forms(world["north"].id) == {"street"}
    assert operations.replaced_shared_forms(world["south"].id) == set()


def test_a_second_copy_is_refused(client, world):
    copy = _publish_north_copy(client)
    csrf = sign_in(client, "cora@example.org")
    client.post("/coordinator/north/forms/street/copy", data={"csrf_token": csrf})
    assert db.session.execute(db.select(Form.id).where(Form.copy_of == "street")).scalars().all() == [copy.id]


def test_only_the_copys_area_pulls_it_and_other_areas_keep_the_shared_form(client, world, sync):
    copy = _publish_north_copy(client)

    def forms(token):
        return {c["id"]: c["data"] for c in sync(token).get_json()["changes"] if c["collection"] == "forms"}

    north, south = forms(world["north_token"]), forms(world["south_token"])
    assert north[f"{copy.id}@1"]["copy_of"] == "street"
    assert f"{copy.id}@1" not in south
    assert "street@1" in south


def test_push_accepts_the_copy_in_its_area_only(client, world, sync):
    copy = _publish_north_copy(client)
    north = sync(world["north_token"], [mutation(visit(world["north_site"], form_id=copy.id))]).get_json()
    assert north["results"][0]["status"] == "applied"
    south = sync(world["south_token"], [mutation(visit(world["south_site"], form_id=copy.id))]).get_json()
    assert south["results"][0]["status"] == "rejected"
    assert south["results"][0]["code"] == "form_not_for_area"
    # South still reports on the shared form.
    shared = sync(world["south_token"], [mutation(visit(world["south_site"]), seq=2)]).get_json()
    assert shared["results"][0]["status"] == "applied"


def test_each_public_page_shows_the_form_that_applies_to_its_area(client, world):
    _publish_north_copy(client, title="North's own street check")
    client.post("/logout", data={})
    north = client.get("/area/north").get_data(as_text=True)
    south = client.get("/area/south").get_data(as_text=True)
    assert "North&#39;s own street check" in north or "North's own street check" in north
    assert "Neighbourhood Agreement Monitoring Form" not in north
    assert "Neighbourhood Agreement Monitoring Form" in south
    assert "North" not in south.split("What street reps check")[1]
