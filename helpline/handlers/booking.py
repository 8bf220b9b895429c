"""Booking a service from a partner provider, as a dialogue on any channel.

service (from the words, or chosen from the catalogue) → the next free slots as numbered options
→ the address (the one from the contact's last booking is offered) → a name if we have none →
confirm → a booking number. The same dialogue cancels ("取消 B1234567") and moves ("改时间") a
booking, takes the follow-up rating (a bare 1-5 after the survey), and takes providers' answers
to a dispatch ("Y B1234567" / "N B1234567"). The draft lives in the conversation state under
``booking``; the work is done by helpline.booking.service, in this message's transaction.

Anything that clearly is not an answer to the question asked (an operator request, a status
query, a street problem, a greeting, a second unintelligible reply) is declined (None), so the
router classifies it afresh.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from helpline.booking import texts
from helpline.booking.matching import When, best_services, in_part, parse_when
from helpline.booking.models import ACTIVE, Booking, Provider, Service, ServiceCategory, Slot
from helpline.booking.routing import booking_number, rating_value
from helpline.booking.service import (
    BookingError,
    Rules,
    accept,
    active_services,
    awaiting_rating,
    book,
    booking_dict,
    booking_facts,
    cancel,
    check_cutoff,
    decline,
    find_booking,
    last_address,
    rate,
    reschedule,
    upcoming,
)
from helpline.booking.slots import HORIZON_DAYS, day_start, ensure_slots, find_slots, local_day
from helpline.classify import Text, normalise
from helpline.handlers.operator import request_operator
from helpline.request import Channel, Intent, Option, Reply
from helpline.router import Context, Handler

FLOW = Intent.BOOKING.value
PAGE = 4  # slots offered at a time: four lines and a header fit two SMS segments
MORE_KEY = "9"
YES = frozenset({"1", "y", "yes", "ok", "okay", "confirm", "sure", "是", "是的", "对", "好", "好的", "确认", "可以", "行", "嗯"})
NO = frozenset({"n", "no", "不", "不要", "否", "不用", "不对"})
QUIT = frozenset({"取消", "cancel", "算了", "不约了", "不要了", "退出", "quit", "stop booking", "never mind", "nevermind"})
# Intents that are never an answer to a booking question.
_ELSEWHERE = (Intent.OPERATOR, Intent.CASE_STATUS, Intent.EMERGENCY)


def _reply(ctx: Context, text: str, options: tuple[Option, ...] = (), booking: dict[str, Any] | None = None) -> Reply:
    return Reply(text=text, intent=Intent.BOOKING, lang=ctx.lang, options=options, booking=booking)


def _rules(ctx: Context) -> Rules:
    return Rules.of(ctx.settings)


def _actor(ctx: Context) -> str:
    return f"contact:{ctx.contact.id}"


def _draft(ctx: Context) -> dict[str, Any]:
    return dict(ctx.state.get("booking") or {})


def _save(ctx: Context, draft: dict[str, Any] | None) -> None:
    ctx.set_state(flow=FLOW if draft is not None else None, booking=draft)


def _when_text(ctx: Context, start: datetime, end: datetime) -> str:
    return texts.when(start, end, ctx.lang, ctx.settings.zone)


def _operator_option(ctx: Context) -> Option:
    return Option("0", ctx.t("转人工", "Talk to an operator"))


async def booking(ctx: Context) -> Reply | None:
    """The router's handler for the booking intent, and for the booking flow in progress."""
    category = ctx.classification.category or {}
    if "provider_reply" in category:
        return await _provider_reply(ctx, category["provider_reply"])
    if ctx.state.get("flow") == FLOW and ctx.state.get("booking"):
        return await _continue(ctx, _draft(ctx))
    if ctx.classification.intent is not Intent.BOOKING:
        return None
    action = category.get("action")
    if action in ("cancel", "reschedule"):
        return await _start_change(ctx, action, category.get("number"))
    return await _start(ctx, ctx.request.text)


# -- a new booking --------------------------------------------------------------------------


async def _start(ctx: Context, text: str) -> Reply:
    services = await active_services(ctx.session)
    if not services:
        return await _to_operator(ctx, "booking")
    matches = best_services(services, text)
    when = parse_when(text, local_day(ctx.now, ctx.settings.zone))
    draft: dict[str, Any] = {"action": "new", "when": _when_state(when)}
    if len(matches) == 1:
        return await _offer_slots(ctx, draft, matches[0], when)
    if matches:
        return _choose_service(ctx, draft, matches, ctx.t("您要预约的是哪一项？", "Which of these do you need?"))
    return await _choose_category(ctx, draft)


async def _to_operator(ctx: Context, reason: str) -> Reply:
    """No catalogue to book from (or nothing free): an operator arranges it, as before the service existed."""
    await request_operator(ctx, reason)
    _save(ctx, None)
    return _reply(ctx, ctx.t(
        "好的，我们来帮您预约上门服务。话务员会尽快联系您，确认服务内容、时间和地址。",
        "Fine: we will arrange the service for you. An operator will contact you shortly to confirm what you "
        "need, when, and the address.",
    ))


def _when_state(when: When) -> dict[str, Any] | None:
    if not when:
        return None
    return {"day": when.day.isoformat() if when.day else None, "part": when.part}


def _when_of(draft: dict[str, Any]) -> When:
    w = draft.get("when") or {}
    return When(date.fromisoformat(w["day"]) if w.get("day") else None, w.get("part"))


async def _choose_category(ctx: Context, draft: dict[str, Any]) -> Reply:
    rows = (await ctx.session.execute(
        select(ServiceCategory).where(
            ServiceCategory.id.in_(select(Service.category_id).where(Service.active.is_(True)))
        ).order_by(ServiceCategory.sort, ServiceCategory.code)
    )).scalars().all()
    categories = list(rows)[:8]
    draft.update(step="category", categories=[c.code for c in categories])
    _save(ctx, draft)
    options = tuple(Option(str(i), c.name(ctx.lang)) for i, c in enumerate(categories, 1))
    lines = [ctx.t("请问您需要哪一类上门服务？请回复数字：", "Which kind of service do you need? Reply with a number:")]
    lines += [f"{o.key} {o.label}" for o in options]
    lines.append(ctx.t("0 转人工", "0 an operator"))
    return _reply(ctx, "\n".join(lines), (*options, _operator_option(ctx)))


def _choose_service(ctx: Context, draft: dict[str, Any], services: list[Service], intro: str) -> Reply:
    services = services[:8]
    draft.update(step="service", services=[s.code for s in services])
    _save(ctx, draft)
    options = tuple(Option(str(i), s.name(ctx.lang)) for i, s in enumerate(services, 1))
    lines = [intro] + [f"{o.key} {o.label}" for o in options]
    return _reply(ctx, "\n".join(lines), (*options, _operator_option(ctx)))


async def _offer_slots(ctx: Context, draft: dict[str, Any], service: Service, when: When,
                       after: datetime | None = None, intro: str | None = None) -> Reply:
    """The next free slots of the service, one per start time, from the wished-for day and part."""
    zone = ctx.settings.zone
    await ensure_slots(ctx.session, ctx.now, zone)
    address = draft.get("address") or await last_address(ctx.session, ctx.contact.id)
    note = ""
    today = local_day(ctx.now, zone)
    if when.day is not None and not today <= when.day <= today + timedelta(days=HORIZON_DAYS):
        note = ctx.t(f"只能预约{HORIZON_DAYS}天以内的时间，", f"Bookings open {HORIZON_DAYS} days ahead; ")
        when = When(None, when.part)
    start = after + timedelta(seconds=1) if after else (day_start(when.day, zone) if when.day else ctx.now)
    offers = await find_slots(ctx.session, service.id, ctx.now, start=start, address=address)
    fitting = [o for o in offers if in_part(o.slot.starts_at.astimezone(zone), when.part)]
    if when.day and not after:
        fitting = [o for o in fitting if local_day(o.slot.starts_at, zone) == when.day] or fitting
    if not fitting and not after and when:
        offers = await find_slots(ctx.session, service.id, ctx.now, address=address)  # any time, then
    if not fitting and offers:
        fitting = offers
        note = note or ctx.t("您说的时间已经约满或不营业，", "Nothing is free at the time you asked; ")
    seen: set[datetime] = set()
    chosen = []
    for offer in fitting:
        if offer.slot.starts_at in seen:
            continue  # several providers at the same time: the best-rated one is offered
        seen.add(offer.slot.starts_at)
        chosen.append(offer)
        if len(chosen) == PAGE:
            break
    if not chosen:
        if after:
            return _reply(ctx, ctx.t("没有更晚的时间了。请从上面的时间中选择，或回复0转人工。",
                                     "There are no later times. Please choose one of the times above, or reply 0 for an operator."),
                          (_operator_option(ctx),))
        await request_operator(ctx, "booking_no_slots")
        _save(ctx, None)
        return _reply(ctx, ctx.t(
            f"抱歉，近两周{service.name_zh}没有可预约的时间。话务员会联系您另行安排。",
            f"Sorry, there is no free time for {service.name_en.lower()} in the next two weeks. "
            "An operator will contact you to arrange it.",
        ))
    draft.update(step="slot", service=service.code, offered=[o.slot.id for o in chosen],
                 last=chosen[-1].slot.starts_at.isoformat(), misses=0)
    _save(ctx, draft)
    short = ctx.request.channel in (Channel.SMS, Channel.VOICE)  # two SMS segments: no provider names
    options = [Option(str(i), texts.when(o.slot.starts_at, o.slot.ends_at, ctx.lang, zone, compact=short)
                      + ("" if short else f" · {o.provider.name(ctx.lang)}"))
               for i, o in enumerate(chosen, 1)]
    options.append(Option(MORE_KEY, ctx.t("更晚的时间", "Later times")))
    head = intro or ctx.t(f"{note}{service.name_zh}可以预约这些时间，请回复数字：",
                          f"{note}{service.name_en}: these times are free. Reply with a number:")
    lines = [head] + [f"{o.key} {o.label}" for o in options]
    return _reply(ctx, "\n".join(lines), (*options, _operator_option(ctx)))


async def _continue(ctx: Context, draft: dict[str, Any]) -> Reply | None:
    """The next message of a dialogue in progress."""
    text = ctx.request.text.strip()
    intent = ctx.classification.intent
    step = draft.get("step")
    if intent in _ELSEWHERE:
        return None
    words = normalise(text)
    if words in QUIT and step != "rate":
        _save(ctx, None)
        return _reply(ctx, ctx.t("好的，已不再预约。需要时随时联系我们。", "All right, nothing booked. Write any time you need us."))
    category = ctx.classification.category or {}
    if intent is Intent.BOOKING and category.get("action") in ("cancel", "reschedule") and step not in ("confirm", "slot"):
        return await _start_change(ctx, category["action"], category.get("number"))
    if intent is Intent.MENU or (intent is Intent.GRID_CASE and step != "address"):
        return None
    if step == "rate":
        return await _rating_reply(ctx, draft)
    if intent is Intent.BOOKING and step in ("category", "service", "slot") and not text.isdigit():
        services = best_services(await active_services(ctx.session), text)
        if services and (step != "slot" or services[0].code != draft.get("service")):
            return await _start(ctx, text)  # a new request: start over with it
    handlers = {
        "category": _category_step, "service": _service_step, "slot": _slot_step, "address": _address_step,
        "name": _name_step, "confirm": _confirm_step, "pick": _pick_step, "confirm_cancel": _confirm_cancel_step,
    }
    handler = handlers.get(step or "")
    if handler is None:
        _save(ctx, None)
        return None
    return await handler(ctx, draft, text)


def _missed(ctx: Context, draft: dict[str, Any], prompt: Reply) -> Reply | None:
    """An answer we did not understand: ask once more, then let the router try."""
    if draft.get("misses", 0) >= 1 or Text(ctx.request.text).is_question:
        return None
    draft["misses"] = 1
    _save(ctx, draft)
    return prompt


async def _category_step(ctx: Context, draft: dict[str, Any], text: str) -> Reply | None:
    codes: list[str] = draft.get("categories", [])
    if text.isdigit() and 1 <= int(text) <= len(codes):
        services = list(await ctx.session.scalars(
            select(Service).join(ServiceCategory, ServiceCategory.id == Service.category_id)
            .where(ServiceCategory.code == codes[int(text) - 1], Service.active.is_(True))
            .order_by(Service.sort, Service.code)
        ))
        return _choose_service(ctx, draft, services, ctx.t("请选择服务，回复数字：", "Which service? Reply with a number:"))
    services = best_services(await active_services(ctx.session), text)
    if services:
        return await _start(ctx, text)
    return _missed(ctx, draft, _reply(ctx, ctx.t(f"请回复1到{len(codes)}之间的数字选择服务类别，或回复0转人工。",
                                                 f"Please reply with a number from 1 to {len(codes)}, or 0 for an operator.")))


async def _service_step(ctx: Context, draft: dict[str, Any], text: str) -> Reply | None:
    codes: list[str] = draft.get("services", [])
    if text.isdigit() and 1 <= int(text) <= len(codes):
        service = await ctx.session.scalar(select(Service).where(Service.code == codes[int(text) - 1]))
        if service is not None:
            return await _offer_slots(ctx, draft, service, _when_of(draft))
    services = best_services(await active_services(ctx.session), text)
    if services:
        return await _start(ctx, text)
    return _missed(ctx, draft, _reply(ctx, ctx.t(f"请回复1到{len(codes)}之间的数字选择服务，或回复0转人工。",
                                                 f"Please reply with a number from 1 to {len(codes)}, or 0 for an operator.")))


async def _service_of(ctx: Context, draft: dict[str, Any]) -> Service | None:
    return await ctx.session.scalar(select(Service).where(Service.code == draft.get("service")))


async def _slot_step(ctx: Context, draft: dict[str, Any], text: str) -> Reply | None:
    service = await _service_of(ctx, draft)
    if service is None:
        _save(ctx, None)
        return None
    offered: list[str] = draft.get("offered", [])
    if text == MORE_KEY or normalise(text) in ("更晚", "更晚的时间", "later", "latertimes", "more"):
        return await _offer_slots(ctx, draft, service, _when_of(draft), after=datetime.fromisoformat(draft["last"]))
    if text.isdigit() and 1 <= int(text) <= len(offered):
        draft.update(slot=offered[int(text) - 1], misses=0)
        return await _after_slot(ctx, draft)
    when = parse_when(text, local_day(ctx.now, ctx.settings.zone))
    if when:
        draft["when"] = _when_state(when)
        return await _offer_slots(ctx, draft, service, when)
    return _missed(ctx, draft, _reply(ctx, ctx.t(
        f"请回复1到{len(offered)}之间的数字选择时间，回复{MORE_KEY}看更晚的时间，也可以说“明天下午”。",
        f"Please reply with a number from 1 to {len(offered)}, {MORE_KEY} for later times, or say a day such as "
        "\"tomorrow afternoon\".")))


async def _after_slot(ctx: Context, draft: dict[str, Any]) -> Reply:
    """A slot is chosen: a move goes to its confirmation; a new booking needs an address first."""
    if draft.get("action") == "reschedule":
        return await _confirm_prompt(ctx, draft)
    if draft.get("address"):
        return await _after_address(ctx, draft)
    known = await last_address(ctx.session, ctx.contact.id)
    draft.update(step="address", known=known)
    _save(ctx, draft)
    if known:
        return _reply(ctx, ctx.t(f"请问上门地址？回复1使用上次的地址：{known}；或直接告诉我们新地址。",
                                 f"Where should they come? Reply 1 for your last address: {known}; or type the address."),
                      (Option("1", known),))
    return _reply(ctx, ctx.t("请告诉我们上门地址（镇/街道、村/小区、门牌号）。",
                             "Please give the address for the visit (street or village, and number)."))


async def _address_step(ctx: Context, draft: dict[str, Any], text: str) -> Reply | None:
    known = draft.get("known")
    if known and text.strip() in ("1", "１"):
        address = known
    else:
        if Text(text).is_question and ctx.classification.intent is not Intent.GRID_CASE:
            return None
        address = " ".join(text.split())
        if len(address) < 4 or address.isdigit():
            return _missed(ctx, draft, _reply(ctx, ctx.t("地址太短了，请写清楚镇/街道、村/小区和门牌号。",
                                                         "That address is too short: please give the street or village and the number.")))
        if len(address) > 300:
            return _reply(ctx, ctx.t("地址太长了，请控制在300字以内。", "That address is too long: 300 characters at most."))
    draft.update(address=address, misses=0)
    return await _after_address(ctx, draft)


async def _after_address(ctx: Context, draft: dict[str, Any]) -> Reply:
    if not ctx.contact.name and not draft.get("name"):
        draft["step"] = "name"
        _save(ctx, draft)
        return _reply(ctx, ctx.t("请问怎么称呼您？", "What name should the provider ask for?"))
    draft.setdefault("name", ctx.contact.name)
    return await _confirm_prompt(ctx, draft)


async def _name_step(ctx: Context, draft: dict[str, Any], text: str) -> Reply | None:
    name = " ".join(text.split())
    if not name or len(name) > 50 or name.isdigit() or Text(text).is_question:
        return _missed(ctx, draft, _reply(ctx, ctx.t("请告诉我们您的称呼，例如：张先生。", "Please tell us your name, e.g. Ms Li.")))
    draft.update(name=name, misses=0)
    ctx.contact.name = ctx.contact.name or name
    return await _confirm_prompt(ctx, draft)


async def _confirm_prompt(ctx: Context, draft: dict[str, Any]) -> Reply:
    slot = await ctx.session.get(Slot, draft["slot"])
    service = await _service_of(ctx, draft)
    if slot is None or service is None:
        _save(ctx, None)
        return _reply(ctx, ctx.t("抱歉，这个时段已不存在，请重新预约。", "Sorry, that time no longer exists: please start again."))
    provider = await ctx.session.get(Provider, slot.provider_id)
    assert provider is not None
    draft["step"] = "confirm"
    _save(ctx, draft)
    span = _when_text(ctx, slot.starts_at, slot.ends_at)
    options = (Option("1", ctx.t("确认", "Confirm")), Option("2", ctx.t("换个时间", "Another time")),
               Option("3", ctx.t("不约了", "Cancel")))
    if draft.get("action") == "reschedule":
        target = await ctx.session.get(Booking, draft["target"])
        number = target.number if target else ""
        text = ctx.t(f"把预约{number}改到{span}（{provider.name_zh}）？回复1确认，2换个时间，3不改了。",
                     f"Move booking {number} to {span} ({provider.name_en})? Reply 1 to confirm, 2 for another time, 3 to keep it as it is.")
        options = (options[0], options[1], Option("3", ctx.t("不改了", "Keep it")))
    else:
        text = ctx.t(
            f"请确认：{service.name_zh}，{span}，{provider.name_zh}上门，地址：{draft['address']}，联系人：{draft['name']}。"
            "回复1确认，2换个时间，3不约了。",
            f"Please confirm: {service.name_en}, {span}, by {provider.name_en}, at {draft['address']}, for {draft['name']}. "
            "Reply 1 to confirm, 2 for another time, 3 to cancel.",
        )
    return _reply(ctx, text, options)


async def _confirm_step(ctx: Context, draft: dict[str, Any], text: str) -> Reply | None:
    words = normalise(text)
    category = ctx.classification.category or {}
    service = await _service_of(ctx, draft)
    if service is None:
        _save(ctx, None)
        return None
    if text == "2" or category.get("action") == "reschedule" or parse_when(text, local_day(ctx.now, ctx.settings.zone)):
        when = parse_when(text, local_day(ctx.now, ctx.settings.zone))
        if when:
            draft["when"] = _when_state(when)
        return await _offer_slots(ctx, draft, service, _when_of(draft))
    if text == "3" or words in NO:
        _save(ctx, None)
        if draft.get("action") == "reschedule":
            return _reply(ctx, ctx.t("好的，预约时间不变。", "All right, the booking stays as it is."))
        return _reply(ctx, ctx.t("好的，已不再预约。需要时随时联系我们。", "All right, nothing booked. Write any time you need us."))
    if words not in YES:
        return _missed(ctx, draft, _reply(ctx, ctx.t("请回复1确认，2换个时间，3不约了。",
                                                     "Please reply 1 to confirm, 2 for another time, 3 to cancel.")))
    if draft.get("action") == "reschedule":
        return await _do_reschedule(ctx, draft, service)
    rules = _rules(ctx)
    try:
        booking_row = await book(
            ctx.session, service_code=service.code, slot_id=draft["slot"], urn=ctx.request.address,
            name=draft["name"], address=draft["address"], rules=rules, now=ctx.now, actor=_actor(ctx),
            channel=ctx.request.channel.value, lang=ctx.lang, note=str(draft.get("note", "")),
        )
    except BookingError as exc:
        return await _slot_refused(ctx, draft, service, exc)
    service, provider = await booking_facts(ctx.session, booking_row)
    _save(ctx, None)
    span = _when_text(ctx, booking_row.starts_at, booking_row.ends_at)
    n = booking_row.number
    return _reply(ctx, ctx.t(
        f"预约成功！预约号{n}：{service.name_zh}，{span}，{provider.name_zh}上门。服务商接单后会通知您。取消请回复“取消 {n}”。",
        f"Booked! Your number is {n}: {service.name_en}, {span}, by {provider.name_en}. We will tell you when "
        f"the provider confirms. To cancel reply \"cancel {n}\".",
    ), booking=booking_dict(booking_row, service, provider, ctx.lang, ctx.settings.zone))


async def _slot_refused(ctx: Context, draft: dict[str, Any], service: Service, exc: BookingError) -> Reply:
    """The chosen slot can no longer be had (filled meanwhile, too soon now …): offer others."""
    if exc.kind == "not_covered":
        draft["when"] = None
    return await _offer_slots(ctx, draft, service, _when_of(draft),
                              intro=exc.text(ctx.lang) + ctx.t("可以预约这些时间，请回复数字：", " These times are free; reply with a number:"))


# -- cancelling and moving a booking ----------------------------------------------------------


def _owns(ctx: Context, booking_row: Booking) -> bool:
    return booking_row.contact_id == ctx.contact.id or ctx.request.address in (booking_row.urn, booking_row.notify_urn)


async def _start_change(ctx: Context, action: str, number: str | None) -> Reply | None:
    """"取消 B1234567", "我要改时间": find which booking (asking if there are several), then go on."""
    number = number or booking_number(ctx.request.text)
    if number:
        row = await find_booking(ctx.session, number)
        if row is None or not _owns(ctx, row):
            _save(ctx, None)
            return _reply(ctx, ctx.t(f"没有找到您的预约{number}，请核对预约号，或回复0转人工。",
                                     f"We found no booking {number} of yours. Please check the number, or reply 0 for an operator."),
                          (_operator_option(ctx),))
        return await _change(ctx, action, row)
    rows = await upcoming(ctx.session, ctx.contact.id, ctx.now)
    if not rows:
        second = ctx.classification.second
        if second is not None and second.intent is Intent.KNOWLEDGE and ctx.state.get("flow") != FLOW:
            return None  # "推迟" in a farming question: let the router try its other reading
        _save(ctx, None)
        return _reply(ctx, ctx.t("您目前没有待上门的预约。如需帮助请回复0转人工。",
                                 "You have no bookings to come. Reply 0 if you need an operator."), (_operator_option(ctx),))
    if len(rows) == 1:
        return await _change(ctx, action, rows[0])
    draft = {"action": action, "step": "pick", "choices": [r.id for r in rows[:6]]}
    _save(ctx, draft)
    options = []
    for i, row in enumerate(rows[:6], 1):
        service, _provider = await booking_facts(ctx.session, row)
        options.append(Option(str(i), f"{row.number} {service.name(ctx.lang)} {_when_text(ctx, row.starts_at, row.ends_at)}"))
    head = ctx.t("您要取消哪个预约？请回复数字：" if action == "cancel" else "您要改哪个预约的时间？请回复数字：",
                 "Which booking do you want to cancel? Reply with a number:" if action == "cancel"
                 else "Which booking do you want to move? Reply with a number:")
    return _reply(ctx, "\n".join([head] + [f"{o.key} {o.label}" for o in options]), tuple(options))


async def _pick_step(ctx: Context, draft: dict[str, Any], text: str) -> Reply | None:
    choices: list[str] = draft.get("choices", [])
    if text.isdigit() and 1 <= int(text) <= len(choices):
        row = await ctx.session.get(Booking, choices[int(text) - 1])
        if row is not None:
            return await _change(ctx, draft["action"], row)
    return _missed(ctx, draft, _reply(ctx, ctx.t(f"请回复1到{len(choices)}之间的数字。",
                                                 f"Please reply with a number from 1 to {len(choices)}.")))


async def _change(ctx: Context, action: str, row: Booking) -> Reply:
    service, provider = await booking_facts(ctx.session, row)
    span = _when_text(ctx, row.starts_at, row.ends_at)
    if row.status not in ACTIVE:
        _save(ctx, None)
        return _reply(ctx, ctx.t(f"预约{row.number}{texts.status(row.status, 'zh')}，不能再{'取消' if action == 'cancel' else '改时间'}。",
                                 f"Booking {row.number} is {texts.status(row.status, 'en')}: it cannot be "
                                 f"{'cancelled' if action == 'cancel' else 'moved'}."),
                      booking=booking_dict(row, service, provider, ctx.lang, ctx.settings.zone))
    try:  # past the cut-off: say so now, not after the resident chose a new time
        check_cutoff(row, _rules(ctx), ctx.now, action)
    except BookingError as exc:
        _save(ctx, None)
        return _reply(ctx, exc.text(ctx.lang), (_operator_option(ctx),))
    if action == "cancel":
        _save(ctx, {"action": "cancel", "step": "confirm_cancel", "target": row.id})
        return _reply(ctx, ctx.t(f"确认取消预约{row.number}（{service.name_zh}，{span}）吗？回复1确认取消，2保留。",
                                 f"Cancel booking {row.number} ({service.name_en}, {span})? Reply 1 to cancel it, 2 to keep it."),
                      (Option("1", ctx.t("确认取消", "Cancel it")), Option("2", ctx.t("保留", "Keep it"))))
    draft = {"action": "reschedule", "target": row.id, "address": row.address, "name": row.name,
             "when": _when_state(parse_when(ctx.request.text, local_day(ctx.now, ctx.settings.zone)))}
    return await _offer_slots(ctx, draft, service, _when_of(draft), intro=ctx.t(
        f"预约{row.number}（{service.name_zh}，现为{span}）可以改到这些时间，请回复数字：",
        f"Booking {row.number} ({service.name_en}, now {span}) can move to these times. Reply with a number:"))


async def _confirm_cancel_step(ctx: Context, draft: dict[str, Any], text: str) -> Reply | None:
    words = normalise(text)
    row = await find_booking(ctx.session, draft.get("target", ""), lock=True)
    if row is None:
        _save(ctx, None)
        return None
    if text == "2" or words in NO:
        _save(ctx, None)
        return _reply(ctx, ctx.t(f"好的，预约{row.number}保留不变。", f"All right, booking {row.number} stands."))
    if words not in YES and words not in QUIT:
        return _missed(ctx, draft, _reply(ctx, ctx.t("请回复1确认取消，2保留预约。", "Please reply 1 to cancel it, 2 to keep it.")))
    service, provider = await booking_facts(ctx.session, row)
    _save(ctx, None)
    try:
        await cancel(ctx.session, row, rules=_rules(ctx), now=ctx.now, actor=_actor(ctx), reason="by the resident")
    except BookingError as exc:
        return _reply(ctx, exc.text(ctx.lang), (_operator_option(ctx),))
    return _reply(ctx, ctx.t(f"预约{row.number}已取消。", f"Booking {row.number} is cancelled."),
                  booking=booking_dict(row, service, provider, ctx.lang, ctx.settings.zone))


async def _do_reschedule(ctx: Context, draft: dict[str, Any], service: Service) -> Reply:
    row = await find_booking(ctx.session, draft.get("target", ""), lock=True)
    if row is None:
        _save(ctx, None)
        return _reply(ctx, ctx.t("没有找到这个预约。", "That booking was not found."))
    try:
        await reschedule(ctx.session, row, draft["slot"], rules=_rules(ctx), now=ctx.now, actor=_actor(ctx))
    except BookingError as exc:
        if exc.kind in ("too_late", "bad_state"):
            _save(ctx, None)
            return _reply(ctx, exc.text(ctx.lang), (_operator_option(ctx),))
        return await _slot_refused(ctx, draft, service, exc)
    _save(ctx, None)
    service, provider = await booking_facts(ctx.session, row)
    span = _when_text(ctx, row.starts_at, row.ends_at)
    return _reply(ctx, ctx.t(f"已改好：预约{row.number}改到{span}，{provider.name_zh}上门，服务商确认后会通知您。",
                             f"Done: booking {row.number} is now {span}, by {provider.name_en}. We will tell you when the "
                             "provider confirms."),
                  booking=booking_dict(row, service, provider, ctx.lang, ctx.settings.zone))


# -- follow-up rating --------------------------------------------------------------------------


async def _rating_reply(ctx: Context, draft: dict[str, Any]) -> Reply | None:
    value = rating_value(ctx.request.text)
    if value is None:
        return None  # not a rating: the resident is asking something else
    row = await find_booking(ctx.session, draft.get("target", ""), lock=True)
    if row is None:
        _save(ctx, None)
        return None
    return await _rate(ctx, row, value)


async def _rate(ctx: Context, row: Booking, value: int) -> Reply:
    if not 1 <= value <= 5:
        _save(ctx, {"step": "rate", "target": row.id})
        return _reply(ctx, ctx.t(f"评分是1到5之间的数字，您回复的是{value}。请回复1-5：5非常满意，1很不满意。",
                                 f"A rating is a number from 1 to 5; you sent {value}. Please reply 1-5: 5 very good, 1 very poor."))
    try:
        await rate(ctx.session, row, value, rules=_rules(ctx), now=ctx.now, actor=_actor(ctx))
    except BookingError as exc:
        _save(ctx, None)
        return _reply(ctx, exc.text(ctx.lang))
    _save(ctx, None)
    if value <= 2:
        await request_operator(ctx, "booking_low_rating")
        text = ctx.t(f"已记录您的评分（{value}分）。很抱歉服务没有让您满意，话务员会联系您了解情况。",
                     f"Your rating ({value}) is recorded. We are sorry the service let you down: an operator will contact you.")
    else:
        text = ctx.t(f"已记录您的评分（{value}分），谢谢您的反馈！", f"Your rating ({value}) is recorded. Thank you!")
    service, provider = await booking_facts(ctx.session, row)
    return _reply(ctx, text, booking=booking_dict(row, service, provider, ctx.lang, ctx.settings.zone))


def with_late_ratings(fallback: Handler) -> Handler:
    """Wrap the router's fallback: a bare "1".."5" that nothing else understood, from someone
    whose survey is still unanswered (the dialogue step may have timed out), is the rating."""

    async def handler(ctx: Context) -> Reply | None:
        value = rating_value(ctx.request.text)
        if value is not None:
            row = await awaiting_rating(ctx.session, ctx.contact.id, ctx.now, urn=ctx.request.address)
            if row is not None:
                return await _rate(ctx, row, value)
        return await fallback(ctx)

    return handler


# -- providers' answers and status ------------------------------------------------------------


async def _provider_reply(ctx: Context, answer: dict[str, Any]) -> Reply:
    """"Y B1234567" / "N B1234567 reason" from the phone the job was sent to."""
    number = str(answer["number"])
    row = await find_booking(ctx.session, number, lock=True)
    phone = ctx.request.address[4:] if ctx.request.address.startswith("tel:") else None
    providers = list(await ctx.session.scalars(select(Provider).where(Provider.phone == phone))) if phone else []
    provider = providers[0] if providers else None
    if row is not None and providers:
        provider = next((p for p in providers if p.id == row.provider_id), providers[0])
    lang = provider.lang if provider else ctx.lang
    ctx.set_state(flow=None)

    def say(zh: str, en: str, booking: dict[str, Any] | None = None) -> Reply:
        return Reply(text=zh if lang == "zh" else en, intent=Intent.BOOKING, lang=lang, booking=booking)

    if row is None or provider is None or row.provider_id != provider.id:
        return say(f"没有找到派给本号码的预约{number}，请核对预约号。如有疑问请致电热线。",
                   f"No booking {number} was sent to this number. Please check the number, or call the line.")
    actor = f"provider:{provider.code}"
    rules = _rules(ctx)
    try:
        if answer["accept"]:
            await accept(ctx.session, row, rules=rules, now=ctx.now, actor=actor, provider=provider)
        else:
            await decline(ctx.session, row, rules=rules, now=ctx.now, actor=actor, provider=provider,
                          reason=str(answer.get("reason", "")))
    except BookingError as exc:
        return say(exc.zh, exc.en)
    service, _holder = await booking_facts(ctx.session, row)
    span = texts.when(row.starts_at, row.ends_at, lang, ctx.settings.zone)
    facts = booking_dict(row, service, provider, lang, ctx.settings.zone, private=False)
    if answer["accept"]:
        phone_of = row.notify_urn[4:] if row.notify_urn.startswith("tel:") else ""
        return say(f"已接单{row.number}：{service.name_zh}，{span}，地址：{row.address}，联系人：{row.name} {phone_of}。请按时上门。",
                   f"Accepted {row.number}: {service.name_en}, {span}, {row.address}, {row.name} {phone_of}. Please be on time.",
                   facts)
    return say(f"已收到，{row.number}不派给您了，谢谢告知。", f"Noted: {row.number} is taken off your list. Thank you.", facts)


async def booking_status(ctx: Context, number: str) -> Reply | None:
    """The StatusDesk lookup: "CX 1234567" (or "CX B1234567") finds a booking. Only the one who
    made it sees the name and address."""
    digits = number.upper().removeprefix("B")
    if not (digits.isdigit() and len(digits) == 7):
        return None
    row = await find_booking(ctx.session, "B" + digits)
    if row is None:
        return None
    service, provider = await booking_facts(ctx.session, row)
    span = _when_text(ctx, row.starts_at, row.ends_at)
    own = _owns(ctx, row)
    text = ctx.t(f"预约{row.number}：{service.name_zh}，{span}，{provider.name_zh}。状态：{texts.status(row.status, 'zh')}。",
                 f"Booking {row.number}: {service.name_en}, {span}, {provider.name_en}. Status: {texts.status(row.status, 'en')}.")
    if own and row.status in ACTIVE:
        text += ctx.t(f"取消请回复“取消 {row.number}”。", f" To cancel reply \"cancel {row.number}\".")
    return Reply(text=text, intent=Intent.CASE_STATUS, lang=ctx.lang,
                 booking=booking_dict(row, service, provider, ctx.lang, ctx.settings.zone, private=own))
