"""The grid-case taxonomy (CJ/T 214 style): components and events, 2-digit major and minor codes.

It is data: the shipped CSV by default, a city's own list in the same columns if it has one.
A class is addressed as in Open311: kind letter + major + minor, e.g. C0118 street light.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

KINDS = {"component": "C", "event": "E"}
_COLUMNS = ("kind", "major_code", "major_zh", "major_en", "minor_code", "minor_zh", "minor_en")


class TaxonomyError(ValueError):
    """The taxonomy file is malformed; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class GridClass:
    kind: str  # component | event
    major_code: str
    major_zh: str
    major_en: str
    minor_code: str
    minor_zh: str
    minor_en: str

    @property
    def code(self) -> str:
        return f"{KINDS[self.kind]}{self.major_code}{self.minor_code}"

    def name(self, lang: str) -> str:
        return self.minor_zh if lang == "zh" else self.minor_en

    def to_dict(self) -> dict[str, Any]:
        """The ``grid`` object of the API (DESIGN.md part 2) — names in Chinese, as the standard has them."""
        return {
            "kind": self.kind,
            "major_code": self.major_code,
            "major": self.major_zh,
            "minor_code": self.minor_code,
            "minor": self.minor_zh,
        }


def read_taxonomy(path: Path) -> dict[str, GridClass]:
    """Classes by code, in file order; every malformed row is refused with its line number."""
    classes: dict[str, GridClass] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != _COLUMNS:
            raise TaxonomyError(f"{path}:1: columns must be {','.join(_COLUMNS)}")
        for row in reader:
            line = reader.line_num
            cls = GridClass(**{k: (row[k] or "").strip() for k in _COLUMNS})
            if cls.kind not in KINDS:
                raise TaxonomyError(f"{path}:{line}: kind must be component or event, not {cls.kind!r}")
            if not (cls.major_code.isdigit() and len(cls.major_code) == 2 and cls.minor_code.isdigit() and len(cls.minor_code) == 2):
                raise TaxonomyError(f"{path}:{line}: major_code and minor_code must be two digits")
            if not (cls.minor_zh and cls.minor_en and cls.major_zh and cls.major_en):
                raise TaxonomyError(f"{path}:{line}: names in both languages are required")
            if cls.code in classes:
                raise TaxonomyError(f"{path}:{line}: class {cls.code} appears twice")
            classes[cls.code] = cls
    return classes


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
