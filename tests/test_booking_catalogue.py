"""The catalogue as data: the shipped demo, YAML and CSV imports that are all or nothing with
file:line problems, the ``helpline booking`` and ``helpline export bookings`` commands; and the
words: free text to a service and a time, and the booking words the router hears first."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from test_booking_support import DAYTIME, T0, ZONE, load

from helpline.booking.catalogue import CatalogueError, import_catalogue, parse_catalogue, shipped_catalogue
from helpline.booking.catalogue import load_shipped as load_shipped_catalogue
from helpline.booking.matching import best_services, parse_when
from helpline.booking.models import Holiday, Provider, ProviderService, Service
from helpline.booking.routing import BookingClassifier, booking_action, provider_reply, rating_value
from helpline.bootstrap import prepare
from helpline.classify import RuleClassifier
from helpline.config import Settings
from helpline.db import Database
from helpline.request import Intent


def test_the_shipped_catalogue_is_complete() -> None:
    cat = shipped_catalogue()
    codes = {s.code for s in cat.services}
    assert len(cat.services) >= 15 and len(cat.providers) >= 10
    assert {"agri-tech", "vet", "soil-test", "drone-spray", "harvester", "plumbing", "electrician", "locksmith",
            "appliance", "cleaning", "home-care", "meals", "checkup", "legal-aid"} <= codes
    served = {code for p in cat.providers for code in p.services}
    assert served == codes  # every service has a provider
    assert all(p.phone.startswith("+86120") for p in cat.providers)  # demo numbers nobody owns
    assert date(2026, 10, 1) in {h.day for h in cat.holidays}
    assert all(s.name_zh and s.name_en and s.keywords_zh and s.keywords_en for s in cat.services)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("services:\n  - code: x\n    category: nope\n    zh: 甲\n    en: A\n    colour: red\n", "test.yaml:2: unknown field 'colour'"),
        ("services:\n  - code: Bad Code\n    category: repair\n    zh: 甲\n    en: A\n", "test.yaml:2: 'code' 'Bad Code' must be"),
        ("services:\n  - code: ok\n    category: repair\n    en: A\n", "test.yaml:2: missing 'zh'"),
        ("providers:\n  - code: p\n    zh: 甲\n    en: A\n    phone: call me\n    services: [plumbing]\n    plan: daily 08:00-12:00\n",
         "test.yaml:2: 'phone' 'call me' is not a phone number"),
        ("providers:\n  - code: p\n    zh: 甲\n    en: A\n    phone: '+8613900000009'\n    services: [plumbing]\n    plan: funday 08:00-12:00\n",
         "test.yaml:2: 'plan': unknown day 'funday'"),
        ("providers:\n  - code: p\n    zh: 甲\n    en: A\n    phone: '+8613900000009'\n    services: [plumbing]\n    plan: daily 08:00-09:00\n    slot_minutes: 120\n",
         "test.yaml:2: working hours 08:00-09:00 are shorter than one slot"),
        ("providers:\n  - code: p\n    zh: 甲\n    en: A\n    phone: '+8613900000009'\n    services: [plumbing]\n    plan: daily 08:00-12:00\n    capacity: 0\n",
         "test.yaml:2: 'capacity' must be between 1 and 1000"),
        ("holidays:\n  - {date: 2026-02-30, zh: 甲, en: A}\n", "test.yaml:2: 'date' '2026-02-30' is not a date"),
        ("categories:\n  - {code: a, zh: 甲, en: A}\n  - {code: a, zh: 乙, en: B}\n", "test.yaml:3: category 'a' is already defined on line 2"),
        ("services: [\n", "test.yaml:2: not valid YAML"),
    ],
)
def test_malformed_yaml_names_the_file_and_line(text: str, problem: str) -> None:
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(text, "test.yaml")
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


def test_malformed_csv_names_the_line() -> None:
    text = ("code,zh,en,phone,services,plan,capacity\n"
            "p1,甲,A,+8613900000011,plumbing,mon-fri 08:00-12:00,2\n"
            "p2,乙,B,+8613900000012,plumbing,mon-fri 08:00-12:00,lots\n")
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(text, "providers.csv")
    assert info.value.problems == ["providers.csv:3: 'capacity' must be a number, not 'lots'"]


async def test_an_import_with_a_bad_reference_writes_nothing(db: Database) -> None:
    await load(db)
    bad = DAYTIME.replace("services: [vet]", "services: [vet, massage]").replace("zh: 兽医出诊", "zh: 兽医上门")
    cat = parse_catalogue(bad, "bad.yaml")
    with pytest.raises(CatalogueError) as info:
        async with db.write() as s:
            await import_catalogue(s, cat, T0, ZONE)
    assert len(info.value.problems) == 1 and "bad.yaml:" in info.value.problems[0]
    assert "unknown service 'massage'" in info.value.problems[0]
    async with db.read() as s:
        assert await s.scalar(select(Service.name_zh).where(Service.code == "vet")) == "兽医出诊"


async def test_csv_imports_upsert_by_code(db: Database, tmp_path: Path) -> None:
    await load(db)
    services = ("code,category,category_zh,category_en,zh,en,keywords_zh,keywords_en\n"
                "locksmith,repair,家庭维修,Home repairs,开锁换锁,Locksmith,开锁|换锁|锁芯,locksmith|locked out\n"
                "plumbing,repair,家庭维修,Home repairs,水管维修,Plumbing repairs,水管|漏水,plumber\n")
    providers = ("code,zh,en,phone,services,areas,plan,slot_minutes,capacity,lead_hours,works_holidays\n"
                 "lk,锁王,Lock King,139 0000 0021,locksmith,,daily 08:00-20:00,60,1,1,yes\n")
    holidays = "date,zh,en\n2026-12-31,跨年,New Year's Eve\n"
    async with db.write() as s:
        first = await import_catalogue(s, parse_catalogue(services, "services.csv"), T0, ZONE)
        second = await import_catalogue(s, parse_catalogue(providers, "providers.csv"), T0, ZONE)
        third = await import_catalogue(s, parse_catalogue(holidays, "holidays.csv"), T0, ZONE)
    assert (first.created, first.updated, first.unchanged) == (1, 1, 1)  # locksmith new, plumbing renamed, category same
    assert (second.created, third.created) == (1, 1)
    async with db.read() as s:
        lk = await s.scalar(select(Provider).where(Provider.code == "lk"))
        assert lk.phone == "+8613900000021" and lk.works_holidays and lk.lead_minutes == 60
        assert await s.scalar(select(Service.name_en).where(Service.code == "plumbing")) == "Plumbing repairs"
        assert await s.get(Holiday, date(2026, 12, 31)) is not None


async def test_the_shipped_catalogue_loads_once_and_keeps_staff_edits(db: Database) -> None:
    first = await load_shipped_catalogue(db, T0, ZONE)
    assert first.created > 30
    async with db.write() as s:
        svc = await s.scalar(select(Service).where(Service.code == "plumbing"))
        svc.name_zh = "管道维修（本站）"
    again = await load_shipped_catalogue(db, T0, ZONE)
    assert again.created == 0 and again.updated == 0
    async with db.read() as s:
        assert await s.scalar(select(Service.name_zh).where(Service.code == "plumbing")) == "管道维修（本站）"
        assert await s.scalar(select(func.count()).select_from(ProviderService)) >= 15


async def test_serve_preparation_loads_the_demo_catalogue(settings: Settings, db: Database) -> None:
    await prepare(settings)
    async with db.read() as s:
        assert await s.scalar(select(func.count()).select_from(Service)) >= 15
        assert await s.scalar(select(func.count()).select_from(Provider)) >= 10


def _cli(args: list[str], settings: Settings, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPLINE_")}
    env.update(HELPLINE_DATABASE_URL=settings.database_url, HELPLINE_VAR_DIR=str(cwd / "var"))
    return subprocess.run([sys.executable, "-m", "helpline", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


async def test_the_booking_and_export_commands(settings: Settings, db: Database, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("services:\n  - code: x\n    category: repair\n    zh: 甲\n", encoding="utf-8")
    result = _cli(["booking", "import", str(bad)], settings, tmp_path)
    assert result.returncode == 1
    assert f"{bad}:2: missing 'en'" in result.stderr and "nothing imported" in result.stderr
    good = tmp_path / "catalogue.yaml"
    good.write_text(DAYTIME, encoding="utf-8")
    result = _cli(["booking", "import", str(good)], settings, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "imported: 9 new" in result.stdout
    result = _cli(["booking", "suspend", "pb", "--reason", "complaints"], settings, tmp_path)
    assert result.returncode == 0 and "pb: suspended" in result.stdout
    listing = _cli(["booking", "providers"], settings, tmp_path).stdout
    assert "pb" in listing and "suspended" in listing
    result = _cli(["export", "bookings", "--format", "jsonl"], settings, tmp_path)
    assert result.returncode == 0 and result.stdout == ""
    header = _cli(["export", "bookings", "--format", "csv"], settings, tmp_path).stdout.splitlines()[0]
    assert header.startswith("number,id,status,service,provider,slot_id,starts_at")


# -- the words ---------------------------------------------------------------------------------


async def test_free_text_finds_the_service(db: Database) -> None:
    await load_shipped_catalogue(db, T0, ZONE)
    async with db.read() as s:
        services = list(await s.scalars(select(Service)))
    cases = {
        "水管漏了帮我找个师傅": "plumbing",
        "book a vet for my goats on Friday": "vet",
        "空调不制冷 找人上门修一下": "appliance",
        "家里电线老化了 想请电工全部换一遍": "electrician",
        "钥匙丢了进不了门": "locksmith",
        "橘子树得病了 想预约农技专家上门看一下": "agri-tech",
        "meal delivery for my elderly mum, lunch only": "meals",
        "legal aid consultation about my unpaid wages": "legal-aid",
        "can you arrange a deep clean after renovation": "cleaning",
        "想给我爸约个体检 乡卫生院就行": "checkup",
        "需要无人机飞防打药": "drone-spray",
        "我想测土配方": "soil-test",
        "约一台收割机割稻": "harvester",
        "家里老鼠太多了": "pest-control",
        "一个礼拜能不能安排个人来两三次 帮他洗洗澡做做康复": "home-care",
    }
    for text, code in cases.items():
        found = best_services(services, text)
        assert [s.code for s in found][:1] == [code], (text, [s.code for s in found])
    assert best_services(services, "今天天气怎么样") == []


def test_when_is_read_from_the_words() -> None:
    today = date(2026, 12, 1)  # a Tuesday
    assert parse_when("明天上午", today) == parse_when("tomorrow morning", today)
    assert parse_when("明天上午", today).day == date(2026, 12, 2) and parse_when("明天上午", today).part == "morning"
    assert parse_when("book a vet for Friday", today).day == date(2026, 12, 4)
    assert parse_when("下周五下午", today).day == date(2026, 12, 11)
    assert parse_when("12月3日", today).day == date(2026, 12, 3)
    assert parse_when("Dec 5", today).day == date(2026, 12, 5)
    assert not parse_when("I am at home", today)


def test_the_booking_words_the_router_hears_first() -> None:
    assert provider_reply("Y B1234567") == {"accept": True, "number": "B1234567", "reason": ""}
    assert provider_reply("接 b1234567") == {"accept": True, "number": "B1234567", "reason": ""}
    assert provider_reply("N B1234567 师傅生病了") == {"accept": False, "number": "B1234567", "reason": "师傅生病了"}
    assert provider_reply("拒单 1234567") == {"accept": False, "number": "B1234567", "reason": ""}
    assert provider_reply("yes please") is None and provider_reply("N B123") is None
    assert booking_action("取消预约 B1234567") == "cancel" and booking_action("cancel my booking") == "cancel"
    assert booking_action("我要改时间") == "reschedule" and booking_action("reschedule my appointment") == "reschedule"
    assert booking_action("cancel") is None and booking_action("取消订阅") is None
    assert booking_action("怎么取消预约") is None
    assert [rating_value(t) for t in ("5", " 4分", "3 stars", "7", "5 apples", "hello")] == [5, 4, 3, 7, None, None]
    classifier = BookingClassifier(RuleClassifier.shipped())
    assert classifier.classify("Y B1234567", "zh").intent is Intent.BOOKING
    assert classifier.classify("CX B1234567", "zh").category == {"number": "1234567"}
    assert classifier.classify("cancel", "en").intent is Intent.MENU  # the SMS opt-out keyword stays one
    assert classifier.classify("cancel my booking", "en").category == {"action": "cancel", "number": None}
    assert classifier.classify("我家着火了 取消预约", "zh").intent is Intent.EMERGENCY
