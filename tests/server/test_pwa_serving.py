"""Serving the field app: shell, native ES modules in a versioned folder, the service worker,
manifest and icons; the build (server/pwa_build.py) that makes them, once."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct

import pytest

from server import pwa, pwa_build
from server.cli import build_command
from server.pwa import DEFAULT_SOURCE_DIR
from sync import protocol

ASSET = r"/app/assets/([0-9a-f]{12})/"


@pytest.fixture
def sources(app, tmp_path):
    """The app served from a copy of pwa/, so a test can "deploy" a change."""
    copy = tmp_path / "pwa"
    shutil.copytree(DEFAULT_SOURCE_DIR, copy)
    app.config.update(PWA_SOURCE_DIR=str(copy), PWA_BUILD_DIR=str(tmp_path / "build"))
    return copy


def get(client, url):
    """GET `url` and close the response (files are streamed and must be closed)."""
    response = client.get(url)
    response.get_data()
    response.close()
    return response


def shell_urls(html: str) -> tuple[str, str, list[str]]:
    js = re.search(rf'<script type="module" src="({ASSET}js/app\.js)"></script>', html).group(1)
    css = re.search(rf'<link rel="stylesheet" href="({ASSET}css/app\.css)">', html).group(1)
    preload = re.findall(rf'<link rel="modulepreload" href="({ASSET}[^"]+)">', html)
    return js, css, [url for url, _version in preload]


def worker_build(client) -> dict:
    entry = client.get("/app/sw.js").get_data(as_text=True)
    imports = re.findall(r'^import "\./(assets/[0-9a-f]{12}/[^"]+)";$', entry, re.MULTILINE)
    assert [name.rsplit("/", 1)[-1] for name in imports] == ["sw-build.js", "sw.js"]
    text = get(client, "/app/" + imports[0]).get_data(as_text=True)
    return json.loads(re.fullmatch(r"globalThis\.BUILD = (\{.*\});\n", text).group(1))


def test_shell_links_the_versioned_modules_and_has_no_inline_code(client, sources):
    response = client.get("/app/")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    html = response.get_data(as_text=True)
    js, css, preload = shell_urls(html)
    assert "<script>" not in html and "style=" not in html and "onclick" not in html
    assert '<link rel="manifest" href="/app/manifest.webmanifest">' in html
    # Every module of the page is preloaded, so the browser need not discover them level by level.
    served = {url.rsplit("/", 2)[-2] + "/" + url.rsplit("/", 1)[-1] for url in preload}
    assert {"js/messages.js", "js/sync.js", "js/protocol.js", "js/screens.js"} <= served
    for url in (js, css, *preload):
        asset = get(client, url)
        assert asset.status_code == 200, url
        assert asset.headers["Cache-Control"] == "public, max-age=31536000, immutable"


def test_modules_are_served_as_written_and_every_import_resolves(client, sources):
    js, _css, preload = shell_urls(client.get("/app/").get_data(as_text=True))
    base = js.rsplit("/js/", 1)[0] + "/"
    text = get(client, js).get_data(as_text=True)
    with open(os.path.join(DEFAULT_SOURCE_DIR, "js", "app.js"), encoding="utf-8") as handle:
        assert text == handle.read()  # no bundling: the browser's module loader resolves the imports
    seen, waiting = set(), ["js/app.js", "sw.js"]
    while waiting:
        path = waiting.pop()
        if path in seen:
            continue
        seen.add(path)
        response = get(client, base + path)
        assert response.status_code == 200 and response.mimetype == "text/javascript", path
        for target in re.findall(r'^import\s*\{[^}]*\}\s*from\s*"(\.{1,2}/[^"]+)";', response.get_data(as_text=True), re.MULTILINE):
            waiting.append(os.path.normpath(os.path.join(os.path.dirname(path), target)))
    assert {"js/db.js", "sw/precache.js", "js/protocol.js"} <= seen


def test_service_worker_is_served_fresh_with_its_scope_and_the_build_version(client, sources):
    response = client.get("/app/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["Service-Worker-Allowed"] == "/app/"
    build = worker_build(client)
    js, css, preload = shell_urls(client.get("/app/").get_data(as_text=True))
    assert set(build["precache"]) >= {"/app/", js, css, *preload, "/app/manifest.webmanifest", "/app/icons/maskable-512.png"}
    assert re.fullmatch(r"[0-9a-f]{12}", build["version"]) and js.split("/")[3] == build["version"]
    assert build["scope"] == "/app/"


def test_a_changed_source_changes_the_version_and_the_worker_bytes(client, sources):
    shell_before = client.get("/app/").get_data(as_text=True)
    worker_before = client.get("/app/sw.js").get_data()
    messages = sources / "js" / "messages.js"
    source = messages.read_text()
    assert 'CHOICE_KEY = "kerbside-language"' in source, "the text this test changes is gone"
    messages.write_text(source.replace('CHOICE_KEY = "kerbside-language"', 'CHOICE_KEY = "Start"'))
    shell_after = client.get("/app/").get_data(as_text=True)
    worker_after = client.get("/app/sw.js").get_data()
    assert shell_urls(shell_after)[0] != shell_urls(shell_before)[0]
    assert worker_after != worker_before
    assert '"Start"' in get(client, shell_urls(shell_after)[0].replace("app.js", "messages.js")).get_data(as_text=True)
    # A page still running the old version can fetch its old modules while it updates.
    old = get(client, shell_urls(shell_before)[0].replace("app.js", "messages.js"))
    assert old.status_code == 200 and '"Start"' not in old.get_data(as_text=True)


def test_unchanged_sources_keep_their_names(client, sources):
    assert client.get("/app/sw.js").get_data() == client.get("/app/sw.js").get_data()


def test_manifest_makes_the_app_installable(client):
    response = client.get("/app/manifest.webmanifest")
    assert response.mimetype == "application/manifest+json"
    manifest = json.loads(response.get_data(as_text=True))
    assert manifest["start_url"] == "/app/" and manifest["scope"] == "/app/"
    assert manifest["display"] == "standalone"
    assert manifest["name"] and manifest["short_name"] and manifest["theme_color"]
    purposes = {icon["purpose"] for icon in manifest["icons"]}
    assert purposes == {"any", "maskable"}
    for icon in manifest["icons"]:
        image = get(client, icon["src"])
        assert image.status_code == 200 and image.mimetype == "image/png"
        width, height = struct.unpack(">II", image.get_data()[16:24])
        assert f"{width}x{height}" == icon["sizes"]


def test_unknown_assets_and_icons_are_not_found(client, sources):
    version = worker_build(client)["version"]
    assert get(client, "/app/assets/../pwa.py").status_code == 404
    assert get(client, "/app/assets/app.js").status_code == 404
    assert get(client, f"/app/assets/{version}/index.html").status_code == 404
    assert get(client, f"/app/assets/{version}/../../build.json").status_code == 404
    assert get(client, "/app/assets/ffffffffffff/js/app.js").status_code == 404
    assert get(client, "/app/icons/make_icons.py").status_code == 404


def test_front_page_links_to_the_field_app(client):
    assert 'href="/app/"' in client.get("/").get_data(as_text=True)


def test_an_installed_package_serves_its_prebuilt_app_and_writes_nothing(client, tmp_path, monkeypatch):
    packaged = tmp_path / "site-packages" / "server" / "pwa_dist"
    info = pwa_build.build(DEFAULT_SOURCE_DIR, str(packaged))
    before = sorted((str(path), path.stat().st_mtime_ns) for path in packaged.rglob("*"))
    # As in a wheel: no pwa/ beside the package.
    monkeypatch.setattr(pwa, "DEFAULT_SOURCE_DIR", str(tmp_path / "no-pwa"))
    monkeypatch.setattr(pwa, "PACKAGED_BUILD_DIR", str(packaged))
    html = client.get("/app/").get_data(as_text=True)
    assert f'data-version="{info["version"]}"' in html
    for url in (*shell_urls(html)[:2], "/app/sw.js", "/app/icons/icon-192.png"):
        assert get(client, url).status_code == 200, url
    assert sorted((str(path), path.stat().st_mtime_ns) for path in packaged.rglob("*")) == before


def test_a_build_is_the_same_bytes_each_time_and_kerbside_build_writes_one(app, tmp_path):
    first = pwa_build.build(DEFAULT_SOURCE_DIR, str(tmp_path / "one"))
    second = pwa.build_locked(DEFAULT_SOURCE_DIR, str(tmp_path / "two"))
    assert first == second
    for name in first["files"]:
        one = (tmp_path / "one" / "assets" / first["version"] / name).read_bytes()
        assert one == (tmp_path / "two" / "assets" / first["version"] / name).read_bytes(), name
    result = app.test_cli_runner().invoke(build_command, ["--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert first["version"] in result.output
    assert json.loads((tmp_path / "cli" / "build.json").read_text()) == first


def test_the_protocol_constants_reach_the_app_from_sync_protocol_and_nowhere_else(client, sources):
    generated = pwa_build.protocol_module()
    for name in protocol.CLIENT_CONSTANTS:
        value = getattr(protocol, name)
        assert re.search(rf"^export const {name} = .+;$", generated, re.MULTILINE), name
        line = re.search(rf"^export const {name} = (.+);$", generated, re.MULTILINE).group(1)
        assert json.loads(line) == json.loads(json.dumps(value, default=sorted)), name
    modules = set(pwa_build.asset_sources(DEFAULT_SOURCE_DIR))
    assert "js/protocol.js" not in modules and "js/sync.js" in modules  # generated, not written by hand
    for path in sorted(name for name in modules if name.endswith(".js")):
        with open(os.path.join(DEFAULT_SOURCE_DIR, path), encoding="utf-8") as handle:
            source = handle.read()
        for name in protocol.CLIENT_CONSTANTS:
            assert not re.search(rf"\b(?:const|let|var)\s+{name}\b", source), f"{path} defines {name} itself"
        # The copies this replaced: grade letters, kept values and roles per form written by hand.
        assert '["A", "B", "C", "D"]' not in source and '"mystery_shopper"]' not in source, path
    js = shell_urls(client.get("/app/").get_data(as_text=True))[0]
    served = get(client, js.replace("app.js", "protocol.js")).get_data(as_text=True)
    assert served == generated and 'export const GRADES = ["A", "B", "C", "D"];' in served
