"""The minimal resident portal: a form that talks to the same router, without JavaScript."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from helpline.models import Message


def nonce_of(html: str) -> str:
    match = re.search(r'name="nonce" value="([^"]+)"', html)
    assert match
    return match.group(1)


async def test_portal_page_has_a_labelled_form_and_emergency_numbers(client) -> None:
    resp = await client.get("/")
    assert resp.status == 200
    html = await resp.text()
    assert '<label for="text">' in html and 'id="text"' in html
    assert "119" in html and "120" in html and "110" in html
    assert resp.cookies.get("hl_sid") is not None


async def test_portal_in_english(client) -> None:
    html = await (await client.get("/?lang=en")).text()
    assert 'lang="en"' in html and "How can we help you?" in html


async def test_asking_on_the_portal_shows_the_routers_reply(client, db) -> None:
    page = await (await client.get("/")).text()
    resp = await client.post("/", data={"text": "你好", "nonce": nonce_of(page), "lang": "zh"})
    assert resp.status == 200
    html = await resp.text()
    assert "您好，这里是便民服务热线" in html
    async with db.read() as s:
        inbound = (await s.scalars(select(Message).where(Message.direction == "in"))).all()
    assert len(inbound) == 1 and inbound[0].channel == "web" and inbound[0].urn.startswith("web:")


async def test_double_submitting_the_form_stores_one_message(client, db) -> None:
    page = await (await client.get("/")).text()
    form = {"text": "hello", "nonce": nonce_of(page), "lang": "en"}
    first = await (await client.post("/", data=form)).text()
    second = await (await client.post("/", data=form)).text()
    assert "Farming advice" in first and "Farming advice" in second
    async with db.read() as s:
        n = await s.scalar(select(func.count()).select_from(Message).where(Message.direction == "in"))
    assert n == 1


async def test_empty_question_is_refused_politely(client, db) -> None:
    resp = await client.post("/", data={"text": "  ", "nonce": "n1", "lang": "zh"})
    assert resp.status == 400
    assert "请输入您的问题" in await resp.text()
    async with db.read() as s:
        assert await s.scalar(select(func.count()).select_from(Message)) == 0
