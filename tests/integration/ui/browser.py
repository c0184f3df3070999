"""A real browser for the UI tests: Debian's chromium driven by PyPI playwright.

The set-up installs what is missing (apt-get for chromium, pip for playwright; we run as root
on the test machines and CI), and says in one line when it cannot.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def ensure_browser() -> None:
    if not shutil.which("chromium"):
        apt = ["apt-get", "install", "-y", "-q", "chromium"]
        done = subprocess.run(apt, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=False)
            done = subprocess.run(apt, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not shutil.which("chromium"):
            pytest.fail(f"chromium cannot be installed with apt-get: {done.stderr[-300:]}")
    if importlib.util.find_spec("playwright") is None:
        pip = [sys.executable, "-m", "pip", "install", "-q", "playwright"]
        done = subprocess.run(pip, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.fail(f"playwright cannot be installed with pip: {done.stderr[-300:]}")
