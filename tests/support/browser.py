"""Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import base64
import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NOT_INSTALLED = "Chromium is not installed (apt-get install chromium; .ci/run installs it)"


def launch_chromium(playwright):
    """A headless Chromium that runs in containers and stays off the network."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )


@contextlib.contextmanager
def chromium() -> Iterator:
    """A Playwright ``Browser`` from :func:`launch_chromium`, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


# Decodes a PNG in the page (the browser's own decoder) and counts its distinct colours.
_COUNT_COLOURS = """async (png) => {
    const blob = await (await fetch("data:image/png;base64," + png)).blob();
    const bitmap = await createImageBitmap(blob);
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const context = canvas.getContext("2d");
    context.drawImage(bitmap, 0, 0);
    const pixels = context.getImageData(0, 0, bitmap.width, bitmap.height).data;
    const seen = new Set();
    for (let i = 0; i < pixels.length; i += 4) {
        seen.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
    }
    return {width: bitmap.width, height: bitmap.height, colours: seen.size};
}"""


def png_colours(page, path: Path) -> dict[str, int]:
    """``{"width", "height", "colours"}`` of the PNG file at ``path``, decoded by ``page``."""
    return page.evaluate(_COUNT_COLOURS, base64.b64encode(path.read_bytes()).decode())
