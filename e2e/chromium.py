"""Make sure a Chromium is there for the browser tests, and say which one.

Order: one already installed (KERBSIDE_CHROMIUM, or `chromium` on the PATH); else the
distribution's package when we may install packages (root with apt-get, as on Debian CI
machines, where Playwright's own download cannot reach the internet); else Playwright's
download (`python -m playwright install chromium`), as on an ordinary developer machine.

Run as `python -m e2e.chromium`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def installed() -> str | None:
    """The path of a Chromium the tests can use, if there is one."""
    return os.environ.get("KERBSIDE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def playwright_has_chromium() -> bool:
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            return os.path.exists(playwright.chromium.executable_path)
    except Exception:
        return False


def ensure() -> str:
    found = installed()
    if found:
        return found
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
        found = installed()
        if found:
            return found
    if playwright_has_chromium():
        return "playwright's chromium"
    subprocess.run([sys.executable, "-m", "playwright", "install", "chromium"], check=True)
    return "playwright's chromium"


if __name__ == "__main__":
    print(f"Browser tests will use: {ensure()}")
