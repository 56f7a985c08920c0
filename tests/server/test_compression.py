"""Compression on the wire: br where asked, else gzip, else identity; the same JSON whichever; streams,
bundles' ETags, ranges and photos behave as they did."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import zlib

import brotli
import pytest

from server import create_app, operations
from server.coordinator import exports
from server.extensions import db
from server.pwa import current_build
from tests.conftest import sign_in
from tests.server.test_photos import photo_with_gps

DECODE = {"gzip": gzip.decompress, "br": brotli.decompress, None: lambda data: data}


@pytest.fixture
def rep_with_sites(app, make_area, make_site, publish_forms, enrol):
    publish_forms()
    area = make_area("millbrook", "Millbrook")
    operations.create_sites(area, [{"name": f"{n} Canal Street", "lat": 53.5, "lng": -2.6} for n in range(1, 41)])
    db.session.commit()
    token, _ = enrol(area)
    return area, token


def _first_sync(client, token, accept):
    headers = {"Authorization": f"Bearer {token}"}
    if accept is not None:
        headers["Accept-Encoding"] = accept
    return client.post("/api/sync/v1", json={"protocol": 1, "cursor": None, "limit": 500, "mutations": []},
                       headers=headers)


@pytest.mark.parametrize("accept, expected", [
    (None, None),
    ("identity", None),
    ("gzip", "gzip"),
    ("gzip, deflate", "gzip"),
    ("br", "br"),
    ("gzip, deflate, br, zstd", "br"),  # what browsers send: Brotli is preferred at equal quality
    ("br;q=0.5, gzip;q=1.0", "gzip"),  # the client's own preference wins
    ("gzip;q=0, br;q=0", None),
    ("zstd", None),  # not offered by this server: identity rather than a guess
])
def test_a_sync_answer_is_encoded_as_the_client_accepts_and_decodes_to_the_same_json(client, rep_with_sites,
                                                                                      accept, expected):
    _area, token = rep_with_sites
    plain = _first_sync(client, token, None)
    assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
    response = _first_sync(client, token, accept)
    assert response.status_code == 200
    assert response.headers.get("Content-Encoding") == expected
    assert "Accept-Encoding" in response.headers["Vary"]
    assert int(response.headers["Content-Length"]) == len(response.data)
    body = json.loads(DECODE[expected](response.data))
    first = plain.get_json()
    # The same page (its clock and nothing else may differ between the two answers).
    assert {k: v for k, v in body.items() if k != "server_time"} == {k: v for k, v in first.items() if k != "server_time"}
    assert len(body["changes"]) >= 40
    if expected:
        assert len(response.data) * 3 < len(plain.data)


def test_error_envelopes_are_compressed_too_when_large_enough_and_still_read(client):
    response = client.post("/api/sync/v1", json={"protocol": 1}, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 401
    # Too small to be worth it (under COMPRESS_MIN_SIZE): sent as it is, and still says it varies.
    assert "Content-Encoding" not in response.headers
    assert response.get_json()["code"] == "token_missing"
    assert "Accept-Encoding" in response.headers["Vary"]


def _fetch(client, address, **headers):
    """GET and close at once: a file's answer holds the file open until it is closed."""
    response = client.get(address, headers={k.replace("_", "-"): v for k, v in headers.items()})
    response.get_data()
    response.close()
    return response


def test_the_shell_and_bundles_are_compressed_and_their_etags_still_give_304(app, client):
    shell = client.get("/app/", headers={"Accept-Encoding": "gzip, br"})
    assert shell.status_code == 200 and shell.headers["Content-Encoding"] == "br"
    assert b"<html" in brotli.decompress(shell.data).lower()
    build = current_build()
    for name in (build.js, build.css):
        plain = _fetch(client, f"/app/assets/{name}")
        assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
        zipped = _fetch(client, f"/app/assets/{name}", Accept_Encoding="gzip")
        assert zipped.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(zipped.data) == plain.data
        assert int(zipped.headers["Content-Length"]) == len(zipped.data) < len(plain.data) / 2
        assert zipped.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert "Accept-Ranges" not in zipped.headers  # ranges of compressed bytes are not served
        # A bundle never changes under its name: compressed once at the best level, and kept.
        best = _fetch(client, f"/app/assets/{name}", Accept_Encoding="gzip, deflate, br, zstd")
        assert best.headers["Content-Encoding"] == "br" and brotli.decompress(best.data) == plain.data
        assert len(best.data) <= len(brotli.compress(plain.data, quality=9))
        assert _fetch(client, f"/app/assets/{name}", Accept_Encoding="br").data == best.data
        # Each representation has its own validator, and each one revalidates to 304 with no body.
        assert zipped.headers["ETag"] != plain.headers["ETag"]
        for response, accept in ((zipped, "gzip"), (plain, "identity")):
            again = _fetch(client, f"/app/assets/{name}", Accept_Encoding=accept, If_None_Match=response.headers["ETag"])
            assert again.status_code == 304, (name, accept)
            assert again.data == b"" and "Content-Encoding" not in again.headers
    # The worker's entry is two import lines (too short to be worth compressing); the worker itself
    # is a module of the build, compressed like the others.
    sw = client.get("/app/sw.js", headers={"Accept-Encoding": "gzip"})
    assert sw.status_code == 200 and sw.headers["Service-Worker-Allowed"] == "/app/"
    worker = _fetch(client, f"/app/assets/{build.asset_name('sw.js')}", Accept_Encoding="gzip")
    assert worker.headers["Content-Encoding"] == "gzip" and b"self" in gzip.decompress(worker.data)


def test_a_range_of_a_bundle_is_the_uncompressed_bytes_it_names(client):
    name = current_build().js
    whole = _fetch(client, f"/app/assets/{name}").data
    part = _fetch(client, f"/app/assets/{name}", Accept_Encoding="gzip, br", Range="bytes=10-99")
    assert part.status_code == 206
    assert "Content-Encoding" not in part.headers
    assert part.data == whole[10:100]


def test_head_says_the_same_encoding_as_get_and_sends_no_body(client):
    get = client.get("/app/", headers={"Accept-Encoding": "gzip"})
    head = client.head("/app/", headers={"Accept-Encoding": "gzip"})
    assert head.status_code == 200 and head.data == b""
    assert head.headers["Content-Encoding"] == get.headers["Content-Encoding"] == "gzip"


def test_answers_without_a_body_are_left_as_they_are(client, rep_with_sites):
    _area, token = rep_with_sites
    head = client.head(f"/api/sync/v1/blobs/{'0' * 64}", headers={"Authorization": f"Bearer {token}",
                                                                   "Accept-Encoding": "gzip, br"})
    assert head.status_code == 404 and "Content-Encoding" not in head.headers and head.data == b""
    moved = client.get("/coordinator/", headers={"Accept-Encoding": "gzip, br"})
    assert moved.status_code in (301, 302) and "Content-Encoding" not in moved.headers


def test_pages_carrying_a_form_token_are_not_compressed(client):
    """BREACH: the session's form token must not be guessable from compressed lengths."""
    page = client.get("/login", headers={"Accept-Encoding": "gzip, br"})
    assert page.status_code == 200 and b"csrf_token" in page.data
    assert "Content-Encoding" not in page.headers


@pytest.fixture
def coordinator_with_export(app, client, rep_with_sites):
    area, _token = rep_with_sites
    operations.create_person("Cora", email="cora@example.org", password="correct horse battery",
                             roles=[("coordinator", area)])
    db.session.commit()
    sign_in(client, "cora@example.org")
    return area


def test_a_streamed_export_stays_streamed_when_compressed(client, coordinator_with_export, monkeypatch):
    address = "/coordinator/millbrook/exports/sites.geojson"
    plain = client.get(address)
    zipped = client.get(address, headers={"Accept-Encoding": "gzip"})
    assert zipped.status_code == 200 and zipped.is_streamed
    assert zipped.headers["Content-Encoding"] == "gzip" and "Content-Length" not in zipped.headers
    assert gzip.decompress(zipped.data) == plain.data and b"Canal Street" in plain.data
    br = client.get(address, headers={"Accept-Encoding": "br"})
    assert br.is_streamed and brotli.decompress(br.data) == plain.data

    # The compressed answer is sent as the export is written, not once it is all written.
    written = []

    def slow_export(_session, _area_id, *_filters):
        for n in range(20):
            written.append(n)
            yield os.urandom(32 * 1024).hex()  # 64 KB that do not shrink: each one fills the compressor's window

    monkeypatch.setattr(exports, "sites_geojson_chunks", slow_export)
    response = client.get(address, headers={"Accept-Encoding": "gzip"}, buffered=False)
    chunks = iter(response.response)
    first = next(chunk for chunk in chunks if chunk)
    assert len(written) < 20, "the whole export was produced before the first bytes went out"
    rest = b"".join(chunks)
    response.close()
    assert len(written) == 20
    assert len(zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(first + rest)) == 20 * 64 * 1024


def test_photos_are_sent_as_stored_never_recompressed(client, coordinator_with_export, rep_with_sites):
    area, token = rep_with_sites
    photo = photo_with_gps()
    sha = hashlib.sha256(photo).hexdigest()
    assert client.put(f"/api/sync/v1/blobs/{sha}", data=photo,
                      headers={"Authorization": f"Bearer {token}"}).status_code == 201
    # The photo is streamed from the store: each answer is closed, as a server closes it.
    with client.get(f"/coordinator/{area.slug}/photos/{sha}") as plain:
        stored = plain.data
    for accept in ("gzip", "br", "gzip, deflate, br, zstd"):
        with client.get(f"/coordinator/{area.slug}/photos/{sha}", headers={"Accept-Encoding": accept}) as served:
            assert served.status_code == 200 and served.mimetype == "image/jpeg"
            assert "Content-Encoding" not in served.headers
            assert served.data == stored and stored.startswith(b"\xff\xd8\xff")


def test_compression_can_be_left_to_a_proxy(tmp_path):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'k.sqlite'}",
                      "SECRET_KEY": "test", "BLOB_DIR": str(tmp_path / "blobs"), "COMPRESSION": False})
    response = app.test_client().get("/app/", headers={"Accept-Encoding": "gzip, br"})
    assert response.status_code == 200 and "Content-Encoding" not in response.headers
    assert b"<html" in response.data.lower()
