"""The README's Quick start is two commands, CI runs the second, and the first really serves."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(*path) -> str:
    with open(os.path.join(ROOT, *path), encoding="utf-8") as handle:
        return handle.read()


def quick_start_commands() -> list[str]:
    readme = read("README.md")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


def test_readme_opens_with_exactly_two_commands_and_ci_runs_the_second():
    readme = read("README.md")
    assert readme.index("## Quick start") < readme.index("\n## ", readme.index("## Quick start") + 1)
    first, second = quick_start_commands()
    assert first.endswith("kerbside demo") and "\n" not in first
    assert "pytest" in second and "e2e.chromium" in second and "\n" not in second
    ci = read(".ci", "run")
    assert second in ci.splitlines()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_kerbside_demo_prints_how_to_get_in_and_serves(tmp_path):
    port = _free_port()
    kerbside = os.path.join(os.path.dirname(sys.executable), "kerbside")
    env = {**os.environ, "KERBSIDE_INSTANCE": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen([kerbside, "demo", "--port", str(port)], env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Mystery shopper invite" in line:
                break
        output = "".join(lines)
        assert "Coordinator login: coordinator@kerbside.example / " in output, output
        assert re.search(r"Street rep invite: [A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", output), output
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    page = response.read().decode()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError("the demo server did not answer")
        assert "Millbrook" in page
        assert (tmp_path / "kerbside.sqlite").exists()
    finally:
        process.terminate()
        process.wait(timeout=20)
        process.stdout.close()
