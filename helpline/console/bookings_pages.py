"""The console's Bookings pages: bookings as a list and as a week calendar, one booking with what
an operator does for a resident or a provider (accept or decline on the provider's behalf, move
to a free slot, cancel), and the partner providers with their scores, flags and suspension.

Every change goes through ``helpline.booking.service`` with the operator as the actor, so the
seat counting, the cut-off, the messages to the resident and the provider and the audit log are
the service's; a refusal is shown in the user's language and nothing changes. Past the cut-off
the service lets only an operator act, and only when told so (``force``): the forms ask for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import func, select

from helpline.appkeys import DB, SETTINGS
from helpline.booking import service as booking_service
from helpline.booking.models import (
    ACTIVE,
    CANCELLED,
    PROVIDER_ACTIVE,
    PROVIDER_SUSPENDED,
    REFERRED,
    STATUSES,
    Booking,
    Dispatch,
    Provider,
    ProviderService,
    Service,
)
from helpline.booking.service import BookingError, Rules
from helpline.booking.slots import HORIZON_DAYS, day_start, ensure_slots, find_slots, local_day
from helpline.console.auth import require
from helpline.console.labels import BOOKING_STATUS_LABELS, label
from helpline.console.live import console_write
from helpline.console.pages import register_page
from helpline.console.render import flash, lang_of, redirect, render
from helpline.models import Event, User, utcnow

STAFF = ("operator", "supervisor", "admin")
MANAGERS = ("supervisor", "admin")  # suspend and reinstate providers
PAGE_SIZE = 40
RESCHEDULE_DAYS = 14
MAX_OFFERS = 80
WEEKDAYS = (("一", "Mon"), ("二", "Tue"), ("三", "Wed"), ("四", "Thu"), ("五", "Fri"), ("六", "Sat"), ("日", "Sun"))


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/console/bookings", bookings_page)
    r.add_get("/console/bookings/{number:[Bb]?\\d{1,12}}", booking_page)
    r.add_post("/console/bookings/{number:[Bb]?\\d{1,12}}/{action:accept|decline|reschedule|cancel}", booking_action)
    r.add_get("/console/providers", providers_page)
    r.add_post("/console/providers/{code}/{action:suspend|reinstate}", provider_action)
    register_page(app, "bookings", "服务预约", "Bookings", STAFF, "/console/bookings")


def _status_label(lang: str) -> Any:
    return lambda key: label(BOOKING_STATUS_LABELS, key, lang)


# -- the list and the week ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Filters:
    view: str = "list"
    day: date | None = None
    status: str = ""
    service: str = ""
    provider: str = ""
    page: int = 1

    def query(self, **changes: Any) -> str:
        values: dict[str, Any] = {"view": self.view, "date": self.day.isoformat() if self.day else "",
                                  "status": self.status, "service": self.service, "provider": self.provider,
                                  "page": self.page}
        values.update(changes)
        if isinstance(values["date"], date):
            values["date"] = values["date"].isoformat()
        return urlencode({k: v for k, v in values.items() if v and not (k == "page" and v == 1)
                          and not (k == "view" and v == "list")})


def _filters(request: web.Request) -> Filters:
    q = request.query
    try:
        day = date.fromisoformat(q["date"]) if q.get("date") else None
    except ValueError:
        day = None
    try:
        page = max(1, min(int(q.get("page", "1")), 10_000))
    except ValueError:
        page = 1
    status = q.get("status", "")
    return Filters(
        view="week" if q.get("view") == "week" else "list",
        day=day,
        status=status if status in STATUSES else "",
        service=q.get("service", "").strip()[:32],
        provider=q.get("provider", "").strip()[:32],
        page=page,
    )


async def bookings_page(request: web.Request) -> web.Response:
    await require(request, *STAFF)
    f = _filters(request)
    zone = request.app[SETTINGS].zone
    now = utcnow()
    today = local_day(now, zone)
    query = (
        select(Booking, Service, Provider)
        .join(Service, Service.id == Booking.service_id)
        .join(Provider, Provider.id == Booking.provider_id)
    )
    if f.status:
        query = query.where(Booking.status == f.status)
    if f.service:
        query = query.where(Service.code == f.service)
    if f.provider:
        query = query.where(Provider.code == f.provider)
    week: list[dict[str, Any]] = []
    if f.view == "week":
        first = (f.day or today) - timedelta(days=(f.day or today).weekday())
        query = query.where(Booking.starts_at >= day_start(first, zone),
                            Booking.starts_at < day_start(first + timedelta(days=7), zone))
        query = query.order_by(Booking.starts_at, Booking.number)
    elif f.day is not None:
        first = f.day
        query = query.where(Booking.starts_at >= day_start(f.day, zone),
                            Booking.starts_at < day_start(f.day + timedelta(days=1), zone))
        query = query.order_by(Booking.starts_at, Booking.number)
    else:  # what is still to come (and today's), soonest first
        first = today
        query = query.where(Booking.starts_at >= day_start(today, zone)).order_by(Booking.starts_at, Booking.number)
    if f.view == "list":
        query = query.offset((f.page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)
    async with request.app[DB].read() as session:
        rows = (await session.execute(query)).all()
        services = list(await session.scalars(select(Service).order_by(Service.sort, Service.code)))
        providers = list(await session.scalars(select(Provider).order_by(Provider.code)))
        waiting = await session.scalar(
            select(func.count()).select_from(Booking).where(Booking.status.in_((booking_service.CONFIRMED, REFERRED)),
                                                             Booking.starts_at >= now)
        )
    if f.view == "week":
        for i in range(7):
            day = first + timedelta(days=i)
            week.append({
                "day": day, "weekday": WEEKDAYS[day.weekday()], "today": day == today,
                "rows": [row for row in rows if local_day(row[0].starts_at, zone) == day],
            })
    lang = lang_of(request)
    return await render(
        request,
        "console/bookings.html",
        {
            "f": f,
            "rows": rows if f.view == "week" else rows[:PAGE_SIZE],
            "more": f.view == "list" and len(rows) > PAGE_SIZE,
            "week": week,
            "first": first,
            "today": today,
            "services": services,
            "providers": providers,
            "statuses": STATUSES,
            "waiting": waiting or 0,
            "status_label": _status_label(lang),
            "timedelta": timedelta,
        },
        active="bookings",
    )


# -- one booking --------------------------------------------------------------------------------


async def _booking(session: Any, number: str, *, lock: bool = False) -> Booking:
    booking = await booking_service.find_booking(session, number, lock=lock)
    if booking is None:
        raise web.HTTPNotFound(text=f"404: no booking numbered {number}")
    return booking


async def booking_page(request: web.Request) -> web.Response:
    await require(request, *STAFF)
    settings = request.app[SETTINGS]
    zone, now = settings.zone, utcnow()
    rules = Rules.of(settings)
    db = request.app[DB]
    async with db.read() as session:
        booking = await _booking(session, request.match_info["number"])
        behind = booking.status in ACTIVE and await session.scalar(
            select(func.count()).select_from(Provider).where(
                Provider.status == PROVIDER_ACTIVE,
                (Provider.slots_until.is_(None)) | (Provider.slots_until < local_day(now, zone) + timedelta(days=HORIZON_DAYS)),
            )
        )
    if behind:  # free slots to move to are made from the providers' plans first, as the API does
        async with db.write() as session:
            await ensure_slots(session, now, zone)
    async with db.read() as session:
        booking = await _booking(session, request.match_info["number"])
        service, provider = await booking_service.booking_facts(session, booking)
        dispatches = (await session.execute(
            select(Dispatch, Provider).join(Provider, Provider.id == Dispatch.provider_id)
            .where(Dispatch.booking_id == booking.id).order_by(Dispatch.id)
        )).all()
        events = list(await session.scalars(
            select(Event).where(Event.subject_type == "booking", Event.subject_id == booking.id).order_by(Event.id)
        ))
        user_ids = {int(e.actor[5:]) for e in events if e.actor.startswith("user:") and e.actor[5:].isdigit()}
        names = {u.id: u.username for u in await session.scalars(select(User).where(User.id.in_(user_ids)))} \
            if user_ids else {}
        offers = []
        if booking.status in ACTIVE:
            offers = [o for o in await find_slots(session, service.id, now, end=now + timedelta(days=RESCHEDULE_DAYS),
                                                  address=booking.address)
                      if o.slot.id != booking.slot_id][:MAX_OFFERS]
    current = next((d for d, _ in reversed(dispatches) if d.answer in (None, "accepted")), None)
    lang = lang_of(request)
    return await render(
        request,
        "console/booking.html",
        {
            "b": booking,
            "service": service,
            "provider": provider,
            "dispatches": dispatches,
            "events": events,
            "names": names,
            "offers": offers,
            "awaiting_answer": booking.status in ACTIVE and current is not None and current.answer is None,
            "can_move": booking.status in ACTIVE,
            "can_cancel": booking.status in (*ACTIVE, REFERRED),
            "past_cutoff": now > booking.starts_at - rules.cutoff,
            "cutoff_hours": rules.cutoff.total_seconds() / 3600,
            "status_label": _status_label(lang),
            "zone": zone,
        },
        active="bookings",
    )


_DONE = {
    "accept": ("已代服务商接单。", "Accepted on the provider's behalf."),
    "decline": ("已代服务商拒单，已转派或转人工。", "Declined on the provider's behalf; passed on or referred."),
    "reschedule": ("已改约，新时段已派给服务商。", "Moved; the new slot was sent to the provider."),
    "cancel": ("预约已取消，名额已释放。", "Booking cancelled; the seat is free again."),
}


async def booking_action(request: web.Request) -> web.Response:
    user = await require(request, *STAFF)
    action = request.match_info["action"]
    settings = request.app[SETTINGS]
    rules = Rules.of(settings)
    form = await request.post()
    actor = f"user:{user.id}"
    force = form.get("force") == "1"
    reason = str(form.get("reason", "")).strip()[:500]
    number = request.match_info["number"]
    now = utcnow()
    try:
        async with console_write(request) as session:
            booking = await _booking(session, number, lock=True)
            back = f"/console/bookings/{booking.number}"
            if action == "accept":
                await booking_service.accept(session, booking, rules=rules, now=now, actor=actor)
            elif action == "decline":
                await booking_service.decline(session, booking, rules=rules, now=now, actor=actor, reason=reason)
            elif action == "reschedule":
                slot = str(form.get("slot", "")).strip()
                if not slot:
                    raise BookingError("bad_input", "choose the new slot", "请选择新的时段。")
                await booking_service.reschedule(session, booking, slot, rules=rules, now=now, actor=actor, force=force)
            else:
                await booking_service.cancel(session, booking, rules=rules, now=now, actor=actor,
                                             reason=reason or "cancelled by an operator for the resident", force=force)
    except BookingError as exc:
        flash(request, "error", exc.zh, exc.en)
        return redirect(f"/console/bookings/{number}")
    zh, en = _DONE[action]
    flash(request, "ok", zh, en)
    return redirect(back)


# -- providers ----------------------------------------------------------------------------------


async def providers_page(request: web.Request) -> web.Response:
    user = await require(request, *STAFF)
    now = utcnow()
    async with request.app[DB].read() as session:
        providers = list(await session.scalars(select(Provider)))
        offered = (await session.execute(
            select(ProviderService.provider_id, Service).join(Service, Service.id == ProviderService.service_id)
            .order_by(Service.sort, Service.code)
        )).all()
        upcoming = dict((await session.execute(
            select(Booking.provider_id, func.count()).where(Booking.status.in_(ACTIVE), Booking.starts_at >= now)
            .group_by(Booking.provider_id)
        )).all())
        cancelled = dict((await session.execute(
            select(Booking.provider_id, func.count()).where(Booking.status == CANCELLED).group_by(Booking.provider_id)
        )).all())
    services: dict[int, list[Service]] = {}
    for provider_id, svc in offered:
        services.setdefault(provider_id, []).append(svc)
    # Needing attention first: flagged, then suspended, then by score (the unrated last).
    providers.sort(key=lambda p: (p.flagged_at is None, p.status != PROVIDER_SUSPENDED,
                                  p.score is None, p.score or 0, p.code))
    settings = request.app[SETTINGS]
    return await render(
        request,
        "console/providers.html",
        {
            "providers": providers,
            "services": services,
            "upcoming": upcoming,
            "cancelled": cancelled,
            "manage": user.role in MANAGERS,
            "min_score": settings.provider_min_score,
            "min_ratings": settings.provider_min_ratings,
            "SUSPENDED": PROVIDER_SUSPENDED,
        },
        active="bookings",
    )


async def provider_action(request: web.Request) -> web.Response:
    user = await require(request, *MANAGERS)
    code, action = request.match_info["code"], request.match_info["action"]
    form = await request.post()
    reason = str(form.get("reason", "")).strip()[:500]
    async with console_write(request) as session:
        provider = await session.scalar(select(Provider).where(Provider.code == code))
        if provider is None:
            raise web.HTTPNotFound(text=f"404: no provider {code!r}")
        if action == "suspend":
            if provider.status == PROVIDER_SUSPENDED:
                flash(request, "warn", "该服务商已经暂停。", "This provider is already suspended.")
                return redirect("/console/providers")
            if not reason:
                flash(request, "error", "暂停服务商须说明原因。", "Say why the provider is suspended.")
                return redirect("/console/providers")
            await booking_service.suspend_provider(session, provider, now=utcnow(), actor=f"user:{user.id}",
                                                   reason=reason)
            zh, en = f"已暂停{provider.name_zh}接单。", f"{provider.name_en} takes no new bookings now."
        else:
            await booking_service.reinstate_provider(session, provider, now=utcnow(), actor=f"user:{user.id}")
            zh, en = f"{provider.name_zh}已恢复接单。", f"{provider.name_en} takes bookings again."
    flash(request, "ok", zh, en)
    return redirect("/console/providers")
