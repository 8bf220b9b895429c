"""While an operator has a conversation in hand, the bot does not answer for them."""

from __future__ import annotations

from sqlalchemy import select, update

from helpline.db import Database
from helpline.models import Conversation


async def _assign(db: Database, conversation_id: str) -> None:
    async with db.write() as s:  # what the console's claim does
        await s.execute(update(Conversation).where(Conversation.id == conversation_id).values(status="assigned"))


async def test_messages_go_to_the_operator_and_emergencies_still_get_the_numbers(client, db: Database) -> None:  # type: ignore[no-untyped-def]
    first = await (await client.post("/api/v1/messages", json={"from": "web:held", "text": "转人工"})).json()
    assert first["intent"] == "operator"
    await _assign(db, first["conversation_id"])

    held = await (await client.post("/api/v1/messages", json={"from": "web:held", "text": "稻瘟病怎么治"})).json()
    assert held["intent"] == "operator" and held["article"] is None
    assert "话务员" in held["reply"]["text"]
    again = await (await client.post("/api/v1/messages", json={"from": "web:held", "text": "转人工"})).json()
    assert again["intent"] == "operator"
    async with db.read() as s:  # asking again does not put it back in the queue
        assert await s.scalar(select(Conversation.status).where(Conversation.id == first["conversation_id"])) == "assigned"

    fire = await (await client.post("/api/v1/messages", json={"from": "web:held", "text": "着火了 快救火"})).json()
    assert fire["intent"] == "emergency" and "119" in fire["reply"]["text"]


async def test_a_phone_number_in_a_message_is_no_case_number(client) -> None:  # type: ignore[no-untyped-def]
    """An 11-digit number is too big for a case or booking id (it once overflowed PostgreSQL's int)."""
    from helpline.cases.models import case_id_of

    assert case_id_of("13912345678") is None and case_id_of("100001") == 1
    resp = await client.post("/api/v1/messages", json={"from": "web:num", "text": "我另一个号码是13912345678"})
    assert resp.status == 200
