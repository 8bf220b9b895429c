"""The words of booking messages that leave through the outbox, in the reader's language.

They go out by SMS more often than not, so they are short: the booking number first (it is
what people quote back), then the service, the time and what to do.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from helpline.booking.models import Booking, Provider, Service

_WEEKDAY_ZH = "一二三四五六日"


def when(start: datetime, end: datetime, lang: str, zone: ZoneInfo, *, compact: bool = False) -> str:
    """'12月3日(周四)09:00-11:00' or 'Thu 3 Dec 09:00-11:00', in the centre's time zone;
    ``compact`` saves the brackets where every character counts (SMS option lists)."""
    a, b = start.astimezone(zone), end.astimezone(zone)
    if lang == "zh":
        weekday = f"周{_WEEKDAY_ZH[a.weekday()]}" if compact else f"(周{_WEEKDAY_ZH[a.weekday()]})"
        return f"{a.month}月{a.day}日{weekday}{a:%H:%M}-{b:%H:%M}"
    return f"{a:%a} {a.day} {a:%b} {a:%H:%M}-{b:%H:%M}"


def _t(lang: str, zh: str, en: str) -> str:
    return zh if lang == "zh" else en


def _resident_phone(booking: Booking) -> str:
    return booking.notify_urn[4:] if booking.notify_urn.startswith("tel:") else ""


def dispatch(booking: Booking, service: Service, provider: Provider, zone: ZoneInfo, *, moved: bool = False) -> str:
    """To the provider: the job, and the exact reply that accepts or declines it."""
    lang = provider.lang
    phone = _resident_phone(booking)
    head = _t(lang, "【便民热线改期】" if moved else "【便民热线派单】", "[Helpline, moved] " if moved else "[Helpline job] ")
    note = booking.note.strip()[:60]
    return head + _t(
        lang,
        f"{booking.number} {service.name_zh} {when(booking.starts_at, booking.ends_at, 'zh', zone)} "
        f"地址：{booking.address} 联系人：{booking.name}{' ' + phone if phone else ''}"
        f"{' 备注：' + note if note else ''}。"
        f"回复“Y {booking.number}”接单，“N {booking.number}”拒单。",
        f"{booking.number} {service.name_en}, {when(booking.starts_at, booking.ends_at, 'en', zone)}. "
        f"Address: {booking.address}. Contact: {booking.name}{' ' + phone if phone else ''}."
        f"{' Note: ' + note + '.' if note else ''} "
        f"Reply \"Y {booking.number}\" to accept, \"N {booking.number}\" to decline.",
    )


def withdrawn(booking: Booking, provider: Provider, why: str) -> str:
    """To a provider whose job was cancelled or given to another provider."""
    return _t(
        provider.lang,
        f"【便民热线】{booking.number}已{'取消' if why == 'cancelled' else '改派'}，无需上门，谢谢。",
        f"[Helpline] {booking.number} was {'cancelled' if why == 'cancelled' else 'reassigned'}: no visit needed, thank you.",
    )


def confirmation(booking: Booking, service: Service, zone: ZoneInfo) -> str:
    return _t(
        booking.lang,
        f"【便民热线】预约成功，预约号{booking.number}：{service.name_zh}，{when(booking.starts_at, booking.ends_at, 'zh', zone)}。"
        f"服务商会与您联系。取消或改时间请回复“取消 {booking.number}”或“改时间 {booking.number}”。",
        f"[Helpline] Booked: {booking.number}, {service.name_en}, {when(booking.starts_at, booking.ends_at, 'en', zone)}. "
        f"The provider will contact you. To cancel or move it reply \"cancel {booking.number}\" or "
        f"\"reschedule {booking.number}\".",
    )


def accepted(booking: Booking, service: Service, provider: Provider, zone: ZoneInfo) -> str:
    return _t(
        booking.lang,
        f"【便民热线】{booking.number}：{provider.name_zh}已接单，将于{when(booking.starts_at, booking.ends_at, 'zh', zone)}"
        f"上门提供{service.name_zh}。",
        f"[Helpline] {booking.number}: {provider.name_en} accepted and will come for your {service.name_en.lower()} "
        f"on {when(booking.starts_at, booking.ends_at, 'en', zone)}.",
    )


def reassigned(booking: Booking, service: Service, provider: Provider, zone: ZoneInfo) -> str:
    return _t(
        booking.lang,
        f"【便民热线】{booking.number}：原服务商无法上门，已改由{provider.name_zh}为您服务，"
        f"时间{when(booking.starts_at, booking.ends_at, 'zh', zone)}。",
        f"[Helpline] {booking.number}: the first provider cannot come; {provider.name_en} will serve you instead, "
        f"{when(booking.starts_at, booking.ends_at, 'en', zone)}.",
    )


def referred(booking: Booking, service: Service) -> str:
    return _t(
        booking.lang,
        f"【便民热线】抱歉，{booking.number}（{service.name_zh}）暂时没有服务商能在约定时间上门，话务员会尽快联系您另行安排。",
        f"[Helpline] Sorry: no provider can come for {booking.number} ({service.name_en.lower()}) at the agreed time. "
        "An operator will contact you to arrange it.",
    )


def reminder(booking: Booking, service: Service, provider: Provider, zone: ZoneInfo, kind: str) -> str:
    span = when(booking.starts_at, booking.ends_at, booking.lang, zone)
    if kind == "day":
        return _t(
            booking.lang,
            f"【便民热线】提醒：明天{span}，{provider.name_zh}上门{service.name_zh}（{booking.number}）。"
            f"如需取消请回复“取消 {booking.number}”。",
            f"[Helpline] Reminder: {provider.name_en} comes for your {service.name_en.lower()} tomorrow, {span} "
            f"({booking.number}). To cancel reply \"cancel {booking.number}\".",
        )
    return _t(
        booking.lang,
        f"【便民热线】提醒：{provider.name_zh}约1小时后上门{service.name_zh}（{booking.number}，{span}），请留意电话。",
        f"[Helpline] Reminder: {provider.name_en} comes in about an hour for your {service.name_en.lower()} "
        f"({booking.number}, {span}). Please keep your phone at hand.",
    )


def survey(booking: Booking, service: Service, provider: Provider) -> str:
    return _t(
        booking.lang,
        f"【便民热线回访】{provider.name_zh}的{service.name_zh}服务（{booking.number}）您满意吗？"
        "请回复1-5分：5非常满意，1很不满意。",
        f"[Helpline] How was {provider.name_en}'s {service.name_en.lower()} ({booking.number})? "
        "Reply 1-5: 5 very good, 1 very poor.",
    )


STATUS_ZH = {
    "confirmed": "已预约，等待服务商确认",
    "accepted": "服务商已接单",
    "completed": "已完成",
    "cancelled": "已取消",
    "referred": "转话务员安排中",
}
STATUS_EN = {
    "confirmed": "booked, waiting for the provider to confirm",
    "accepted": "accepted by the provider",
    "completed": "done",
    "cancelled": "cancelled",
    "referred": "with an operator to arrange",
}


def status(value: str, lang: str) -> str:
    return (STATUS_ZH if lang == "zh" else STATUS_EN).get(value, value)
