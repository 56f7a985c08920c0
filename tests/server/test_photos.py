"""Photo uploads: a per-device rate and quota, and location taken out of the stored bytes."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import ExifTags, Image

from server import blobs, photo_location
from server.extensions import db
from server.models import Answer, Blob, utcnow
from tests.conftest import mutation, sign_in, street_answers, visit

ORIENTATION_RIGHT_SIDE_UP_AFTER_90 = 6  # "rotate 90° clockwise to show"


def photo_with_gps(fmt="JPEG", colour=(200, 30, 30), orientation=ORIENTATION_RIGHT_SIDE_UP_AFTER_90) -> bytes:
    """A real photo (Pillow-made) whose EXIF holds a GPS position, an orientation and a camera make."""
    image = Image.new("RGB", (64, 32), colour)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "KerbCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (53.0, 32.0, 24.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (2.0, 37.0, 48.0)
    out = io.BytesIO()
    image.save(out, fmt, exif=exif.tobytes())
    return out.getvalue()


def exif_of(data: bytes):
    with Image.open(io.BytesIO(data)) as image:
        return image.getexif()


def png(n: int) -> bytes:
    """A distinct small PNG-signed photo for each n (no metadata to strip)."""
    return b"\x89PNG\r\n\x1a\n" + n.to_bytes(4, "big") * 16


def put(client, token, data: bytes):
    sha = hashlib.sha256(data).hexdigest()
    return client.put(f"/api/sync/v1/blobs/{sha}", data=data, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def rep(make_area, enrol):
    area = make_area("millbrook", "Millbrook")
    token, body = enrol(area)
    return area, token, body


# -- rate and quota ------------------------------------------------------------------------------


def test_the_31st_new_photo_in_a_minute_is_429_with_retry_after(app, client, rep, make_area, enrol):
    _area, token, _body = rep
    for n in range(30):
        assert put(client, token, png(n)).status_code == 201
    refused = put(client, token, png(30))
    assert refused.status_code == 429
    assert refused.get_json()["code"] == "too_many_requests" and refused.get_json()["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert db.session.get(Blob, hashlib.sha256(png(30)).hexdigest()) is None
    # Another phone is not held back by this one.
    other_token, _ = enrol(make_area(), name="Other rep")
    assert put(client, other_token, png(30)).status_code == 201


def test_sending_a_photo_already_here_again_is_not_counted_or_refused(app, client, rep):
    _area, token, _body = rep
    app.config["PHOTO_RATE_PER_MINUTE"] = 2
    assert put(client, token, png(1)).status_code == 201
    assert put(client, token, png(2)).status_code == 201
    assert put(client, token, png(1)).status_code == 200  # a retry after a lost answer


def test_the_rate_counts_only_the_last_minute(app, client, rep):
    _area, token, body = rep
    app.config["PHOTO_RATE_PER_MINUTE"] = 2
    assert put(client, token, png(1)).status_code == 201
    assert put(client, token, png(2)).status_code == 201
    assert put(client, token, png(3)).status_code == 429
    db.session.execute(db.update(Blob).values(created_at=utcnow() - timedelta(seconds=61)))
    db.session.commit()
    assert put(client, token, png(3)).status_code == 201


def test_over_the_photo_count_quota_is_refused_with_its_own_code(app, client, rep, make_area, enrol):
    _area, token, body = rep
    app.config.update(PHOTO_QUOTA_COUNT=3)
    for n in range(3):
        assert put(client, token, png(n)).status_code == 201
    db.session.execute(db.update(Blob).values(created_at=utcnow() - timedelta(days=2)))
    db.session.commit()
    refused = put(client, token, png(3))
    assert refused.status_code == 403
    envelope = refused.get_json()
    assert envelope["code"] == "photo_quota_exceeded"
    assert "30 days" in envelope["message"] and "Needs attention" in envelope["message"]
    assert "Retry-After" not in refused.headers  # not a wait: the client sets the visit aside
    other_token, _ = enrol(make_area(), name="Other rep")
    assert put(client, other_token, png(3)).status_code == 201


def test_over_the_photo_bytes_quota_is_refused_and_the_period_rolls(app, client, rep):
    _area, token, _body = rep
    app.config.update(PHOTO_QUOTA_BYTES=len(png(0)) * 2)
    assert put(client, token, png(0)).status_code == 201
    assert put(client, token, png(1)).status_code == 201
    assert put(client, token, png(2)).get_json()["code"] == "photo_quota_exceeded"
    # Photos older than the period no longer count.
    db.session.execute(db.update(Blob).values(created_at=utcnow() - timedelta(days=31)))
    db.session.commit()
    assert put(client, token, png(2)).status_code == 201


def test_the_limits_are_counted_in_the_database_for_every_worker(app, rep):
    """Two app instances (two workers) share one count: rows, not a worker's memory."""
    from server import create_app

    _area, token, body = rep
    app.config["PHOTO_RATE_PER_MINUTE"] = 2
    second_worker = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                                "SECRET_KEY": "test-secret", "BLOB_DIR": app.config["BLOB_DIR"]})
    second_worker.config["PHOTO_RATE_PER_MINUTE"] = 2
    answers = []
    for worker, photo in ((app, 1), (second_worker, 2), (app, 3), (second_worker, 3)):
        answers.append(put(worker.test_client(), token, png(photo)).status_code)
        db.session.rollback()  # the first worker's requests share the test's session: end its transaction
    assert answers == [201, 201, 429, 429]
    with second_worker.app_context():
        db.session.remove()
        db.engine.dispose()


# -- location ----------------------------------------------------------------------------------


def test_stored_and_served_photo_has_no_gps_but_keeps_its_orientation(client, rep, make_site, publish_forms, sync):
    from server import operations

    area, token, body = rep
    original = photo_with_gps()
    assert exif_of(original).get_ifd(ExifTags.IFD.GPSInfo)  # the test photo really carries a position
    sha = hashlib.sha256(original).hexdigest()
    assert put(client, token, original).status_code == 201
    row = db.session.get(Blob, sha)
    stored = blobs.store().get(row.stored_as)
    assert row.stored_sha256 == hashlib.sha256(stored).hexdigest() != sha
    assert not exif_of(stored).get_ifd(ExifTags.IFD.GPSInfo)
    assert exif_of(stored)[ExifTags.Base.Orientation] == ORIENTATION_RIGHT_SIDE_UP_AFTER_90
    assert exif_of(stored)[ExifTags.Base.Make] == "KerbCam"
    with Image.open(io.BytesIO(stored)) as image:
        image.load()
        assert image.size == (64, 32)
    # Only metadata changed: the image data are the camera's, byte for byte.
    scan = original.index(b"\xff\xda")
    assert stored.endswith(original[scan:])
    # The visit names the photo by the hash the phone computed, and finds it.
    site = make_site(area)
    publish_forms()
    item = mutation(visit(site, answers=street_answers(litter={"grade": "C", "photos": [sha]})))
    (result,) = sync(token, [item]).get_json()["results"]
    assert result["status"] == "applied"
    assert db.session.get(Answer, (item["data"]["id"], "litter")).photos == [sha]
    operations.create_person("Cora", email="cora@example.org", password="correct horse battery",
                             roles=[("coordinator", area)])
    db.session.commit()
    sign_in(client, "cora@example.org")
    with client.get(f"/coordinator/{area.slug}/photos/{sha}") as served:  # streamed: closed when read
        assert served.status_code == 200 and served.is_streamed and served.data == stored
    # A second upload of the same original is a no-op, and HEAD by the original name finds it.
    assert put(client, token, original).status_code == 200
    assert client.head(f"/api/sync/v1/blobs/{sha}", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert db.session.query(Blob).count() == 1


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_gps_is_taken_out_of_png_and_webp_too(client, rep, fmt):
    _area, token, _body = rep
    original = photo_with_gps(fmt)
    assert exif_of(original).get_ifd(ExifTags.IFD.GPSInfo)
    assert put(client, token, original).status_code == 201
    stored = blobs.store().get(db.session.get(Blob, hashlib.sha256(original).hexdigest()).stored_as)
    assert not exif_of(stored).get_ifd(ExifTags.IFD.GPSInfo)
    assert exif_of(stored)[ExifTags.Base.Orientation] == ORIENTATION_RIGHT_SIDE_UP_AFTER_90
    with Image.open(io.BytesIO(stored)) as image:
        image.load()
        assert image.size == (64, 32)


def test_xmp_which_may_hold_a_position_is_dropped_from_a_jpeg():
    image = Image.new("RGB", (16, 16), (0, 90, 0))
    out = io.BytesIO()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><exif:GPSLatitude>53,32.4N</exif:GPSLatitude></x:xmpmeta>'
    image.save(out, "JPEG", xmp=xmp)
    assert b"GPSLatitude" in out.getvalue()
    assert b"GPSLatitude" not in photo_location.strip_location(out.getvalue(), "image/jpeg")


def test_a_photo_without_metadata_is_stored_as_it_came(client, rep):
    _area, token, _body = rep
    image = Image.new("RGB", (16, 16), (0, 0, 200))
    out = io.BytesIO()
    image.save(out, "JPEG")
    plain = out.getvalue()
    assert put(client, token, plain).status_code == 201
    row = db.session.get(Blob, hashlib.sha256(plain).hexdigest())
    assert row.stored_sha256 is None and blobs.store().get(row.stored_as) == plain


def test_an_area_that_keeps_location_keeps_it(client, rep):
    area, token, _body = rep
    area.keep_photo_location = True
    db.session.commit()
    original = photo_with_gps()
    assert put(client, token, original).status_code == 201
    row = db.session.get(Blob, hashlib.sha256(original).hexdigest())
    assert row.stored_sha256 is None
    assert exif_of(blobs.store().get(row.stored_as)).get_ifd(ExifTags.IFD.GPSInfo)


def test_location_is_stripped_if_any_of_the_volunteers_areas_strips_it(client, rep, make_area):
    from server.models import Person, Role

    area, token, body = rep
    area.keep_photo_location = True
    other = make_area()
    db.session.add(Role(person_id=body["person"]["id"], area_id=other.id, role="street_rep"))
    db.session.commit()
    assert db.session.get(Person, body["person"]["id"]) is not None
    original = photo_with_gps()
    assert put(client, token, original).status_code == 201
    row = db.session.get(Blob, hashlib.sha256(original).hexdigest())
    assert not exif_of(blobs.store().get(row.stored_as)).get_ifd(ExifTags.IFD.GPSInfo)


def test_a_photo_whose_position_survives_stripping_is_refused(client, rep, monkeypatch):
    """Negative control for the last check: a stripper that does nothing is caught, not trusted."""
    _area, token, _body = rep
    monkeypatch.setattr(photo_location, "_strip_jpeg", lambda data: data)
    refused = put(client, token, photo_with_gps())
    assert refused.status_code == 415 and refused.get_json()["code"] == "location_not_removable"
    assert db.session.query(Blob).count() == 0


def test_a_coordinator_chooses_to_keep_location_on_the_area_settings_page(client, rep):
    from server import operations

    area, _token, _body = rep
    operations.create_person("Cora", email="cora@example.org", password="correct horse battery",
                             roles=[("coordinator", area)])
    db.session.commit()
    csrf = sign_in(client, "cora@example.org")
    page = client.get(f"/coordinator/{area.slug}/settings")
    assert page.status_code == 200 and "Take the location out of photos" in page.get_data(as_text=True)
    saved = client.post(f"/coordinator/{area.slug}/settings", data={"csrf_token": csrf, "keep_photo_location": "yes"})
    assert saved.status_code == 302
    db.session.expire_all()
    assert area.keep_photo_location is True
    client.post(f"/coordinator/{area.slug}/settings", data={"csrf_token": csrf, "keep_photo_location": "no"})
    db.session.expire_all()
    assert area.keep_photo_location is False


def test_a_coordinator_of_another_area_cannot_change_its_settings(client, rep, make_area):
    from server import operations

    area, _token, _body = rep
    elsewhere = make_area()
    operations.create_person("Otto", email="otto@example.org", password="correct horse battery",
                             roles=[("coordinator", elsewhere)])
    db.session.commit()
    csrf = sign_in(client, "otto@example.org")
    assert client.get(f"/coordinator/{area.slug}/settings").status_code in (403, 404)
    refused = client.post(f"/coordinator/{area.slug}/settings", data={"csrf_token": csrf, "keep_photo_location": "yes"})
    assert refused.status_code in (403, 404)
    db.session.expire_all()
    assert area.keep_photo_location is False


# -- hostile bytes ------------------------------------------------------------------------------

SAMPLES = {"image/jpeg": photo_with_gps("JPEG"), "image/png": photo_with_gps("PNG"),
           "image/webp": photo_with_gps("WEBP")}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(SAMPLES)), cut=st.integers(min_value=0, max_value=2000),
       flips=st.lists(st.tuples(st.integers(min_value=0, max_value=2000), st.integers(min_value=0, max_value=255)),
                      max_size=6))
def test_damaged_photos_are_stripped_or_refused_never_an_error(kind, cut, flips):
    """A truncated or corrupted camera photo either comes out without a position or is refused."""
    data = bytearray(SAMPLES[kind][:max(cut, 12)])
    for at, value in flips:
        if 12 <= at < len(data):
            data[at] = value
    try:
        stripped = photo_location.strip_location(bytes(data), kind)
    except photo_location.LocationNotRemovable:
        return
    assert not photo_location.has_location(stripped)
