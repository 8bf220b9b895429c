"""Browser tests: the real app on a real port, driven by headless Chromium through Playwright.

Chromium is Debian's package (``/usr/bin/chromium``; ``.ci/run`` installs it); Playwright's own
browser download cannot work here, so the system binary is launched. Without Chromium or
Playwright these tests are skipped — except under ``CI=true``, where that is a failure.
Screenshots go to ``tests/browser/artifacts/`` (git-ignored) for people to look at.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("HELPLINE_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "Playwright for Python is not installed (pip install '.[test]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    reason = _unavailable()
    if reason is not None:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Any:
    """``await shot(page, "queue")`` saves artifacts/<test>-<backend>-queue.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    name = request.node.name.replace("[", "-").replace("]", "").replace("test_", "", 1)

    async def take(page: Any, step: str, full_page: bool = False) -> Path:
        path = ARTIFACTS / f"{name}-{step}.png"
        await page.screenshot(path=str(path), full_page=full_page)
        return path

    return take
