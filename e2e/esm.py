"""Test helper: join some of the field app's ES modules into one classic script.

The browser tests inject parts of the app (the outbox, the sync client) into a bare page
with `add_init_script`, which takes a classic script, not a module graph. The app itself is
served as native ES modules (server/pwa_build.py) and never goes through this; it is kept
for the tests only, under the convention the modules keep (named imports at the top, no
aliases, `export function|const|let|class`, unique top-level names), which it checks.
"""

from __future__ import annotations

import os
import re

from server.pwa_build import GENERATED_MODULES

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


