"""Native ES modules with modulepreload against one concatenated bundle: the field app's cold load.

The build (server/pwa_build.py) serves the app's modules as written, preloaded from the
shell. The bundle it replaced is rebuilt here with the tests' module-joining helper
(e2e/esm.py, the old bundler's rules) so both are measured on the same sources. Both are
served by one small static server that counts the requests and bytes it answers.

For each: a cold load online in a fresh Chromium profile (no HTTP cache, no service worker),
then, once the service worker is in charge, a cold start offline from its cache. "Usable" is
the first screen drawn (the join screen: no API is needed to reach it). Chromium runs with
4x CPU throttling (CDP); online loads are measured on loopback and on an emulated slow
mobile link (150 ms round trip, 1.6 Mbit/s down), where a module waterfall would show.

Run: python bench/pwa_build.py [--runs 5] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from socketserver import ThreadingMixIn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jinja2  # noqa: E402

from bench.report import write_section  # noqa: E402
from e2e.esm import module_order, strip_module  # noqa: E402
from server import pwa_build  # noqa: E402
from server.pwa import DEFAULT_SOURCE_DIR  # noqa: E402

CHROMIUM = os.environ.get("KERBSIDE_CHROMIUM") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
SLOW = {"offline": False, "latency": 150, "downloadThroughput": 1.6e6 / 8, "uploadThroughput": 0.75e6 / 8}
USABLE = "document.querySelector('#main form, #main fieldset, #main h1, #main h2') !== null"
TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".html": "text/html",
         ".webmanifest": "application/manifest+json"}


def _shell(template: str, **values) -> bytes:
    env = jinja2.Environment(autoescape=True)
    env.globals.update(_=lambda text: text, get_locale=lambda: "en")
    return env.from_string(template).render(**values).encode("utf-8")


def native_files() -> dict[str, bytes]:
    """What the server sends for the native-module build: path -> bytes."""
    out = tempfile.mkdtemp(prefix="kerbside-bench-build-")
    info = pwa_build.build(DEFAULT_SOURCE_DIR, out)
    base = f"/app/assets/{info['version']}/"
    files = {base + name: open(os.path.join(out, "assets", info["version"], name), "rb").read() for name in info["files"]}
    files["/app/sw.js"] = open(os.path.join(out, "sw.js"), "rb").read()
    template = open(os.path.join(out, "index.html"), encoding="utf-8").read()
    files["/app/"] = _shell(template, css_url=base + info["stylesheet"], js_url=base + info["entry"],
                            preload_urls=[base + name for name in info["preload"]], **_common(info["version"]))
    return files | _icons_and_manifest()


def bundled_files() -> dict[str, bytes]:
    """The same app as one script bundle and a bundled worker (the build this replaced)."""
    search = [DEFAULT_SOURCE_DIR, tempfile.mkdtemp(prefix="kerbside-bench-gen-")]
    for path, make in pwa_build.GENERATED_MODULES.items():
        os.makedirs(os.path.dirname(os.path.join(search[1], path)), exist_ok=True)
        with open(os.path.join(search[1], path), "w", encoding="utf-8") as handle:
            handle.write(make())

    def joined(entry):
        texts = []
        for path in module_order(search, entry):
            folder = next(f for f in search if os.path.exists(os.path.join(f, path)))
            texts.append(strip_module(open(os.path.join(folder, path), encoding="utf-8").read(), path))
        return "".join(texts)

    js, css = joined("js/app.js").encode("utf-8"), open(os.path.join(DEFAULT_SOURCE_DIR, "css", "app.css"), "rb").read()
    version = "0123456789ab"
    js_url, css_url = f"/app/assets/app.{version}.js", f"/app/assets/app.{version}.css"
    precache = ["/app/", "/app/manifest.webmanifest", js_url, css_url] + [f"/app/icons/{i['file']}" for i in pwa_build.ICONS]
    worker = "const BUILD = " + json.dumps({"version": version, "scope": "/app/", "precache": precache}) + ";\n"
    template = open(os.path.join(DEFAULT_SOURCE_DIR, "index.html"), encoding="utf-8").read()
    files = {js_url: js, css_url: css, "/app/sw.js": (worker + joined("sw.js")).encode("utf-8"),
             "/app/": _shell(template, css_url=css_url, js_url=js_url, preload_urls=[], **_common(version))}
    return files | _icons_and_manifest()


def _common(version):
    return {"manifest_url": "/app/manifest.webmanifest", "icon_url": "/app/icons/icon-192.png",
            "theme_colour": pwa_build.THEME_COLOUR, "version": version}


def _icons_and_manifest():
    files = {f"/app/icons/{i['file']}": open(os.path.join(DEFAULT_SOURCE_DIR, "icons", i["file"]), "rb").read()
             for i in pwa_build.ICONS}
    files["/app/manifest.webmanifest"] = json.dumps(pwa_build.manifest()).encode("utf-8")
    return files


class Served:
    """A static server for one variant; counts what it answers."""

    def __init__(self, files):
        self.files, self.requests, self.bytes = files, 0, 0
        self.lock = threading.Lock()

        class Server(ThreadingMixIn, WSGIServer):
            daemon_threads = True

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args):
                pass

        self.server = make_server("127.0.0.1", 0, self.app, server_class=Server, handler_class=Quiet)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def app(self, environ, start_response):
        path = environ["PATH_INFO"]
        body = self.files.get(path)
        if body is None:
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"error": "not found"}']
        kind = TYPES.get(os.path.splitext(path)[1], "text/html")
        cache = "public, max-age=31536000, immutable" if path.startswith("/app/assets/") else "no-cache"
        headers = [("Content-Type", kind), ("Cache-Control", cache), ("Content-Length", str(len(body)))]
        if path == "/app/sw.js":
            headers.append(("Service-Worker-Allowed", "/app/"))
        with self.lock:
            self.requests += 1
            self.bytes += len(body)
        start_response("200 OK", headers)
        return [body]

    def reset(self):
        with self.lock:
            self.requests = self.bytes = 0


def _usable_ms(page, cdp, url, network=None):
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
    if network:
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", network)
    started = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.wait_for_function(USABLE, timeout=60_000, polling=10)
    return (time.perf_counter() - started) * 1000


def measure(playwright, files, runs):
    served = Served(files)
    figures = {"loopback": [], "slow": [], "offline": [], "requests": 0, "bytes": 0, "all_requests": 0, "all_bytes": 0}
    try:
        for run in range(runs):
            for network in ("loopback", "slow"):
                with tempfile.TemporaryDirectory() as profile:
                    context = playwright.chromium.launch_persistent_context(
                        profile, executable_path=CHROMIUM, args=ARGS, viewport={"width": 360, "height": 740},
                        service_workers="allow")
                    page = context.pages[0] if context.pages else context.new_page()
                    cdp = context.new_cdp_session(page)
                    served.reset()
                    figures[network].append(_usable_ms(page, cdp, served.base + "/app/", SLOW if network == "slow" else None))
                    if network == "loopback" and run == 0:
                        figures["requests"], figures["bytes"] = served.requests, served.bytes
                        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
                        page.wait_for_timeout(500)
                        figures["all_requests"], figures["all_bytes"] = served.requests, served.bytes
                    if network == "loopback":
                        # The worker is in charge: a cold start with no network at all.
                        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
                        page.wait_for_function("navigator.serviceWorker.controller !== null || (location.reload(), false)",
                                               timeout=30_000, polling=500)
                        page.close()
                        context.set_offline(True)
                        page = context.new_page()
                        cdp = context.new_cdp_session(page)
                        served.reset()
                        figures["offline"].append(_usable_ms(page, cdp, served.base + "/app/"))
                        assert served.requests == 0, "the offline start reached the server"
                    context.close()
    finally:
        served.server.shutdown()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    options = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        results = {"native ES modules + modulepreload (this build)": measure(playwright, native_files(), options.runs),
                   "one concatenated bundle (the regex bundler's output)": measure(playwright, bundled_files(), options.runs)}
    lines = ["## Field app build: native modules against one bundle", "",
             f"`python bench/pwa_build.py --runs {options.runs}` — Chromium, 4x CPU throttling, fresh profile per load; "
             "time from navigation to the first screen drawn, median of the runs. Requests and bytes: what the server "
             "answered up to that moment (and with the service worker's precache), uncompressed.", "",
             "| build | requests (first screen) | bytes (first screen) | requests / bytes with precache "
             "| online, loopback | online, 150 ms RTT 1.6 Mbit/s | offline from the worker's cache |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, f in results.items():
        lines.append(f"| {name} | {f['requests']} | {f['bytes']:,} | {f['all_requests']} / {f['all_bytes']:,} "
                     f"| {statistics.median(f['loopback']):.0f} ms | {statistics.median(f['slow']):.0f} ms "
                     f"| {statistics.median(f['offline']):.0f} ms |")
    text = "\n".join(lines)
    print(text)
    if not options.no_write:
        write_section("pwa-build", text)


if __name__ == "__main__":
    main()
