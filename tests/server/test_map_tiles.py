"""The map's street tiles: from a configured tile server only, and the CSP allows that origin and no other."""

from __future__ import annotations

import pytest

from server import content_security_policy, create_app, operations, tile_origin
from server.extensions import db
from tests.conftest import sign_in

OSM = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"


@pytest.fixture
def coordinator(client, make_area, make_site):
    area = make_area("millbrook", "Millbrook")
    make_site(area, "Canal Street")
    operations.create_person("Cora", email="cora@example.org", password="correct horse battery",
                             roles=[("coordinator", area)])
    db.session.commit()
    sign_in(client, "cora@example.org")
    return area


def img_src(response) -> str:
    policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    return policy["img-src"]


def test_without_a_tile_server_the_map_has_no_tiles_and_images_come_only_from_here(client, coordinator, app):
    assert app.config["MAP_TILES"] is None
    response = client.get("/coordinator/millbrook/map")
    assert response.status_code == 200
    assert img_src(response) == "'self' data: blob:"
    assert 'data-tiles=""' in response.text


def test_with_a_tile_server_the_map_uses_it_and_the_policy_allows_its_origin(client, coordinator, app):
    app.config.update(MAP_TILES=OSM, MAP_ATTRIBUTION='© OpenStreetMap contributors <script>')
    response = client.get("/coordinator/millbrook/map")
    assert img_src(response) == "'self' data: blob: https://tile.openstreetmap.org"
    assert f'data-tiles="{OSM}"' in response.text
    # The attribution is text in an attribute (the script escapes it again before Leaflet sees it).
    assert 'data-attribution="© OpenStreetMap contributors &lt;script&gt;"' in response.text
    # Every other answer carries the same policy: one policy per server.
    assert img_src(client.get("/login")) == "'self' data: blob: https://tile.openstreetmap.org"


def test_tile_origins_as_a_policy_names_them():
    assert tile_origin("https://{s}.tile.example.org/{z}/{x}/{y}.png") == "https://*.tile.example.org"
    assert tile_origin("http://127.0.0.1:8123/tiles/{z}/{x}/{y}.png") == "http://127.0.0.1:8123"
    assert "connect-src 'self';" in content_security_policy(OSM)
    assert content_security_policy(OSM).count("tile.openstreetmap.org") == 1


@pytest.mark.parametrize("template", ["javascript:alert(1)//{z}", "tile.example.org/{z}/{x}/{y}.png",
                                      "https://x:99999/{z}", "https://{a}.example.org/{z}", "https://a b/{z}",
                                      "https://user:pw@tiles.example.org/{z}/{x}/{y}.png"])
def test_a_tile_url_no_policy_can_allow_stops_the_start(tmp_path, template):
    with pytest.raises(RuntimeError, match="KERBSIDE_MAP_TILES"):
        create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite'}", "SECRET_KEY": "t",
                    "MAP_TILES": template})
