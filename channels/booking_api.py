"""The booking JSON API (DESIGN.md part 2): the catalogue, free slots, bookings.

    GET  /api/v1/services                          [{"code", "name", "category", …}]
    GET  /api/v1/services/{code}/slots?from=&days=  [{"slot", "start", "end", "capacity", "remaining", "provider"}]
    POST /api/v1/bookings                          {"from", "service", "slot", "name", "address", "note"} → 201
    GET  /api/v1/bookings/{id}
    POST /api/v1/bookings/{id}/cancel              {"reason"} (optional)
    POST /api/v1/bookings/{id}/reschedule          {"slot"}

A full slot is 409, bad input 400 (naming the field), an unknown booking 404. An
``Idempotency-Key`` header makes a double submission of the same form harmless: the first
booking is answered again; the same key with a different form is refused (422).
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

from helpline.appkeys import DB, SETTINGS
from helpline.booking.models import PROVIDER_ACTIVE, Booking, Provider, ProviderService, Service, ServiceCategory
from helpline.booking.service import (
    BookingError,
    Rules,
    book,
    booking_dict,
    booking_facts,
    cancel,
    find_booking,
    reschedule,
    service_by_code,
)
from helpline.booking.slots import HORIZON_DAYS, day_start, ensure_slots, find_slots, local_day
from helpline.http import BadRequest, json_error, json_response
from helpline.models import utcnow
from helpline.outbox import channel_for
from helpline.phones import tel_urn

_WEB_ID = re.compile(r"^[A-Za-z0-9._~-]{1,64}$")
_TELEGRAM_ID = re.compile(r"^-?\d{1,20}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,100}$")
_BOOKING_ID = re.compile(r"^[0-9a-f]{32}$")
_PHONE = re.compile(r"^\+?[\d\s()-]{5,20}$")


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/services", list_services)
    app.router.add_get("/api/v1/services/{code}/slots", list_slots)
    app.router.add_post("/api/v1/bookings", create_booking)
    app.router.add_get("/api/v1/bookings/{id}", get_booking)
    app.router.add_post("/api/v1/bookings/{id}/cancel", cancel_booking)
    app.router.add_post("/api/v1/bookings/{id}/reschedule", reschedule_booking)


def _lang(request: web.Request) -> str:
    lang = request.query.get("lang")
    if lang is not None and lang not in ("zh", "en"):
        raise BadRequest("'lang' must be \"zh\" or \"en\"")
    if lang:
        return lang
    accept = request.headers.get("Accept-Language", "").lower()
    return "en" if accept.startswith("en") else request.app[SETTINGS].default_lang


async def list_services(request: web.Request) -> web.Response:
    lang = _lang(request)
    async with request.app[DB].read() as session:
        rows = (await session.execute(
            select(Service, ServiceCategory)
            .join(ServiceCategory, ServiceCategory.id == Service.category_id)
            .where(Service.active.is_(True))
            .order_by(ServiceCategory.sort, Service.sort, Service.code)
        )).all()
        offered = (await session.execute(
            select(ProviderService.service_id, Provider)
            .join(Provider, Provider.id == ProviderService.provider_id)
            .where(Provider.status == PROVIDER_ACTIVE)
            .order_by(Provider.code)
        )).all()
    providers: dict[int, list[dict[str, Any]]] = {}
    for service_id, p in offered:
        providers.setdefault(service_id, []).append(
            {"code": p.code, "name": p.name(lang), "score": p.score, "ratings": p.rating_count, "areas": p.areas or []}
        )
    return json_response([
        {
            "code": s.code, "name": s.name(lang), "name_zh": s.name_zh, "name_en": s.name_en,
            "category": c.code, "category_name": c.name(lang),
            "description": s.description_zh if lang == "zh" else s.description_en,
            "providers": providers.get(s.id, []),
        }
        for s, c in rows
    ])


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"'{name}' must be a whole number, not {raw!r}") from None
    if not lo <= value <= hi:
        raise BadRequest(f"'{name}' must be between {lo} and {hi}")
    return value


def _from_param(request: web.Request, now: datetime, zone: Any) -> datetime:
    raw = request.query.get("from")
    if not raw:
        return now
    try:
        if len(raw) == 10:
            return day_start(date.fromisoformat(raw), zone)
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"'from' must be a date (2026-12-03) or an ISO date-time, not {raw!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


async def list_slots(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    db = request.app[DB]
    zone = settings.zone
    lang = _lang(request)
    now = utcnow()
    start = _from_param(request, now, zone)
    days = _int_param(request, "days", 7, 1, HORIZON_DAYS)
    end = day_start(local_day(start, zone) + timedelta(days=days), zone)
    code = request.match_info["code"]
    async with db.read() as session:
        try:
            service = await service_by_code(session, code)
        except BookingError as exc:
            return json_error(404, exc.en)
        behind = await session.scalar(
            select(func.count()).select_from(Provider)
            .join(ProviderService, ProviderService.provider_id == Provider.id)
            .where(ProviderService.service_id == service.id, Provider.status == PROVIDER_ACTIVE,
                   (Provider.slots_until.is_(None)) | (Provider.slots_until < local_day(now, zone) + timedelta(days=HORIZON_DAYS)))
        )
    if behind:
        async with db.write() as session:
            await ensure_slots(session, now, zone)
    async with db.read() as session:
        offers = await find_slots(session, service.id, now, start=start, end=end, free_only=False)
    return json_response([
        {
            "slot": o.slot.id,
            "start": o.slot.starts_at.astimezone(zone).isoformat(),
            "end": o.slot.ends_at.astimezone(zone).isoformat(),
            "capacity": o.slot.capacity,
            "remaining": o.slot.remaining,
            "provider": {"code": o.provider.code, "name": o.provider.name(lang), "score": o.provider.score},
        }
        for o in offers
    ])


async def _json_body(request: web.Request, required: bool = True) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip() and not required:
        return {}
    if request.content_type != "application/json":
        raise BadRequest(f"the body must be JSON (Content-Type: application/json), not {request.content_type!r}")
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise BadRequest("the body is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str, limit: int, *, required: bool = True, least: int = 1) -> str:
    value = body.get(name)
    if value is None:
        if required:
            raise BadRequest(f"missing field '{name}'")
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"'{name}' must be a string")
    value = " ".join(value.split())
    if required and len(value) < least:
        raise BadRequest(f"'{name}' is empty" if not value else f"'{name}' is too short: at least {least} characters")
    if len(value) > limit:
        raise BadRequest(f"'{name}' is too long: {len(value)} characters, at most {limit}")
    return value


def sender_urn(value: Any, region: str) -> str:
    """The 'from' of a booking: "web:<id>", "telegram:<id>", or a phone ("tel:+86…" or just the number)."""
    if value is None:
        raise BadRequest("missing field 'from' (e.g. \"web:abc123\" or \"tel:+8613800000000\")")
    if not isinstance(value, str):
        raise BadRequest("'from' must be a string such as \"web:abc123\"")
    scheme, _, ident = value.partition(":")
    if scheme == "web" and _WEB_ID.match(ident):
        return value
    if scheme == "telegram" and _TELEGRAM_ID.match(ident):
        return value
    phone = ident if scheme == "tel" else value if _PHONE.match(value) else None
    urn = tel_urn(phone, region) if phone else None
    if urn is None:
        raise BadRequest("'from' must be \"web:<id>\", \"telegram:<id>\" or a phone number (\"tel:+8613800000000\")")
    return urn


def _request_hash(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


async def create_booking(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    body = await _json_body(request)
    urn = sender_urn(body.get("from"), settings.default_region)
    fields = {
        "from": urn,
        "service": _text(body, "service", 32),
        "slot": _text(body, "slot", 64),
        "name": _text(body, "name", 100),
        "address": _text(body, "address", 300, least=4),
        "note": _text(body, "note", 1000, required=False),
        "phone": None,
        "lang": body.get("lang") or settings.default_lang,
    }
    if fields["lang"] not in ("zh", "en"):
        raise BadRequest("'lang' must be \"zh\", \"en\" or null")
    if body.get("phone") not in (None, ""):
        phone = body["phone"]
        fields["phone"] = tel_urn(phone, settings.default_region) if isinstance(phone, str) else None
        if fields["phone"] is None:
            raise BadRequest(f"'phone' is not a phone number: {phone!r}")
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        raise BadRequest("the Idempotency-Key header must be 1-100 visible ASCII characters")
    stored_key = f"{urn}|{key}"[:200] if key else None
    digest = _request_hash(fields)
    notify = fields["phone"] or (urn if not urn.startswith("web:") else None)
    rules = Rules.of(settings)
    for attempt in range(3):
        now = utcnow()
        try:
            async with request.app[DB].write() as session:
                if stored_key is not None:
                    earlier = await session.scalar(select(Booking).where(Booking.idempotency_key == stored_key))
                    if earlier is not None:
                        if earlier.request_hash != digest:
                            return json_error(422, "this Idempotency-Key was already used for a different booking")
                        service, provider = await booking_facts(session, earlier)
                        response = json_response(booking_dict(earlier, service, provider, fields["lang"], rules.zone), 201)
                        response.headers["Idempotent-Replayed"] = "true"
                        return response
                booking = await book(
                    session, service_code=fields["service"], slot_id=fields["slot"], urn=urn, name=fields["name"],
                    address=fields["address"], note=fields["note"], rules=rules, now=now, actor=f"api:{urn}",
                    channel=channel_for(urn), lang=fields["lang"], notify_urn=notify, idempotency_key=stored_key,
                    request_hash=digest, confirm=True,
                )
                service, provider = await booking_facts(session, booking)
                data = booking_dict(booking, service, provider, fields["lang"], rules.zone)
        except BookingError as exc:
            return json_error(exc.http_status, exc.en, reason=exc.kind)
        except IntegrityError:
            # The same key committed by a concurrent request, or (rarely) the same new number:
            # nothing of ours was written; the next attempt finds the first booking or a new number.
            if attempt == 2:
                return json_error(409, "a concurrent request changed this booking; please retry")
            continue
        response = json_response(data, 201)
        response.headers["Location"] = f"/api/v1/bookings/{booking.id}"
        return response
    raise AssertionError("unreachable")  # pragma: no cover


def _booking_id(request: web.Request) -> str:
    value = request.match_info["id"]
    if not _BOOKING_ID.match(value):
        raise BadRequest(f"no booking {value!r}: booking ids are the 32-character 'id' a booking was created with", 404)
    return value


async def get_booking(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    booking_id = _booking_id(request)
    async with request.app[DB].read() as session:
        booking = await session.get(Booking, booking_id)
        if booking is None:
            return json_error(404, f"no booking {booking_id!r}")
        service, provider = await booking_facts(session, booking)
        return json_response(booking_dict(booking, service, provider, _lang(request) if request.query.get("lang")
                                          else booking.lang, settings.zone))


async def _change(request: web.Request, action: str) -> web.Response:
    settings = request.app[SETTINGS]
    booking_id = _booking_id(request)
    body = await _json_body(request, required=action == "reschedule")
    reason = _text(body, "reason", 500, required=False)
    slot = _text(body, "slot", 64) if action == "reschedule" else ""
    rules = Rules.of(settings)
    try:
        async with request.app[DB].write() as session:
            booking = await find_booking(session, booking_id, lock=True)
            if booking is None or booking.id != booking_id:
                return json_error(404, f"no booking {booking_id!r}")
            actor = f"api:{booking.urn}"
            if action == "cancel":
                await cancel(session, booking, rules=rules, now=utcnow(), actor=actor, reason=reason or "by the resident (API)")
            else:
                await reschedule(session, booking, slot, rules=rules, now=utcnow(), actor=actor)
            service, provider = await booking_facts(session, booking)
            data = booking_dict(booking, service, provider, booking.lang, settings.zone)
    except BookingError as exc:
        return json_error(exc.http_status, exc.en, reason=exc.kind)
    return json_response(data)


async def cancel_booking(request: web.Request) -> web.Response:
    return await _change(request, "cancel")


async def reschedule_booking(request: web.Request) -> web.Response:
    return await _change(request, "reschedule")
