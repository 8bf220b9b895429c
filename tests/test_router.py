"""The router's rules, with real handlers and a real database transaction."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from helpline.config import Settings
from helpline.contacts import contact_for, current_conversation
from helpline.db import Database
from helpline.models import utcnow
from helpline.request import Channel, Intent, Reply, Request
from helpline.router import Classification, Context, Router


class ByFirstWord:
    """A classifier for tests: the first word names the intent."""

    def classify(self, text: str, lang: str) -> Classification:
        word = text.split()[0]
        return Classification(Intent(word) if word in Intent._value2member_map_ else Intent.UNKNOWN)


def answering(intent: Intent, text: str, flow: str | None = None) -> Callable:
    async def handler(ctx: Context) -> Reply:
        if flow is not None:
            ctx.set_state(flow=flow)
        return Reply(text=text, intent=intent, lang=ctx.lang)

    return handler


async def fallback(ctx: Context) -> Reply:
    return Reply(text="fallback", intent=Intent.UNKNOWN, lang=ctx.lang)


async def route(db: Database, router: Router, text: str, settings: Settings, state: dict | None = None) -> tuple[Reply, dict]:
    async with db.write() as session:
        contact = await contact_for(session, "web:router-test")
        conv = await current_conversation(session, contact, "web", utcnow())
        if state is not None:
            conv.state = state
        req = Request(Channel.WEB, "web:router-test", text)
        ctx = Context(session=session, settings=settings, request=req, lang="en", contact=contact, conversation=conv, now=utcnow())
        reply = await router.route(ctx)
        return reply, dict(conv.state)


async def test_registered_intent_reaches_its_handler_and_others_the_fallback(db, settings) -> None:
    router = Router(ByFirstWord(), fallback)
    router.register(Intent.MENU, answering(Intent.MENU, "menu!"))
    assert (await route(db, router, "menu please", settings))[0].text == "menu!"
    assert (await route(db, router, "booking a vet", settings))[0].text == "fallback"


def test_a_second_handler_for_an_intent_is_refused() -> None:
    router = Router(ByFirstWord(), fallback)
    router.register(Intent.MENU, answering(Intent.MENU, "a"))
    with pytest.raises(ValueError, match="already registered"):
        router.register(Intent.MENU, answering(Intent.MENU, "b"))


async def test_a_dialogue_in_progress_takes_the_next_message(db, settings) -> None:
    router = Router(ByFirstWord(), fallback)
    router.register(Intent.BOOKING, answering(Intent.BOOKING, "which slot?", flow="booking"))
    reply, state = await route(db, router, "anything at all", settings, state={"flow": "booking"})
    assert reply.text == "which slot?" and state["flow"] == "booking"


async def test_an_emergency_interrupts_any_dialogue(db, settings) -> None:
    router = Router(ByFirstWord(), fallback)
    router.register(Intent.BOOKING, answering(Intent.BOOKING, "which slot?", flow="booking"))
    router.register(Intent.EMERGENCY, answering(Intent.EMERGENCY, "call 119"))
    reply, _ = await route(db, router, "emergency fire", settings, state={"flow": "booking"})
    assert reply.text == "call 119"


async def test_a_flow_that_declines_hands_back_to_classification(db, settings) -> None:
    async def declining(ctx: Context) -> Reply | None:
        return None

    router = Router(ByFirstWord(), fallback)
    router.register(Intent.BOOKING, declining)
    router.register(Intent.MENU, answering(Intent.MENU, "menu!"))
    reply, state = await route(db, router, "menu", settings, state={"flow": "booking"})
    assert reply.text == "menu!" and "flow" not in state
