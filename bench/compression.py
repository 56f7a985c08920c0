"""Bytes on the wire with and without compression, as the server sends them (server/compression.py).

A new phone's first sync of a 500-site area (5 form versions, 2 agreements; every page of
the pull until `has_more` is false) and the field app's shell, bundles and service worker,
each fetched three ways: no Accept-Encoding (identity), `gzip`, and what browsers send
(`gzip, deflate, br, zstd`, which the server answers with Brotli). The time is the server's
median for the whole first sync (every page), compression included, on SQLite.

Run: python bench/compression.py [--sites 500] [--repeat 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.report import write_section  # noqa: E402
from server import create_app, operations  # noqa: E402
from server.extensions import db  # noqa: E402
from server.seed_content import AGREEMENT, STREET_FORM, checklist_form, mystery_shop_form  # noqa: E402

ENCODINGS = (("identity", None), ("gzip", "gzip"), ("br", "gzip, deflate, br, zstd"))


def _area(sites: int):
    """An area as the issue's benchmark states it: `sites` sites, 5 form versions, 2 agreements."""
    area = operations.create_area("bench", "Bench")
    operations.create_sites(area, [{"name": f"{n} Bench Street", "lat": 53.5 + n / 10000, "lng": -2.6}
                                   for n in range(1, sites + 1)])
    definitions = [("street", STREET_FORM), ("street", STREET_FORM), ("street", STREET_FORM),
                   ("checklist", checklist_form(AGREEMENT)), ("mystery_shop", mystery_shop_form(AGREEMENT))]
    for form_id, definition in definitions:
        operations.publish_form_version(operations.draft_form_version(form_id, definition))
    for agreement_id in ("bench-deal", "bench-deal-two"):
        operations.publish_agreement_version(operations.draft_agreement_version(agreement_id, area, AGREEMENT))
    db.session.commit()
    return area


def _enrol(client, area) -> str:
    code = operations.issue_invite(area, "street_rep", display_name="Bench")
    db.session.commit()
    return client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": code, "device_name": "Bench"}).get_json()["token"]


def first_sync(client, token: str, accept: str | None) -> tuple[int, int, float]:
    """(bytes on the wire, pages, seconds) of a whole first sync."""
    headers = {"Authorization": f"Bearer {token}"}
    if accept:
        headers["Accept-Encoding"] = accept
    cursor, wire, pages, spent = None, 0, 0, 0.0
    while True:
        started = time.perf_counter()
        response = client.post("/api/sync/v1", json={"protocol": 1, "cursor": cursor, "limit": 1000, "mutations": []},
                               headers=headers)
        spent += time.perf_counter() - started  # the answer, compressed; not the reading of it here
        wire += len(response.data)
        pages += 1
        body = response.get_json() if not response.headers.get("Content-Encoding") else _decode(response)
        cursor = body["cursor"]
        if not body["has_more"]:
            return wire, pages, spent


def _decode(response):
    import gzip
    import json

    import brotli

    encoding = response.headers["Content-Encoding"]
    raw = gzip.decompress(response.data) if encoding == "gzip" else brotli.decompress(response.data)
    return json.loads(raw)


def shell_parts(client) -> dict[str, dict[str, int]]:
    from server.pwa import current_build

    build = current_build()
    # The app is native ES modules (docs/pwa.md): every module of the build, the worker's included.
    modules = sorted(path for path in build.files if path.endswith(".js"))
    parts = {"HTML shell (/app/)": ["/app/"],
             f"JavaScript modules ({len(modules)}, the worker's included)": [
                 f"/app/assets/{build.asset_name(path)}" for path in modules],
             "stylesheet": [f"/app/assets/{build.css}"], "service worker entry (/app/sw.js)": ["/app/sw.js"]}
    sizes = {}
    for label, addresses in parts.items():
        sizes[label] = {name: 0 for name, _accept in ENCODINGS}
        for address in addresses:
            for name, accept in ENCODINGS:
                response = client.get(address, headers={"Accept-Encoding": accept} if accept else {})
                sizes[label][name] += len(response.get_data())
                response.close()
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sites", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="kerbside-bench-")
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/bench.sqlite", "SECRET_KEY": "bench",
                      "BLOB_DIR": os.path.join(folder, "blobs"), "SYNC_RATE_PER_MINUTE": 100000})
    with app.app_context():
        db.create_all()
        operations.init_state()
        db.session.commit()
        area = _area(args.sites)
        client = app.test_client()
        token = _enrol(client, area)
        runs = {name: [] for name, _accept in ENCODINGS}
        for _ in range(args.repeat):  # interleaved, so a busy moment on the machine falls on all three
            for name, accept in ENCODINGS:
                runs[name].append(first_sync(client, token, accept))
        syncs = {name: (found[0][0], found[0][1], statistics.median(run[2] for run in found))
                 for name, found in runs.items()}
        shell = shell_parts(client)

    identity = syncs["identity"][0]
    lines = ["## Compression on the wire", "",
             f"`python bench/compression.py --sites {args.sites} --repeat {args.repeat}` — bytes as the server sends "
             "them, through the Flask test client on SQLite: answers at gzip level 6 and Brotli quality 4 "
             "(Flask-Compress), the content-hashed modules once at gzip 9 and Brotli 11 (server/compression.py). "
             "`br` is what a browser's `gzip, deflate, br, zstd` gets. Server time is noisy on a shared machine.", "",
             f"First sync of a new phone, {args.sites}-site area, 5 form versions, 2 agreements (every page, limit 1000):",
             "", "| encoding | bytes | vs identity | pages | server time (median) |", "|---|---:|---:|---:|---:|"]
    for name, (wire, pages, seconds) in syncs.items():
        lines.append(f"| {name} | {wire:,} | {wire / identity:.1%} | {pages} | {seconds * 1000:.1f} ms |")
    lines += ["", "Field app shell, modules and worker (summed over each part's files):", "", "| part | identity | gzip | br |", "|---|---:|---:|---:|"]
    totals = {name: 0 for name, _accept in ENCODINGS}
    for label, sizes in shell.items():
        lines.append(f"| {label} | {sizes['identity']:,} | {sizes['gzip']:,} | {sizes['br']:,} |")
        for name in totals:
            totals[name] += sizes[name]
    lines.append(f"| **all of it** | **{totals['identity']:,}** | **{totals['gzip']:,}** | **{totals['br']:,}** |")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("compression", text)


if __name__ == "__main__":
    main()
