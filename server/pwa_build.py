"""Build the field app once: `kerbside build`, and the wheel's build step (setup.py).

No bundling. The app's sources are plain ES modules; the browser's own module loader
resolves their `import` lines, so nothing here reads JavaScript (the hand-written
regular-expression bundler this replaces is gone). The shell names every module of the app
in `<link rel="modulepreload">`, so the browser fetches them in parallel instead of one
import level at a time (docs/pwa.md gives the measurements and the reasons).

webassets is the asset pipeline: it copies each source into a folder named by the build
version, a hash over every file the app is made of, so a browser may keep them for ever
and modules keep their relative imports. The service worker at the stable URL /app/sw.js
is a two-line module: it imports `sw-build.js` (the BUILD constants: version, scope, the
files to precache), then the worker itself from the same versioned folder. Its bytes
change with every version, so browsers install each new one.

This module imports neither Flask nor the server (setup.py loads it by file path while
building the wheel, where only the build requirements are installed).

Layout of a build folder:
    build.json               what serving needs (version, file names, precache list)
    index.html               the shell's template
    sw.js                    the service worker's entry at /app/sw.js
    icons/*.png
    assets/<version>/...     the modules, the stylesheet, sw-build.js (immutable)
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile

from sync import protocol

SCOPE = "/app/"
ICONS = (
    {"file": "icon-192.png", "sizes": "192x192", "purpose": "any"},
    {"file": "icon-512.png", "sizes": "512x512", "purpose": "any"},
    {"file": "maskable-512.png", "sizes": "512x512", "purpose": "maskable"},
)
THEME_COLOUR = "#1d4d2b"
BACKGROUND_COLOUR = "#ffffff"
ENTRY = "js/app.js"
STYLESHEET = "css/app.css"
WORKER = "sw.js"
WORKER_BUILD = "sw-build.js"
PROTOCOL_MODULE = "js/protocol.js"
MANIFEST_FILE = "build.json"
LANGUAGES_MODULE = "js/languages.js"
# One catalogue per shipped language, `i18n/<BCP 47 tag>.json` beside the modules.
CATALOGUE_FOLDER = "i18n"
HERE = os.path.dirname(os.path.abspath(__file__))
# The gettext catalogues: <language>/LC_MESSAGES/messages.po, compiled to messages.mo beside.
TRANSLATIONS_DIR = os.path.join(HERE, "translations")
# Folders of `pwa/` whose files the app loads (icons are copied beside, make_icons.py is not).
ASSET_FOLDERS = ("js", "css", "sw")


def _identity(text: str) -> str:
    return text


def manifest(lang: str = "en", translate=_identity) -> dict:
    """The web app manifest: what Chromium needs to offer installing the app."""
    return {
        "id": SCOPE,
        "name": translate("Kerbside field app"),
        "short_name": "Kerbside",
        "description": translate("Check your streets against the Neighbourhood Agreement, even with no signal."),
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
    lines = ["// Generated from sync/protocol.py when the app is built (server/pwa_build.py): change them there.", ""]
    for name in protocol.CLIENT_CONSTANTS:
        lines.append(f"export const {name} = {json.dumps(_js_value(getattr(protocol, name)))};")
    return "\n".join(lines) + "\n"


@functools.cache
def _sibling(name: str):
    """server/<name>.py loaded by path: the wheel's build has no Flask, so `server` cannot be imported."""
    spec = importlib.util.spec_from_file_location(f"kerbside_build_{name}", os.path.join(HERE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _po_path(translations_dir: str, language: str) -> str:
    return os.path.join(translations_dir, language, "LC_MESSAGES", "messages.po")


def read_catalogue(translations_dir: str, language: str):
    """The language's .po file as a Babel Catalog, or None when it has none (English needs none)."""
    from babel.messages.pofile import read_po

    path = _po_path(translations_dir, language)
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as handle:
        return read_po(handle, locale=language)


def _plural_rule(catalog, language: str) -> tuple[int, str]:
    """(nplurals, plural expression): the .po header's Plural-Forms, else Babel's rule for the language."""
    if catalog is not None:
        return catalog.num_plurals, catalog.plural_expr
    from babel.messages.plurals import get_plural

    rule = get_plural(language)
    return rule.num_plurals, rule.plural_expr


def field_catalogue(language: str, translations_dir: str = TRANSLATIONS_DIR) -> dict:
    """The field app's catalogue for `language`: `{"": header, id: text | [forms...]}`.

    Only translated messages are listed (a fuzzy or empty one is not); the default language's
    catalogue lists every message (its .po, else the msgid itself), so it fills any gap.
    """
    languages = _sibling("languages")
    messages = _sibling("pwa_messages").MESSAGES
    catalog = read_catalogue(translations_dir, language)
    nplurals, plural = _plural_rule(catalog, language)
    is_default = language == languages.DEFAULT
    found = {"": {"language": languages.html_lang(language), "dir": languages.direction(language),
                  "nplurals": nplurals, "plural": plural}}
    for key, message in messages.items():
        is_plural = isinstance(message, tuple)
        msgid = message[0] if is_plural else message
        entry = catalog.get(msgid) if catalog is not None else None
        text = None
        if entry is not None and not entry.fuzzy:
            if is_plural and isinstance(entry.string, (tuple, list)) and len(entry.string) == nplurals and all(entry.string):
                text = list(entry.string)
            elif not is_plural and isinstance(entry.string, str) and entry.string:
                text = entry.string
        if text is None and is_default:
            text = list(message) if is_plural else message
        if text is not None:
            found[key] = text
    return found


def catalogue_path(language: str) -> str:
    """Where the language's catalogue is in a build's version folder: `i18n/en-GB.json`."""
    return f"{CATALOGUE_FOLDER}/{_sibling('languages').html_lang(language)}.json"


def languages_module(languages) -> str:
    """`js/languages.js`: the languages this build ships, for the app's language choice."""
    from babel import Locale

    module = _sibling("languages")
    shipped = []
    for language in languages:
        shipped.append({"tag": module.html_lang(language), "name": Locale.parse(language).get_language_name() or language,
                        "dir": module.direction(language), "catalogue": catalogue_path(language)})
    return ("// Generated from server/languages.py when the app is built (server/pwa_build.py).\n\n"
            f"export const LANGUAGES = {json.dumps(shipped, ensure_ascii=False)};\n"
            f"export const DEFAULT_LANGUAGE = {json.dumps(module.html_lang(languages[0]))};\n")


def generated_files(languages, translations_dir: str = TRANSLATIONS_DIR) -> dict:
    """Files the build writes rather than a person: path -> bytes."""
    files = {PROTOCOL_MODULE: protocol_module().encode("utf-8"),
             LANGUAGES_MODULE: languages_module(languages).encode("utf-8")}
    for language in languages:
        files[catalogue_path(language)] = json.dumps(
            field_catalogue(language, translations_dir), ensure_ascii=False, sort_keys=True, indent=0).encode("utf-8")
    return files


def shipped_languages(languages=None) -> tuple:
    """The languages to ship, the default first (server/languages.py unless given)."""
    module = _sibling("languages")
    chosen = list(languages or module.LANGUAGES)
    if module.DEFAULT in chosen:
        chosen.remove(module.DEFAULT)
    return (module.DEFAULT, *chosen)


def compile_translations(translations_dir: str = TRANSLATIONS_DIR, out_dir: str | None = None) -> list[str]:
    """Compile each <language>/LC_MESSAGES/messages.po to messages.mo (in `out_dir`, else beside it).

    Only stale ones are written (atomically), so a checkout's server may call it at every start.
    Returns the languages compiled.
    """
    from babel.messages.mofile import write_mo
    import io

    out_dir = out_dir or translations_dir
    compiled = []
    if not os.path.isdir(translations_dir):
        return compiled
    for language in sorted(os.listdir(translations_dir)):
        source = _po_path(translations_dir, language)
        if not os.path.isfile(source):
            continue
        target = os.path.join(out_dir, language, "LC_MESSAGES", "messages.mo")
        if os.path.isfile(target) and os.stat(target).st_mtime_ns >= os.stat(source).st_mtime_ns:
            continue
        data = io.BytesIO()
        write_mo(data, read_catalogue(translations_dir, language), use_fuzzy=False)
        _write_atomic(target, data.getvalue())
        compiled.append(language)
    return compiled


# Modules the build writes rather than a person: path -> a function giving the text (the
# catalogues, generated_files, are not modules).
GENERATED_MODULES = {PROTOCOL_MODULE: protocol_module, LANGUAGES_MODULE: lambda: languages_module(shipped_languages())}


def asset_sources(source_dir: str) -> list[str]:
    """The app's files under `source_dir` (paths relative to it, `/`-separated), sorted."""
    found = []
    for folder in ASSET_FOLDERS:
        top = os.path.join(source_dir, folder)
        for where, dirs, names in os.walk(top):
            dirs.sort()
            for name in names:
                if name.startswith(".") or not name.endswith((".js", ".css")):
                    continue
                found.append(os.path.relpath(os.path.join(where, name), source_dir).replace(os.sep, "/"))
    found.append(WORKER)
    return sorted(set(found))


def source_stamp(source_dir: str) -> tuple:
    """What changes when any source changes: names, sizes and modification times (cheap, per request).

    The field app's messages and translations are sources too (server/pwa_messages.py, the .po files).
    """
    stamp = []
    extra = [os.path.join(HERE, "pwa_messages.py"), os.path.join(HERE, "languages.py")]
    if os.path.isdir(TRANSLATIONS_DIR):
        extra += [_po_path(TRANSLATIONS_DIR, language) for language in sorted(os.listdir(TRANSLATIONS_DIR))]
    for path in extra:
        if os.path.isfile(path):
            status = os.stat(path)
            stamp.append((path, status.st_mtime_ns, status.st_size))
    for where, dirs, names in os.walk(source_dir):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(where, name)
            status = os.stat(path)
            stamp.append((path, status.st_mtime_ns, status.st_size))
    return tuple(stamp)


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _write_atomic(target: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".build-")
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.replace(temporary, target)


def _copy_with_webassets(source_dir: str, generated_dir: str, names: list[str], out_dir: str) -> None:
    """Copy each file through webassets (the project's asset pipeline) into `out_dir`."""
    from webassets import Bundle, Environment

    env = Environment(directory=out_dir, url=SCOPE)
    env.load_path = [source_dir, generated_dir]
    env.cache = False
    env.manifest = False
    env.auto_build = False
    env.url_expire = False
    for name in names:
        bundle = Bundle(name, output=name)
        env.register(name, bundle)
        bundle.build(force=True, disable_cache=True)


def build(source_dir: str, build_dir: str, languages=None) -> dict:
    """Build the app from `source_dir` into `build_dir` (idempotent); return its build.json.

    `languages` (default server/languages.py's) are shipped: one catalogue each, all precached.
    """
    languages = shipped_languages(languages)
    generated = generated_files(languages)
    names = sorted(set(asset_sources(source_dir)) | set(generated))
    shell = _read(os.path.join(source_dir, "index.html"))
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(generated[name] if name in generated else _read(os.path.join(source_dir, name)))
    digest.update(shell)
    digest.update(json.dumps(manifest(), sort_keys=True).encode("utf-8"))
    for icon in ICONS:
        digest.update(_read(os.path.join(source_dir, "icons", icon["file"])))
    version = digest.hexdigest()[:12]
    base = f"{SCOPE}assets/{version}/"
    precache = [SCOPE, SCOPE + "manifest.webmanifest"] + [base + name for name in names + [WORKER_BUILD]]
    precache += [f"{SCOPE}icons/{icon['file']}" for icon in ICONS]
    info = {
        "version": version,
        "entry": ENTRY,
        "stylesheet": STYLESHEET,
        # The page's module graph (everything under js/); the worker's own modules are not preloaded.
        "preload": [name for name in names if name.startswith("js/") and name != ENTRY],
        "files": names + [WORKER_BUILD],
        "precache": precache,
        "languages": [_sibling("languages").html_lang(language) for language in languages],
    }
    version_dir = os.path.join(build_dir, "assets", version)
    if _current(build_dir) != info:
        # A version's folder is written whole in a temporary folder, then renamed into place,
        # so a reader never sees half of one; an existing one is the same bytes by construction.
        if not os.path.isdir(version_dir):
            os.makedirs(os.path.join(build_dir, "assets"), exist_ok=True)
            staging = tempfile.mkdtemp(dir=os.path.join(build_dir, "assets"), prefix=".build-")
            generated_dir = os.path.join(staging, ".generated")
            for path, data in generated.items():
                _write_atomic(os.path.join(generated_dir, path), data)
            _copy_with_webassets(source_dir, generated_dir, names, staging)
            shutil.rmtree(generated_dir)
            worker_build = "globalThis.BUILD = " + json.dumps({"version": version, "scope": SCOPE, "precache": precache}) + ";\n"
            _write_atomic(os.path.join(staging, WORKER_BUILD), worker_build.encode("utf-8"))
            try:
                os.rename(staging, version_dir)
            except OSError:  # another process renamed the same version first
                shutil.rmtree(staging, ignore_errors=True)
        for icon in ICONS:
            _write_atomic(os.path.join(build_dir, "icons", icon["file"]), _read(os.path.join(source_dir, "icons", icon["file"])))
        _write_atomic(os.path.join(build_dir, "index.html"), shell)
        # The worker's entry: BUILD first (module imports evaluate in order), then the worker.
        entry = (f"// Kerbside field app, version {version} (generated by server/pwa_build.py).\n"
                 f'import "./assets/{version}/{WORKER_BUILD}";\nimport "./assets/{version}/{WORKER}";\n')
        _write_atomic(os.path.join(build_dir, WORKER), entry.encode("utf-8"))
        _write_atomic(os.path.join(build_dir, MANIFEST_FILE), json.dumps(info, indent=1).encode("utf-8"))
    return info


def _current(build_dir: str):
    try:
        with open(os.path.join(build_dir, MANIFEST_FILE), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def read_build(build_dir: str):
    """The build.json of a finished build in `build_dir`, or None."""
    return _current(build_dir)
