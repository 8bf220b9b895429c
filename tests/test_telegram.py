"""The Telegram channel end to end: real Update JSON posted to the webhook, real aiogram talking to
a fake Bot API, what the bot sent read from the fake's records. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fakes.telegram_api import BOT_USER, TOKEN, FakeTelegramApi
from fakes.telegram_api import telegram_api_fixture  # noqa: F401 (the telegram_api fixture)
from sqlalchemy import func, select

from channels.telegram import ALLOWED_UPDATES, LOCATION_BUTTON, TelegramBot, render_text, set_webhook
from channels.telegram_sender import TelegramSender, split_text
from helpline.app import build_router, create_app
from helpline.appkeys import OUTBOX
from helpline.cli import _parser
from helpline.config import Settings
from helpline.db import Database
from helpline.inbound import Inbox
from helpline.metrics import Metrics
from helpline.models import Contact, ContactAddress, Conversation, Event, Message, OutboxItem
from helpline.outbox import enqueue
from helpline.outbox_worker import OutboxWorker
from helpline.request import Intent, Option, Reply

SECRET = "test-webhook-secret_0123456789"
CHAT = 700001
URN = f"telegram:{CHAT}"
_ids = itertools.count(10_000)


# -- building real updates ----------------------------------------------------------------


def user(chat: int = CHAT, lang: str = "zh-hans") -> dict[str, Any]:
    return {"id": chat, "is_bot": False, "first_name": "Li", "language_code": lang}


def message_update(text: str | None = None, *, chat: int = CHAT, lang: str = "zh-hans",
                   chat_type: str = "private", kind: str = "message", **fields: Any) -> dict[str, Any]:
    uid = next(_ids)
    msg: dict[str, Any] = {
        "message_id": uid, "date": 1_700_000_000,
        "chat": {"id": chat, "type": chat_type, "first_name": "Li"} if chat_type == "private"
        else {"id": chat, "type": chat_type, "title": "Village group"},
        "from": user(chat, lang), **fields,
    }
    if text is not None:
        msg["text"] = text
        if text.startswith("/"):
            msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": uid, kind: msg}


def callback_update(data: str, *, chat: int = CHAT) -> dict[str, Any]:
    uid = next(_ids)
    return {"update_id": uid, "callback_query": {
        "id": f"cbq-{uid}", "from": user(chat), "chat_instance": "ci-1", "data": data,
        "message": {"message_id": 1, "date": 1_700_000_000, "chat": {"id": chat, "type": "private"},
                    "from": BOT_USER, "text": "menu"},
    }}


def photo_sizes(file_id: str, big: int) -> list[dict[str, Any]]:
    return [
        {"file_id": f"{file_id}-s", "file_unique_id": f"{file_id}S", "width": 90, "height": 67, "file_size": 1_000},
        {"file_id": file_id, "file_unique_id": f"{file_id}L", "width": 1280, "height": 960, "file_size": big},
    ]


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def tg_settings(settings: Settings, telegram_api: FakeTelegramApi) -> Settings:
    return dataclasses.replace(settings, telegram_token=TOKEN, telegram_secret=SECRET,
                               telegram_api_url=telegram_api.url)


class Webhook:
    def __init__(self, client: Any, api: FakeTelegramApi) -> None:
        self.client = client
        self.api = api

    async def post(self, update: Any, *, secret: str | None = SECRET, raw: bytes | None = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        body = raw if raw is not None else json.dumps(update).encode()
        return await self.client.post("/telegram/webhook", data=body, headers=headers)

    async def __call__(self, update: dict[str, Any]) -> dict[str, Any] | None:
        """Post an update (200 expected); the last message sent, if this update sent one."""
        before = len(self.api.sent())
        resp = await self.post(update)
        assert resp.status == 200, await resp.text()
        sent = self.api.sent()
        return sent[-1] if len(sent) > before else None


@pytest.fixture
async def hook(aiohttp_client, tg_settings: Settings, telegram_api: FakeTelegramApi) -> Webhook:  # type: ignore[no-untyped-def]
    return Webhook(await aiohttp_client(create_app(tg_settings)), telegram_api)


async def count(db: Database, *where: Any) -> int:
    async with db.read() as s:
        return await s.scalar(select(func.count()).select_from(Message).where(*where)) or 0


async def inbound(db: Database) -> list[Message]:
    async with db.read() as s:
        return list(await s.scalars(select(Message).where(Message.direction == "in").order_by(Message.id)))


async def state(db: Database) -> dict[str, Any]:
    async with db.read() as s:
        conv = await s.scalar(select(Conversation).where(Conversation.channel == "telegram"))
        return conv.state if conv else {}


def buttons(sent: dict[str, Any]) -> list[tuple[str, str]]:
    rows = sent["reply_markup"]["inline_keyboard"]
    return [(b["text"], b["callback_data"]) for row in rows for b in row]


# -- conversations -----------------------------------------------------------------------------


async def test_a_greeting_gets_the_menu_as_buttons(hook: Webhook, db: Database) -> None:
    update = message_update("你好")
    sent = await hook(update)
    assert sent is not None and sent["chat_id"] == CHAT
    assert "便民服务热线" in sent["text"]
    assert "1 农业技术咨询" not in sent["text"]  # the buttons carry the options
    assert [key for _, key in buttons(sent)] == ["1", "2", "3", "4", "5", "0"]
    assert ("1 农业技术咨询", "1") in buttons(sent)
    [msg] = await inbound(db)
    assert (msg.channel, msg.urn, msg.provider_id, msg.text) == ("telegram", URN, str(update["update_id"]), "你好")
    async with db.read() as s:
        out = await s.scalar(select(Message).where(Message.direction == "out"))
    assert out.status == "replied" and out.provider_id == f"{CHAT}:1"  # Telegram's message id, once sent


async def test_a_question_gets_the_answer(hook: Webhook) -> None:
    sent = await hook(message_update("小麦赤霉病怎么防"))
    assert sent is not None and "赤霉" in sent["text"] and "来源" in sent["text"]


async def test_a_button_press_continues_the_dialogue(hook: Webhook, db: Database, telegram_api) -> None:
    await hook(message_update("你好"))
    press = callback_update("5")
    sent = await hook(press)
    assert sent is not None and "案件号" in sent["text"]  # menu 5: asks for the case number
    [answered] = telegram_api.calls_of("answerCallbackQuery")
    assert answered.params["callback_query_id"] == press["callback_query"]["id"]
    msgs = await inbound(db)
    assert [m.text for m in msgs] == ["你好", "5"]
    sent = await hook(message_update("12345"))
    assert sent is not None and "12345" in sent["text"]


async def test_start_offers_languages_and_what_the_line_does(hook: Webhook, db: Database) -> None:
    sent = await hook(message_update("/start", lang="en"))
    assert sent is not None and "help-line" in sent["text"]
    assert ("中文", "lang:zh") in buttons(sent) and ("English", "lang:en") in buttons(sent)
    assert ("1 Farming advice", "1") in buttons(sent)


async def test_help_status_and_operator_commands(hook: Webhook, db: Database) -> None:
    sent = await hook(message_update("/help"))
    assert sent is not None and [k for _, k in buttons(sent)] == ["1", "2", "3", "4", "5", "0"]
    sent = await hook(message_update("/status 12345"))
    assert sent is not None and "12345" in sent["text"]
    sent = await hook(message_update("/operator"))
    assert sent is not None and "人工" in sent["text"]
    assert [m.text for m in await inbound(db)] == ["帮助", "CX 12345", "转人工"]
    async with db.read() as s:
        assert await s.scalar(select(Conversation.status)) == "waiting"
    sent = await hook(message_update("/status"))
    assert sent is not None and "案件号" in sent["text"]


async def test_lang_chooses_and_keeps_the_language(hook: Webhook, db: Database, telegram_api) -> None:
    sent = await hook(message_update("/lang"))
    assert sent is not None and "Please choose your language" in sent["text"]
    assert buttons(sent) == [("中文", "lang:zh"), ("English", "lang:en")]
    sent = await hook(callback_update("lang:en"))
    assert sent is not None and "help-line" in sent["text"]
    assert len(telegram_api.calls_of("answerCallbackQuery")) == 1
    async with db.read() as s:
        assert await s.scalar(select(Contact.lang)) == "en"
    # A Chinese Telegram app, but the stored choice wins for commands.
    sent = await hook(message_update("/operator", lang="zh-hans"))
    assert sent is not None and "operator" in sent["text"]
    sent = await hook(message_update("/lang zh"))
    assert sent is not None and "便民服务热线" in sent["text"]


async def test_a_report_asks_for_the_place_then_takes_a_shared_location(hook: Webhook, db: Database) -> None:
    sent = await hook(message_update("路灯坏了"))
    assert sent is not None and "路灯" in sent["text"] and "地点" in sent["text"]
    [[button]] = sent["reply_markup"]["keyboard"]
    assert button == {"text": LOCATION_BUTTON, "request_location": True}
    sent = await hook(message_update(location={"latitude": 29.87, "longitude": 121.55}))
    assert sent is not None and "路灯" in sent["text"] and "已记录" in sent["text"]
    assert sent["reply_markup"] == {"remove_keyboard": True}
    last = (await inbound(db))[-1]
    assert last.meta["location"] == {"lat": 29.87, "lon": 121.55}
    assert last.intent == "grid_case"


async def test_a_venue_is_a_place_with_a_name(hook: Webhook, db: Database) -> None:
    await hook(message_update("井盖丢了"))
    venue = {"location": {"latitude": 29.9, "longitude": 121.6}, "title": "幸福小区东门", "address": "幸福路8号"}
    sent = await hook(message_update(location=venue["location"], venue=venue))
    assert sent is not None and "幸福小区东门" in sent["text"]


async def test_a_photo_with_a_caption_is_stored_with_the_report(
    hook: Webhook, db: Database, telegram_api: FakeTelegramApi, tg_settings: Settings
) -> None:
    data = b"\xff\xd8\xff\xe0" + b"jpeg" * 1000
    telegram_api.add_file("ph1", data, "photos/file_7.jpg")
    update = message_update(caption="路灯坏了", photo=photo_sizes("ph1", len(data)))
    sent = await hook(update)
    assert sent is not None and "路灯" in sent["text"]
    assert sent["reply_markup"]["keyboard"][0][0]["request_location"] is True
    assert telegram_api.downloads == ["photos/file_7.jpg"]
    [got] = telegram_api.calls_of("getFile")
    assert got.params["file_id"] == "ph1"  # the big size, not the thumbnail
    [msg] = await inbound(db)
    assert msg.text == "路灯坏了"
    [entry] = msg.meta["media"]
    path = tg_settings.var_dir / entry["path"]
    assert path.read_bytes() == data and entry["bytes"] == len(data)
    assert path.parent == tg_settings.var_dir / "media" / "telegram"
    assert (await state(db))["report"]["media"] == [entry["path"]]


async def test_a_photo_without_caption_joins_the_open_report(
    hook: Webhook, db: Database, telegram_api: FakeTelegramApi, tg_settings: Settings
) -> None:
    await hook(message_update("路灯坏了"))
    telegram_api.add_file("ph2", b"photo-bytes", "photos/file_8.jpg")
    sent = await hook(message_update(photo=photo_sizes("ph2", 11)))
    assert sent is not None and "照片已收到" in sent["text"]
    assert sent["reply_markup"]["keyboard"][0][0]["request_location"] is True
    report = (await state(db))["report"]
    assert report["code"] == "C0118" and len(report["media"]) == 1
    assert (tg_settings.var_dir / report["media"][0]).read_bytes() == b"photo-bytes"
    # The photo was not taken as the place: the location still is.
    sent = await hook(message_update(location={"latitude": 29.87, "longitude": 121.55}))
    assert sent is not None and "已记录" in sent["text"]
    assert [m.meta.get("media", []) != [] for m in await inbound(db)] == [False, True, False]


async def test_a_voice_note_is_kept_for_an_operator(
    hook: Webhook, db: Database, telegram_api: FakeTelegramApi, tg_settings: Settings
) -> None:
    telegram_api.add_file("vc1", b"OggS-voice", "voice/file_3.oga")
    voice = {"file_id": "vc1", "file_unique_id": "vc1U", "duration": 4, "mime_type": "audio/ogg", "file_size": 10}
    sent = await hook(message_update(voice=voice))
    assert sent is not None and "语音已收到" in sent["text"]
    [msg] = await inbound(db)
    [entry] = msg.meta["media"]
    assert entry["kind"] == "voice" and entry["path"].endswith(".oga")
    assert (tg_settings.var_dir / entry["path"]).read_bytes() == b"OggS-voice"


async def test_a_too_big_photo_is_refused_without_downloading(
    hook: Webhook, db: Database, telegram_api: FakeTelegramApi
) -> None:
    huge = 6 * 1024 * 1024
    sizes = [{**s, "file_size": huge + i} for i, s in enumerate(photo_sizes("big", huge))]
    sent = await hook(message_update(photo=sizes))
    assert sent is not None and "太大" in sent["text"]
    assert telegram_api.calls_of("getFile") == [] and telegram_api.downloads == []
    [msg] = await inbound(db)
    assert msg.meta["media"] == [] and msg.meta["media_refused"][0]["reason"] == "too large"
    # With a caption the report is still taken, and the refusal follows it.
    await hook(message_update(caption="路灯坏了", photo=sizes))
    texts = [s["text"] for s in telegram_api.sent()]
    assert "路灯" in texts[-2] and "太大" in texts[-1]
    assert telegram_api.downloads == []


async def test_a_photo_bigger_than_telegram_said_is_cut_off(
    hook: Webhook, db: Database, telegram_api: FakeTelegramApi, tg_settings: Settings
) -> None:
    telegram_api.add_file("liar", b"x" * (5 * 1024 * 1024 + 10), "photos/file_9.jpg", size=None)
    sizes = [{"file_id": "liar", "file_unique_id": "liarU", "width": 800, "height": 600}]
    sent = await hook(message_update(photo=sizes))
    assert sent is not None and "太大" in sent["text"]
    assert not (tg_settings.var_dir / "media" / "telegram").exists() or not any(
        (tg_settings.var_dir / "media" / "telegram").iterdir())


# -- idempotency and the edge ------------------------------------------------------------------


async def test_the_same_update_twice_is_stored_and_answered_once(
    hook: Webhook, db: Database, telegram_api: FakeTelegramApi
) -> None:
    update = message_update("你好")
    assert await hook(update) is not None
    assert await hook(update) is None  # 200, and nothing sent again
    assert await count(db, Message.direction == "in") == 1
    assert len(telegram_api.calls_of("sendMessage")) == 1
    press = callback_update("1")
    await hook(press)
    await hook(press)
    assert len(telegram_api.calls_of("answerCallbackQuery")) == 1
    # Messages the router does not see (a photo without words, /lang) are idempotent too.
    telegram_api.add_file("ph3", b"photo", "photos/file_3.jpg")
    for update in (message_update(photo=photo_sizes("ph3", 5)), message_update("/lang")):
        before = len(telegram_api.sent())
        assert await hook(update) is not None
        assert await hook(update) is None
        assert len(telegram_api.sent()) == before + 1
    assert await count(db, Message.direction == "in") == 4


async def test_a_reply_never_confirmed_is_sent_on_redelivery(
    hook: Webhook, db: Database, telegram_api: FakeTelegramApi
) -> None:
    """As if the process died between the commit and sendMessage: Telegram re-sends the update."""
    update = message_update("你好")
    await hook(update)
    async with db.write() as s:
        out = await s.scalar(select(Message).where(Message.direction == "out"))
        out.provider_id = None
    sent = await hook(update)
    assert sent is not None and "便民服务热线" in sent["text"]
    assert await count(db, Message.direction == "in") == 1


@pytest.mark.parametrize("secret", [None, "wrong-secret", SECRET + "x"])
async def test_a_wrong_secret_is_401_and_stores_nothing(hook: Webhook, db: Database, telegram_api, secret) -> None:
    resp = await hook.post(message_update("你好"), secret=secret)
    assert resp.status == 401
    assert "error" in await resp.json()
    assert await count(db) == 0 and telegram_api.calls == []


@pytest.mark.parametrize(("raw", "needle"), [
    (b"{not json", "not valid JSON"),
    (b'{"update_id": 1, "message": "\xc3\x28"}', "UTF-8"),
    (b"[1, 2]", "JSON object"),
    (b'{"message": {}}', "update_id"),
    (b'{"update_id": "7"}', "update_id"),
])
async def test_malformed_bodies_are_a_clear_400(hook: Webhook, db: Database, telegram_api, raw, needle) -> None:
    resp = await hook.post(None, raw=raw)
    assert resp.status == 400
    assert needle in (await resp.json())["error"]
    assert await count(db) == 0 and telegram_api.calls == []


@pytest.mark.parametrize("update", [
    message_update(sticker={"file_id": "st", "file_unique_id": "stU", "type": "regular", "width": 512,
                            "height": 512, "is_animated": False, "is_video": False}),
    message_update("路灯坏了 (edited)", kind="edited_message"),
    message_update("你好", chat=-100200, chat_type="supergroup"),
    {"update_id": 999_001, "some_future_update": {"x": 1}},
    {"update_id": 999_002, "message": {"message_id": "not a number"}},
    {"update_id": 999_003},
], ids=["sticker", "edited", "group", "unknown-type", "unreadable", "empty"])
async def test_updates_we_cannot_use_get_a_quiet_200(hook: Webhook, db: Database, telegram_api, update) -> None:
    assert await hook(update) is None
    assert await count(db) == 0
    assert telegram_api.calls_of("sendMessage") == []


async def test_a_document_without_caption_gets_a_polite_answer(hook: Webhook, db: Database) -> None:
    doc = {"file_id": "d1", "file_unique_id": "d1U", "file_name": "a.pdf"}
    sent = await hook(message_update(document=doc))
    assert sent is not None and "照片" in sent["text"] and "位置" in sent["text"]
    update = message_update(document=doc, caption="低保怎么申请")
    sent = await hook(update)
    assert sent is not None and "低保" in sent["text"]


async def test_a_reply_that_cannot_go_now_goes_to_the_outbox(
    hook: Webhook, db: Database, telegram_api: FakeTelegramApi
) -> None:
    telegram_api.fail_next("sendMessage", 429, retry_after=30)
    resp = await hook.post(message_update("你好"))
    assert resp.status == 200
    assert len(telegram_api.calls_of("sendMessage")) == 1  # no retry loop against the Bot API
    async with db.read() as s:
        item = await s.scalar(select(OutboxItem))
        replied = await s.scalar(select(Message).where(Message.direction == "out", Message.status == "failed"))
    assert item is not None and item.urn == URN and item.kind == "reply" and "便民服务热线" in item.body
    assert replied is not None


# -- blocked users -----------------------------------------------------------------------------


async def opted_out(db: Database, urn: str = URN) -> bool:
    async with db.read() as s:
        return (await s.scalar(select(ContactAddress.opted_out_at).where(ContactAddress.urn == urn))) is not None


async def events(db: Database, action: str) -> int:
    async with db.read() as s:
        return await s.scalar(select(func.count()).select_from(Event).where(Event.action == action)) or 0


@pytest.fixture
async def sender(tg_settings: Settings, db: Database) -> AsyncIterator[TelegramSender]:
    s = TelegramSender(tg_settings, db=db)
    yield s
    await s.close()


async def queue(db: Database, body: str, urn: str = URN) -> int:
    async with db.write() as session:
        return (await enqueue(session, urn, body, "case_update")).id


async def test_outbox_items_reach_telegram_users(
    db: Database, tg_settings: Settings, sender: TelegramSender, telegram_api: FakeTelegramApi
) -> None:
    worker = OutboxWorker(db, tg_settings, Metrics(), {"telegram": sender}, "w1")
    item_id = await queue(db, "您反映的路灯问题已修好。")
    assert await worker.run_once() == 1
    [sent] = telegram_api.sent()
    assert (sent["chat_id"], sent["text"]) == (CHAT, "您反映的路灯问题已修好。")
    async with db.read() as s:
        item = await s.get(OutboxItem, item_id)
        msg = await s.get(Message, item.message_id)
    assert (item.status, item.provider_id) == ("sent", f"{CHAT}:1")
    assert (msg.channel, msg.status) == ("telegram", "sent")


async def test_a_blocked_user_is_marked_and_skipped(
    db: Database, tg_settings: Settings, sender: TelegramSender, telegram_api: FakeTelegramApi
) -> None:
    worker = OutboxWorker(db, tg_settings, Metrics(), {"telegram": sender}, "w1")
    telegram_api.block(CHAT)
    first = await queue(db, "案件已受理")
    assert await worker.run_once() == 1
    async with db.read() as s:
        item = await s.get(OutboxItem, first)
    assert item.status == "dead" and "blocked" in item.last_error
    assert await opted_out(db) and await events(db, "telegram.blocked") == 1
    calls = len(telegram_api.calls)
    second = await queue(db, "案件已办结")
    assert await worker.run_once() == 1
    async with db.read() as s:
        assert (await s.get(OutboxItem, second)).status == "skipped"
    assert len(telegram_api.calls) == calls  # Telegram was not asked again


async def test_the_app_sends_the_outbox_through_telegram(hook: Webhook) -> None:
    senders = hook.client.app[OUTBOX].senders
    assert isinstance(senders["telegram"], TelegramSender)


async def test_blocking_and_coming_back(hook: Webhook, db: Database, telegram_api: FakeTelegramApi) -> None:
    await hook(message_update("你好"))

    def member(old: str, new: str) -> dict[str, Any]:
        uid = next(_ids)
        return {"update_id": uid, "my_chat_member": {
            "chat": {"id": CHAT, "type": "private"}, "from": user(), "date": 1_700_000_000,
            "old_chat_member": {"status": old, "user": BOT_USER, **({"until_date": 0} if old == "kicked" else {})},
            "new_chat_member": {"status": new, "user": BOT_USER, **({"until_date": 0} if new == "kicked" else {})},
        }}

    assert await hook(member("member", "kicked")) is None
    assert await opted_out(db)
    assert await hook(member("kicked", "member")) is None
    assert not await opted_out(db)
    # A reply that meets a block (403) marks it too; /start lifts it.
    telegram_api.block(CHAT)
    await hook.post(message_update("你好"))
    assert await opted_out(db) and await events(db, "telegram.blocked") == 2
    telegram_api.unblock(CHAT)
    sent = await hook(message_update("/start"))
    assert sent is not None and "便民服务热线" in sent["text"]
    assert not await opted_out(db) and await events(db, "telegram.unblocked") == 2


async def test_start_does_not_undo_a_stop(hook: Webhook, db: Database) -> None:
    await hook(message_update("退订"))
    assert await opted_out(db)
    sent = await hook(message_update("/start"))
    assert sent is not None and await opted_out(db)


# -- polling, set-up, rendering ------------------------------------------------------------------


async def test_polling_handles_queued_updates_and_stops(
    db: Database, tg_settings: Settings, telegram_api: FakeTelegramApi
) -> None:
    inbox = Inbox(db, build_router(), tg_settings, Metrics())
    bot = TelegramBot(tg_settings, db, inbox)
    telegram_api.webhook = {"url": "https://old.example.org/telegram/webhook"}  # polling must remove it
    updates = [message_update("你好"), message_update("小麦赤霉病怎么防"), callback_update("1")]
    for update in updates:
        await telegram_api.queue_update(update)
    stop = asyncio.Event()
    task = asyncio.create_task(bot.run_polling(stop, polling_timeout=1))
    try:
        last = updates[-1]["update_id"]
        await telegram_api.wait_for(lambda: telegram_api.confirmed > last)
        stop.set()
        await asyncio.wait_for(task, 15)
    finally:
        stop.set()
        await inbox.close()
        await bot.close()
    assert telegram_api.webhook is None and telegram_api.calls_of("deleteWebhook")
    texts = [s["text"] for s in telegram_api.sent()]
    assert len(texts) == 3 and "便民服务热线" in texts[0] and "赤霉" in texts[1]
    assert [m.provider_id for m in await inbound(db)] == [str(u["update_id"]) for u in updates]
    assert len(telegram_api.calls_of("answerCallbackQuery")) == 1
    [poll] = telegram_api.calls_of("getUpdates")[:1]
    assert poll.params["allowed_updates"] == ALLOWED_UPDATES == bot.dispatcher.resolve_used_update_types()


async def test_helpline_telegram_poll_runs_and_stops_on_sigterm(tmp_path: Path, telegram_api: FakeTelegramApi) -> None:
    """The command as a deployer runs it: a fresh folder, a token, the Bot API somewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPLINE_")} | {
        "HELPLINE_TELEGRAM_TOKEN": TOKEN, "HELPLINE_TELEGRAM_API_URL": telegram_api.url,
        "HELPLINE_VAR_DIR": str(tmp_path / "var"),
    }
    update = message_update("你好")
    await telegram_api.queue_update(update)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "helpline", "telegram", "poll", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        await telegram_api.wait_for(lambda: telegram_api.confirmed > update["update_id"], timeout=120)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert "Polling Telegram" in out.decode()
    [sent] = telegram_api.sent()
    assert sent["chat_id"] == CHAT and "便民服务热线" in sent["text"]


async def test_set_webhook_registers_the_url_and_secret(tg_settings: Settings, telegram_api: FakeTelegramApi) -> None:
    url = await set_webhook(tg_settings)
    assert url == tg_settings.public_url + "/telegram/webhook"
    assert telegram_api.webhook is not None
    assert (telegram_api.webhook["url"], telegram_api.webhook["secret_token"]) == (url, SECRET)


def test_the_cli_knows_the_telegram_commands() -> None:
    assert _parser().parse_args(["telegram", "poll"]).telegram_command == "poll"
    assert _parser().parse_args(["telegram", "set-webhook"]).telegram_command == "set-webhook"


def test_without_a_token_aiogram_is_not_even_imported(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from helpline.app import create_app\n"
        "from helpline.config import Settings\n"
        f"app = create_app(Settings(database_url='sqlite+aiosqlite:///{tmp_path}/x.db'))\n"
        "assert not any(r.resource.canonical == '/telegram/webhook' for r in app.router.routes())\n"
        "print('aiogram' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPLINE_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_replies_render_as_text_and_buttons() -> None:
    reply = Reply(text="请回复数字：\n1 农业技术咨询\n0 人工服务", intent=Intent.MENU, lang="zh",
                  options=(Option("1", "农业技术咨询"), Option("0", "人工服务")))
    assert render_text(reply) == "请回复数字："
    only_options = Reply(text="1 农业技术咨询", intent=Intent.MENU, lang="zh", options=(Option("1", "农业技术咨询"),))
    assert render_text(only_options) == "1 农业技术咨询"
    parts = split_text("第一段。\n" * 2000)
    assert len(parts) > 1 and all(len(p) <= 4096 for p in parts)
