"""Write one benchmark's figures into its own section of docs/benchmarks.md.

Each benchmark owns the text between `<!-- NAME:start -->` and `<!-- NAME:end -->`, so
several benchmarks can report into one file without overwriting each other.
"""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "benchmarks.md")
HEADER = "# Benchmarks\n\nFigures written by the scripts in `bench/`; each section says how it was run.\n"


def machine() -> str:
    """A one-line description of where the figures were measured."""
    return f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def write_section(name: str, markdown: str, path: str = DOC) -> None:
    """Replace (or add) the section `name` with `markdown`, stamped with date and machine."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    stamp = f"_Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}._\n"
    block = f"{start}\n{markdown.rstrip()}\n\n{stamp}{end}"
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else HEADER
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _old, after = rest.split(end, 1)
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
