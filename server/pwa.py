"""The field app (PWA) at /app/: its shell, bundles, service worker, manifest and icons.

The app's sources are plain ES modules in `pwa/`. webassets bundles them into one
script and one stylesheet whose file names carry a hash of their content, so a
browser may keep them for ever. ES modules cannot simply be concatenated (their
`import`/`export` lines would break), so the `EsModuleFilter` below strips them under a
strict convention that it checks:

- imports are `import { a, b } from "./file.js";` at the top of a module, no aliases;
- exports are `export function|async function|const|let|class name`, no default;
- top-level names are unique across the app (a duplicate is a SyntaxError in the bundle,
  which the browser tests would show at once).

Modules are put in dependency order (an imported module before its importer), so the
bundle is one module scope with every name defined before it runs. This keeps "the
install is pip alone" (no Node bundler) and works under the strict CSP (no importmap).

The service worker is served at the stable URL /app/sw.js. Its body starts with the
build version (a hash over the bundles, the shell and the worker's own sources) and the
list of files to precache, so every deploy that changes anything changes its bytes and
browsers install the new version.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass

from flask import Blueprint, Response, abort, current_app, render_template_string, send_from_directory, url_for
from flask_babel import gettext as _
from webassets import Bundle, Environment
from webassets.filter import Filter

from server.auth import allow
from sync import protocol

bp = Blueprint("pwa", __name__)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SOURCE_DIR = os.path.join(ROOT, "pwa")
DEFAULT_BUILD_DIR = os.path.join(ROOT, "server", "static", "gen", "pwa")
SCOPE = "/app/"
ICONS = (
    {"file": "icon-192.png", "sizes": "192x192", "purpose": "any"},
    {"file": "icon-512.png", "sizes": "512x512", "purpose": "any"},
    {"file": "maskable-512.png", "sizes": "512x512", "purpose": "maskable"},
)
THEME_COLOUR = "#1d4d2b"
BACKGROUND_COLOUR = "#ffffff"

IMPORT = re.compile(r"^import\s*\{([^}]*)\}\s*from\s*[\"'](\.{1,2}/[^\"']+)[\"'];?[ \t]*\r?\n?", re.MULTILINE)
ANY_IMPORT = re.compile(r"^import\b", re.MULTILINE)
EXPORT_DECLARATION = re.compile(r"^export\s+(?=(?:async\s+)?function\b|const\b|let\b|class\b)", re.MULTILINE)
# A declaration at the start of a line is a module's top-level name (the code is kept so).
TOP_LEVEL_NAME = re.compile(r"^(?:export\s+)?(?:async\s+)?(?:function\*?|const|let|class)\s+([A-Za-z_$][\w$]*)", re.MULTILINE)
EXPORTED_NAME = re.compile(r"^export\s+(?:async\s+)?(?:function\*?|const|let|class)\s+([A-Za-z_$][\w$]*)", re.MULTILINE)
ANY_EXPORT = re.compile(r"^export\b", re.MULTILINE)
IDENTIFIER = re.compile(r"^[A-Za-z_$][\w$]*$")


class ModuleConventionError(ValueError):
    """A module breaks the import/export convention the bundler relies on."""


def module_imports(text: str, where: str = "module") -> list[tuple[list[str], str]]:
    """The `(names, relative path)` of each import line of a module."""
    found = []
    for match in IMPORT.finditer(text):
        names = [name.strip() for name in match.group(1).split(",") if name.strip()]
        for name in names:
            if not IDENTIFIER.match(name):
                raise ModuleConventionError(f"{where}: import {name!r} — aliases are not allowed")
        found.append((names, match.group(2)))
    if len(ANY_IMPORT.findall(text)) != len(found):
        raise ModuleConventionError(f"{where}: only `import {{ a, b }} from \"./file.js\";` is allowed")
    return found


def strip_module(text: str, where: str = "module") -> str:
    """The module's code without its import lines and `export` keywords."""
    module_imports(text, where)
    body = IMPORT.sub("", text)
    body = EXPORT_DECLARATION.sub("", body)
    if ANY_EXPORT.search(body):
        raise ModuleConventionError(f"{where}: only `export function|const|let|class name` is allowed")
    return body


def exported_names(text: str) -> set[str]:
    """Names a module exports."""
    return set(EXPORTED_NAME.findall(text))


def _module_text(search_path: list[str], path: str) -> str:
    if path in GENERATED_MODULES:
        return GENERATED_MODULES[path]()
    for folder in search_path:
        candidate = os.path.join(folder, path)
        if os.path.exists(candidate):
            with open(candidate, encoding="utf-8") as handle:
                return handle.read()
    raise ModuleConventionError(f"no module {path} in {search_path}")


def module_order(source_dir, entry: str) -> list[str]:
    """Modules reachable from `entry` (paths relative to `source_dir`, or to the first folder
    of a list that holds them; generated modules need no file), dependencies first."""
    search_path = [source_dir] if isinstance(source_dir, str) else list(source_dir)
    order: list[str] = []
    visiting: set[str] = set()

    def visit(path: str):
        if path in order:
            return
        if path in visiting:
            raise ModuleConventionError(f"import cycle through {path}")
        visiting.add(path)
        for names, target in module_imports(_module_text(search_path, path), path):
            dependency = os.path.normpath(os.path.join(os.path.dirname(path), target)).replace(os.sep, "/")
            missing = set(names) - exported_names(_module_text(search_path, dependency))
            if missing:
                raise ModuleConventionError(f"{path}: {dependency} does not export {sorted(missing)}")
            visit(dependency)
        visiting.discard(path)
        order.append(path)

    visit(entry)
    # The bundle is one scope: a name declared by two modules would be a SyntaxError in the browser.
    declared: dict[str, str] = {}
    for path in order:
        for name in TOP_LEVEL_NAME.findall(_module_text(search_path, path)):
            if name in declared and declared[name] != path:
                raise ModuleConventionError(f"{path} and {declared[name]} both declare {name}")
            declared[name] = path
    return order


def module_source(source_dir, path: str) -> str:
    """The text of one module of the app, generated or from `source_dir`."""
    return _module_text([source_dir] if isinstance(source_dir, str) else list(source_dir), path)


PROTOCOL_MODULE = "js/protocol.js"


def _js_value(value):
    if isinstance(value, (tuple, list)):
        return [_js_value(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted(_js_value(v) for v in value)
    if isinstance(value, dict):
        return {k: _js_value(v) for k, v in value.items()}
    return value


def protocol_module() -> str:
    """`js/protocol.js`: the protocol's constants for the field app, generated from sync/protocol.py."""
    lines = ["// Generated from sync/protocol.py when the app is built (server/pwa.py): change them there.", ""]
    for name in protocol.CLIENT_CONSTANTS:
        lines.append(f"export const {name} = {json.dumps(_js_value(getattr(protocol, name)))};")
    return "\n".join(lines) + "\n"


# Modules the build writes rather than a person: path -> a function giving the text.
GENERATED_MODULES = {PROTOCOL_MODULE: protocol_module}


def write_generated(build_dir: str) -> str:
    """Write the generated modules under `build_dir` for webassets; returns the folder to search."""
    folder = os.path.join(build_dir, "generated")
    for path, make in GENERATED_MODULES.items():
        target = os.path.join(folder, path)
        text = make()
        current = None
        if os.path.exists(target):
            with open(target, encoding="utf-8") as handle:
                current = handle.read()
        if current != text:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".build-")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(temporary, target)
    return folder


class EsModuleFilter(Filter):
    """webassets input filter: one ES module, ready to be concatenated after its dependencies."""

    name = "kerbside_esm"

    def input(self, _in, out, **kw):
        out.write(strip_module(_in.read(), kw.get("source_path") or "module"))


@dataclass(frozen=True)
class Build:
    """One build of the field app: hashed bundle names, the worker's bytes, the version."""

    version: str
    js: str
    css: str
    sw: bytes
    shell: str
    stamp: tuple


def _source_files(source_dir: str) -> list[str]:
    files = []
    for folder, _dirs, names in os.walk(source_dir):
        files.extend(os.path.join(folder, name) for name in names if not name.startswith("."))
    return sorted(files)


def _stamp(source_dir: str) -> tuple:
    """What changes when any source changes: names, sizes and modification times."""
    return tuple((path, os.stat(path).st_mtime_ns, os.stat(path).st_size) for path in _source_files(source_dir))


def _bundle_text(env: Environment, name: str, contents: list[str], filters) -> str:
    bundle = Bundle(*contents, filters=filters, output=name)
    env.register(name, bundle)
    buffer = io.StringIO()
    bundle.build(force=True, output=buffer, disable_cache=True)
    return buffer.getvalue()


def _write_hashed(build_dir: str, stem: str, suffix: str, text: str) -> str:
    """Write `text` as `<stem>.<hash>.<suffix>` (atomically; identical builds share a name)."""
    data = text.encode("utf-8")
    name = f"{stem}.{hashlib.sha256(data).hexdigest()[:12]}.{suffix}"
    target = os.path.join(build_dir, name)
    if not os.path.exists(target):
        os.makedirs(build_dir, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=build_dir, prefix=".build-")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    return name


def manifest(lang: str = "en") -> dict:
    """The web app manifest: what Chromium needs to offer installing the app."""
    return {
        "id": SCOPE,
        "name": _("Kerbside field app"),
        "short_name": "Kerbside",
        "description": _("Check your streets against the Neighbourhood Agreement, even with no signal."),
        "lang": lang,
        "start_url": SCOPE,
        "scope": SCOPE,
        "display": "standalone",
        "orientation": "portrait",
        "theme_color": THEME_COLOUR,
        "background_color": BACKGROUND_COLOUR,
        "icons": [
            {"src": f"{SCOPE}icons/{icon['file']}", "sizes": icon["sizes"], "type": "image/png", "purpose": icon["purpose"]}
            for icon in ICONS
        ],
    }


def build(source_dir: str, build_dir: str) -> Build:
    """Bundle the field app from `source_dir` into `build_dir`; return what serving needs."""
    stamp = _stamp(source_dir)
    env = Environment(directory=build_dir, url=SCOPE + "assets/")
    search_path = [source_dir, write_generated(build_dir)]
    env.load_path = search_path
    env.cache = False
    env.manifest = False
    env.auto_build = False
    env.url_expire = False
    esm = [EsModuleFilter()]
    app_modules = module_order(search_path, "js/app.js")
    js_text = _bundle_text(env, "app.js", app_modules, esm)
    css_text = _bundle_text(env, "app.css", ["css/app.css"], [])
    js_name = _write_hashed(build_dir, "app", "js", js_text)
    css_name = _write_hashed(build_dir, "app", "css", css_text)
    worker_text = _bundle_text(env, "sw.js", module_order(search_path, "sw.js"), esm)
    with open(os.path.join(source_dir, "index.html"), encoding="utf-8") as handle:
        shell = handle.read()
    digest = hashlib.sha256()
    for part in (js_name, css_name, shell, worker_text, json.dumps(manifest(), sort_keys=True)):
        digest.update(part.encode("utf-8"))
    for icon in ICONS:
        with open(os.path.join(source_dir, "icons", icon["file"]), "rb") as handle:
            digest.update(handle.read())
    version = digest.hexdigest()[:12]
    precache = [SCOPE, SCOPE + "manifest.webmanifest", SCOPE + "assets/" + js_name, SCOPE + "assets/" + css_name]
    precache += [f"{SCOPE}icons/{icon['file']}" for icon in ICONS]
    # The build constants come first, so the worker's modules can read them.
    prelude = "const BUILD = " + json.dumps({"version": version, "scope": SCOPE, "precache": precache}) + ";\n"
    return Build(version=version, js=js_name, css=css_name, sw=(prelude + worker_text).encode("utf-8"),
                 # B604 (bandit) is answered: `shell` is the app shell's HTML, a dataclass field; nothing runs a shell.
                 shell=shell, stamp=stamp)  # nosec B604


_builds: dict[tuple[str, str], Build] = {}
_builds_lock = threading.Lock()


def current_build() -> Build:
    """The build for the app's configured sources, rebuilt when they changed (ASSETS_AUTO_BUILD)."""
    config = current_app.config
    source_dir = config.get("PWA_SOURCE_DIR") or DEFAULT_SOURCE_DIR
    build_dir = config.get("PWA_BUILD_DIR") or DEFAULT_BUILD_DIR
    key = (source_dir, build_dir)
    with _builds_lock:
        found = _builds.get(key)
        if found is None or (config.get("ASSETS_AUTO_BUILD", True) and found.stamp != _stamp(source_dir)):
            found = _builds[key] = build(source_dir, build_dir)
        return found


# -- views ------------------------------------------------------------------------------


@bp.get("/app/")
@allow("public")
def shell():
    """The app shell: one HTML page that loads the hashed bundles; the service worker keeps it offline."""
    found = current_build()
    html = render_template_string(
        found.shell,
        css_url=url_for("pwa.asset", name=found.css),
        js_url=url_for("pwa.asset", name=found.js),
        manifest_url=url_for("pwa.web_manifest"),
        icon_url=url_for("pwa.icon", name="icon-192.png"),
        theme_colour=THEME_COLOUR,
        version=found.version,
    )
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/app/sw.js")
@allow("public")
def service_worker():
    """The service worker at a stable URL; its bytes change with every build."""
    response = Response(current_build().sw, mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = SCOPE
    return response


@bp.get("/app/manifest.webmanifest")
@allow("public")
def web_manifest():
    """The web app manifest (name, icons, start URL, standalone display)."""
    locale = str(current_app.config.get("BABEL_DEFAULT_LOCALE") or "en")
    response = Response(json.dumps(manifest(locale), ensure_ascii=False), mimetype="application/manifest+json")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/app/assets/<name>")
@allow("public")
def asset(name):
    """A content-hashed bundle: its name changes whenever its bytes do, so it is cached for a year."""
    found = current_build()
    if name not in (found.js, found.css):
        # An older build's file is still served while it is on disk (a page may be mid-update).
        if not re.fullmatch(r"app\.[0-9a-f]{12}\.(js|css)", name):
            abort(404)
    build_dir = current_app.config.get("PWA_BUILD_DIR") or DEFAULT_BUILD_DIR
    response = send_from_directory(build_dir, name, max_age=365 * 24 * 3600)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


@bp.get("/app/icons/<name>")
@allow("public")
def icon(name):
    """The app's icons (PNG), for the manifest and the home screen."""
    if name not in {icon["file"] for icon in ICONS}:
        abort(404)
    source_dir = current_app.config.get("PWA_SOURCE_DIR") or DEFAULT_SOURCE_DIR
    return send_from_directory(os.path.join(source_dir, "icons"), name, max_age=0)
