"""Open a report in headless Chromium (Debian's package) and collect what the page did.

Playwright drives the system browser (it cannot download its own here); a test that needs a
browser fails, not skips, when Chromium is missing: .ci/run installs it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser")
    if not path:
        raise AssertionError("Chromium is not installed (apt-get install chromium); "
                             ".ci/run installs it")
    return path


@dataclass
class PageVisit:
    console: list[tuple[str, str]] = field(default_factory=list)  # (type, text)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)  # alert()/confirm() a script opened
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    title: str = ""
    screenshot: bytes = b""
    image_sizes: list[tuple[int, int]] = field(default_factory=list)  # natural sizes
    #: where each of the selectors asked for is drawn: (x, y, width, height) in CSS pixels
    boxes: dict[str, tuple[float, float, float, float] | None] = field(default_factory=dict)


def visit(html: Path, screenshot: Path | None = None, selectors=()) -> PageVisit:
    """Load ``html`` from disk, wait for it, and record console output, errors and scripts
    (and where the first element of each of ``selectors`` is drawn)."""
    from playwright.sync_api import sync_playwright

    result = PageVisit()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: result.console.append((m.type, m.text)))
            page.on("pageerror", lambda e: result.page_errors.append(str(e)))
            page.on("request", lambda r: result.requests.append(r.url))

            def on_dialog(dialog):
                result.dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", on_dialog)
            page.goto(html.resolve().as_uri(), wait_until="load")
            page.wait_for_timeout(300)
            result.title = page.title()
            result.image_sizes = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.naturalWidth, e.naturalHeight])")
            for selector in selectors:
                box = page.locator(selector).first.bounding_box()
                result.boxes[selector] = (box["x"], box["y"], box["width"], box["height"]) \
                    if box else None
            result.screenshot = page.screenshot(full_page=True)
            if screenshot:
                screenshot.write_bytes(result.screenshot)
        finally:
            browser.close()
    return result
