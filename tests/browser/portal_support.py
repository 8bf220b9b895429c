"""The portal's browser tests: the whole service on a real port (demo catalogue and departments
loaded, as ``helpline serve`` has them), and pages at a cheap phone's size."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer, unused_port
from test_portal_support import demo_data

from helpline.app import create_app
from helpline.config import Settings

PHONE = {"width": 360, "height": 740}  # a small Android phone, in CSS pixels


@dataclasses.dataclass
class Portal:
    server: TestServer
    url: str
    app: Any
    settings: Settings


@pytest.fixture
async def portal(settings: Settings) -> AsyncIterator[Portal]:
    port = unused_port()
    url = f"http://127.0.0.1:{port}"
    live = dataclasses.replace(settings, public_url=url)
    await demo_data(live)
    app = create_app(live)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        yield Portal(server, url, app, live)
    finally:
        await server.close()


async def phone_page(browser: Any, lang: str = "zh-CN", **options: Any) -> Any:
    """A fresh browser (its own cookies) at a phone's size."""
    context = await browser.new_context(viewport=PHONE, locale=lang, device_scale_factor=1, has_touch=True,
                                        is_mobile=True, **options)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    return page


async def page_weight(page: Any) -> int:
    """Bytes the page's document weighs as sent (before compression)."""
    return int(await page.evaluate("new Blob([document.documentElement.outerHTML]).size"))
