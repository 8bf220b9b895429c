"""Report a street problem: what it is (the router suggests the class), where it is (the
browser's location, a tap on the grid map, or a named place), up to 3 photos, and the phone
number for updates; the answer is the case number.

The map is drawn from our own grid cells as inline SVG (no tiles, works offline); a tap gives
the point, which the case service places in its cell. Without JavaScript the place is typed
(the gazetteer finds roads and landmarks; an unknown place is placed by the operator) or a cell
is chosen from a list. Photos are read part by part: at most ``MAX_PHOTOS``, each at most
``helpline.cases.media.MAX_BYTES``, JPEG/PNG/WebP by their bytes, not their declared type.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from functools import cache
from typing import Any

from aiohttp import BodyPartReader, web
from multidict import MultiDict
from sqlalchemy import select, text

from channels.portal.common import check_link, check_token, lang_of, page, redirect, sign_link, too_many, tr, web_address
from helpline.appkeys import DB, SETTINGS
from helpline.cases import media, service
from helpline.cases.data import taxonomy
from helpline.cases.workflow import Actor, CaseError
from helpline.classify import RuleClassifier, Text
from helpline.contacts import contact_for
from helpline.grid import locate, resolve_place, shipped_gazetteer, shipped_grid
from helpline.http import json_response
from helpline.models import Event, utcnow
from helpline.phones import tel_urn
from helpline.request import Intent
from helpline.taxonomy import GridClass, shipped_taxonomy

MAX_PHOTOS = 3
MAX_FIELD = 16 * 1024  # bytes of one text field
MAX_DESCRIPTION = 2000
MAX_PLACE = 200
_CHUNK = 64 * 1024
FIELDS = ("description", "class", "lat", "lon", "cell", "place", "phone")


# -- the class suggestion ----------------------------------------------------------------------------


def suggest_class(words: str, lang: str) -> GridClass | None:
    """The grid class the router hears in a description, if any."""
    if not words.strip():
        return None
    classifier = RuleClassifier.shipped()
    verdict = classifier.classify(words, lang)
    code = (verdict.category or {}).get("code") if verdict.intent is Intent.GRID_CASE else None
    if code is None:
        match = classifier.grid_class(Text(words, classifier.speller))
        code = match.cls.code if match is not None else None
    return shipped_taxonomy().get(code) if code else None


async def suggest(request: web.Request) -> web.Response:
    """``GET /report/suggest?text=`` → ``{"code", "name", "major"}`` (the page's script asks as you type)."""
    lang = lang_of(request)
    cls = suggest_class(request.query.get("text", "")[:MAX_DESCRIPTION], lang)
    if cls is None:
        return json_response({"code": None})
    return json_response({"code": cls.code, "name": cls.name(lang), "major": cls.major(lang)})


# -- the map -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GridMap:
    width: int
    height: int
    west: float
    north: float
    kx: float  # SVG units per degree of longitude
    ky: float  # … of latitude
    cells: tuple[tuple[str, str, str, int], ...]  # (points, id, name, community index for its colour)
    labels: tuple[tuple[float, float, str], ...]  # community names at their middle
    places: tuple[tuple[float, float, str, str], ...]  # landmarks: (x, y, Chinese name, English name)

    def project(self, lat: float, lon: float) -> tuple[float, float]:
        return round((lon - self.west) * self.kx, 1), round((self.north - lat) * self.ky, 1)


@cache
def grid_map() -> GridMap:
    """The shipped cells projected for an SVG 1000 units wide (equirectangular at the area's middle),
    each community in its own tint, with the gazetteer's landmarks (not roads or crossings: those
    are points standing for lines) as dots the page names when a tap falls near one."""
    grid = shipped_grid()
    west, south, east, north = grid.bbox
    kx = 1000 / (east - west)
    ky = kx / math.cos(math.radians((north + south) / 2))
    communities: dict[str, int] = {}
    cells = []
    spans: dict[str, list[float]] = {}
    for cell in grid.cells:
        points = " ".join(f"{(lon - west) * kx:.1f},{(north - lat) * ky:.1f}" for lon, lat in cell.ring[:-1])
        cells.append((points, cell.id, cell.name, communities.setdefault(cell.community, len(communities)) % 5))
        w, s, e, n = cell.bbox
        box = spans.setdefault(cell.community, [e, n, w, s])
        box[0], box[1], box[2], box[3] = min(box[0], w), min(box[1], s), max(box[2], e), max(box[3], n)
    labels = tuple(
        (round(((b[0] + b[2]) / 2 - west) * kx, 1), round((north - (b[1] + b[3]) / 2) * ky, 1), name)
        for name, b in spans.items()
    )
    places = tuple(
        (round((p.lon - west) * kx, 1), round((north - p.lat) * ky, 1), p.name, p.en)
        for p in shipped_gazetteer().places
        if p.kind not in ("road", "crossing") and grid.locate(p.lat, p.lon) is not None
    )
    return GridMap(1000, round((north - south) * ky), west, north, kx, ky, tuple(cells), labels, places)


# -- reading the form ----------------------------------------------------------------------------------


@dataclass
class Submitted:
    fields: dict[str, str]
    photos: list[bytes]
    problems: list[tuple[str, str]]
    photo_count: int = 0


async def read_form(request: web.Request, lang: str) -> Submitted:
    """The report form, multipart or not, with every photo checked (count, size, kind)."""
    t = tr(lang)
    if request.content_type != "multipart/form-data":
        posted = await request.post()
        return Submitted({k: str(v) for k, v in posted.items() if isinstance(v, str)}, [], [])
    fields: dict[str, str] = {}
    photos: list[bytes] = []
    problems: list[tuple[str, str]] = []
    total = 0
    count = 0
    limit = request.client_max_size
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):  # a nested multipart: not something our form sends
            raise web.HTTPBadRequest()
        is_file = part.filename is not None
        cap = media.MAX_BYTES if is_file and part.name == "photo" else MAX_FIELD
        data = bytearray()
        over = False
        while chunk := await part.read_chunk(_CHUNK):
            total += len(chunk)
            if total > limit:  # the same 413 the edge gives a body announced too large
                raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=total)
            if len(data) + len(chunk) > cap:
                over = True
            elif not over:
                data += chunk
        if not is_file:
            if part.name in FIELDS and part.name not in fields:
                fields[part.name] = "" if over else data.decode("utf-8", "replace")
                if over:
                    problems.append((part.name, t("内容太长了。", "That is far too long.")))
            elif part.name in ("csrf", "lang"):
                fields[part.name] = data[:200].decode("utf-8", "replace")
            continue
        if part.name != "photo" or (not part.filename and not data and not over):
            continue  # an empty file box sends an empty part
        count += 1
        number = t(f"第{count}张照片", f"Photo {count}")
        if count > MAX_PHOTOS:
            if count == MAX_PHOTOS + 1:
                problems.append(("photo", t(f"最多只能上传{MAX_PHOTOS}张照片。", f"You can attach at most {MAX_PHOTOS} photos.")))
        elif over:
            problems.append(("photo", t(f"{number}太大了（每张最多{media.MAX_BYTES // (1024 * 1024)}MB）。",
                                        f"{number} is too large (at most {media.MAX_BYTES // (1024 * 1024)} MB each).")))
        elif not data:
            problems.append(("photo", t(f"{number}是空的。", f"{number} is empty.")))
        elif media.sniff(bytes(data)) is None:
            problems.append(("photo", t(f"{number}不是照片：请用JPG、PNG或WebP格式。",
                                        f"{number} is not a photo: please use JPG, PNG or WebP.")))
        else:
            photos.append(bytes(data))
    return Submitted(fields, photos, problems, count)


@dataclass
class Place:
    lat: float | None = None
    lon: float | None = None
    cell_id: str | None = None
    address: str | None = None
    landmark: str | None = None


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def validate(fields: dict[str, str], classes: dict[str, GridClass], lang: str, region: str
             ) -> tuple[list[tuple[str, str]], Place, str | None, str | None]:
    """Problems, the place, the class code (chosen or suggested) and the phone URN."""
    t = tr(lang)
    problems: list[tuple[str, str]] = []
    description = fields.get("description", "").strip()
    if len(description) < 2:
        problems.append(("description", t("请说说是什么问题。", "Please say what the problem is.")))
    elif len(description) > MAX_DESCRIPTION:
        problems.append(("description", t(f"描述太长了，最多{MAX_DESCRIPTION}字。",
                                          f"The description is too long: at most {MAX_DESCRIPTION} characters.")))
    code = fields.get("class", "").strip() or None
    if code is not None and code not in classes:
        problems.append(("class", t("请从列表里选择问题类别。", "Please choose the kind of problem from the list.")))
    elif code is None and description:
        suggested = suggest_class(description, lang)
        code = suggested.code if suggested is not None and suggested.code in classes else None
    place = Place()
    words = " ".join(fields.get("place", "").split())
    if len(words) > MAX_PLACE:
        problems.append(("place", t(f"地点太长了，最多{MAX_PLACE}字。", f"The place is too long: at most {MAX_PLACE} characters.")))
        words = ""
    lat, lon = fields.get("lat", "").strip(), fields.get("lon", "").strip()
    cell = fields.get("cell", "").strip()
    if lat or lon:
        place.lat, place.lon = _number(lat), _number(lon)
        if place.lat is None or place.lon is None or locate(place.lat, place.lon) is None:
            problems.append(("map", t("您选的位置不在本热线的服务范围内，请在地图上重新点选，或填写地点。",
                                      "The point you chose is outside our service area: tap the map again or type the place.")))
        place.address = words or None
    elif cell:
        if cell not in shipped_grid().by_id:
            problems.append(("map", t("请从列表里选择网格。", "Please choose a grid cell from the list.")))
        place.cell_id, place.address = cell, words or None
    elif words:
        resolved = resolve_place(words)
        if resolved is not None:
            found, _cell = resolved
            place.lat, place.lon, place.landmark = found.lat, found.lon, found.name
        place.address = words
    else:
        problems.append(("map", t("请告诉我们问题在哪里：用“我的位置”、在地图上点一下，或填写地点。",
                                  "Please tell us where it is: use your location, tap the map, or type the place.")))
    phone = fields.get("phone", "").strip()
    urn = tel_urn(phone, region) if phone and len(phone) <= 40 else None
    if not phone:
        problems.append(("phone", t("请填写手机号码：查询进度和办理结果都靠它。",
                                    "Please give your phone number: it is how you follow the case and hear the result.")))
    elif urn is None:
        problems.append(("phone", t("手机号码好像不对，请检查。", "That phone number does not look right: please check it.")))
    return problems, place, code, urn


# -- the pages -----------------------------------------------------------------------------------------


async def _render(request: web.Request, values: dict[str, str], *, status: int = 200, form: Any = None,
                  errors: list[tuple[str, str]] | None = None, photos_lost: int = 0) -> web.Response:
    lang = lang_of(request, form)
    async with request.app[DB].read() as session:
        classes = await taxonomy(session)
    groups: list[tuple[str, list[tuple[str, str]]]] = []
    for cls in classes.values():
        kind = tr(lang)("部件", "Object") if cls.kind == "component" else tr(lang)("事件", "Event")
        label = f"{kind} · {cls.major(lang)}"
        if not groups or groups[-1][0] != label:
            groups.append((label, []))
        groups[-1][1].append((cls.code, cls.name(lang)))
    chosen = classes.get(values.get("class", ""))
    suggested = suggest_class(values.get("description", ""), lang) if values.get("description") and not chosen else None
    cells = sorted(shipped_grid().cells, key=lambda c: c.id)
    return page(request, "portal/report.html", {
        "values": values, "errors": errors or [], "groups": groups, "map": grid_map(), "cells": cells,
        "suggested": suggested, "photos_lost": photos_lost, "max_photos": MAX_PHOTOS,
        "max_mb": media.MAX_BYTES // (1024 * 1024),
    }, status=status, form=form, title=("反映问题", "Report a problem"))


async def form(request: web.Request) -> web.Response:
    values = {"description": request.query.get("text", "")[:MAX_DESCRIPTION], "class": request.query.get("class", "")}
    return await _render(request, values)


def _form_key(nonce: str) -> int:
    """A 63-bit number for the nonce (a PostgreSQL advisory lock key)."""
    return zlib.crc32(nonce.encode()) << 31 | zlib.crc32(nonce[::-1].encode()) >> 1


async def submit(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    lang = lang_of(request)
    sent = await read_form(request, lang)
    fields = sent.fields
    request_lang = fields.get("lang")
    form = MultiDict({"lang": request_lang}) if request_lang else None
    lang = lang_of(request, form)
    t = tr(lang)
    values = {k: fields.get(k, "") for k in FIELDS}
    nonce = check_token(request, fields)
    async with request.app[DB].read() as session:
        classes = await taxonomy(session)
    problems, place, code, urn = validate(fields, classes, lang, settings.default_region)
    problems += sent.problems
    if nonce is None:
        problems.insert(0, ("description", t("页面已过期，请检查后再点一次“提交”。",
                                             "This page had expired: please check and press “Send” again.")))
    if problems or urn is None or nonce is None:
        status = 403 if nonce is None else 400
        return await _render(request, values, status=status, form=form, errors=problems,
                             photos_lost=sent.photo_count)
    if too_many(request):
        return await _render(request, values, status=429, form=form, photos_lost=sent.photo_count, errors=[
            ("description", t("提交太频繁了，请一分钟后再试。", "Too many reports at once: please wait a minute."))])
    saved = [media.save_photo(settings.var_dir, data) for data in sent.photos]
    now = utcnow()
    try:
        async with request.app[DB].write() as session:
            if session.bind.dialect.name == "postgresql":  # one report per form, even sent twice at once
                await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _form_key(nonce)})
            earlier = await session.scalar(select(Event.data).where(
                Event.subject_type == "portal_report", Event.subject_id == nonce))
            if earlier is not None:
                number, linked = str(earlier["case"]), bool(earlier.get("linked"))
                for path in saved:
                    (settings.var_dir / path).unlink(missing_ok=True)
            else:
                contact = await contact_for(session, urn)
                done = await service.report(session, service.NewReport(
                    class_code=code, description=values["description"].strip(), source="web",
                    lat=place.lat, lon=place.lon, cell_id=place.cell_id, address=place.address,
                    landmark=place.landmark, urn=urn, contact_id=contact.id,
                    media=[{"path": p} for p in saved], details={"via": "portal"},
                ), Actor.reporter(contact.id), now)
                number, linked = done.case.number, done.linked
                session.add(Event(at=now, actor=web_address(request)[:100], action="portal.report",
                                  subject_type="portal_report", subject_id=nonce,
                                  data={"case": number, "linked": linked}))
    except CaseError as exc:
        for path in saved:
            (settings.var_dir / path).unlink(missing_ok=True)
        return await _render(request, values, status=exc.status, form=form, errors=[("map", exc.message)],
                             photos_lost=sent.photo_count)
    except BaseException:
        for path in saved:
            (settings.var_dir / path).unlink(missing_ok=True)
        raise
    return redirect(request, f"/report/done?n={number}&l={int(linked)}&p={len(saved)}"
                             f"&s={sign_link(request, 'case', number)}")


async def done(request: web.Request) -> web.Response:
    """The case number, shown to the browser that reported it (the link is signed for its session)."""
    number = request.query.get("n", "")
    if not number.isdigit() or not check_link(request, request.query.get("s", ""), "case", number):
        raise web.HTTPNotFound()
    lang = lang_of(request)
    async with request.app[DB].read() as session:
        try:
            case = await service.load(session, number)
        except CaseError:
            raise web.HTTPNotFound() from None
        cls = (await taxonomy(session)).get(case.class_code or "")
    cell = shipped_grid().by_id.get(case.cell_id or "")
    return page(request, "portal/report_done.html", {
        "case": case, "cls_name": cls.name(lang) if cls else None, "cell": cell,
        "linked": request.query.get("l") == "1",
        "photos": int(request.query.get("p", "0")) if request.query.get("p", "0") in ("0", "1", "2", "3") else 0,
    }, title=("已收到您的反映", "Report received"))
