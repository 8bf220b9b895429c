"""Tables of grid cases: the case, who reported it, its timeline; departments and routing rules;
Open311 API keys; and the city's data documents (taxonomy, work calendar).

The timeline (``case_steps``) is the case's own audit trail — who did what, when, with which
note and photos — and every step is also written to the global audit log (``events``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from helpline.models import Base, utcnow

# A case number is what residents see and type ("CX 100001"): the row id plus this base, so it
# is short, all digits, never reused, and needs no second unique column.
NUMBER_BASE = 100000

REPORTED, REGISTERED, VOIDED, DISPATCHED = "reported", "registered", "voided", "dispatched"
IN_PROGRESS, HANDLED, CHECKED, CLOSED = "in_progress", "handled", "checked", "closed"
RETURNED, SUSPENDED = "returned", "suspended"
STATUSES = (REPORTED, REGISTERED, VOIDED, DISPATCHED, IN_PROGRESS, HANDLED, CHECKED, CLOSED, RETURNED, SUSPENDED)
FINISHED = frozenset({CLOSED, VOIDED})  # Open311 "closed"
OPEN = frozenset(STATUSES) - FINISHED


class Department(Base):
    """A responsible body (municipal engineering, sanitation, power…), or the dispatch centre itself
    (``kind`` = centre), whose supervisors get escalations. ``forward_*`` optionally sends new
    cases of the department to its own platform (an Open311 endpoint or a JSON webhook)."""

    __tablename__ = "departments"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="department")  # department | centre
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    contact_name: Mapped[str | None] = mapped_column(String(100))
    contact_urn: Mapped[str | None] = mapped_column(String(200))  # task notices, e.g. tel:+8657488000000
    supervisors: Mapped[list[Any]] = mapped_column(JSON, default=list)  # URNs told when a case turns red
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    forward_kind: Mapped[str | None] = mapped_column(String(16))  # open311 | webhook
    forward_url: Mapped[str | None] = mapped_column(String(500))
    forward_secret: Mapped[str | None] = mapped_column(String(200))  # Open311 api_key / webhook HMAC key
    forward_jurisdiction: Mapped[str | None] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(16), default="shipped")  # shipped | imported
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    def name(self, lang: str) -> str:
        return self.name_zh if lang == "zh" else self.name_en


class CaseRoute(Base):
    """Routing: a class (or its major class, or kind) in an area (a cell-id prefix, or anywhere)
    goes to a department. The most specific rule wins: longest class prefix, then longest area."""

    __tablename__ = "case_routes"
    __table_args__ = (UniqueConstraint("class_prefix", "area_prefix"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    class_prefix: Mapped[str] = mapped_column(String(8))  # "" | "E" | "E01" | "E0102"
    area_prefix: Mapped[str] = mapped_column(String(15), default="")  # "" | district | street | community | cell
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code", ondelete="CASCADE"), index=True)
    origin: Mapped[str] = mapped_column(String(16), default="shipped")


class Case(Base):
    """One urban-management problem, from report to closure."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_class_status", "class_code", "status", "reported_at"),
        Index("ix_cases_status_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=REPORTED)
    class_code: Mapped[str | None] = mapped_column(String(8))
    description: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str | None] = mapped_column(String(300))  # the place in words
    landmark: Mapped[str | None] = mapped_column(String(200))  # the gazetteer place it resolved to
    cell_id: Mapped[str | None] = mapped_column(String(15), index=True)
    area_class: Mapped[str | None] = mapped_column(String(8))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(16))  # sms | voice | telegram | web | open311 | console
    media: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{"path"} | {"url"} | {"recording"}]
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)  # Open311 attribute values
    reports_count: Mapped[int] = mapped_column(Integer, default=1)
    department_code: Mapped[str | None] = mapped_column(
        ForeignKey("departments.code", ondelete="SET NULL"), index=True
    )
    status_note: Mapped[str | None] = mapped_column(Text)  # the latest public note (Open311 status_notes)
    # The clock: working minutes allowed (with approved extensions), when it last (re)started,
    # working minutes used before a pause; warn_at (80 %) and due_at (100 %) while it runs.
    limit_minutes: Mapped[int | None] = mapped_column(Integer)
    timer_started_at: Mapped[datetime | None] = mapped_column()
    timer_used_minutes: Mapped[float] = mapped_column(Float, default=0.0)
    warn_at: Mapped[datetime | None] = mapped_column()
    due_at: Mapped[datetime | None] = mapped_column()
    warned_at: Mapped[datetime | None] = mapped_column()
    escalated_at: Mapped[datetime | None] = mapped_column()
    suspended_from: Mapped[str | None] = mapped_column(String(16))
    extension_request: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    dispatch_count: Mapped[int] = mapped_column(Integer, default=0)
    return_count: Mapped[int] = mapped_column(Integer, default=0)
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    extension_count: Mapped[int] = mapped_column(Integer, default=0)
    handled_on_time: Mapped[bool | None] = mapped_column(Boolean)
    closed_on_time: Mapped[bool | None] = mapped_column(Boolean)
    rating: Mapped[int | None] = mapped_column(Integer)
    void_reason: Mapped[str | None] = mapped_column(String(16))  # invalid | duplicate
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    external_id: Mapped[str | None] = mapped_column(String(128))
    reported_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    registered_at: Mapped[datetime | None] = mapped_column()
    dispatched_at: Mapped[datetime | None] = mapped_column()
    handled_at: Mapped[datetime | None] = mapped_column()
    checked_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    voided_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def number(self) -> str:
        return str(NUMBER_BASE + self.id)


def case_id_of(number: str) -> int | None:
    """The row id behind a case number, or None if it cannot be one."""
    digits = number.strip()
    if not digits.isdigit() or len(digits) > 12:
        return None
    value = int(digits) - NUMBER_BASE
    # Row ids are 32-bit integers: a longer number (a phone number, say) is no case of ours.
    return value if 0 < value <= 2**31 - 1 else None


class CaseReport(Base):
    """One person's report of a case: the first, and every later one linked to it as a duplicate.
    Updates and the satisfaction question go to each reporter that can be reached."""

    __tablename__ = "case_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    urn: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str | None] = mapped_column(String(300))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)  # Open311: names, email, account_id, api client
    rating: Mapped[int | None] = mapped_column(Integer)
    rated_at: Mapped[datetime | None] = mapped_column()
    reported_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseStep(Base):
    """The timeline: every action on a case, with who, when, from which status to which, note, photos."""

    __tablename__ = "case_steps"
    __table_args__ = (Index("ix_case_steps_case", "case_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))  # user:3 | contact:5 | open311:<key name> | system
    actor_role: Mapped[str] = mapped_column(String(16))
    department_code: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    photos: Mapped[list[Any]] = mapped_column(JSON, default=list)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Open311Key(Base):
    """An API key for Open311 clients, managed by admins (only its SHA-256 is kept)."""

    __tablename__ = "open311_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(8))  # the first characters, to tell keys apart
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()


class CaseDocument(Base):
    """A city's data file as loaded (``taxonomy`` CSV, ``calendar`` YAML); the latest of a kind is
    in force, the shipped file when there is none. Kept whole, so what was in force is on record."""

    __tablename__ = "case_documents"
    __table_args__ = (Index("ix_case_documents_kind", "kind", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    loaded_by: Mapped[str] = mapped_column(String(100))
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)
