"""How big the field app's shell is on the wire: HTML + CSS + JS (and the service worker), gzipped.

The target is at most 60 KB gzipped for the shell a phone downloads before it works
offline. Run: python bench/shell_size.py
"""

from __future__ import annotations

import gzip
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.report import write_section  # noqa: E402
from server import create_app  # noqa: E402

TARGET_BYTES = 60 * 1024


def measure() -> list[tuple[str, int, int]]:
    """(name, raw bytes, gzipped bytes) for each part of the shell, as the server sends it."""
    folder = tempfile.mkdtemp(prefix="kerbside-bench-")
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/bench.sqlite", "SECRET_KEY": "bench"})
    client = app.test_client()
    html = client.get("/app/").get_data()
    from server.pwa import current_build

    with app.test_request_context():
        build = current_build()
    parts = [("HTML shell (/app/)", html)]
    # Every module the page loads (native ES modules, all preloaded) and the stylesheet.
    for path in (build.stylesheet, build.entry, *build.preload):
        response = client.get(f"/app/assets/{build.asset_name(path)}")
        parts.append((path, response.get_data()))
        response.close()
    parts.append(("service worker (/app/sw.js)", client.get("/app/sw.js").get_data()))
    return [(name, len(data), len(gzip.compress(data, compresslevel=9))) for name, data in parts]


def main() -> None:
    rows = measure()
    shell = sum(gz for name, _raw, gz in rows if not name.startswith("service worker"))
    total = sum(gz for _name, _raw, gz in rows)
    lines = ["## Field app shell size", "",
             "`python bench/shell_size.py` — bytes as served, gzip level 9. Target: the shell (HTML + CSS + JS) "
             f"at most {TARGET_BYTES // 1024} KB gzipped.", "",
             "| part | bytes | gzipped |", "|---|---:|---:|"]
    for name, raw, gz in rows:
        lines.append(f"| {name} | {raw:,} | {gz:,} |")
    lines += ["", f"Shell (HTML + CSS + JS): **{shell:,} bytes gzipped** ({shell / 1024:.1f} KB); "
                  f"with the service worker: {total:,} bytes ({total / 1024:.1f} KB). "
                  f"{'Within' if shell <= TARGET_BYTES else 'Over'} the target."]
    text = "\n".join(lines)
    print(text)
    write_section("shell-size", text)


if __name__ == "__main__":
    main()
