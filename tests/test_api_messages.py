"""POST /api/v1/messages through a real aiohttp server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from helpline.db import Database
from helpline.models import Contact, Conversation, Message

FIELDS = {"conversation_id", "intent", "lang", "reply", "article", "grid", "case", "booking"}


async def post(client, body, **kw):  # type: ignore[no-untyped-def]
    resp = await client.post("/api/v1/messages", json=body, **kw)
    return resp.status, await resp.json()


async def count(db: Database, *where) -> int:  # type: ignore[no-untyped-def]
    async with db.read() as s:
        return await s.scalar(select(func.count()).select_from(Message).where(*where)) or 0


@pytest.mark.parametrize(
    ("text", "lang"),
    [("你好", "zh"), ("您好，在吗？", "zh"), ("帮助", "zh"), ("Hello!", "en"), ("hi there", "en"), ("HELP", "en")],
)
async def test_greeting_gets_the_menu_in_the_callers_language(client, text, lang) -> None:
    status, body = await post(client, {"from": "web:abc123", "text": text})
    assert status == 200
    assert set(body) == FIELDS
    assert body["intent"] == "menu"
    assert body["lang"] == lang
    assert [o["key"] for o in body["reply"]["options"]] == ["1", "2", "3", "4", "5", "0"]
    assert all(body[k] is None for k in ("article", "grid", "case", "booking"))
    if lang == "zh":
        assert "热线" in body["reply"]["text"] and "农业" in body["reply"]["text"]
    else:
        assert "help-line" in body["reply"]["text"] and "Farming advice" in body["reply"]["text"]


async def test_explicit_lang_wins_over_detection(client) -> None:
    status, body = await post(client, {"from": "web:abc123", "text": "你好", "lang": "en"})
    assert status == 200 and body["lang"] == "en" and "Hello" in body["reply"]["text"]


async def test_unknown_text_falls_back_honestly_with_the_menu(client) -> None:
    status, body = await post(client, {"from": "web:x1", "text": "qwertyuiop asdf"})
    assert status == 200
    assert body["intent"] == "unknown"
    assert "did not understand" in body["reply"]["text"]
    assert len(body["reply"]["options"]) == 6


async def test_menu_choice_continues_the_conversation(client, db) -> None:
    _, first = await post(client, {"from": "web:flow1", "text": "你好"})
    _, second = await post(client, {"from": "web:flow1", "text": "4"})
    assert second["conversation_id"] == first["conversation_id"]
    assert "地点" in second["reply"]["text"]
    # the choice is consumed: the same digit again is no longer a menu choice
    _, third = await post(client, {"from": "web:flow1", "text": "4"})
    assert third["intent"] == "unknown"


async def test_every_message_and_reply_is_stored(client, db) -> None:
    await post(client, {"from": "web:store1", "text": "你好", "location": {"lat": 29.87, "lon": 121.55}})
    async with db.read() as s:
        rows = (await s.scalars(select(Message).order_by(Message.id))).all()
        contacts = await s.scalar(select(func.count()).select_from(Contact))
        convs = (await s.scalars(select(Conversation))).all()
    assert [(m.direction, m.status) for m in rows] == [("in", "handled"), ("out", "replied")]
    assert rows[0].text == "你好" and rows[0].intent == "menu" and rows[0].lang == "zh"
    assert rows[0].meta == {"location": {"lat": 29.87, "lon": 121.55}}
    assert rows[1].reply_to_id == rows[0].id and rows[1].text.startswith("您好")
    assert contacts == 1 and len(convs) == 1 and convs[0].lang == "zh"


async def test_same_idempotency_key_is_stored_once_and_answered_the_same(client, db) -> None:
    headers = {"Idempotency-Key": "msg-0001"}
    s1, b1 = await post(client, {"from": "web:dup", "text": "你好"}, headers=headers)
    s2, b2 = await post(client, {"from": "web:dup", "text": "你好"}, headers=headers)
    assert s1 == s2 == 200 and b1 == b2
    assert await count(db, Message.direction == "in") == 1
    assert await count(db, Message.direction == "out") == 1
    # a different key is a different message
    await post(client, {"from": "web:dup", "text": "你好"}, headers={"Idempotency-Key": "msg-0002"})
    assert await count(db, Message.direction == "in") == 2


async def test_concurrent_duplicate_deliveries_store_one_message(client, db) -> None:
    headers = {"Idempotency-Key": "race-1"}
    results = await asyncio.gather(
        *(post(client, {"from": "web:race", "text": "hello"}, headers=headers) for _ in range(12))
    )
    assert {status for status, _ in results} == {200}
    assert len({str(body) for _, body in results}) == 1
    assert await count(db, Message.direction == "in") == 1
    assert await count(db, Message.direction == "out") == 1


async def test_first_messages_from_many_new_contacts_at_once(client, db) -> None:
    results = await asyncio.gather(*(post(client, {"from": f"web:new{i % 5}", "text": "hi"}) for i in range(20)))
    assert {status for status, _ in results} == {200}
    async with db.read() as s:
        assert await s.scalar(select(func.count()).select_from(Contact)) == 5
    assert await count(db, Message.direction == "in") == 20


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"text": "你好"}, "missing field 'from'"),
        ({"from": "web:a"}, "missing field 'text'"),
        ({"from": "web:a", "text": ""}, "'text' is empty"),
        ({"from": "web:a", "text": "   \n "}, "'text' is empty"),
        ({"from": "web:a", "text": "长" * 4001}, "too long"),
        ({"from": "web:a", "text": 42}, "'text' must be a string"),
        ({"from": "web:a", "text": ["hi"]}, "'text' must be a string"),
        ({"from": 7, "text": "hi"}, "'from' must be a string"),
        ({"from": "tel:+8613800000000", "text": "hi"}, "web:<id>"),
        ({"from": "web:", "text": "hi"}, "web:<id>"),
        ({"from": "web:a b", "text": "hi"}, "web:<id>"),
        ({"from": "web:a", "text": "hi", "lang": "fr"}, "'lang'"),
        ({"from": "web:a", "text": "hi", "location": "here"}, "'location' must be an object"),
        ({"from": "web:a", "text": "hi", "location": {"lat": 91, "lon": 0}}, "between -90 and 90"),
        ({"from": "web:a", "text": "hi", "location": {"lat": 1}}, "'location.lon' must be a number"),
        ({"from": "web:a", "text": "hi", "location": {"lat": True, "lon": 1}}, "'location.lat' must be a number"),
        (["from", "text"], "JSON object"),
        ("hello", "JSON object"),
    ],
)
async def test_bad_input_gets_400_naming_the_problem(client, db, body, needle) -> None:
    status, data = await post(client, body)
    assert status == 400
    assert set(data) == {"error"} and needle in data["error"]
    assert await count(db) == 0


async def test_text_at_the_limit_is_accepted(client) -> None:
    status, _ = await post(client, {"from": "web:a", "text": "长" * 4000})
    assert status == 200


@pytest.mark.parametrize(
    ("data", "content_type", "needle"),
    [
        (b'{"from": "web:a", "text": ', "application/json", "not valid JSON"),
        (b"\xff\xfe\x00", "application/json", "not valid"),
        (b"", "application/json", "not valid JSON"),
        (b"from=web:a&text=hi", "application/x-www-form-urlencoded", "Content-Type: application/json"),
        (b'{"from": "web:a", "text": "hi"}', "text/plain", "Content-Type: application/json"),
    ],
)
async def test_malformed_bodies_get_400(client, db, data, content_type, needle) -> None:
    resp = await client.post("/api/v1/messages", data=data, headers={"Content-Type": content_type})
    assert resp.status == 400
    assert needle in (await resp.json())["error"]
    assert await count(db) == 0


async def test_bad_idempotency_key_is_refused(client) -> None:
    status, data = await post(client, {"from": "web:a", "text": "hi"}, headers={"Idempotency-Key": "x" * 101})
    assert status == 400 and "Idempotency-Key" in data["error"]


async def test_oversized_body_gets_413_json(client) -> None:
    resp = await client.post(
        "/api/v1/messages", data=b"{" + b" " * (9 * 1024 * 1024) + b"}", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 413
    assert "too large" in (await resp.json())["error"]


async def test_wrong_method_and_unknown_path_answer_json(client) -> None:
    resp = await client.get("/api/v1/messages")
    assert resp.status == 405 and "error" in await resp.json() and "POST" in resp.headers["Allow"]
    resp = await client.get("/api/v1/nothing-here")
    assert resp.status == 404 and (await resp.json()) == {"error": "not found"}
