"""The grid-case taxonomy (CJ/T 214 style): components and events, 2-digit major and minor codes.

It is data: the shipped CSV by default, a city's own list in the same columns if it has one
(``helpline cases import-taxonomy PATH``, e.g. the GB/T 47678.5 list). A class is addressed as in
Open311: kind letter + major + minor, e.g. C0118 street light.

Besides the seven naming columns a file may carry what a case of the class needs:
``department`` (the code of the default responsible department), ``limit`` (the time limit in
working time: ``4h`` = four working hours, ``2d`` = two working days) and ``area_limits``
(overrides per area class of the grid, ``A:2h;C:8h``). A file without them (the CJ/T 214
reference list) still loads; its classes then have no time limit until a city sets one.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

KINDS = {"component": "C", "event": "E"}
_COLUMNS = ("kind", "major_code", "major_zh", "major_en", "minor_code", "minor_zh", "minor_en")
_OPTIONAL = ("department", "limit", "area_limits")
_LIMIT = re.compile(r"^([1-9]\d{0,3})\s*([hd])$")
_AREA = re.compile(r"^[A-Za-z0-9]{1,8}$")
_DEPARTMENT = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
UNITS = {"h": "hours", "d": "days"}


class TaxonomyError(ValueError):
    """The taxonomy file is malformed; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class TimeLimit:
    """A time limit in working time: ``amount`` working hours or working days."""

    amount: int
    unit: str  # hours | days

    @classmethod
    def parse(cls, text: str) -> TimeLimit:
        match = _LIMIT.match(text.strip().lower())
        if match is None:
            raise ValueError(f"a time limit looks like 4h (working hours) or 2d (working days), not {text!r}")
        return cls(int(match.group(1)), UNITS[match.group(2)])

    def __str__(self) -> str:
        return f"{self.amount}{self.unit[0]}"

    def describe(self, lang: str) -> str:
        if lang == "zh":
            return f"{self.amount}个工作{'小时' if self.unit == 'hours' else '日'}"
        word = "working hour" if self.unit == "hours" else "working day"
        return f"{self.amount} {word}{'s' if self.amount != 1 else ''}"


@dataclass(frozen=True, slots=True)
class GridClass:
    kind: str  # component | event
    major_code: str
    major_zh: str
    major_en: str
    minor_code: str
    minor_zh: str
    minor_en: str
    department: str = ""  # default responsible department (code); "" when the list names none
    limit: TimeLimit | None = None
    area_limits: tuple[tuple[str, TimeLimit], ...] = ()

    @property
    def code(self) -> str:
        return f"{KINDS[self.kind]}{self.major_code}{self.minor_code}"

    def name(self, lang: str) -> str:
        return self.minor_zh if lang == "zh" else self.minor_en

    def major(self, lang: str) -> str:
        return self.major_zh if lang == "zh" else self.major_en

    def limit_for(self, area_class: str | None) -> TimeLimit | None:
        """The time limit in an area class (its override if the list has one, else the default)."""
        for area, limit in self.area_limits:
            if area == area_class:
                return limit
        return self.limit

    def to_dict(self) -> dict[str, Any]:
        """The ``grid`` object of the API (DESIGN.md part 2) — names in Chinese, as the standard has them."""
        return {
            "kind": self.kind,
            "major_code": self.major_code,
            "major": self.major_zh,
            "minor_code": self.minor_code,
            "minor": self.minor_zh,
        }


def _area_limits(text: str) -> tuple[tuple[str, TimeLimit], ...]:
    pairs = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        area, sep, limit = part.partition(":")
        if not sep or not _AREA.match(area.strip()):
            raise ValueError(f"area_limits entries look like A:2h;C:8h, not {part!r}")
        pairs.append((area.strip().upper(), TimeLimit.parse(limit)))
    return tuple(pairs)


def parse_taxonomy(text: str, source: str) -> dict[str, GridClass]:
    """Classes by code, in file order; every malformed row is refused with its line number."""
    classes: dict[str, GridClass] = {}
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    fields = tuple(reader.fieldnames or ())
    if fields[: len(_COLUMNS)] != _COLUMNS:
        raise TaxonomyError(f"{source}:1: columns must start with {','.join(_COLUMNS)}")
    unknown = [f for f in fields[len(_COLUMNS):] if f not in _OPTIONAL]
    if unknown:
        raise TaxonomyError(f"{source}:1: unknown column(s) {', '.join(unknown)}; optional ones are {', '.join(_OPTIONAL)}")
    for row in reader:
        line = reader.line_num
        if None in row:
            raise TaxonomyError(f"{source}:{line}: more values than columns")
        names = {k: (row[k] or "").strip() for k in _COLUMNS}
        try:
            limit_text = (row.get("limit") or "").strip()
            limit = TimeLimit.parse(limit_text) if limit_text else None
            area_limits = _area_limits(row.get("area_limits") or "")
        except ValueError as exc:
            raise TaxonomyError(f"{source}:{line}: {exc}") from None
        department = (row.get("department") or "").strip()
        if department and not _DEPARTMENT.match(department):
            raise TaxonomyError(f"{source}:{line}: department {department!r} must be a code of letters and digits")
        if area_limits and limit is None:
            raise TaxonomyError(f"{source}:{line}: area_limits need a default limit too")
        cls = GridClass(**names, department=department, limit=limit, area_limits=area_limits)
        if cls.kind not in KINDS:
            raise TaxonomyError(f"{source}:{line}: kind must be component or event, not {cls.kind!r}")
        if not (cls.major_code.isdigit() and len(cls.major_code) == 2 and cls.minor_code.isdigit() and len(cls.minor_code) == 2):
            raise TaxonomyError(f"{source}:{line}: major_code and minor_code must be two digits")
        if not (cls.minor_zh and cls.minor_en and cls.major_zh and cls.major_en):
            raise TaxonomyError(f"{source}:{line}: names in both languages are required")
        if cls.code in classes:
            raise TaxonomyError(f"{source}:{line}: class {cls.code} appears twice")
        classes[cls.code] = cls
    if not classes:
        raise TaxonomyError(f"{source}: no classes")
    return classes


def read_taxonomy(path: Path) -> dict[str, GridClass]:
    """Classes by code from a CSV file (see ``parse_taxonomy``)."""
    return parse_taxonomy(path.read_text(encoding="utf-8"), str(path))


def data_path(name: str) -> Path:
    return Path(str(files("helpline") / "data" / name))


@cache
def shipped_taxonomy() -> dict[str, GridClass]:
    return read_taxonomy(data_path("grid_taxonomy.csv"))


@cache
def shipped_keywords() -> dict[str, dict[str, list[str]]]:
    """Colloquial words per class code, in both languages (see data/grid_keywords.yaml)."""
    with data_path("grid_keywords.yaml").open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return {code: {lang: [str(w) for w in words.get(lang, [])] for lang in ("zh", "en")} for code, words in data.items()}
