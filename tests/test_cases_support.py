"""Helpers the grid-case tests share: the shipped departments loaded, staff accounts as actors,
a fixed clock (Monday 30 November 2026, Asia/Shanghai) and reports through the real service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from helpline.cases import service
from helpline.cases.data import load_shipped
from helpline.cases.models import Case, CaseStep
from helpline.cases.workflow import Actor
from helpline.contacts import contacts_for
from helpline.db import Database
from helpline.grid import shipped_grid
from helpline.models import OutboxItem
from helpline.users import add_user

SH = ZoneInfo("Asia/Shanghai")
MON = datetime(2026, 11, 30, 8, 30, tzinfo=SH)  # a Monday, as the working day begins
PASSWORD = "correct-horse-42"


def at(day: int, hh: int, mm: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hh, mm, tzinfo=SH)


def centre(cell_id: str) -> tuple[float, float]:
    west, south, east, north = shipped_grid().by_id[cell_id].bbox
    return (south + north) / 2, (west + east) / 2


# One cell of each area class (A: Renmin street, B: Xingfu/Heping, C: Chunxiao).
CELL_A, CELL_B, CELL_C = "330203002001005", "330203001002003", "330203001003004"


@dataclass
class Staff:
    operator: Actor
    supervisor: Actor
    hw: Actor  # sanitation
    ld: Actor  # street lighting
    sz: Actor  # municipal engineering


async def make_staff(db: Database) -> Staff:
    async with db.write() as session:
        users = {}
        for name, role, dept in (("op1", "operator", None), ("sup1", "supervisor", None), ("hw1", "department", "HW"),
                                 ("ld1", "department", "LD"), ("sz1", "department", "SZ")):
            users[name] = await add_user(session, name, role, PASSWORD, dept)
    return Staff(*(Actor.of_user(users[n]) for n in ("op1", "sup1", "hw1", "ld1", "sz1")))


@pytest.fixture
async def staff(db: Database) -> Staff:
    """The demo departments and routes, and one account per role."""
    await load_shipped(db)
    return await make_staff(db)


async def report(db: Database, code: str, cell_id: str, now: datetime, urn: str | None = "tel:+8613800000001",
                 text: str = "问题", offset: tuple[float, float] = (0.0, 0.0)) -> str:
    """A resident's report through the service (as the dialogue files it); returns the case number."""
    lat, lon = centre(cell_id)
    async with db.write() as session:
        contact_id = (await contacts_for(session, [urn]))[urn].id if urn else None
        actor = Actor.reporter(contact_id) if contact_id else Actor.api("test")
        done = await service.report(session, service.NewReport(
            class_code=code, description=text, source="sms", lat=lat + offset[0], lon=lon + offset[1],
            urn=urn, contact_id=contact_id,
        ), actor, now)
        return done.case.number


async def act(db: Database, number: str, action: str, actor: Actor, now: datetime, **params: Any) -> Case:
    async with db.write() as session:
        return await service.perform(session, number, action, actor, now, **params)


async def get(db: Database, number: str) -> Case:
    async with db.read() as session:
        return await service.load(session, number)


async def timeline(db: Database, number: str) -> list[CaseStep]:
    async with db.read() as session:
        return await service.steps(session, await service.load(session, number))


async def outbox(db: Database, kind: str | None = None) -> list[OutboxItem]:
    async with db.read() as session:
        query = select(OutboxItem).order_by(OutboxItem.id)
        if kind is not None:
            query = query.where(OutboxItem.kind == kind)
        return list(await session.scalars(query))


async def to_dispatched(db: Database, staff: Staff, number: str, now: datetime, **params: Any) -> Case:
    await act(db, number, "register", staff.operator, now)
    return await act(db, number, "dispatch", staff.operator, now, **params)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
