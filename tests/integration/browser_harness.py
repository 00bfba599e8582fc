"""Headless Chromium (Debian's, driven by Playwright) logged into a demo dashboard.

Shared by the browser tests: importing this module skips the importing test module when
Playwright or Debian's chromium is missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from dashboard_harness import DashboardDemo, DashboardHarness

CHROMIUM = Path("/usr/bin/chromium")

sync_api = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (make system-deps)", allow_module_level=True)


def running_demo(base: Path, nodes: int, vms_per_node: int) -> Iterator[DashboardDemo]:
    """A started demo cluster in ``base`` for a module fixture to ``yield from``."""
    harness = DashboardHarness(nodes=nodes, vms_per_node=vms_per_node)
    try:
        yield harness.start(base)
    finally:
        harness.stop()


def logged_in_page(demo: DashboardDemo, args: Sequence[str]) -> Iterator[object]:
    """A Chromium page on the demo's dashboard, logged in as operator with live updates on."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(args))
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(demo.web.url + "/")
        page.fill("#token", demo.tokens.operator)
        page.click("#login button")
        page.wait_for_selector("body[data-loaded=true]")
        page.wait_for_selector("#live.on")
        yield page
        browser.close()


def eventually(check: Callable[[], bool], timeout_s: float = 30) -> None:
    """Poll ``check`` every 0.2 s until it holds; AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")
