"""Make sure a Chromium is there for the browser tests, and say which one.

Order: one already installed (KERBSIDE_CHROMIUM, or `chromium` on the PATH); else the
distribution's package when we may install packages (root with apt-get, as on Debian CI
machines, where Playwright's own download cannot reach the internet); else Playwright's
download (`python -m playwright install chromium`), as on an ordinary developer machine.

Fonts too: a Debian machine without a desktop has DejaVu alone, which lacks letters Urdu needs
(ے, ہ), so Urdu pages would be drawn with empty boxes in the browser tests' screenshots. Where
no installed font covers Urdu and we may install packages, Debian's Noto fonts are added.

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


def _may_install_packages() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and bool(shutil.which("apt-get"))


def _apt_install(*packages: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env)


def has_font_for(language: str) -> bool:
    """Whether fontconfig knows a font that covers `language`'s letters (False when it cannot tell)."""
    if not shutil.which("fc-list"):
        return False
    found = subprocess.run(["fc-list", f":lang={language}", "family"], capture_output=True, text=True)
    return bool(found.stdout.strip())


def ensure_fonts() -> str:
    """Fonts for every shipped language's letters, installed from Debian's packages where needed."""
    if has_font_for("ur"):
        return "installed"
    if _may_install_packages():
        _apt_install("fonts-noto-core")
        return "Debian's Noto fonts"
    return "missing for Urdu (install a Noto Naskh Arabic font)"


def ensure() -> str:
    found = installed()
    if found:
        return found
    if _may_install_packages():
        _apt_install("chromium")
        found = installed()
        if found:
            return found
    if playwright_has_chromium():
        return "playwright's chromium"
    subprocess.run([sys.executable, "-m", "playwright", "install", "chromium"], check=True)
    return "playwright's chromium"


if __name__ == "__main__":
    print(f"Browser tests will use: {ensure()}")
    print(f"Fonts for Urdu: {ensure_fonts()}")
