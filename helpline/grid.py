"""Unit grid cells (万米单元网格) and the gazetteer: where a report is, as a cell id.

Both are data shipped in ``helpline/data/``: ``grid_cells.geojson`` (a FeatureCollection of
Polygons with properties id, name, community, street, district) and ``gazetteer.yaml`` (named
roads, crossings and landmarks with a point each). A city replaces them with its own.

A cell id has 15 digits: 6 district (GB/T 2260) + 3 street/town + 3 community/village + 3 cell
sequence, numbered west->east, north->south within a community (DESIGN.md part 3).

Boundaries: ``locate`` uses the crossing-number (ray casting) test with half-open edges, the
rule that makes cells which share an edge partition the plane. A point on an edge shared by two
cells belongs to exactly one of them: for the axis-aligned demo grid, the cell to its **east**
(on a north-south edge) or to its **north** (on an east-west edge), and a shared corner goes to the
north-east cell. Put differently, a cell owns its west and south edges and its south-west corner;
its east and north edges belong to the neighbours. A point on the outer edge of the whole area
(the east or north side) belongs to no cell. Neighbouring cells must use bit-identical vertex
coordinates for this to hold, as the shipped file does.

A cell may carry an ``area_class`` (A, B, C…: the city's grading of areas, e.g. A for the busy
centre): time limits of some case classes differ by area class (helpline/taxonomy.py).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from helpline.classify import normalise
from helpline.taxonomy import data_path

CELL_ID = re.compile(r"^\d{15}$")
_PROPERTIES = ("id", "name", "community", "street", "district")
_AREA_CLASS = re.compile(r"^[A-Z0-9]{1,8}$")
DEFAULT_AREA_CLASS = "B"
_ASCII_WORD = re.compile(r"[a-z0-9]+")

Point = tuple[float, float]  # (lon, lat), GeoJSON order


class GridDataError(ValueError):
    """The grid or gazetteer file is malformed; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class Cell:
    id: str
    name: str
    community: str
    street: str
    district: str
    ring: tuple[Point, ...]  # closed: first point == last point
    bbox: tuple[float, float, float, float]  # west, south, east, north
    area_class: str = DEFAULT_AREA_CLASS

    @property
    def district_code(self) -> str:
        return self.id[:6]

    def contains(self, lat: float, lon: float) -> bool:
        """Crossing-number test, half-open on edges (see the module docstring)."""
        west, south, east, north = self.bbox
        if not (west <= lon <= east and south <= lat <= north):
            return False  # the bounding-box prefilter (inclusive: edges are decided below)
        inside = False
        ring = self.ring
        for i in range(len(ring) - 1):
            x1, y1 = ring[i]
            x2, y2 = ring[i + 1]
            if (y1 > lat) != (y2 > lat):
                x_cross = (x2 - x1) * (lat - y1) / (y2 - y1) + x1
                if lon < x_cross:
                    inside = not inside
        return inside

    def properties(self) -> dict[str, str]:
        return {
            "id": self.id, "name": self.name, "community": self.community,
            "street": self.street, "district": self.district, "area_class": self.area_class,
        }

    def to_feature(self) -> dict[str, Any]:
        return {
            "type": "Feature",
            "id": self.id,
            "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in self.ring]]},
            "properties": self.properties(),
        }


@dataclass(frozen=True, slots=True)
class Place:
    """A named place from the gazetteer, with the point it stands for."""

    name: str  # Chinese
    en: str
    kind: str  # road | crossing | school | market | office | landmark
    lat: float
    lon: float
    aliases: tuple[str, ...] = ()

    def label(self, lang: str) -> str:
        return self.name if lang == "zh" else self.en


class Grid:
    """The cells of a city, with point location; built from a GeoJSON FeatureCollection."""

    def __init__(self, cells: list[Cell]) -> None:
        self.cells = cells
        self.by_id = {c.id: c for c in cells}
        self.bbox = (
            min(c.bbox[0] for c in cells), min(c.bbox[1] for c in cells),
            max(c.bbox[2] for c in cells), max(c.bbox[3] for c in cells),
        ) if cells else (0.0, 0.0, 0.0, 0.0)

    def locate(self, lat: float, lon: float) -> Cell | None:
        west, south, east, north = self.bbox
        if not (west <= lon <= east and south <= lat <= north):
            return None
        for cell in self.cells:
            if cell.contains(lat, lon):
                return cell
        return None

    def feature_collection(self) -> dict[str, Any]:
        return {"type": "FeatureCollection", "features": [c.to_feature() for c in self.cells]}


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GridDataError(f"{what} must be a number")
    return float(value)


def read_cells(path: Path) -> Grid:
    """Cells from a GeoJSON FeatureCollection of Polygons (outer ring only; lon/lat order)."""
    with path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise GridDataError(f"{path}: not a GeoJSON FeatureCollection")
    cells: list[Cell] = []
    seen: set[str] = set()
    for n, feature in enumerate(data.get("features") or [], start=1):
        where = f"{path}: feature {n}"
        props = feature.get("properties") or {}
        missing = [k for k in _PROPERTIES if not isinstance(props.get(k), str) or not props.get(k)]
        if missing:
            raise GridDataError(f"{where}: properties {', '.join(missing)} are required")
        cid = props["id"]
        if not CELL_ID.match(cid):
            raise GridDataError(f"{where}: id {cid!r} must have 15 digits")
        if cid in seen:
            raise GridDataError(f"{where}: id {cid} appears twice")
        seen.add(cid)
        geometry = feature.get("geometry") or {}
        if geometry.get("type") != "Polygon" or not geometry.get("coordinates"):
            raise GridDataError(f"{where} ({cid}): geometry must be a Polygon")
        ring = tuple(
            (_number(p[0], f"{where} lon"), _number(p[1], f"{where} lat")) for p in geometry["coordinates"][0]
        )
        if len(ring) < 4 or ring[0] != ring[-1]:
            raise GridDataError(f"{where} ({cid}): the ring must be closed and have at least 4 points")
        xs, ys = [p[0] for p in ring], [p[1] for p in ring]
        bbox = (min(xs), min(ys), max(xs), max(ys))
        area_class = props.get("area_class", DEFAULT_AREA_CLASS)
        if not isinstance(area_class, str) or not _AREA_CLASS.match(area_class):
            raise GridDataError(f"{where} ({cid}): area_class must be 1-8 capital letters or digits")
        cells.append(
            Cell(cid, props["name"], props["community"], props["street"], props["district"], ring, bbox, area_class)
        )
    return Grid(cells)


def read_gazetteer(path: Path) -> list[Place]:
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    places = []
    for n, entry in enumerate(data.get("places") or [], start=1):
        where = f"{path}: place {n}"
        if not isinstance(entry, dict) or not entry.get("name"):
            raise GridDataError(f"{where}: a name is required")
        lat, lon = _number(entry.get("lat"), f"{where} lat"), _number(entry.get("lon"), f"{where} lon")
        places.append(
            Place(
                name=str(entry["name"]),
                en=str(entry.get("en") or entry["name"]),
                kind=str(entry.get("kind") or "landmark"),
                lat=lat,
                lon=lon,
                aliases=tuple(str(a) for a in entry.get("aliases") or ()),
            )
        )
    return places


def _ascii_words(text: str) -> str:
    """English in matching form: lower-case words, apostrophes dropped, padded: " peoples park "."""
    folded = unicodedata.normalize("NFKC", text).lower().replace("'", "").replace("\u2019", "")
    return " " + " ".join(_ASCII_WORD.findall(folded)) + " "


class Gazetteer:
    """Named places found in free text: the longest name or alias contained in it wins.

    Chinese aliases match as substrings of the normalised text (width, case, traditional
    characters folded; spaces and punctuation dropped); English aliases as whole words, so
    "bank" does not match inside "embankment". Ties go to the alias found earlier in the text,
    then to the place listed first.
    """

    def __init__(self, places: list[Place]) -> None:
        self.places = places
        self._zh: list[tuple[str, int, Place]] = []
        self._en: list[tuple[str, int, Place]] = []
        for order, place in enumerate(places):
            for alias in {place.name, place.en, *place.aliases}:
                if alias.isascii():
                    words = _ascii_words(alias)
                    if words.strip():
                        self._en.append((words, order, place))
                else:
                    key = normalise(alias)
                    if key:
                        self._zh.append((key, order, place))

    def find(self, text: str) -> Place | None:
        zh, en = normalise(text), _ascii_words(text)
        best: tuple[int, int, int] | None = None
        found: Place | None = None
        for haystack, aliases, length in ((zh, self._zh, len), (en, self._en, lambda a: len(a.strip()))):
            for alias, order, place in aliases:
                at = haystack.find(alias)
                if at < 0:
                    continue
                rank = (-length(alias), at, order)
                if best is None or rank < best:
                    best, found = rank, place
        return found


@cache
def shipped_grid() -> Grid:
    return read_cells(data_path("grid_cells.geojson"))


@cache
def shipped_gazetteer() -> Gazetteer:
    return Gazetteer(read_gazetteer(data_path("gazetteer.yaml")))


def locate(lat: float, lon: float) -> Cell | None:
    """The shipped cell that holds the point, or None outside the service area."""
    return shipped_grid().locate(lat, lon)


def resolve_place(text: str) -> tuple[Place, Cell] | None:
    """The gazetteer place named in ``text`` and the cell it lies in, or None if none is named."""
    place = shipped_gazetteer().find(text)
    if place is None:
        return None
    cell = locate(place.lat, place.lon)
    return (place, cell) if cell is not None else None


def feature_collection() -> dict[str, Any]:
    """The shipped cells as a GeoJSON FeatureCollection (DESIGN.md part 2: GET /api/v1/grid/cells)."""
    return shipped_grid().feature_collection()
