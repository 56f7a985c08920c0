"""The field app (PWA) at /app/: its shell, modules, service worker, manifest and icons.

The app is built once (server/pwa_build.py: `kerbside build`, and the wheel's build step);
this module only serves a finished build and never writes into the installed package:

- an installed package (no `pwa/` sources beside it) serves the build the wheel carries,
  `server/pwa_dist/`;
- a source checkout (or `PWA_SOURCE_DIR`) builds from the sources into `PWA_BUILD_DIR`,
  by default `<instance folder>/pwa-build`, once per process under a file lock (so several
  workers build it once between them), and again when a source changes while
  `ASSETS_AUTO_BUILD` is on (the default in development and tests).

Modules and the stylesheet live under /app/assets/<version>/, a folder named by a hash over
every file of the app, so they are cached for a year; the shell and /app/sw.js are no-cache.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
from dataclasses import dataclass

from flask import Blueprint, Response, abort, current_app, render_template_string, send_from_directory, url_for
from flask_babel import gettext as _

from server import languages, pwa_build
from server.auth import allow
from server.pwa_build import ICONS, SCOPE, THEME_COLOUR

bp = Blueprint("pwa", __name__)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SOURCE_DIR = os.path.join(ROOT, "pwa")
PACKAGED_BUILD_DIR = os.path.join(ROOT, "server", "pwa_dist")
VERSION = re.compile(r"[0-9a-f]{12}")


class NoBuild(RuntimeError):
    """Neither the field app's sources nor a finished build are where the server looks."""


@dataclass(frozen=True)
class Build:
    """One finished build of the field app, as serving needs it."""

    version: str
    folder: str
    entry: str
    stylesheet: str
    preload: tuple
    files: frozenset
    shell: str
    sw: bytes
    stamp: tuple

    def asset_name(self, path: str) -> str:
        """A file of this build, as the `name` of the pwa.asset route."""
        return f"{self.version}/{path}"

    @property
    def js(self) -> str:
        return self.asset_name(self.entry)

    @property
    def css(self) -> str:
        return self.asset_name(self.stylesheet)


def _load(folder: str, stamp: tuple = ()) -> Build:
    info = pwa_build.read_build(folder)
    if info is None:
        raise NoBuild(f"no field app build in {folder}: run `kerbside build`")
    with open(os.path.join(folder, "index.html"), encoding="utf-8") as handle:
        shell = handle.read()
    with open(os.path.join(folder, pwa_build.WORKER), "rb") as handle:
        worker = handle.read()
    return Build(version=info["version"], folder=folder, entry=info["entry"], stylesheet=info["stylesheet"],
                 preload=tuple(info["preload"]), files=frozenset(info["files"]),
                 # B604 (bandit) is answered: `shell` is the app shell's HTML, a dataclass field; nothing runs a shell.
                 shell=shell, sw=worker, stamp=stamp)  # nosec B604


def build_locked(source_dir: str, build_dir: str, languages=None) -> dict:
    """Build under an exclusive file lock, so workers starting together build once between them."""
    os.makedirs(build_dir, exist_ok=True)
    with open(os.path.join(build_dir, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return pwa_build.build(source_dir, build_dir, languages)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def where(config, instance_path: str) -> tuple[str | None, str]:
    """(sources to build from or None, folder to serve from) for this app's settings."""
    source_dir = config.get("PWA_SOURCE_DIR")
    if source_dir is None and os.path.isfile(os.path.join(DEFAULT_SOURCE_DIR, "index.html")):
        source_dir = DEFAULT_SOURCE_DIR
    if source_dir is None:
        return None, config.get("PWA_BUILD_DIR") or PACKAGED_BUILD_DIR
    return source_dir, config.get("PWA_BUILD_DIR") or os.path.join(instance_path, "pwa-build")


_builds: dict[tuple, Build] = {}
_builds_lock = threading.Lock()


def current_build() -> Build:
    """The build this app serves; from sources, rebuilt when they changed (ASSETS_AUTO_BUILD)."""
    config = current_app.config
    source_dir, build_dir = where(config, current_app.instance_path)
    languages = tuple(config["LANGUAGES"])
    key = (source_dir, build_dir, languages)
    with _builds_lock:
        found = _builds.get(key)
        if source_dir is None:
            if found is None:
                found = _builds[key] = _load(build_dir)
            return found
        if found is None or (config.get("ASSETS_AUTO_BUILD", True) and found.stamp != pwa_build.source_stamp(source_dir)):
            stamp = pwa_build.source_stamp(source_dir)
            build_locked(source_dir, build_dir, languages)
            found = _builds[key] = _load(build_dir, stamp)
        return found


def manifest(lang: str = "en") -> dict:
    """The web app manifest, in the app's language."""
    return pwa_build.manifest(lang, _)


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
        preload_urls=[url_for("pwa.asset", name=found.asset_name(path)) for path in found.preload],
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
    locale = languages.html_lang(current_app.config.get("BABEL_DEFAULT_LOCALE"))
    response = Response(json.dumps(manifest(locale), ensure_ascii=False), mimetype="application/manifest+json")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/app/assets/<path:name>")
@allow("public")
def asset(name):
    """A file of a build, `<version>/<path>`: the folder is named by the version, so it is cached for a year."""
    found = current_build()
    version, _slash, path = name.partition("/")
    if version == found.version:
        if path not in found.files:
            abort(404)
    # An older version's files are still served while they are on disk (a page may be mid-update).
    elif not (VERSION.fullmatch(version) and os.path.isdir(os.path.join(found.folder, "assets", version))):
        abort(404)
    response = send_from_directory(os.path.join(found.folder, "assets", version), path, max_age=365 * 24 * 3600)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


@bp.get("/app/icons/<name>")
@allow("public")
def icon(name):
    """The app's icons (PNG), for the manifest and the home screen."""
    if name not in {icon["file"] for icon in ICONS}:
        abort(404)
    return send_from_directory(os.path.join(current_build().folder, "icons"), name, max_age=0)
