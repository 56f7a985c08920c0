"""Form lifecycle guards (issue 10, point 7): retiring goes through a confirmation page that says
how many phones still use the version, and the only published version of a form that phones
use cannot be retired until a successor is published."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from server import operations
from server.extensions import db
from server.models import AuditEntry, Change, Device, FormVersion, utcnow
from server.seed_content import STREET_FORM
from tests.conftest import sign_in

PASSWORD = "correct horse battery"


@pytest.fixture
def area_form(client, make_area, publish_forms, enrol, sync):
    """An area with its own street form (version 1, the only published one) and four phones:
    a rep who synced today, a rep whose phone was revoked, a rep last seen 40 days ago, and a
    mystery shopper (who does not fill street forms)."""
    area = make_area("millbrook", "Millbrook")
    publish_forms()  # the shared forms, so checklists and shops exist; the area has its own street form
    own = operations.publish_form_version(operations.draft_form_version("millbrook-street", STREET_FORM,
                                                                        area_id=area.id))
    operations.create_person("Cora Coordinator", email="cora@example.org", password=PASSWORD,
                             roles=[("coordinator", area)])
    db.session.commit()
    phones = {}
    for name, role in (("active", "street_rep"), ("revoked", "street_rep"), ("away", "street_rep"),
                       ("shopper", "mystery_shopper")):
        token, body = enrol(area, role=role, name=name)
        assert sync(token).status_code == 200
        phones[name] = (token, body["device_id"])
    operations.revoke_device(db.session.get(Device, phones["revoked"][1]))
    db.session.get(Device, phones["away"][1]).last_sync_at = utcnow() - timedelta(days=40)
    db.session.commit()
    return {"area": area, "form_id": own.form_id, "phones": phones}


def _retire_page(client, form_id, version):
    response = client.get(f"/coordinator/millbrook/forms/{form_id}/{version}/retire")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _post(client, csrf, path):
    return client.post(path, data={"csrf_token": csrf})


def test_forms_page_links_to_the_confirmation_not_straight_to_retiring(client, area_form):
    sign_in(client, "cora@example.org")
    page = client.get("/coordinator/millbrook/forms").get_data(as_text=True)
    assert f'href="/coordinator/millbrook/forms/{area_form["form_id"]}/1/retire"' in page
    assert f'action="/coordinator/millbrook/forms/{area_form["form_id"]}/1/retire"' not in page


def test_confirmation_counts_the_phones_that_still_use_the_version(client, area_form):
    sign_in(client, "cora@example.org")
    page = _retire_page(client, area_form["form_id"], 1)
    # Only the active rep's phone: not the revoked one, not the one away 40 days, not the shopper's.
    assert "1 phone synced in the last 30 days and still offers this version." in page
    # The one away still counts among those that could send visits on it.
    assert "In all, 2 phones could still send visits filled in on it." in page


def test_the_only_published_version_that_phones_use_cannot_be_retired(client, area_form):
    csrf = sign_in(client, "cora@example.org")
    page = _retire_page(client, area_form["form_id"], 1)
    assert "This is the only published version of “Neighbourhood Agreement Monitoring Form”, and 2 phones use the form." in page
    assert "Publish a new version first" in page
    # The page offers no retire button, and a post made anyway is refused.
    assert f'action="/coordinator/millbrook/forms/{area_form["form_id"]}/1/retire"' not in page
    response = _post(client, csrf, f"/coordinator/millbrook/forms/{area_form['form_id']}/1/retire")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/{area_form['form_id']}/1/retire")
    db.session.expire_all()
    assert db.session.get(FormVersion, (area_form["form_id"], 1)).status == "published"
    assert not db.session.execute(select(AuditEntry).where(AuditEntry.action == "form.retire")).first()
    assert not db.session.execute(select(Change).where(Change.record_id.like("form-retired-%"))).first()
    # The operation refuses it too, whoever calls it.
    with pytest.raises(operations.OperationError) as refused:
        operations.retire_form_version(db.session.get(FormVersion, (area_form["form_id"], 1)))
    assert refused.value.code == "last_published"
    db.session.rollback()


def test_after_a_successor_is_published_the_old_version_can_be_retired(client, area_form, sync):
    csrf = sign_in(client, "cora@example.org")
    form_id = area_form["form_id"]
    draft = operations.draft_form_version(form_id, STREET_FORM, area_id=area_form["area"].id)
    db.session.commit()
    assert _post(client, csrf, f"/coordinator/millbrook/forms/{form_id}/{draft.version}/publish").status_code == 302
    # The active phone has not synced since version 2 was published: it still offers version 1.
    page = _retire_page(client, form_id, 1)
    assert "1 phone synced in the last 30 days and still offers this version." in page
    assert "before version 2 was" in page
    assert "Phones offer version 2 instead" in page
    assert sync(area_form["phones"]["active"][0]).status_code == 200
    assert "0 phones synced in the last 30 days" in _retire_page(client, form_id, 1)
    response = _post(client, csrf, f"/coordinator/millbrook/forms/{form_id}/1/retire")
    assert response.status_code == 302 and response.headers["Location"].endswith("/coordinator/millbrook/forms")
    db.session.expire_all()
    assert db.session.get(FormVersion, (form_id, 1)).status == "retired"
    assert db.session.execute(select(AuditEntry).where(AuditEntry.action == "form.retire")).first()


def test_a_form_no_phone_uses_can_lose_its_only_version(client, make_area, publish_forms):
    area = make_area("millbrook", "Millbrook")
    publish_forms()
    own = operations.publish_form_version(operations.draft_form_version("millbrook-street", STREET_FORM,
                                                                        area_id=area.id))
    operations.create_person("Cora Coordinator", email="cora@example.org", password=PASSWORD,
                             roles=[("coordinator", area)])
    db.session.commit()
    csrf = sign_in(client, "cora@example.org")
    page = _retire_page(client, own.form_id, 1)
    assert "0 phones synced" in page and "only published version" not in page
    assert _post(client, csrf, f"/coordinator/millbrook/forms/{own.form_id}/1/retire").status_code == 302
    db.session.expire_all()
    assert db.session.get(FormVersion, (own.form_id, 1)).status == "retired"


def test_an_areas_copy_may_be_retired_when_the_shared_form_takes_over(client, area_form):
    """The copy's phones fall back to the shared form: they keep a street form to fill."""
    csrf = sign_in(client, "cora@example.org")
    copy = operations.copy_shared_form(operations.db.session.get(operations.Form, "street"), area_form["area"])
    operations.publish_form_version(copy)
    db.session.commit()
    page = _retire_page(client, copy.form_id, copy.version)
    assert "offer the shared form again (version 1)" in page
    assert _post(client, csrf, f"/coordinator/millbrook/forms/{copy.form_id}/{copy.version}/retire").status_code == 302
    db.session.expire_all()
    assert db.session.get(FormVersion, (copy.form_id, copy.version)).status == "retired"


def test_a_version_that_is_not_published_says_so(client, area_form):
    sign_in(client, "cora@example.org")
    draft = operations.draft_form_version(area_form["form_id"], STREET_FORM, area_id=area_form["area"].id)
    db.session.commit()
    page = _retire_page(client, area_form["form_id"], draft.version)
    assert re.search(r"This version is not published \(its status: Draft\)", page)
