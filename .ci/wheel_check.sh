#!/usr/bin/env bash
# CI: the package is real. Build the wheel, install it into a fresh venv outside the checkout,
# run `kerbside demo` from it (in a temp folder, so the checkout is not on sys.path), and fetch
# the field app's shell, one module and the service worker. Fails if any is not 200, or if the
# installed server serves a build it wrote itself (it must serve the one the wheel carries).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d /tmp/kerbside-wheel.XXXXXX)"
VENV="${WHEEL_VENV:-/tmp/kerbside-wheel-venv}"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== wheel: build =="
rm -rf build/  # setuptools' staging folder; a stale one could carry old files into the wheel
"$PYTHON" -m pip wheel . -w "$WORK/dist" --no-deps --quiet
WHEEL="$(ls "$WORK"/dist/kerbside-*.whl)"
"$PYTHON" - "$WHEEL" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
needed = ["server/pwa_dist/build.json", "server/pwa_dist/index.html", "server/pwa_dist/sw.js",
          "server/pwa_dist/icons/icon-192.png", "server/pwa_dist/icons/maskable-512.png"]
missing = [name for name in needed if name not in names]
if not any(name.endswith("/js/protocol.js") and name.startswith("server/pwa_dist/assets/") for name in names):
    missing.append("server/pwa_dist/assets/<version>/js/protocol.js")
# The server's catalogues compiled (Flask-Babel reads .mo), and the field app's, one per language.
for po in (name for name in names if name.startswith("server/translations/") and name.endswith(".po")):
    if po[:-3] + ".mo" not in names:
        missing.append(po[:-3] + ".mo")
if not any(name.startswith("server/pwa_dist/assets/") and name.endswith("/i18n/en-GB.json") for name in names):
    missing.append("server/pwa_dist/assets/<version>/i18n/en-GB.json")
if any(name.startswith("pwa/") for name in names):
    sys.exit("the wheel carries pwa/ sources; it should carry only the build")
if missing:
    sys.exit(f"the wheel lacks {missing}")
print(f"wheel has the field app ({sum(n.startswith('server/pwa_dist/') for n in names)} files)")
PY

echo "== wheel: install into a fresh venv =="
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet "$WHEEL"

echo "== wheel: kerbside demo from the installed package =="
PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p "$WORK/run"
cd "$WORK/run"
KERBSIDE_INSTANCE="$WORK/run/instance" "$VENV/bin/kerbside" demo --host 127.0.0.1 --port "$PORT" >"$WORK/demo.log" 2>&1 &
SERVER_PID=$!
"$VENV/bin/python" - "$PORT" "$WORK/run/instance" <<'PY' || { cat "$WORK/demo.log"; exit 1; }
import os, re, sys, time, urllib.request

port, instance = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}"
deadline = time.monotonic() + 120
while True:
    try:
        urllib.request.urlopen(base + "/app/", timeout=5)
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("kerbside demo did not answer within 120 s")
        time.sleep(0.5)

def fetch(path):
    with urllib.request.urlopen(base + path, timeout=10) as response:
        if response.status != 200:
            sys.exit(f"{path}: {response.status}")
        return response.read()

shell = fetch("/app/").decode("utf-8")
module = re.search(r'<script type="module" src="(/app/assets/[0-9a-f]{12}/js/app\.js)"', shell).group(1)
preload = re.findall(r'<link rel="modulepreload" href="([^"]+)"', shell)
for path in [module, *preload, "/app/sw.js", "/app/manifest.webmanifest", "/app/icons/icon-192.png"]:
    print(f"200 {path} ({len(fetch(path))} bytes)")
worker = fetch("/app/sw.js").decode("utf-8")
for path in re.findall(r'^import "\./([^"]+)";$', worker, re.MULTILINE):
    print(f"200 /app/{path} ({len(fetch('/app/' + path))} bytes)")
import server  # the installed package, not the checkout
if not server.__file__.startswith(sys.prefix):
    sys.exit(f"imported {server.__file__}, not the installed package")
if os.path.exists(os.path.join(instance, "pwa-build")):
    sys.exit("the installed server built the app itself instead of serving the wheel's build")
print("the installed package serves its own build")
PY
echo "wheel check passed"
