"""Working time: time limits run only during working hours on working days.

A case's clock starts at dispatch and counts working time in the calendar's local time zone:
the working periods of a day (08:30-12:00 and 13:30-17:30 by default), ordinary working days
(Monday to Friday), minus public holidays, plus make-up working days (调休) that fall on a
weekend. The calendar is data (``helpline/data/worktime.yaml``, or a city's own imported one).

A limit in working days is that many full working days of working time (a day = the length of
the day's periods, 7.5 hours by default): two working days from Monday 10:00 end on Wednesday
10:00, and one working day from Friday 15:00 ends on Monday 15:00. A clock started outside
working hours begins at the next working period.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from helpline.taxonomy import TimeLimit

WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_PERIOD = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
_SEARCH_DAYS = 3660  # no calendar has ten years without a working minute


class CalendarError(ValueError):
    """The calendar data is malformed; the message names the entry."""


@dataclass(frozen=True)
class WorkCalendar:
    zone: ZoneInfo
    periods: tuple[tuple[time, time], ...]
    weekdays: frozenset[int]
    holidays: Mapping[date, str] = field(default_factory=dict)
    workdays: Mapping[date, str] = field(default_factory=dict)

    @property
    def day_minutes(self) -> int:
        """Working minutes in one working day."""
        return sum(_end_minutes(end) - _minutes(start) for start, end in self.periods)

    def is_working_day(self, day: date) -> bool:
        if day in self.holidays:
            return False
        if day in self.workdays:
            return True
        return day.weekday() in self.weekdays

    def work_of(self, limit: TimeLimit) -> timedelta:
        """A limit as working time: hours as they are, days as whole working days."""
        minutes = limit.amount * (60 if limit.unit == "hours" else self.day_minutes)
        return timedelta(minutes=minutes)

    def _spans(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        """The day's working periods as UTC instants (none on a day off)."""
        if not self.is_working_day(day):
            return
        for start, end in self.periods:
            a = datetime.combine(day, start, self.zone).astimezone(UTC)
            b = _end_of(day, end, self.zone).astimezone(UTC)
            yield a, b

    def add(self, start: datetime, work: timedelta) -> datetime:
        """The instant at which ``work`` of working time has passed since ``start``."""
        if work <= timedelta(0):
            return start
        remaining = work
        day = start.astimezone(self.zone).date() - timedelta(days=1)  # a period may cross midnight UTC
        for _ in range(_SEARCH_DAYS):
            for a, b in self._spans(day):
                if b <= start:
                    continue
                begin = max(a, start)
                available = b - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
            day += timedelta(days=1)
        raise CalendarError("no working time found in ten years: check the calendar's hours and weekdays")

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Working time between two instants (zero if ``end`` is not after ``start``)."""
        if end <= start:
            return timedelta(0)
        total = timedelta(0)
        day = start.astimezone(self.zone).date() - timedelta(days=1)
        last = end.astimezone(self.zone).date() + timedelta(days=1)
        while day <= last:
            for a, b in self._spans(day):
                overlap = min(b, end) - max(a, start)
                if overlap > timedelta(0):
                    total += overlap
            day += timedelta(days=1)
        return total


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def _end_minutes(t: time) -> int:
    """A period's end in minutes of the day; 24:00 is kept as time(0, 0) and counts as 1440."""
    return 1440 if t == time(0, 0) else _minutes(t)


def _end_of(day: date, end: time, zone: ZoneInfo) -> datetime:
    """24:00 is the end of the day, written as time(0, 0) of the next."""
    if end == time(0, 0):
        return datetime.combine(day + timedelta(days=1), time(0, 0), zone)
    return datetime.combine(day, end, zone)


def _day(value: Any, where: str) -> date:
    if isinstance(value, datetime):
        raise CalendarError(f"{where}: a date (YYYY-MM-DD) without a time is expected")
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise CalendarError(f"{where}: {value!r} is not a date (YYYY-MM-DD)") from None


def _days(entries: Any, what: str, source: str) -> dict[date, str]:
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise CalendarError(f"{source}: {what} must be a list of {{date, to, name}}")
    days: dict[date, str] = {}
    for n, entry in enumerate(entries, start=1):
        where = f"{source}: {what} entry {n}"
        if not isinstance(entry, dict) or "date" not in entry:
            raise CalendarError(f"{where}: needs a date")
        first = _day(entry["date"], where)
        last = _day(entry.get("to", first), where)
        if last < first or (last - first).days > 60:
            raise CalendarError(f"{where}: 'to' must be on or after 'date' and within 60 days")
        name = str(entry.get("name") or what)
        while first <= last:
            days[first] = name
            first += timedelta(days=1)
    return days


def parse_calendar(data: Any, source: str, default_timezone: str = "Asia/Shanghai") -> WorkCalendar:
    """A calendar from its YAML data (see helpline/data/worktime.yaml); refuses anything unclear."""
    if not isinstance(data, dict):
        raise CalendarError(f"{source}: the calendar must be a mapping with hours, weekdays, holidays, workdays")
    unknown = set(data) - {"timezone", "hours", "weekdays", "holidays", "workdays"}
    if unknown:
        raise CalendarError(f"{source}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    try:
        zone = ZoneInfo(str(data.get("timezone") or default_timezone))
    except (ZoneInfoNotFoundError, ValueError):
        raise CalendarError(f"{source}: unknown timezone {data.get('timezone')!r}") from None
    periods: list[tuple[time, time]] = []
    for text in data.get("hours") or []:
        match = _PERIOD.match(str(text).strip())
        if match is None:
            raise CalendarError(f"{source}: hours entry {text!r} must look like 08:30-12:00")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = time(h1, m1), time(0, 0) if h2 == 24 else time(h2, m2)
        if (h2 * 60 + m2) <= (h1 * 60 + m1) or (h2 == 24 and m2):
            raise CalendarError(f"{source}: hours entry {text!r} must end after it starts, within the day")
        if periods and _minutes(start) < _end_minutes(periods[-1][1]):
            raise CalendarError(f"{source}: hours must be in order and must not overlap ({text!r})")
        periods.append((start, end))
    if not periods:
        raise CalendarError(f"{source}: hours must list at least one working period")
    names = data.get("weekdays") or []
    if not isinstance(names, list) or not names or any(str(n).lower()[:3] not in WEEKDAYS for n in names):
        raise CalendarError(f"{source}: weekdays must list days such as [mon, tue, wed, thu, fri]")
    holidays = _days(data.get("holidays"), "holidays", source)
    workdays = _days(data.get("workdays"), "workdays", source)
    both = sorted(set(holidays) & set(workdays))
    if both:
        raise CalendarError(f"{source}: {both[0]} is both a holiday and a make-up working day")
    return WorkCalendar(
        zone=zone,
        periods=tuple(periods),
        weekdays=frozenset(WEEKDAYS[str(n).lower()[:3]] for n in names),
        holidays=holidays,
        workdays=workdays,
    )


def calendar_from_text(text: str, source: str, default_timezone: str = "Asia/Shanghai") -> WorkCalendar:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CalendarError(f"{source}: not valid YAML: {exc}") from None
    except ValueError as exc:  # the YAML parser's own dates: 2026-13-01
        raise CalendarError(f"{source}: not a date: {exc}") from None
    return parse_calendar(data, source, default_timezone)
