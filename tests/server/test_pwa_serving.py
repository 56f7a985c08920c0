"""Serving the field app: shell, hashed bundles, the service worker, manifest and icons."""

from __future__ import annotations

import json
import re
import shutil
import struct

import pytest

from server.pwa import (
    DEFAULT_SOURCE_DIR,
    ModuleConventionError,
    module_order,
    module_source,
    strip_module,
)
from sync import protocol


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


def bundle_urls(html: str) -> tuple[str, str]:
    js = re.search(r'<script type="module" src="(/app/assets/app\.[0-9a-f]{12}\.js)"></script>', html).group(1)
    css = re.search(r'<link rel="stylesheet" href="(/app/assets/app\.[0-9a-f]{12}\.css)">', html).group(1)
    return js, css


def test_shell_links_content_hashed_bundles_and_has_no_inline_code(client, sources):
    response = client.get("/app/")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    html = response.get_data(as_text=True)
    js, css = bundle_urls(html)
    assert "<script>" not in html and "style=" not in html and "onclick" not in html
    assert '<link rel="manifest" href="/app/manifest.webmanifest">' in html
    for url in (js, css):
        asset = get(client, url)
        assert asset.status_code == 200
        assert asset.headers["Cache-Control"] == "public, max-age=31536000, immutable"


def test_bundle_is_one_module_scope_without_imports_or_exports(client, sources):
    js, _css = bundle_urls(client.get("/app/").get_data(as_text=True))
    text = get(client, js).get_data(as_text=True)
    assert not re.search(r"^\s*(import|export)\b", text, re.MULTILINE)
    # Dependencies come before the modules that use them.
    assert text.index("function openDb(") < text.index("async function syncNow(") < text.index("function drawRoute(")


def test_service_worker_is_served_fresh_with_its_scope_and_the_build_version(client, sources):
    response = client.get("/app/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["Service-Worker-Allowed"] == "/app/"
    text = response.get_data(as_text=True)
    build = json.loads(re.match(r"const BUILD = (\{.*\});\n", text).group(1))
    js, css = bundle_urls(client.get("/app/").get_data(as_text=True))
    assert set(build["precache"]) >= {"/app/", js, css, "/app/manifest.webmanifest", "/app/icons/maskable-512.png"}
    assert re.fullmatch(r"[0-9a-f]{12}", build["version"])
    assert 'addEventListener("fetch"' in text and not re.search(r"^\s*(import|export)\b", text, re.MULTILINE)


def test_a_changed_source_changes_the_bundle_name_and_the_worker_bytes(client, sources):
    shell_before = client.get("/app/").get_data(as_text=True)
    worker_before = client.get("/app/sw.js").get_data()
    messages = sources / "js" / "messages.js"
    messages.write_text(messages.read_text().replace('nav_home: "Home"', 'nav_home: "Start"'))
    shell_after = client.get("/app/").get_data(as_text=True)
    worker_after = client.get("/app/sw.js").get_data()
    assert bundle_urls(shell_after)[0] != bundle_urls(shell_before)[0]
    assert bundle_urls(shell_after)[1] == bundle_urls(shell_before)[1]  # the CSS did not change
    assert worker_after != worker_before
    # A page still running the old version can fetch its old bundle while it updates.
    assert get(client, bundle_urls(shell_before)[0]).status_code == 200


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


def test_unknown_assets_and_icons_are_not_found(client):
    assert get(client, "/app/assets/../pwa.py").status_code == 404
    assert get(client, "/app/assets/app.js").status_code == 404
    assert get(client, "/app/icons/make_icons.py").status_code == 404


def test_front_page_links_to_the_field_app(client):
    assert 'href="/app/"' in client.get("/").get_data(as_text=True)


def test_strip_module_removes_imports_and_export_keywords():
    source = 'import { a, b } from "./x.js";\nimport {\n  c,\n} from "../y.js";\nexport const d = a;\nexport async function e() {}\n'
    assert strip_module(source) == "const d = a;\nasync function e() {}\n"


@pytest.mark.parametrize("source", [
    'import { a as b } from "./x.js";\n',
    'import * as x from "./x.js";\n',
    'import x from "./x.js";\n',
    "export default function f() {}\n",
    "const a = 1;\nexport { a };\n",
])
def test_strip_module_refuses_what_the_bundle_cannot_keep(source):
    with pytest.raises(ModuleConventionError):
        strip_module(source)


def test_module_order_puts_dependencies_first_and_checks_imported_names(tmp_path):
    (tmp_path / "a.js").write_text('import { b } from "./b.js";\nexport const a = b;\n')
    (tmp_path / "b.js").write_text('import { c } from "./c.js";\nexport const b = c;\n')
    (tmp_path / "c.js").write_text("export const c = 1;\n")
    assert module_order(str(tmp_path), "a.js") == ["c.js", "b.js", "a.js"]
    (tmp_path / "c.js").write_text("export const see = 1;\n")
    with pytest.raises(ModuleConventionError, match="does not export"):
        module_order(str(tmp_path), "a.js")
    (tmp_path / "c.js").write_text('import { a } from "./a.js";\nexport const c = a;\n')
    with pytest.raises(ModuleConventionError, match="cycle"):
        module_order(str(tmp_path), "a.js")
    # One scope in the bundle: two modules declaring one top-level name is refused at build time.
    (tmp_path / "c.js").write_text("export const c = 1;\nfunction helper() {}\n")
    (tmp_path / "b.js").write_text('import { c } from "./c.js";\nexport const b = c;\nasync function helper() {}\n')
    with pytest.raises(ModuleConventionError, match="both declare helper"):
        module_order(str(tmp_path), "a.js")


def test_the_real_app_follows_the_module_convention():
    order = module_order(DEFAULT_SOURCE_DIR, "js/app.js")
    assert order[-1] == "js/app.js" and "js/messages.js" in order
    worker = module_order(DEFAULT_SOURCE_DIR, "sw.js")
    assert worker[-1] == "sw.js" and "js/sync.js" in worker and "js/app.js" not in worker


def test_the_protocol_constants_reach_the_app_from_sync_protocol_and_nowhere_else(client):
    generated = module_source(DEFAULT_SOURCE_DIR, "js/protocol.js")
    for name in protocol.CLIENT_CONSTANTS:
        value = getattr(protocol, name)
        assert re.search(rf"^export const {name} = .+;$", generated, re.MULTILINE), name
        line = re.search(rf"^export const {name} = (.+);$", generated, re.MULTILINE).group(1)
        assert json.loads(line) == json.loads(json.dumps(value, default=sorted)), name
    modules = set(module_order(DEFAULT_SOURCE_DIR, "js/app.js")) | set(module_order(DEFAULT_SOURCE_DIR, "sw.js"))
    assert "js/protocol.js" in modules
    for path in sorted(modules - {"js/protocol.js"}):
        source = module_source(DEFAULT_SOURCE_DIR, path)
        for name in protocol.CLIENT_CONSTANTS:
            assert not re.search(rf"\b(?:const|let|var)\s+{name}\b", source), f"{path} defines {name} itself"
        # The copies this replaced: grade letters, kept values and roles per form written by hand.
        assert '["A", "B", "C", "D"]' not in source and '"mystery_shopper"]' not in source, path
    bundle = get(client, bundle_urls(client.get("/app/").get_data(as_text=True))[0]).get_data(as_text=True)
    assert 'const GRADES = ["A", "B", "C", "D"];' in bundle
    assert "const COULD_NOT_SEND = " in client.get("/app/sw.js").get_data(as_text=True)
