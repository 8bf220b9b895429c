"""Book a service: choose the service, a day and a free time, give name, phone and address;
the confirmation has the booking number and a link to cancel or change the time.

The booking is the resident's phone's (``tel:+86…``): the confirmation, reminders and the
follow-up survey go there by SMS, and "track" finds it by number and phone. The manage link is
``/booking/<id>``, the booking's 32-character unguessable id (the JSON API's handle too).
The form's CSRF nonce is the booking's idempotency key, so a double tap books once.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from channels.portal.common import check_token, lang_of, page, redirect, too_many, tr, web_address
from helpline.appkeys import DB, SETTINGS
from helpline.booking import texts
from helpline.booking.models import ACTIVE, PROVIDER_ACTIVE, Booking, Provider, ProviderService, Service, ServiceCategory
from helpline.booking.service import (
    BookingError,
    Rules,
    book,
    booking_facts,
    cancel,
    check_cutoff,
    reschedule,
    service_by_code,
)
from helpline.booking.slots import HORIZON_DAYS, Offer, day_start, ensure_slots, find_slots, local_day
from helpline.models import utcnow
from helpline.outbox import channel_for
from helpline.phones import tel_urn

_BOOKING_ID = re.compile(r"^[0-9a-f]{32}$")
_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
LIMITS = {"name": 100, "address": 300, "note": 1000, "phone": 40}
# Which field a refusal of the booking service is about (for the error summary's link).
_FIELD_OF = {"not_covered": "address", "bad_input": "slot"}


async def services(request: web.Request) -> web.Response:
    lang = lang_of(request)
    async with request.app[DB].read() as session:
        rows = (await session.execute(
            select(Service, ServiceCategory).join(ServiceCategory, ServiceCategory.id == Service.category_id)
            .where(Service.active.is_(True)).order_by(ServiceCategory.sort, Service.sort, Service.code))).all()
    groups: list[tuple[str, list[Service]]] = []
    for service, cat in rows:
        if not groups or groups[-1][0] != cat.name(lang):
            groups.append((cat.name(lang), []))
        groups[-1][1].append(service)
    return page(request, "portal/services.html", {"groups": groups}, title=("预约服务", "Book a service"))


async def _service(request: web.Request, session: Any) -> Service:
    code = request.match_info["code"]
    if not _CODE.match(code):
        raise web.HTTPNotFound()
    try:
        return await service_by_code(session, code)
    except BookingError:
        raise web.HTTPNotFound() from None


async def _fresh_slots(request: web.Request, service: Service) -> None:
    """Make sure the service's providers have their slots generated ahead (as the JSON API does)."""
    settings = request.app[SETTINGS]
    now = utcnow()
    async with request.app[DB].read() as session:
        behind = await session.scalar(
            select(func.count()).select_from(Provider)
            .join(ProviderService, ProviderService.provider_id == Provider.id)
            .where(ProviderService.service_id == service.id, Provider.status == PROVIDER_ACTIVE,
                   (Provider.slots_until.is_(None))
                   | (Provider.slots_until < local_day(now, settings.zone) + timedelta(days=HORIZON_DAYS))))
    if behind:
        async with request.app[DB].write() as session:
            await ensure_slots(session, now, settings.zone)


async def slot_choice(request: web.Request, service: Service, *, address: str | None = None,
                      skip: str | None = None) -> dict[str, Any]:
    """The days with free times (and how many) and the free times of the chosen day."""
    settings = request.app[SETTINGS]
    zone = settings.zone
    await _fresh_slots(request, service)
    now = utcnow()
    today = local_day(now, zone)
    async with request.app[DB].read() as session:
        offers = await find_slots(session, service.id, now, end=day_start(today + timedelta(days=HORIZON_DAYS + 1), zone),
                                  address=address)
    offers = [o for o in offers if o.slot.id != skip]
    by_day: dict[date, list[Offer]] = {}
    for offer in offers:
        by_day.setdefault(local_day(offer.slot.starts_at, zone), []).append(offer)
    wanted = request.query.get("day", "")
    try:
        day = date.fromisoformat(wanted) if wanted else None
    except ValueError:
        day = None
    if day not in by_day:
        day = min(by_day) if by_day else None
    return {"days": sorted(by_day.items()), "day": day, "offers": by_day.get(day, []) if day else [],
            "today": today}


def slot_label(offer: Offer, request: web.Request, lang: str) -> str:
    zone = request.app[SETTINGS].zone
    a, b = offer.slot.starts_at.astimezone(zone), offer.slot.ends_at.astimezone(zone)
    return f"{a:%H:%M}–{b:%H:%M}"


async def service_page(request: web.Request) -> web.Response:
    async with request.app[DB].read() as session:
        service = await _service(request, session)
    return await _form(request, service, {})


async def _form(request: web.Request, service: Service, values: dict[str, str], *, status: int = 200,
                errors: list[tuple[str, str]] | None = None, form: Any = None) -> web.Response:
    choice = await slot_choice(request, service)
    if values.get("slot") and not request.query.get("day"):
        # After an error, show the day of the time the resident had chosen.
        chosen = next((d for d, offers in choice["days"] if any(o.slot.id == values["slot"] for o in offers)), None)
        if chosen is not None:
            choice["day"] = chosen
            choice["offers"] = dict(choice["days"])[chosen]
    return page(request, "portal/book_form.html",
                {"service": service, **choice, "values": values, "errors": errors or [],
                 "slot_label": lambda o: slot_label(o, request, lang_of(request, form))},
                status=status, form=form, title=(service.name_zh, service.name_en))


def _clean(form: Any, name: str) -> str:
    return " ".join(str(form.get(name, "")).split())


def validate(form: Any, lang: str, region: str) -> tuple[dict[str, str], list[tuple[str, str]], str | None]:
    """The form's values, its problems (field, message) and the phone as a tel: URN."""
    t = tr(lang)
    values = {name: _clean(form, name) for name in ("slot", "name", "phone", "address", "note")}
    errors: list[tuple[str, str]] = []
    if not values["slot"]:
        errors.append(("slot", t("请选择一个时间。", "Please choose a time.")))
    if not values["name"]:
        errors.append(("name", t("请填写您的姓名。", "Please give your name.")))
    urn = tel_urn(values["phone"], region) if values["phone"] and len(values["phone"]) <= LIMITS["phone"] else None
    if not values["phone"]:
        errors.append(("phone", t("请填写手机号码，方便服务商联系您。", "Please give your phone number so the provider can call you.")))
    elif urn is None:
        errors.append(("phone", t("手机号码好像不对，请检查，例如 138 0013 8000。",
                                  "That phone number does not look right: please check it, e.g. 138 0013 8000.")))
    if len(values["address"]) < 4:
        errors.append(("address", t("请填写详细地址（村/小区、门牌号）。", "Please give the full address (village or estate, number).")))
    for name in ("name", "address", "note"):
        if len(values[name]) > LIMITS[name]:
            errors.append((name, t(f"太长了，最多{LIMITS[name]}字。", f"Too long: at most {LIMITS[name]} characters.")))
    return values, errors, urn


async def book_submit(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    form = await request.post()
    lang = lang_of(request, form)
    t = tr(lang)
    async with request.app[DB].read() as session:
        service = await _service(request, session)
    nonce = check_token(request, form)
    values, errors, urn = validate(form, lang, settings.default_region)
    if nonce is None:
        return await _form(request, service, values, status=403, form=form, errors=[
            ("slot", t("页面已过期，请检查后再点一次“确认预约”。", "This page had expired: please check and press “Book” again."))])
    if errors or urn is None:
        return await _form(request, service, values, status=400, errors=errors, form=form)
    if too_many(request):
        return await _form(request, service, values, status=429, form=form, errors=[
            ("slot", t("提交太频繁了，请一分钟后再试。", "Too many bookings at once: please wait a minute."))])
    key = f"{urn}|portal:{nonce}"[:200]
    digest = hashlib.sha256(json.dumps({"service": service.code, **values}, sort_keys=True, ensure_ascii=False)
                            .encode()).hexdigest()
    rules = Rules.of(settings)
    for attempt in range(3):
        try:
            async with request.app[DB].write() as session:
                earlier = await session.scalar(select(Booking).where(Booking.idempotency_key == key))
                if earlier is not None:  # the same form again: the booking it made
                    return redirect(request, f"/booking/{earlier.id}?new=1")
                booking = await book(
                    session, service_code=service.code, slot_id=values["slot"], urn=urn, name=values["name"],
                    address=values["address"], note=values["note"], rules=rules, now=utcnow(),
                    actor=f"portal:{web_address(request)}", channel=channel_for(urn), lang=lang, notify_urn=urn,
                    idempotency_key=key, request_hash=digest, confirm=True,
                )
                booking_id = booking.id
        except BookingError as exc:
            field = _FIELD_OF.get(exc.kind, "slot")
            return await _form(request, service, values, status=exc.http_status, form=form,
                               errors=[(field, _refusal(exc, lang))])
        except IntegrityError:
            if attempt == 2:
                raise
            continue
        return redirect(request, f"/booking/{booking_id}?new=1")
    raise AssertionError("unreachable")  # pragma: no cover


def _refusal(exc: BookingError, lang: str) -> str:
    if exc.kind == "slot_full":
        return tr(lang)("这个时间刚刚被约满了，请另选一个时间。", "That time has just been taken: please choose another.")
    return exc.text(lang)


# -- the booking: confirmation, cancel, change the time --------------------------------------------


async def _booking(request: web.Request, session: Any, *, lock: bool = False) -> Booking:
    booking_id = request.match_info["id"]
    if not _BOOKING_ID.match(booking_id):
        raise web.HTTPNotFound()
    query = select(Booking).where(Booking.id == booking_id)
    booking = await session.scalar(query.with_for_update() if lock else query)
    if booking is None:
        raise web.HTTPNotFound()
    return booking


def changeable(booking: Booking, rules: Rules, now: datetime) -> bool:
    if booking.status not in ACTIVE:
        return False
    try:
        check_cutoff(booking, rules, now, "cancel")
    except BookingError:
        return False
    return True


async def manage(request: web.Request, *, status: int = 200, error: str | None = None, form: Any = None) -> web.Response:
    settings = request.app[SETTINGS]
    lang = lang_of(request, form)
    async with request.app[DB].read() as session:
        booking = await _booking(request, session)
        service, provider = await booking_facts(session, booking)
    rules = Rules.of(settings)
    return page(request, "portal/booking.html", {
        "booking": booking, "service": service, "provider": provider,
        "status_text": texts.status(booking.status, lang),
        "span": texts.when(booking.starts_at, booking.ends_at, lang, settings.zone),
        "changeable": changeable(booking, rules, utcnow()),
        "cutoff_hours": rules.cutoff.total_seconds() / 3600,
        "new": request.query.get("new") == "1", "done": request.query.get("done"), "error": error,
        "link": f"{settings.public_url}/booking/{booking.id}",
    }, status=status, form=form, title=("我的预约", "My booking"))


async def cancel_submit(request: web.Request) -> web.Response:
    form = await request.post()
    return await _change(request, form, "cancel", "")


async def reschedule_page(request: web.Request) -> web.Response:
    return await _reschedule_form(request, None)


async def _reschedule_form(request: web.Request, form: Any, *, status: int = 200,
                           errors: list[tuple[str, str]] | None = None) -> web.Response:
    settings = request.app[SETTINGS]
    lang = lang_of(request, form)
    async with request.app[DB].read() as session:
        booking = await _booking(request, session)
        service, provider = await booking_facts(session, booking)
    if not changeable(booking, Rules.of(settings), utcnow()):
        return await manage(request, status=409, form=form, error=tr(lang)(
            "这个预约现在不能改时间了。如需帮助请致电热线。", "This booking can no longer be moved. Please call the line for help."))
    choice = await slot_choice(request, service, address=booking.address, skip=booking.slot_id)
    return page(request, "portal/reschedule.html", {
        "booking": booking, "service": service, **choice, "errors": errors or [],
        "span": texts.when(booking.starts_at, booking.ends_at, lang, settings.zone),
        "slot_label": lambda o: slot_label(o, request, lang),
    }, status=status, form=form, title=("改时间", "Change the time"))


async def reschedule_submit(request: web.Request) -> web.Response:
    form = await request.post()
    slot = _clean(form, "slot")
    if not slot:
        return await _reschedule_form(request, form, status=400,
                                      errors=[("slot", tr(lang_of(request, form))("请选择新的时间。", "Please choose the new time."))])
    return await _change(request, form, "reschedule", slot)


async def _change(request: web.Request, form: Any, action: str, slot: str) -> web.Response:
    settings = request.app[SETTINGS]
    lang = lang_of(request, form)
    t = tr(lang)
    if check_token(request, form) is None:
        message = t("页面已过期，请再试一次。", "This page had expired: please try again.")
        if action == "reschedule":
            return await _reschedule_form(request, form, status=403, errors=[("slot", message)])
        return await manage(request, status=403, error=message, form=form)
    rules = Rules.of(settings)
    try:
        async with request.app[DB].write() as session:
            booking = await _booking(request, session, lock=True)
            actor = f"portal:{web_address(request)}"
            if action == "cancel":
                await cancel(session, booking, rules=rules, now=utcnow(), actor=actor, reason="by the resident (web portal)")
            elif booking.slot_id != slot:  # the same form sent twice has already moved it there
                await reschedule(session, booking, slot, rules=rules, now=utcnow(), actor=actor)
    except BookingError as exc:
        if action == "reschedule":
            return await _reschedule_form(request, form, status=exc.http_status, errors=[("slot", _refusal(exc, lang))])
        return await manage(request, status=exc.http_status, error=exc.text(lang), form=form)
    return redirect(request, f"/booking/{request.match_info['id']}?done={'cancelled' if action == 'cancel' else 'moved'}")
