"""Open311 GeoReport v2 under ``/open311/v2/``: the city's services and service requests.

- ``GET services.{json,xml}``: one service per minor class of the taxonomy in force;
  ``service_code`` = kind letter + major + minor (``C0118`` street light), ``group`` = major class.
- ``GET services/{code}.{json,xml}``: the service definition (its attributes).
- ``POST requests.{json,xml}``: a new request (``api_key`` required: ``HELPLINE_OPEN311_API_KEYS``
  or a key made with ``helpline open311 key add``); ``lat``/``long``, ``address_string`` (a place
  the gazetteer knows) or ``address_id`` (a 15-digit grid cell id); form-encoded, or multipart
  with a ``media`` photo. Answers 201 with ``service_request_id``. A request for the same class
  close to an open one joins it and gets its id (``service_notice`` says so).
- ``GET requests.{json,xml}`` (``service_request_id``, ``service_code``, ``start_date``,
  ``end_date``, ``status``; without dates the last 90 days, at most 1000 newest) and
  ``GET requests/{id}.{json,xml}``.
- ``GET discovery.{json,xml}``: the service-discovery document; ``GET media/{id}/{n}``: photos.

Errors are the spec's list, ``[{"code": 400, "description": "…"}]`` (``<errors><error>`` in XML),
with the same HTTP status: 400 bad input (all problems at once), 403 missing or wrong api_key, 404
unknown jurisdiction, service or request. ``jurisdiction_id`` is optional; when given it must be a
district code of the grid (``330203``). Names come in Chinese, or English with
``Accept-Language: en``. Times are ISO 8601 in the centre's time zone.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any

from aiohttp import web
from sqlalchemy import select

from helpline.appkeys import DB, SETTINGS
from helpline.cases import media as case_media
from helpline.cases import service
from helpline.cases.data import departments, taxonomy
from helpline.cases.dialogue import status_name
from helpline.cases.keys import authenticate
from helpline.cases.models import FINISHED, OPEN, Case, case_id_of
from helpline.cases.catalogue import attributes_of, component_ok, service_item, time_notice
from helpline.cases.views import media_urls, public_text
from helpline.cases.workflow import Actor, CaseError
from helpline.contacts import contacts_for
from helpline.grid import resolve_place, shipped_grid
from helpline.models import utcnow
from helpline.phones import tel_urn
from helpline.taxonomy import GridClass

PREFIX = "/open311/v2"
FORMATS = "{fmt:json|xml}"
SPEC = "http://wiki.open311.org/GeoReport_v2"
DEFAULT_WINDOW = timedelta(days=90)
MAX_RESULTS = 1000
_CODE = re.compile(r"^[CE]\d{4}$")
_CELL = re.compile(r"^\d{15}$")
_ATTRIBUTE = re.compile(r"^attribute\[([A-Za-z0-9_]{1,32})\]$")
_SHORT_FIELDS = ("first_name", "last_name", "device_id", "account_id")


class Open311Error(Exception):
    """One or more errors in the spec's format, with the HTTP status to answer."""

    def __init__(self, status: int, *descriptions: str) -> None:
        super().__init__("; ".join(descriptions))
        self.status = status
        self.descriptions = descriptions


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{PREFIX}/discovery.{FORMATS}", _wrap(discovery))
    r.add_get(f"{PREFIX}/services.{FORMATS}", _wrap(services))
    r.add_get(PREFIX + "/services/{code}." + FORMATS, _wrap(service_definition))
    r.add_get(f"{PREFIX}/requests.{FORMATS}", _wrap(list_requests))
    r.add_post(f"{PREFIX}/requests.{FORMATS}", _wrap(create_request))
    r.add_get(PREFIX + "/requests/{id}." + FORMATS, _wrap(get_request))
    r.add_get(PREFIX + "/media/{id:\\d+}/{n:\\d+}", media)
    r.add_route("*", PREFIX + "/{tail:.*}", _wrap(unknown))


# -- rendering ------------------------------------------------------------------------------


def _xml_value(parent: ET.Element, key: str, value: Any) -> None:
    node = ET.SubElement(parent, key)
    if isinstance(value, bool):
        node.text = "true" if value else "false"
    elif isinstance(value, list):
        item = {"attributes": "attribute", "values": "value", "endpoints": "endpoint", "formats": "format"}.get(key, "item")
        for entry in value:
            if isinstance(entry, dict):
                child = ET.SubElement(node, item)
                for k, v in entry.items():
                    _xml_value(child, k, v)
            else:
                ET.SubElement(node, item).text = str(entry)
    elif isinstance(value, dict):
        for k, v in value.items():
            _xml_value(node, k, v)
    elif value is not None:
        node.text = str(value)


def render(data: Any, fmt: str, root: str, item: str, status: int = 200) -> web.Response:
    """JSON as is; XML as <root><item>…</item></root> (or <root>…</root> for one object)."""
    if fmt == "json":
        return web.json_response(data, status=status, dumps=_dumps)
    top = ET.Element(root)
    for entry in data if isinstance(data, list) else [data]:
        parent = ET.SubElement(top, item) if isinstance(data, list) else top
        for key, value in entry.items():
            _xml_value(parent, key, value)
    body = b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(top, encoding="utf-8")
    return web.Response(body=body, status=status, content_type="text/xml", charset="utf-8")


def _dumps(data: Any) -> str:
    import json

    return json.dumps(data, ensure_ascii=False)


def errors(status: int, descriptions: tuple[str, ...], fmt: str) -> web.Response:
    return render([{"code": status, "description": d} for d in descriptions], fmt, "errors", "error", status)


Handler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]


def _wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Every Open311 answer, errors included, in the format the path asked for."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        fmt = request.match_info.get("fmt") or ("xml" if request.path.endswith(".xml") else "json")
        try:
            return await handler(request, fmt)
        except Open311Error as exc:
            response = errors(exc.status, exc.descriptions, fmt)
            if exc.status == 405:
                response.headers["Allow"] = "GET, POST" if "/requests." in request.path else "GET"
            return response
        except CaseError as exc:
            return errors(exc.status, (exc.message,), fmt)

    return wrapped


# -- common checks --------------------------------------------------------------------------


def _lang(request: web.Request) -> str:
    return "en" if request.headers.get("Accept-Language", "").lower().startswith("en") else "zh"


def _jurisdiction(value: str | None) -> None:
    if value is None or value == "":
        return
    districts = {cell.district_code for cell in shipped_grid().cells}
    if value not in districts:
        raise Open311Error(404, f"jurisdiction_id {value!r} not found; this server serves {', '.join(sorted(districts))}")


def _local(at: datetime | None, request: web.Request) -> str | None:
    if at is None:
        return None
    return at.astimezone(request.app[SETTINGS].zone).isoformat(timespec="seconds")


# -- services -------------------------------------------------------------------------------


async def _classes(request: web.Request) -> dict[str, GridClass]:
    async with request.app[DB].read() as session:
        return await taxonomy(session)


async def discovery(request: web.Request, fmt: str) -> web.Response:
    settings = request.app[SETTINGS]
    data = {
        "changeset": "2026-11-30T00:00:00Z",
        "contact": "Helpline grid-case centre",
        "key_service": "Ask the centre's administrators for an api_key (helpline open311 key add NAME)",
        "endpoints": [{
            "specification": SPEC, "url": settings.public_url + PREFIX, "changeset": "2026-11-30T00:00:00Z",
            "type": "production", "formats": ["application/json", "text/xml"],
        }],
    }
    return render(data, fmt, "discovery", "discovery")


async def services(request: web.Request, fmt: str) -> web.Response:
    _jurisdiction(request.query.get("jurisdiction_id"))
    lang = _lang(request)
    items = [service_item(cls, lang) for cls in (await _classes(request)).values()]
    return render(items, fmt, "services", "service")


async def service_definition(request: web.Request, fmt: str) -> web.Response:
    _jurisdiction(request.query.get("jurisdiction_id"))
    code = request.match_info["code"]
    cls = (await _classes(request)).get(code)
    if cls is None:
        raise Open311Error(404, f"service_code {code!r} not found")
    data = {"service_code": cls.code, "attributes": attributes_of(cls, _lang(request))}
    return render(data, fmt, "service_definition", "service_definition")


# -- service requests -----------------------------------------------------------------------


def _float(form: Any, name: str, limit: float, problems: list[str]) -> float | None:
    raw = str(form.get(name, "")).strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        problems.append(f"{name} must be a number, not {raw[:40]!r}")
        return None
    if not math.isfinite(value) or not -limit <= value <= limit:
        problems.append(f"{name} must be between -{limit:g} and {limit:g}")
        return None
    return value


def _attributes(form: Any, cls: GridClass, problems: list[str]) -> dict[str, str]:
    allowed = {a["code"]: a for a in attributes_of(cls, "en")}
    given: dict[str, str] = {}
    for key in form:
        match = _ATTRIBUTE.match(key)
        if match is None:
            continue
        code, value = match.group(1), str(form.get(key, "")).strip()
        attr = allowed.get(code)
        if attr is None:
            problems.append(f"attribute[{code}] is not an attribute of service {cls.code}")
        elif attr["datatype"] == "singlevaluelist" and value not in {v["key"] for v in attr["values"]}:
            problems.append(f"attribute[{code}] must be one of {', '.join(v['key'] for v in attr['values'])}")
        elif code == "component_id" and not component_ok(value, cls):
            problems.append(f"attribute[component_id] must be 16 digits: district + {cls.major_code} + "
                            f"{cls.minor_code} + 6-digit serial")
        else:
            given[code] = value
    return given


async def create_request(request: web.Request, fmt: str) -> web.Response:
    settings = request.app[SETTINGS]
    if request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise Open311Error(400, "send the request form-encoded (application/x-www-form-urlencoded), "
                                "or as multipart/form-data with a media file")
    form = await request.post()
    key = str(form.get("api_key") or request.query.get("api_key") or "")
    db = request.app[DB]
    async with db.read() as session:
        client = await authenticate(session, settings.open311_api_keys, key or None)
        classes = await taxonomy(session)
    if client is None:
        raise Open311Error(403, "api_key was not provided or is not valid")
    _jurisdiction(str(form.get("jurisdiction_id") or "") or None)
    code = str(form.get("service_code", "")).strip()
    if not code:
        raise Open311Error(400, "service_code is required")
    cls = classes.get(code)
    if cls is None:
        raise Open311Error(404, f"service_code {code!r} not found")

    problems: list[str] = []
    lat, lon = _float(form, "lat", 90, problems), _float(form, "long", 180, problems)
    address = str(form.get("address_string", "")).strip()[:300]
    address_id = str(form.get("address_id", "")).strip()
    cell_id: str | None = None
    landmark: str | None = None
    if (lat is None) != (lon is None) and not problems:
        problems.append("lat and long must be given together")
    elif lat is not None and lon is not None:
        if shipped_grid().locate(lat, lon) is None:
            problems.append(f"the point lat={lat} long={lon} is outside the service area: no grid cell holds it")
    elif address_id:
        if not _CELL.match(address_id) or address_id not in shipped_grid().by_id:
            problems.append(f"address_id {address_id!r} is not a grid cell id (15 digits) of this area")
        else:
            cell_id = address_id
    elif address:
        resolved = resolve_place(address)
        if resolved is None:
            problems.append(f"address_string {address!r} names no place we know; send lat and long instead")
        else:
            place, cell = resolved
            lat, lon, landmark = place.lat, place.lon, place.name
    elif not problems:
        problems.append("a location is required: lat and long, address_string or address_id")
    description = str(form.get("description", "")).strip()
    if len(description) > 4000:
        problems.append("description must be at most 4000 characters")
    details: dict[str, Any] = {"api_client": client.name}
    for name in _SHORT_FIELDS:
        value = str(form.get(name, "")).strip()
        if len(value) > 100:
            problems.append(f"{name} must be at most 100 characters")
        elif value:
            details[name] = value
    email = str(form.get("email", "")).strip()
    if email:
        if len(email) > 200 or "@" not in parseaddr(email)[1]:
            problems.append("email is not an e-mail address")
        else:
            details["email"] = email
    urn: str | None = None
    phone = str(form.get("phone", "")).strip()
    if phone:
        urn = tel_urn(phone, settings.default_region)
        if urn is None:
            problems.append(f"phone {phone[:40]!r} is not a phone number")
    attributes = _attributes(form, cls, problems)
    media_items: list[dict[str, Any]] = []
    media_url = str(form.get("media_url", "")).strip()
    if media_url:
        if len(media_url) > 500 or not re.match(r"^https?://[^\s/]+", media_url):
            problems.append("media_url must be an http(s) URL of at most 500 characters")
        else:
            media_items.append({"url": media_url})
    upload = form.get("media")
    photo: bytes | None = None
    if isinstance(upload, web.FileField):
        photo = upload.file.read()
        kind = case_media.sniff(photo)
        if len(photo) > case_media.MAX_BYTES or kind is None:
            problems.append(f"media must be a JPEG, PNG or WebP photo of at most {case_media.MAX_BYTES} bytes")
    elif upload not in (None, ""):
        problems.append("media must be a file (multipart/form-data)")
    if problems:
        raise Open311Error(400, *problems)

    saved: str | None = None
    if photo is not None:
        saved = case_media.save_photo(settings.var_dir, photo)
        media_items.append({"path": saved})
    now = utcnow()
    try:
        async with db.write() as session:
            contact_id = None
            if urn is not None:
                contact_id = (await contacts_for(session, [urn]))[urn].id
            await authenticate(session, settings.open311_api_keys, key, now)  # records last use
            done = await service.report(session, service.NewReport(
                class_code=code, description=description or cls.minor_zh, source="open311", lat=lat, lon=lon,
                cell_id=cell_id, address=address or None, landmark=landmark, urn=urn, contact_id=contact_id,
                media=media_items, details=details, attributes=attributes,
            ), Actor.api(client.name), now)
            number, linked = done.case.number, done.linked
    except Exception:
        if saved is not None:
            (settings.var_dir / saved).unlink(missing_ok=True)
        raise
    lang = _lang(request)
    notice = time_notice(cls, done.case.area_class, lang)
    if linked:
        notice = (f"已并入正在办理的请求{number}" if lang == "zh" else f"Joined open request {number}") + (
            f"；{notice}" if notice and lang == "zh" else f"; {notice}" if notice else "")
    body = [{"service_request_id": number, "service_notice": notice, "account_id": details.get("account_id")}]
    return render(body, fmt, "service_requests", "request", status=201)


def request_item(case: Case, request: web.Request, classes: dict[str, GridClass], names: dict[str, Any]) -> dict[str, Any]:
    lang = _lang(request)
    cls = classes.get(case.class_code or "")
    dept = names.get(case.department_code or "")
    urls = media_urls(case, request.app[SETTINGS].public_url)
    return {
        "service_request_id": case.number,
        "status": "closed" if case.status in FINISHED else "open",
        "status_notes": case.status_note or status_name(case.status, lang),
        "service_name": cls.name(lang) if cls else None,
        "service_code": case.class_code,
        "description": public_text(case.description),
        "agency_responsible": dept.name(lang) if dept else None,
        "service_notice": time_notice(cls, case.area_class, lang) if cls else None,
        "requested_datetime": _local(case.reported_at, request),
        "updated_datetime": _local(case.updated_at, request),
        "expected_datetime": _local(case.due_at, request) if case.status not in FINISHED else None,
        "address": case.address or case.landmark,
        "address_id": case.cell_id,
        "zipcode": None,
        "lat": case.lat,
        "long": case.lon,
        "media_url": urls[0] if urls else None,
    }


def _when(value: str, name: str) -> datetime:
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} must be a W3C date-time such as 2026-11-01T00:00:00Z") from None
    if at.tzinfo is None:
        raise Open311Error(400, f"{name} must include a time zone (Z or +08:00)")
    return at


async def list_requests(request: web.Request, fmt: str) -> web.Response:
    q = request.query
    _jurisdiction(q.get("jurisdiction_id"))
    query = select(Case)
    ids = [s.strip() for s in q.get("service_request_id", "").split(",") if s.strip()]
    if ids:  # the spec: ids override every other filter
        wanted = [case_id_of(i) for i in ids]
        query = query.where(Case.id.in_([w for w in wanted if w is not None]))
    else:
        problems: list[str] = []
        codes = [c.strip() for c in q.get("service_code", "").split(",") if c.strip()]
        bad = [c for c in codes if not _CODE.match(c)]
        if bad:
            problems.append(f"service_code {', '.join(bad)} is not a service code (kind letter and four digits)")
        statuses = [s.strip() for s in q.get("status", "").split(",") if s.strip()]
        if any(s not in ("open", "closed") for s in statuses):
            problems.append("status must be open, closed, or both (comma-separated)")
        start = _when(q["start_date"], "start_date") if q.get("start_date") else None
        end = _when(q["end_date"], "end_date") if q.get("end_date") else None
        if start and end and end < start:
            problems.append("end_date must not be before start_date")
        if problems:
            raise Open311Error(400, *problems)
        if start is None and end is None:
            start = utcnow() - DEFAULT_WINDOW
        if start is not None:
            query = query.where(Case.reported_at >= start)
        if end is not None:
            query = query.where(Case.reported_at <= end)
        if codes:
            query = query.where(Case.class_code.in_(codes))
        if statuses and set(statuses) != {"open", "closed"}:
            query = query.where(Case.status.in_(OPEN if statuses == ["open"] else FINISHED))
    query = query.order_by(Case.reported_at.desc(), Case.id.desc()).limit(MAX_RESULTS)
    async with request.app[DB].read() as session:
        cases = list(await session.scalars(query))
        classes = await taxonomy(session)
        names = await departments(session)
    items = [request_item(c, request, classes, names) for c in cases]
    return render(items, fmt, "service_requests", "request")


async def get_request(request: web.Request, fmt: str) -> web.Response:
    _jurisdiction(request.query.get("jurisdiction_id"))
    number = request.match_info["id"]
    async with request.app[DB].read() as session:
        case_id = case_id_of(number)
        case = await session.get(Case, case_id) if case_id else None
        if case is None:
            raise Open311Error(404, f"service_request_id {number!r} not found")
        classes = await taxonomy(session)
        names = await departments(session)
    return render([request_item(case, request, classes, names)], fmt, "service_requests", "request")


async def unknown(request: web.Request, fmt: str) -> web.Response:
    tail = request.match_info.get("tail", "")
    known = re.match(r"^(services|requests|discovery)(/[^/]+)?\.(json|xml)$", tail)
    if known and request.method not in ("GET", "HEAD", "POST"):
        raise Open311Error(405, f"method {request.method} is not allowed here")
    if known and request.method == "POST":
        raise Open311Error(405, "only requests.json takes POST")
    raise Open311Error(404, f"no such resource: {PREFIX}/{tail} (formats are .json and .xml)")


async def media(request: web.Request) -> web.StreamResponse:
    """A photo filed with a request (our own files only; reporters' links point elsewhere)."""
    settings = request.app[SETTINGS]
    async with request.app[DB].read() as session:
        case = await session.get(Case, case_id_of(request.match_info["id"]) or 0)
    n = int(request.match_info["n"])
    item = case.media[n] if case is not None and n < len(case.media or []) else None
    path = case_media.resolve(settings.var_dir, str(item["path"])) if item and item.get("path") else None
    if path is None:
        return errors(404, ("no such photo",), "json")
    kind = path.suffix.lstrip(".")
    return web.FileResponse(path, headers={"Content-Type": case_media.CONTENT_TYPES.get(kind, "application/octet-stream"),
                                           "Cache-Control": "public, max-age=86400"})
