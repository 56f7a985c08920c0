"""The photo store: one contract for the local folder and for S3, and the sync API on S3.

The S3 store is tested over HTTP against a real S3-compatible server: moto's standalone
server, started here as a subprocess on a free loopback port (never moto's in-process mock,
which would stand in for the network and prove nothing about it).
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from datetime import timedelta

import boto3
import pytest

from bench.hosts import MotoS3, free_port
from server import blobs, create_app, operations, retention
from server.extensions import db
from server.models import Blob, Submission, utcnow
from tests.conftest import _empty_postgres, is_postgres, mutation, sign_in, street_answers, visit, TEST_DATABASE_URL

BUCKET = "kerbside-test-photos"


def _closed_endpoint() -> str:
    """An address on loopback where nothing listens: a store that is down."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """A moto S3 server in its own process for the session (bench/hosts.py), with the test bucket made."""
    with pytest.MonkeyPatch.context() as env:
        # moto takes any keys; these keep boto3 from looking for real ones (or a metadata service).
        env.setenv("AWS_ACCESS_KEY_ID", "kerbside-test")
        env.setenv("AWS_SECRET_ACCESS_KEY", "kerbside-test-secret")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        env.delenv("AWS_PROFILE", raising=False)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        server = MotoS3(buckets=(BUCKET,), log_path=str(tmp_path_factory.mktemp("moto") / "moto.log")).start()
        try:
            yield server.endpoint
        finally:
            server.stop()


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch, tmp_path):
    """Every test here: test keys, no metadata service lookups, and its own instance folder."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "kerbside-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "kerbside-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("KERBSIDE_INSTANCE", str(tmp_path / "instance"))


@pytest.fixture
def s3_client(s3_endpoint):
    return boto3.client("s3", endpoint_url=s3_endpoint)


def local_store(tmp_path, s3_endpoint):
    return blobs.LocalBlobStore(str(tmp_path / "blobs"))


def s3_store(tmp_path, s3_endpoint):
    # Each test its own prefix in the one bucket: tests see only their own objects.
    return blobs.S3BlobStore(BUCKET, f"test-{uuid.uuid4().hex}/", endpoint_url=s3_endpoint)


@pytest.fixture(params=[local_store, s3_store], ids=["local", "s3"])
def store(request, tmp_path):
    return request.param(tmp_path, request.getfixturevalue("s3_endpoint"))


def down_local(tmp_path):
    (tmp_path / "not-a-folder").write_bytes(b"")
    return blobs.LocalBlobStore(str(tmp_path / "not-a-folder" / "blobs"))


def down_s3(tmp_path):
    return blobs.S3BlobStore(BUCKET, "x/", endpoint_url=_closed_endpoint())


@pytest.fixture(params=[down_local, down_s3], ids=["local", "s3"])
def unreachable(request, tmp_path, s3_endpoint):
    return request.param(tmp_path)


def name(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the contract, on both stores -----------------------------------------------------------------


def test_put_get_exists_delete(store):
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(1000)
    assert not store.exists(name(data))
    store.put(name(data), data)
    assert store.exists(name(data))
    assert store.get(name(data)) == data
    store.delete(name(data))
    assert not store.exists(name(data))
    with pytest.raises(blobs.BlobMissing):
        store.get(name(data))


def test_a_missing_name_is_missing_everywhere_and_deleting_it_is_no_error(store):
    missing = name(b"never stored")
    assert not store.exists(missing)
    assert store.exists_many([missing]) == set()
    with pytest.raises(blobs.BlobMissing):
        store.get(missing)
    with pytest.raises(FileNotFoundError):  # what older callers catch
        store.stream(missing)
    store.delete(missing)  # retention may run twice
    store.delete(missing)


def test_get_streams_in_chunks_of_the_size_asked(store):
    data = os.urandom(200_000)
    store.put(name(data), data)
    reader = store.stream(name(data), chunk_size=64 * 1024)
    try:
        assert reader.size == len(data)
        chunks = list(reader)
    finally:
        reader.close()
    assert len(chunks) >= 4 and all(len(chunk) <= 64 * 1024 for chunk in chunks)
    assert b"".join(chunks) == data


class ReadWatch(io.BufferedReader):
    """A file that records each read's size: a store must take a file in chunks, never whole."""

    def __init__(self, path):
        super().__init__(io.FileIO(path, "rb"))
        self.sizes: list[int | None] = []

    def read(self, size=-1):
        self.sizes.append(size)
        return super().read(size)

    def read1(self, size=-1):
        self.sizes.append(size)
        return super().read1(size)


def test_put_from_a_file_reads_it_in_chunks(store, tmp_path):
    data = os.urandom(3 * 1024 * 1024)
    path = tmp_path / "photo.bin"
    path.write_bytes(data)
    with ReadWatch(path) as handle:
        store.put(name(data), handle)
        reads = handle.sizes
    assert reads, "the file was never read"
    # Never an unbounded read (the whole file at once), never one chunk as big as the photo.
    assert all(size is not None and 0 < size <= 1024 * 1024 for size in reads), reads
    assert store.get(name(data)) == data


def test_put_from_a_stream(store):
    data = os.urandom(150_000)
    store.put(name(data), io.BytesIO(data))
    assert store.get(name(data)) == data


@pytest.mark.parametrize("as_file", [False, True], ids=["bytes", "file"])
def test_bytes_that_do_not_match_their_name_are_refused_and_never_visible(store, as_file):
    data, other = os.urandom(5000), os.urandom(5000)
    with pytest.raises(blobs.BlobCorrupt):
        store.put(name(other), io.BytesIO(data) if as_file else data)
    assert not store.exists(name(other)) and not store.exists(name(data))


def test_putting_the_same_content_again_is_harmless(store):
    data = os.urandom(70_000)
    store.put(name(data), data)
    store.put(name(data), io.BytesIO(data))
    assert store.exists(name(data)) and store.get(name(data)) == data
    store.delete(name(data))
    assert not store.exists(name(data))


@pytest.mark.parametrize("size", [0, 1, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 1_000_003])
def test_what_comes_back_hashes_to_its_name(store, size):
    data = os.urandom(size)
    store.put(name(data), data)
    assert hashlib.sha256(store.get(name(data))).hexdigest() == name(data)
    digest = hashlib.sha256()
    reader = store.stream(name(data))
    try:
        for chunk in reader:
            digest.update(chunk)
    finally:
        reader.close()
    assert digest.hexdigest() == name(data) and reader.size == size


def test_exists_many_names_those_stored(store):
    kept = [os.urandom(100 + n) for n in range(3)]
    for data in kept:
        store.put(name(data), data)
    asked = [name(data) for data in kept] + [name(b"a"), name(b"b")]
    assert store.exists_many(asked) == {name(data) for data in kept}


def test_ping_answers_when_the_store_is_there(store):
    store.ping()


def test_a_store_that_is_down_raises_unavailable(unreachable):
    with pytest.raises(blobs.BlobStoreUnavailable):
        unreachable.ping()
    data = b"\x89PNG\r\n\x1a\n"
    with pytest.raises(blobs.BlobStoreUnavailable):
        unreachable.put(name(data), data)


def test_an_object_store_that_is_down_never_reads_as_missing(tmp_path):
    # "Not here" would have the device upload again and again: a store that is down says so.
    unreachable, data = down_s3(tmp_path), b"\x89PNG\r\n\x1a\n"
    for call in (unreachable.exists, unreachable.stream, unreachable.delete, lambda key: unreachable.exists_many([key, key[::-1]])):
        with pytest.raises(blobs.BlobStoreUnavailable):
            call(name(data))


def test_ping_of_an_object_store_that_is_down_tries_once(tmp_path):
    """A readiness probe wants a quick answer: one try (the next probe is the retry), where requests get three."""
    store = down_s3(tmp_path)
    with pytest.raises(blobs.BlobStoreUnavailable):
        store.ping()
    tries = {"ping": 0, "request": 0}
    store._ping_client.meta.events.register("before-send.s3.HeadBucket", lambda **_: tries.update(ping=tries["ping"] + 1))
    store.client.meta.events.register("before-send.s3.HeadObject",
                                      lambda **_: tries.update(request=tries["request"] + 1))
    with pytest.raises(blobs.BlobStoreUnavailable):
        store.ping()
    with pytest.raises(blobs.BlobStoreUnavailable):
        store.exists(name(b"x"))
    assert tries == {"ping": 1, "request": 3}


def test_ping_of_a_bucket_that_is_not_there_raises(s3_endpoint):
    with pytest.raises(blobs.BlobStoreUnavailable):
        blobs.S3BlobStore("no-such-bucket-here", "", endpoint_url=s3_endpoint).ping()


# -- the one setting ------------------------------------------------------------------------------


def test_the_url_names_the_store():
    local = blobs.from_url("file:///srv/kerbside/photos")
    assert isinstance(local, blobs.LocalBlobStore) and local.root == "/srv/kerbside/photos"
    s3 = blobs.from_url("s3://council-photos/kerbside/live", endpoint_url="http://127.0.0.1:9")
    assert isinstance(s3, blobs.S3BlobStore)
    assert (s3.bucket, s3.prefix) == ("council-photos", "kerbside/live/")
    assert s3.client.meta.endpoint_url == "http://127.0.0.1:9"
    assert blobs.from_url("s3://council-photos").prefix == ""


@pytest.mark.parametrize("url", ["ftp://host/photos", "/srv/photos", "file://relative/photos", "s3://",
                                 "s3://Bad_Bucket/x", "s3://b", "s3://bucket/x?region=eu"])
def test_a_bad_url_is_refused_with_what_it_should_be(url):
    with pytest.raises(blobs.BlobUrlInvalid, match="file:///absolute/folder or s3://bucket/prefix"):
        blobs.from_url(url)


def test_a_url_with_credentials_is_refused_without_repeating_them():
    with pytest.raises(blobs.BlobUrlInvalid) as refused:
        blobs.from_url("s3://AKIAKERBSIDE:very-secret@bucket/photos")
    assert "very-secret" not in str(refused.value) and "AKIAKERBSIDE" not in str(refused.value)


def test_a_bad_setting_stops_the_start(tmp_path, monkeypatch):
    monkeypatch.setenv("KERBSIDE_BLOB_URL", "ftp://example.org/photos")
    with pytest.raises(blobs.BlobUrlInvalid, match="KERBSIDE_BLOB_URL"):
        create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'k.sqlite'}", "SECRET_KEY": "t"})


def test_the_setting_and_the_endpoint_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KERBSIDE_BLOB_URL", "s3://council-photos/kerbside")
    monkeypatch.setenv("KERBSIDE_BLOB_ENDPOINT_URL", "http://127.0.0.1:9")
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'k.sqlite'}", "SECRET_KEY": "t"})
    with app.app_context():
        made = blobs.store()
        assert isinstance(made, blobs.S3BlobStore) and made.prefix == "kerbside/"
        assert made.client.meta.endpoint_url == "http://127.0.0.1:9"
        db.engine.dispose()


def test_unset_it_is_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("KERBSIDE_BLOB_URL", raising=False)
    monkeypatch.delenv("KERBSIDE_BLOB_DIR", raising=False)
    monkeypatch.setenv("KERBSIDE_INSTANCE", str(tmp_path / "instance"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'k.sqlite'}", "SECRET_KEY": "t"})
    with app.app_context():
        made = blobs.store()
        assert isinstance(made, blobs.LocalBlobStore) and made.root == str(tmp_path / "instance" / "blobs")
        db.engine.dispose()


# -- the sync API and the coordinator's view with photos in S3 --------------------------------------


def _app(tmp_path, extra: dict):
    url = TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'kerbside.sqlite'}"
    return create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "test-secret", **extra})


@pytest.fixture
def s3_prefix():
    return f"app-{uuid.uuid4().hex}"


@pytest.fixture
def app(tmp_path, _postgres_schema, s3_endpoint, s3_prefix):
    """This module's app keeps its photos in the moto bucket, named by the one setting."""
    app = _app(tmp_path, {"BLOB_URL": f"s3://{BUCKET}/{s3_prefix}", "BLOB_ENDPOINT_URL": s3_endpoint})
    with app.app_context():
        if is_postgres():
            _empty_postgres()
        else:
            db.create_all()
        operations.init_state()
        db.session.commit()
        yield app
        db.session.remove()
        db.engine.dispose()


def jpeg_with_gps() -> bytes:
    from tests.server.test_photos import photo_with_gps

    return photo_with_gps()


def put(client, token, data: bytes):
    return client.put(f"/api/sync/v1/blobs/{name(data)}", data=data, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def field(client, make_area, make_site, publish_forms, enrol):
    area = make_area("millbrook", "Millbrook")
    site = make_site(area)
    publish_forms()
    token, _body = enrol(area)
    operations.create_person("Cora", email="cora@example.org", password="correct horse battery",
                             roles=[("coordinator", area)])
    db.session.commit()
    return area, site, token


def test_upload_push_and_the_coordinators_view_all_go_through_the_bucket(app, client, field, sync, s3_client,
                                                                         s3_prefix, no_server_errors):
    area, site, token = field
    assert isinstance(blobs.store(), blobs.S3BlobStore)
    original = jpeg_with_gps()
    assert put(client, token, original).status_code == 201
    row = db.session.get(Blob, name(original))
    assert row.stored_sha256 is not None  # its location was taken out: stored under its own hash
    # The object is in the bucket under the prefix, and nothing was written to the instance folder.
    stored = s3_client.get_object(Bucket=BUCKET, Key=f"{s3_prefix}/{row.stored_as}")["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == row.stored_as and len(stored) == row.size
    assert not os.path.exists(app.config["BLOB_DIR"])
    head = client.head(f"/api/sync/v1/blobs/{name(original)}", headers={"Authorization": f"Bearer {token}"})
    assert head.status_code == 200
    db.session.rollback()

    item = mutation(visit(site, answers=street_answers(litter={"grade": "C", "photos": [name(original)]})))
    (result,) = sync(token, [item]).get_json()["results"]
    assert result["status"] == "applied"
    db.session.rollback()

    sign_in(client, "cora@example.org")
    with client.get(f"/coordinator/{area.slug}/photos/{name(original)}") as served:
        assert served.status_code == 200 and served.is_streamed
        assert served.mimetype == "image/jpeg" and served.content_length == len(stored)
        assert served.data == stored


def test_a_push_naming_a_photo_whose_object_is_gone_is_deferred_until_it_is_sent_again(
        app, client, field, sync, s3_client, s3_prefix, no_server_errors):
    area, site, token = field
    photo = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)
    assert put(client, token, photo).status_code == 201
    db.session.rollback()
    # The row stays, the object goes (another host's store, a lost object, a bucket restored from backup).
    s3_client.delete_object(Bucket=BUCKET, Key=f"{s3_prefix}/{name(photo)}")
    assert db.session.get(Blob, name(photo)) is not None
    db.session.rollback()

    item = mutation(visit(site, answers=street_answers(litter={"grade": "C", "photos": [name(photo)]})))
    (result,) = sync(token, [item]).get_json()["results"]
    assert result["status"] == "deferred" and result["code"] == "attachment_missing"
    assert result["missing"] == [name(photo)]
    db.session.rollback()
    # The device asks before sending: the answer must be "not here", or it would never send it.
    head = client.head(f"/api/sync/v1/blobs/{name(photo)}", headers={"Authorization": f"Bearer {token}"})
    assert head.status_code == 404
    # Sending it again mends the row (not counted as a new photo), and the push then applies.
    app.config["PHOTO_QUOTA_COUNT"] = 1
    assert put(client, token, photo).status_code == 201
    db.session.rollback()
    assert db.session.query(Blob).count() == 1
    (result,) = sync(token, [item]).get_json()["results"]
    assert result["status"] == "applied"


def test_the_coordinators_view_of_a_photo_gone_from_the_bucket_is_404(app, client, field, sync, s3_client,
                                                                       s3_prefix):
    area, site, token = field
    photo = b"\x89PNG\r\n\x1a\n" + os.urandom(500)
    assert put(client, token, photo).status_code == 201
    s3_client.delete_object(Bucket=BUCKET, Key=f"{s3_prefix}/{name(photo)}")
    db.session.rollback()
    sign_in(client, "cora@example.org")
    assert client.get(f"/coordinator/{area.slug}/photos/{name(photo)}").status_code == 404


def test_retention_deletes_the_object_from_the_bucket(app, client, field, s3_client, s3_prefix):
    _area, _site, token = field
    photo = b"\x89PNG\r\n\x1a\n" + os.urandom(300)
    assert put(client, token, photo).status_code == 201
    db.session.execute(db.update(Blob).values(created_at=utcnow() - timedelta(days=30)))
    db.session.commit()
    periods = retention.RetentionPeriods(unreferenced_photo_days=7, revoked_device_days=90,
                                         rejected_payload_days=90, gps_days=90)
    report = retention.apply_retention(periods)
    assert report.unreferenced_photos == 1 and report.photo_files == 1
    listed = s3_client.list_objects_v2(Bucket=BUCKET, Prefix=f"{s3_prefix}/")
    assert listed["KeyCount"] == 0


def test_a_store_that_is_down_answers_503_to_an_upload_a_push_and_the_view(app, client, field, sync):
    area, site, token = field
    photo = b"\x89PNG\r\n\x1a\n" + os.urandom(300)
    assert put(client, token, photo).status_code == 201
    db.session.rollback()
    # The bucket's store goes out of reach (the same store as the setting makes, at an address where nothing listens).
    app.extensions["kerbside_blobs"] = blobs.S3BlobStore(BUCKET, "down/", endpoint_url=_closed_endpoint())
    other = b"\x89PNG\r\n\x1a\n" + os.urandom(301)
    refused = put(client, token, other)
    assert refused.status_code == 503 and refused.get_json()["code"] == "unavailable"
    assert int(refused.headers["Retry-After"]) > 0
    db.session.rollback()
    assert db.session.get(Blob, name(other)) is None  # no row for bytes that never arrived
    item = mutation(visit(site, answers=street_answers(litter={"grade": "C", "photos": [name(photo)]})))
    pushed = sync(token, [item])
    assert pushed.status_code == 503 and pushed.get_json()["code"] == "unavailable"
    db.session.rollback()
    assert db.session.query(Submission).count() == 0
    sign_in(client, "cora@example.org")
    page = client.get(f"/coordinator/{area.slug}/photos/{name(photo)}")
    assert page.status_code == 503 and page.mimetype == "text/html"


def _objects(s3_client, s3_prefix) -> list[str]:
    return [item["Key"] for item in s3_client.list_objects_v2(Bucket=BUCKET, Prefix=f"{s3_prefix}/").get("Contents", [])]


def test_bytes_that_do_not_match_their_name_never_reach_the_bucket(app, client, field, s3_client, s3_prefix):
    _area, _site, token = field
    photo, claimed = b"\x89PNG\r\n\x1a\n" + os.urandom(400), b"\x89PNG\r\n\x1a\n" + os.urandom(400)
    refused = client.put(f"/api/sync/v1/blobs/{name(claimed)}", data=photo, headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 400 and refused.get_json()["code"] == "hash_mismatch"
    db.session.rollback()
    assert _objects(s3_client, s3_prefix) == [] and db.session.query(Blob).count() == 0


def _chunked_put(client, token, sha256: str, data: bytes):
    """A PUT whose body comes in chunks with no Content-Length, as a streaming client sends it."""
    return client.put(f"/api/sync/v1/blobs/{sha256}", input_stream=io.BytesIO(data),
                      headers={"Authorization": f"Bearer {token}", "Transfer-Encoding": "chunked"},
                      environ_overrides={"wsgi.input_terminated": True})


def test_a_chunked_upload_is_hashed_as_it_is_read_and_stored(app, client, field, s3_client, s3_prefix):
    _area, _site, token = field
    photo = b"\x89PNG\r\n\x1a\n" + os.urandom(300_000)
    stored = _chunked_put(client, token, name(photo), photo)
    assert stored.status_code == 201, stored.get_json()
    assert stored.get_json()["size"] == len(photo)
    assert _objects(s3_client, s3_prefix) == [f"{s3_prefix}/{name(photo)}"]


def test_a_chunked_upload_over_8_mb_is_413_and_nothing_is_kept(app, client, field, s3_client, s3_prefix):
    _area, _site, token = field
    photo = b"\x89PNG\r\n\x1a\n" + os.urandom(8 * 1024 * 1024)
    refused = _chunked_put(client, token, name(photo), photo)
    assert refused.status_code == 413 and refused.get_json()["code"] == "too_large"
    db.session.rollback()
    assert _objects(s3_client, s3_prefix) == [] and db.session.query(Blob).count() == 0
