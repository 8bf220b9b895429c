"""Working-time arithmetic: limits across lunch, nights, weekends, public holidays and make-up
working days (调休), on the shipped calendar (Asia/Shanghai, 08:30-12:00 and 13:30-17:30)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from helpline.cases.data import shipped_calendar
from helpline.cases.worktime import CalendarError, calendar_from_text, parse_calendar
from helpline.taxonomy import TimeLimit

SH = ZoneInfo("Asia/Shanghai")
CAL = shipped_calendar()


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SH)


def hours(n: float) -> timedelta:
    return timedelta(minutes=round(n * 60))


def test_the_shipped_calendar() -> None:
    assert CAL.day_minutes == 450  # 3.5 h + 4 h
    assert CAL.work_of(TimeLimit(4, "hours")) == hours(4)
    assert CAL.work_of(TimeLimit(2, "days")) == hours(15)
    assert CAL.is_working_day(date(2026, 11, 30))  # a Monday
    assert not CAL.is_working_day(date(2026, 11, 28))  # a Saturday
    assert not CAL.is_working_day(date(2026, 10, 1))  # National Day
    assert CAL.is_working_day(date(2026, 10, 10))  # a Saturday made a working day (调休)
    assert CAL.holidays[date(2026, 2, 17)] == "春节"


def test_hours_within_a_day_skip_the_lunch_break() -> None:
    assert CAL.add(at(2026, 11, 30, 8, 30), hours(4)) == at(2026, 11, 30, 14, 0)
    assert CAL.add(at(2026, 11, 30, 10, 0), hours(2)) == at(2026, 11, 30, 12, 0)  # ends as the morning ends
    assert CAL.add(at(2026, 11, 30, 12, 30), hours(1)) == at(2026, 11, 30, 14, 30)  # begins after lunch


def test_a_clock_started_at_night_begins_next_morning() -> None:
    assert CAL.add(at(2026, 11, 30, 20, 0), hours(1)) == at(2026, 12, 1, 9, 30)
    assert CAL.add(at(2026, 12, 1, 3, 0), hours(1)) == at(2026, 12, 1, 9, 30)


def test_across_a_weekend() -> None:
    # Friday 16:30 + 4 working hours: one hour on Friday, three on Monday morning.
    assert CAL.add(at(2026, 11, 27, 16, 30), hours(4)) == at(2026, 11, 30, 11, 30)
    assert CAL.elapsed(at(2026, 11, 27, 16, 30), at(2026, 11, 30, 11, 30)) == hours(4)
    # Saturday counts for nothing.
    assert CAL.elapsed(at(2026, 11, 28, 9, 0), at(2026, 11, 29, 17, 0)) == timedelta(0)


def test_across_a_holiday_and_its_weekend() -> None:
    # Thursday 24 Sep 2026 15:00 + 4 h: Friday 25th to Sunday 27th is the Mid-Autumn holiday.
    assert CAL.add(at(2026, 9, 24, 15, 0), hours(4)) == at(2026, 9, 28, 10, 0)
    # National Day: Wed 30 Sep 16:00 + 1 working day (7.5 h) ends on Thu 8 Oct at 16:00.
    assert CAL.add(at(2026, 9, 30, 16, 0), CAL.work_of(TimeLimit(1, "days"))) == at(2026, 10, 8, 16, 0)
    assert CAL.elapsed(at(2026, 9, 30, 16, 0), at(2026, 10, 8, 16, 0)) == hours(7.5)


def test_a_make_up_working_day_counts() -> None:
    # Friday 9 Oct 17:00 + 4 h: half an hour on Friday, then Saturday 10 Oct is a working day.
    assert CAL.add(at(2026, 10, 9, 17, 0), hours(4)) == at(2026, 10, 10, 12, 0)
    # Sunday 20 Sep 2026 is one too; the Saturday before it is not.
    assert CAL.elapsed(at(2026, 9, 19, 0, 0), at(2026, 9, 21, 0, 0)) == hours(7.5)


def test_days_are_whole_working_days_of_working_time() -> None:
    two_days = CAL.work_of(TimeLimit(2, "days"))
    assert CAL.add(at(2026, 11, 30, 10, 0), two_days) == at(2026, 12, 2, 10, 0)
    assert CAL.add(at(2026, 11, 27, 15, 0), CAL.work_of(TimeLimit(1, "days"))) == at(2026, 11, 30, 15, 0)


def test_add_and_elapsed_agree() -> None:
    start = at(2026, 9, 17, 11, 7)
    for minutes in (1, 59, 210, 451, 900, 3000, 9000):
        end = CAL.add(start, timedelta(minutes=minutes))
        assert CAL.elapsed(start, end) == timedelta(minutes=minutes), minutes
    assert CAL.elapsed(at(2026, 11, 30, 12), at(2026, 11, 30, 9)) == timedelta(0)
    assert CAL.add(start, timedelta(0)) == start


def test_a_calendar_in_another_zone_and_with_a_night_shift() -> None:
    cal = calendar_from_text(
        "timezone: Europe/Berlin\nhours: ['22:00-24:00']\nweekdays: [mon, tue, wed, thu, fri, sat, sun]\n"
        "holidays: [{date: 2026-12-25, name: Christmas}]\n", "test")
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 12, 24, 23, 0, tzinfo=berlin)
    assert cal.day_minutes == 120
    assert cal.add(start, hours(2)) == datetime(2026, 12, 26, 23, 0, tzinfo=berlin)  # Christmas Day skipped


@pytest.mark.parametrize(("text", "message"), [
    ("hours: ['9-17']\nweekdays: [mon]", "must look like 08:30-12:00"),
    ("hours: ['13:00-12:00']\nweekdays: [mon]", "must end after it starts"),
    ("hours: ['08:00-12:00', '11:00-13:00']\nweekdays: [mon]", "must not overlap"),
    ("hours: ['08:00-12:00']\nweekdays: [funday]", "weekdays must list"),
    ("hours: ['08:00-12:00']\nweekdays: [mon]\nholidays: [{date: 2026-13-01}]", "not a date"),
    ("hours: ['08:00-12:00']\nweekdays: [mon]\nholidays: [{date: 2026-10-01}]\nworkdays: [{date: 2026-10-01}]",
     "both a holiday and a make-up"),
    ("hours: ['08:00-12:00']\nweekdays: [mon]\ntimezone: Mars/Olympus", "unknown timezone"),
    ("hours: ['08:00-12:00']\nweekday: [mon]", "unknown key"),
    ("hours: []\nweekdays: [mon]", "at least one working period"),
    ("- just a list", "must be a mapping"),
])
def test_a_malformed_calendar_is_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        calendar_from_text(text, "city.yaml")


def test_no_working_time_at_all_is_an_error_not_a_hang() -> None:
    cal = parse_calendar({"hours": ["08:00-12:00"], "weekdays": ["mon"],
                          "holidays": [{"date": f"2026-{m:02d}-01", "to": f"2026-{m:02d}-28"} for m in range(1, 13)]},
                         "test")
    assert cal.add(at(2026, 1, 1), hours(1)) == datetime(2026, 3, 30, 9, 0, tzinfo=SH)  # 29 Mar is a Sunday
