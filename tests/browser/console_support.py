"""Helpers the console's tests share: accounts, signing in through the real form, CSRF tokens,
and residents' messages sent through the real inbox (router and all)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient

from helpline.appkeys import INBOX
from helpline.config import Settings
from helpline.db import Database
from helpline.inbound import Handled
from helpline.request import Channel, Request
from helpline.users import add_user

PASSWORD = "correct-horse-42"
_CSRF = re.compile(r'name="_csrf" value="([^"]+)"')
_NONCE = re.compile(r'name="nonce" value="([^"]+)"')


async def make_user(
    db: Database, username: str, role: str, department: str | None = None, password: str = PASSWORD
) -> int:
    async with db.write() as session:
        user = await add_user(session, username, role, password, department)
        return user.id


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def nonce_of(html: str) -> str:
    match = _NONCE.search(html)
    assert match, "the page has no reply form"
    return match.group(1)


async def login(client: TestClient, username: str, password: str = PASSWORD, *, expect: int = 303) -> Any:
    """Sign in through the form, as a browser does: GET the page for its token, POST it back."""
    page = await client.get("/console/login")
    token = csrf_of(await page.text())
    resp = await client.post(
        "/console/login", data={"username": username, "password": password, "_csrf": token}, allow_redirects=False
    )
    assert resp.status == expect, await resp.text()
    return resp


async def page_token(client: TestClient, path: str = "/console/queue") -> str:
    resp = await client.get(path)
    assert resp.status == 200, await resp.text()
    return csrf_of(await resp.text())


async def post(
    client: TestClient,
    path: str,
    data: dict[str, str] | None = None,
    *,
    token: str | None = None,
    token_page: str = "/console/kb",
) -> Any:
    """POST a console form with the session's CSRF token (taken from a page when not given)."""
    token = token or await page_token(client, token_page)
    return await client.post(path, data={**(data or {}), "_csrf": token}, allow_redirects=False)


async def resident_says(
    client: TestClient,
    text: str,
    address: str = "tel:+8613800001234",
    channel: Channel = Channel.SMS,
    provider_id: str | None = None,
) -> Handled:
    """A resident's message through the app's one inbound door (the real router answers it)."""
    return await client.app[INBOX].handle(Request(channel=channel, address=address, text=text, provider_id=provider_id))


def with_twilio(settings: Settings, api_url: str, account_sid: str, token: str, sender: str) -> Settings:
    return dataclasses.replace(
        settings, twilio_account_sid=account_sid, twilio_auth_token=token, twilio_from=sender, twilio_api_url=api_url
    )


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0, step: float = 0.05) -> None:
    """Wait until ``check()`` is true (the outbox worker sends in the background)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)
