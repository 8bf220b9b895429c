"""Track a case or a booking by its number and the phone number it was made with; rate it once
it is done.

Both must match: a wrong number and a right number with the wrong phone get the very same
answer (same status, same words), so the page tells nobody whether a number exists. Attempts
are limited per browser and per address, so nobody can try phone numbers one after another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.portal.common import check_token, lang_of, page, session_id, tr, web_address
from helpline.appkeys import DB, SETTINGS
from helpline.booking import texts as booking_texts
from helpline.booking.models import ACTIVE, COMPLETED, Booking, Provider
from helpline.booking.service import BookingError, Rules, booking_facts, find_booking
from helpline.booking.service import rate as rate_booking
from helpline.cases import service
from helpline.cases.data import departments, taxonomy
from helpline.cases.dialogue import status_name
from helpline.cases.models import Case, CaseReport, case_id_of
from helpline.cases.workflow import Actor, CaseError
from helpline.grid import shipped_grid
from helpline.models import Event, utcnow
from helpline.phones import tel_urn
from helpline.ratelimit import ContactLimiter, Verdict

PER_BROWSER = 12  # look-ups a minute from one browser
PER_ADDRESS = 60  # … from one network address (a village's shared connection is several people)
LIMITER: web.AppKey[tuple[ContactLimiter, ContactLimiter]] = web.AppKey("portal_track_limiter")
_NUMBER = re.compile(r"^(?:cx|st)?\s*#?\s*(b?\d{5,12})$", re.IGNORECASE)

# What each step of a case means to the resident (DESIGN.md part 3: the seven steps and branches).
CASE_STEPS = {
    "report": ("已收到反映", "Report received"),
    "link": ("又有居民反映了这个问题", "Another resident reported it too"),
    "register": ("核实立案", "Checked and registered"),
    "void": ("未予立案", "Not registered"),
    "dispatch": ("派给责任部门：{dept}", "Passed to the department: {dept}"),
    "accept": ("{dept}开始处理", "{dept} started work"),
    "return": ("部门退回，另派部门", "Sent back, to go to another department"),
    "request_extension": ("部门申请延长办理时间", "The department asked for more time"),
    "approve_extension": ("同意延长办理时间", "More time agreed"),
    "reject_extension": ("不同意延长办理时间", "More time refused"),
    "handle": ("{dept}已处理完", "{dept} has dealt with it"),
    "check": ("中心已核查", "Checked by the centre"),
    "rework": ("核查未通过，返工", "Not good enough: sent back to be redone"),
    "close": ("办结", "Closed"),
    "suspend": ("暂缓办理", "On hold"),
    "resume": ("恢复办理", "Work resumed"),
    "rate": ("评价：{rating}分", "Rated {rating} out of 5"),
    "reopen": ("重新办理", "Reopened"),
}
PUBLIC_NOTES = {"void", "handle", "close", "suspend"}  # notes written for the resident to read
BOOKING_STEPS = {
    "booking.created": ("预约成功", "Booked"),
    "booking.dispatched": ("已派给服务商：{provider}", "Sent to the provider: {provider}"),
    "booking.accepted": ("{provider}已接单", "{provider} accepted"),
    "booking.declined": ("服务商无法上门，另找服务商", "The provider cannot come: finding another"),
    "booking.timeout": ("服务商未及时回复，另找服务商", "The provider did not answer: finding another"),
    "booking.rescheduled": ("改了时间", "Time changed"),
    "booking.cancelled": ("已取消", "Cancelled"),
    "booking.rated": ("评价：{rating}分", "Rated {rating} out of 5"),
}


def setup_limits(app: web.Application) -> None:
    app[LIMITER] = (ContactLimiter(PER_BROWSER), ContactLimiter(PER_ADDRESS))


@dataclass
class Found:
    kind: str  # case | booking
    case: Case | None = None
    report: CaseReport | None = None
    booking: Booking | None = None


def normalise_number(raw: str) -> str | None:
    match = _NUMBER.match(" ".join(raw.split()))
    return match.group(1).upper() if match else None


async def find(session: AsyncSession, number: str, urn: str) -> Found | None:
    """The case or booking with this number made with this phone; None for anything else."""
    if not number.startswith("B") and (case_id := case_id_of(number)) is not None:
        case = await session.get(Case, case_id)
        if case is not None:
            report = await session.scalar(select(CaseReport).where(
                CaseReport.case_id == case.id, CaseReport.urn == urn).order_by(CaseReport.id).limit(1))
            if report is not None:
                return Found("case", case=case, report=report)
    booking = await find_booking(session, number)
    if booking is not None and urn in (booking.urn, booking.notify_urn):
        return Found("booking", booking=booking)
    return None


async def form(request: web.Request) -> web.Response:
    return page(request, "portal/track.html", {"values": {"number": request.query.get("n", "")[:20], "phone": ""},
                                               "errors": []}, title=("查询进度", "Track"))


async def _check(request: web.Request, form: Any, *, count: bool = True
                 ) -> tuple[dict[str, str], list[tuple[str, str]], str | None, str | None, int]:
    lang = lang_of(request, form)
    t = tr(lang)
    values = {"number": " ".join(str(form.get("number", "")).split())[:30],
              "phone": " ".join(str(form.get("phone", "")).split())[:40]}
    errors: list[tuple[str, str]] = []
    if check_token(request, form) is None:
        return values, [("number", t("页面已过期，请再点一次“查询”。", "This page had expired: please press “Track” again."))], None, None, 403
    if count:
        browser, network = request.app[LIMITER]
        if (browser.check(session_id(request)) is not Verdict.ALLOW
                or network.check(request.remote or "?") is not Verdict.ALLOW):
            return values, [("number", t("查询太频繁了，请一分钟后再试。", "Too many tries: please wait a minute."))], None, None, 429
    number = normalise_number(values["number"])
    urn = tel_urn(values["phone"], request.app[SETTINGS].default_region) if values["phone"] else None
    if not values["number"]:
        errors.append(("number", t("请填写案件号或预约号。", "Please give the case or booking number.")))
    elif number is None:
        errors.append(("number", t("号码好像不对：案件号是6位以上数字，预约号是B加7位数字。",
                                   "That number does not look right: case numbers are 6 or more digits, "
                                   "booking numbers B and 7 digits.")))
    if not values["phone"]:
        errors.append(("phone", t("请填写反映问题或预约时留的手机号码。", "Please give the phone number you used.")))
    elif urn is None:
        errors.append(("phone", t("手机号码好像不对，请检查。", "That phone number does not look right: please check it.")))
    return values, errors, number, urn, 400 if errors else 200


def not_found(lang: str) -> list[tuple[str, str]]:
    return [("number", tr(lang)("没有找到与这个号码和手机号码都相符的记录。请检查两个号码是否正确。",
                                "We found nothing matching both that number and that phone number. "
                                "Please check both."))]


async def lookup(request: web.Request) -> web.Response:
    form_data = await request.post()
    lang = lang_of(request, form_data)
    values, errors, number, urn, status = await _check(request, form_data)
    if errors or number is None or urn is None:
        return page(request, "portal/track.html", {"values": values, "errors": errors}, status=status,
                    form=form_data, title=("查询进度", "Track"))
    return await _result(request, form_data, values, number, urn, lang)


async def _result(request: web.Request, form_data: Any, values: dict[str, str], number: str, urn: str, lang: str,
                  *, message: str | None = None, error: str | None = None) -> web.Response:
    async with request.app[DB].read() as session:
        found = await find(session, number, urn)
        if found is None:
            return page(request, "portal/track.html", {"values": values, "errors": not_found(lang)}, status=404,
                        form=form_data, title=("查询进度", "Track"))
        if found.kind == "case":
            context = await case_context(request, session, found, lang)
        else:
            context = await booking_context(request, session, found, lang)
    return page(request, "portal/track_result.html",
                {**context, "values": values, "message": message, "error": error},
                form=form_data, title=("办理进度", "Progress"))


async def case_context(request: web.Request, session: AsyncSession, found: Found, lang: str) -> dict[str, Any]:
    case = found.case
    assert case is not None and found.report is not None
    t = tr(lang)
    depts = await departments(session)
    cls = (await taxonomy(session)).get(case.class_code or "")
    timeline = []
    for step in await service.steps(session, case):
        zh, en = CASE_STEPS.get(step.action, (step.action, step.action))
        dept = depts.get(step.department_code or "")
        label = t(zh, en).format(dept=dept.name(lang) if dept else t("责任部门", "the department"),
                                 rating=(step.data or {}).get("rating", ""))
        note = step.note if step.action in PUBLIC_NOTES and step.note else None
        timeline.append({"at": step.at, "label": label, "note": note})
    dept = depts.get(case.department_code or "")
    cell = shipped_grid().by_id.get(case.cell_id or "")
    return {
        "kind": "case", "number": case.number, "status": case.status, "status_text": status_name(case.status, lang),
        "what": cls.name(lang) if cls else t("城市管理问题", "Street problem"),
        "department": dept.name(lang) if dept and case.status not in ("reported", "registered", "voided") else None,
        "expected": case.due_at if case.status in ("dispatched", "in_progress") else None,
        "place": case.landmark or case.address or (cell.name if cell else None),
        "timeline": timeline, "finished": case.status in ("closed", "voided"),
        "can_rate": case.status == "closed" and found.report.rating is None,
        "rating": found.report.rating,
    }


async def booking_context(request: web.Request, session: AsyncSession, found: Found, lang: str) -> dict[str, Any]:
    booking = found.booking
    assert booking is not None
    t = tr(lang)
    zone = request.app[SETTINGS].zone
    svc, provider = await booking_facts(session, booking)
    names = {p.code: p.name(lang) for p in await session.scalars(select(Provider))}
    events = await session.scalars(select(Event).where(Event.subject_type == "booking", Event.subject_id == booking.id)
                                   .order_by(Event.at, Event.id))
    timeline = []
    for event in events:
        if event.action not in BOOKING_STEPS:
            continue
        zh, en = BOOKING_STEPS[event.action]
        data = event.data or {}
        timeline.append({"at": event.at, "note": None, "label": t(zh, en).format(
            provider=names.get(str(data.get("provider", "")), t("服务商", "the provider")), rating=data.get("rating", ""))})
    if booking.completed_at is not None:
        timeline.append({"at": booking.completed_at, "label": t("服务已完成", "Service done"), "note": None})
        timeline.sort(key=lambda s: s["at"])
    now = utcnow()
    done = booking.status == COMPLETED or (booking.status in ACTIVE and booking.ends_at <= now)
    return {
        "kind": "booking", "number": booking.number, "status": booking.status,
        "status_text": booking_texts.status(booking.status, lang), "what": svc.name(lang),
        "provider": provider.name(lang), "span": booking_texts.when(booking.starts_at, booking.ends_at, lang, zone),
        "timeline": timeline, "finished": booking.status in ("completed", "cancelled"),
        "can_rate": done and booking.rating is None, "rating": booking.rating,
        "manage": f"/booking/{booking.id}" if booking.status in ACTIVE and booking.starts_at > now else None,
    }


async def rate(request: web.Request) -> web.Response:
    """The rating of a closed case or a finished booking (1-5; a case rated 1 or 2 is reopened)."""
    form_data = await request.post()
    lang = lang_of(request, form_data)
    t = tr(lang)
    values, errors, number, urn, status = await _check(request, form_data, count=False)
    if errors or number is None or urn is None:
        return page(request, "portal/track.html", {"values": values, "errors": errors}, status=status,
                    form=form_data, title=("查询进度", "Track"))
    raw = str(form_data.get("rating", ""))
    rating = int(raw) if raw in ("1", "2", "3", "4", "5") else None
    note = str(form_data.get("note", "")).strip()[:500] or None
    if rating is None:
        return await _result(request, form_data, values, number, urn, lang,
                             error=t("请选择1到5分。", "Please choose from 1 to 5."))
    message = None
    try:
        async with request.app[DB].write() as session:
            found = await find(session, number, urn)
            if found is None:
                return page(request, "portal/track.html", {"values": values, "errors": not_found(lang)}, status=404,
                            form=form_data, title=("查询进度", "Track"))
            if found.kind == "case":
                assert found.case is not None and found.report is not None
                if found.report.rating is None and found.report.contact_id is not None:
                    actor = Actor.reporter(found.report.contact_id)
                    await service.perform(session, found.case, "rate", actor, utcnow(), rating=rating, note=note)
                reopened = rating <= 2
                message = (t("很抱歉没让您满意，案件已重新交部门办理，进度会短信通知您。",
                             "We are sorry. The case is reopened and back with the department; we will text you.")
                           if reopened else t("谢谢您的评价！", "Thank you for rating it!"))
            else:
                assert found.booking is not None
                if found.booking.rating is None:
                    await rate_booking(session, found.booking, rating, rules=Rules.of(request.app[SETTINGS]),
                                       now=utcnow(), actor=f"portal:{web_address(request)}")
                message = t("谢谢您的评价！", "Thank you for rating it!")
    except (CaseError, BookingError) as exc:
        text = exc.text(lang) if isinstance(exc, BookingError) else t("现在还不能评价。", "It cannot be rated yet.")
        return await _result(request, form_data, values, number, urn, lang, error=text)
    return await _result(request, form_data, values, number, urn, lang, message=message)
