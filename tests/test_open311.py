"""Open311 GeoReport v2 on the real app: services, service definitions, requests in and out, keys,
and every error in the spec's format, in JSON and XML, on both databases."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

import pytest
from aiohttp import FormData
from sqlalchemy import func, select
from test_cases_support import CELL_B, act, centre, make_staff

from helpline.app import create_app
from helpline.cases.data import load_shipped
from helpline.cases.keys import add_key, revoke_key
from helpline.cases.models import Case, CaseReport, Open311Key
from helpline.grid import resolve_place
from helpline.models import utcnow
from helpline.taxonomy import shipped_taxonomy

ENV_KEY = "env-key-0123456789"
JPEG = b"\xff\xd8\xff\xe0" + b"photo" * 100


@pytest.fixture
async def o311(aiohttp_client, settings, db):  # type: ignore[no-untyped-def]
    await load_shipped(db)
    return await aiohttp_client(create_app(dataclasses.replace(settings, open311_api_keys=frozenset({ENV_KEY}))))


async def count_cases(db) -> int:  # type: ignore[no-untyped-def]
    async with db.read() as s:
        return await s.scalar(select(func.count()).select_from(Case))


async def post_request(client, key: str | None = ENV_KEY, fmt: str = "json", **fields: str):  # type: ignore[no-untyped-def]
    data = {**({"api_key": key} if key is not None else {}), **fields}
    return await client.post(f"/open311/v2/requests.{fmt}", data=data)


def point(cell: str = CELL_B) -> dict[str, str]:
    lat, lon = centre(cell)
    return {"lat": repr(lat), "long": repr(lon)}


# -- services -----------------------------------------------------------------------------


async def test_services_one_per_minor_class(o311) -> None:
    resp = await o311.get("/open311/v2/services.json")
    assert resp.status == 200 and resp.content_type == "application/json"
    services = await resp.json()
    assert len(services) == len(shipped_taxonomy())
    by_code = {s["service_code"]: s for s in services}
    light = by_code["C0118"]
    assert light["service_name"] == "路灯" and light["group"] == "公用设施" and light["metadata"] is True
    assert light["type"] == "realtime" and "路灯" in light["keywords"] and "2个工作日" in light["description"]
    assert by_code["E0102"]["group"] == "市容环境" and by_code["E0102"]["service_name"] == "暴露垃圾"
    english = await (await o311.get("/open311/v2/services.json", headers={"Accept-Language": "en"})).json()
    assert {s["service_code"]: s["service_name"] for s in english}["C0118"] == "Street light"


async def test_services_in_xml(o311) -> None:
    resp = await o311.get("/open311/v2/services.xml")
    assert resp.status == 200 and resp.content_type == "text/xml"
    text = await resp.text()
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>')
    root = ET.fromstring(text)
    assert root.tag == "services"
    first = root.find("service")
    assert first is not None and first.findtext("service_code") == "C0101" and first.findtext("metadata") == "true"


async def test_a_service_definition_lists_its_attributes(o311) -> None:
    light = await (await o311.get("/open311/v2/services/C0118.json")).json()
    assert light["service_code"] == "C0118"
    assert [a["code"] for a in light["attributes"]] == ["hazard", "component_id"]
    assert light["attributes"][0]["values"] == [{"key": "yes", "name": "是"}, {"key": "no", "name": "否"}]
    rubbish = await (await o311.get("/open311/v2/services/E0102.json")).json()
    assert [a["code"] for a in rubbish["attributes"]] == ["hazard"]  # events have no component number
    root = ET.fromstring(await (await o311.get("/open311/v2/services/C0118.xml")).text())
    assert root.tag == "service_definition" and root.find("attributes/attribute/values/value/key").text == "yes"


async def test_unknown_services_and_jurisdictions_are_404_in_the_specs_format(o311) -> None:
    resp = await o311.get("/open311/v2/services/X9999.json")
    assert resp.status == 404
    assert await resp.json() == [{"code": 404, "description": "service_code 'X9999' not found"}]
    xml = await o311.get("/open311/v2/services/C9999.xml")
    root = ET.fromstring(await xml.text())
    assert xml.status == 404 and root.tag == "errors" and root.find("error/code").text == "404"
    assert (await o311.get("/open311/v2/services.json?jurisdiction_id=110101")).status == 404
    assert (await o311.get("/open311/v2/services.json?jurisdiction_id=330203")).status == 200
    other = await o311.get("/open311/v2/whatever.json")
    assert other.status == 404 and (await other.json())[0]["code"] == 404
    assert (await o311.get("/open311/v2/services.csv")).status == 404
    wrong = await o311.put("/open311/v2/requests.json")
    assert wrong.status == 405 and (await wrong.json())[0]["code"] == 405 and "POST" in wrong.headers["Allow"]
    assert (await o311.post("/open311/v2/services.json")).status == 405
    assert (await (await o311.get("/open311/v2/discovery.json")).json())["endpoints"][0]["specification"].endswith("v2")


# -- POST requests ------------------------------------------------------------------------


async def test_a_request_needs_a_valid_api_key(o311, db) -> None:
    for key in (None, "", "wrong-key"):
        resp = await post_request(o311, key, service_code="C0118", **point())
        assert resp.status == 403
        assert await resp.json() == [{"code": 403, "description": "api_key was not provided or is not valid"}]
    async with db.write() as s:
        _, db_key = await add_key(s, "fixmystreet", "test")
    resp = await post_request(o311, db_key, service_code="C0118", **point())
    assert resp.status == 201
    async with db.write() as s:
        row = await s.scalar(select(Open311Key).where(Open311Key.name == "fixmystreet"))
        assert row.last_used_at is not None and row.key_hash != db_key
        await revoke_key(s, "fixmystreet", "test")
    assert (await post_request(o311, db_key, service_code="C0118", **point())).status == 403
    assert await count_cases(db) == 1


async def test_a_request_becomes_a_case(o311, db) -> None:
    resp = await post_request(o311, service_code="C0118", description="路灯不亮，联系我13812345678", phone="13800138000",
                              first_name="Li", email="li@example.org", account_id="acc-1", **point(),
                              **{"attribute[hazard]": "yes", "attribute[component_id]": "3302030118000042"})
    assert resp.status == 201
    [answer] = await resp.json()
    number = answer["service_request_id"]
    assert answer["account_id"] == "acc-1" and answer["service_notice"] == "处理时限：2个工作日"
    async with db.read() as s:
        case = await s.get(Case, int(number) - 100000)
        (rep,) = (await s.scalars(select(CaseReport).where(CaseReport.case_id == case.id))).all()
    assert case.status == "reported" and case.source == "open311" and case.cell_id == CELL_B
    assert case.attributes == {"hazard": "yes", "component_id": "3302030118000042"}
    assert rep.urn == "tel:+8613800138000" and rep.contact_id is not None
    assert rep.details == {"api_client": f"env-{ENV_KEY[:4]}", "first_name": "Li", "account_id": "acc-1",
                           "email": "li@example.org"}
    # Read back, public: no personal details, the phone number in the words masked.
    [item] = await (await o311.get(f"/open311/v2/requests/{number}.json")).json()
    assert item["status"] == "open" and item["service_code"] == "C0118" and item["service_name"] == "路灯"
    assert "138********" in item["description"] and "13812345678" not in item["description"]
    assert item["address_id"] == CELL_B and item["requested_datetime"].endswith("+08:00")
    assert "13800138000" not in str(item) and "li@example.org" not in str(item)


async def test_a_place_can_be_a_gazetteer_name_or_a_cell_id(o311, db) -> None:
    resp = await post_request(o311, service_code="E0102", address_string="中心小学门口")
    assert resp.status == 201
    place, cell = resolve_place("中心小学")
    [item] = await (await o311.get(f"/open311/v2/requests/{(await resp.json())[0]['service_request_id']}.json")).json()
    assert (item["lat"], item["long"], item["address_id"], item["address"]) == (place.lat, place.lon, cell.id, "中心小学门口")
    resp = await post_request(o311, service_code="E0102", address_id="330203001003004")
    [item] = await (await o311.get(f"/open311/v2/requests/{(await resp.json())[0]['service_request_id']}.json")).json()
    assert item["address_id"] == "330203001003004" and item["lat"] is None


async def test_bad_requests_are_refused_with_every_problem_and_nothing_is_stored(o311, db) -> None:
    assert (await post_request(o311, service_code="Z0000", **point())).status == 404
    missing = await post_request(o311, **point())
    assert missing.status == 400 and "service_code is required" in (await missing.json())[0]["description"]
    nowhere = await post_request(o311, service_code="C0118")
    assert nowhere.status == 400 and "location is required" in (await nowhere.json())[0]["description"]
    outside = await post_request(o311, service_code="C0118", lat="30.2", long="120.1")
    assert outside.status == 400 and "outside the service area" in (await outside.json())[0]["description"]
    unknown = await post_request(o311, service_code="C0118", address_string="火星基地")
    assert "names no place we know" in (await unknown.json())[0]["description"]
    many = await post_request(o311, service_code="C0118", lat="91", long="121.5", email="nope", phone="12",
                              **{"attribute[hazard]": "maybe", "attribute[colour]": "red"})
    problems = [e["description"] for e in await many.json()]
    assert many.status == 400 and len(problems) == 5 and all(e["code"] == 400 for e in await many.json())
    assert any("lat must be between" in p for p in problems) and any("email" in p for p in problems)
    assert any("attribute[colour]" in p for p in problems) and any("attribute[hazard]" in p for p in problems)
    assert any(p.startswith("phone") for p in problems)
    as_json = await o311.post("/open311/v2/requests.json", json={"api_key": ENV_KEY, "service_code": "C0118"})
    assert as_json.status == 400 and "form-encoded" in (await as_json.json())[0]["description"]
    xml = await post_request(o311, fmt="xml", service_code="C0118")
    assert xml.status == 400 and ET.fromstring(await xml.text()).find("error/description").text.startswith("a location")
    assert await count_cases(db) == 0


async def test_a_photo_can_be_uploaded_and_is_served_back(o311, db, settings) -> None:
    form = FormData()
    for key, value in {"api_key": ENV_KEY, "service_code": "E0102", **point()}.items():
        form.add_field(key, value)
    form.add_field("media", JPEG, filename="p.jpg", content_type="image/jpeg")
    resp = await o311.post("/open311/v2/requests.json", data=form)
    assert resp.status == 201, await resp.text()
    number = (await resp.json())[0]["service_request_id"]
    [item] = await (await o311.get(f"/open311/v2/requests/{number}.json")).json()
    assert item["media_url"] == f"{settings.public_url}/open311/v2/media/{number}/0"
    photo = await o311.get(f"/open311/v2/media/{number}/0")
    assert photo.status == 200 and await photo.read() == JPEG and photo.content_type == "image/jpeg"
    assert (await o311.get(f"/open311/v2/media/{number}/1")).status == 404
    bad = FormData()
    for key, value in {"api_key": ENV_KEY, "service_code": "E0102", **point()}.items():
        bad.add_field(key, value)
    bad.add_field("media", b"#!/bin/sh\necho hi", filename="x.jpg", content_type="image/jpeg")
    refused = await o311.post("/open311/v2/requests.json", data=bad)
    assert refused.status == 400 and "JPEG, PNG or WebP" in (await refused.json())[0]["description"]
    assert await count_cases(db) == 1
    assert len(list((settings.var_dir / "media" / "cases").iterdir())) == 1


async def test_a_request_near_an_open_one_joins_it(o311, db) -> None:
    first = (await (await post_request(o311, service_code="C0118", **point())).json())[0]
    second = (await (await post_request(o311, service_code="C0118", **point())).json())[0]
    assert second["service_request_id"] == first["service_request_id"]
    assert second["service_notice"].startswith("已并入正在办理的请求")


# -- GET requests -------------------------------------------------------------------------


async def test_requests_are_listed_and_filtered(o311, db) -> None:
    staff = await make_staff(db)
    light = (await (await post_request(o311, service_code="C0118", **point())).json())[0]["service_request_id"]
    rubbish = (await (await post_request(o311, service_code="E0102", **point("330203001001001"))).json())[0]["service_request_id"]
    now = utcnow()
    await act(db, rubbish, "void", staff.operator, now, reason="invalid", note="现场无垃圾")

    everything = await (await o311.get("/open311/v2/requests.json")).json()
    assert [r["service_request_id"] for r in everything] == [rubbish, light]  # newest first
    closed = await (await o311.get("/open311/v2/requests.json?status=closed")).json()
    assert [(r["service_request_id"], r["status"], r["status_notes"]) for r in closed] == [(rubbish, "closed", "现场无垃圾")]
    opened = await (await o311.get("/open311/v2/requests.json?status=open&service_code=C0118")).json()
    assert [r["service_request_id"] for r in opened] == [light]
    by_id = await (await o311.get(f"/open311/v2/requests.json?service_request_id={light},{rubbish}&status=open")).json()
    assert len(by_id) == 2  # ids override the other filters
    later = await o311.get("/open311/v2/requests.json", params={"start_date": "2099-01-01T00:00:00Z"})
    assert await later.json() == []
    window = await o311.get("/open311/v2/requests.json", params={"start_date": "2020-01-01T00:00:00+08:00",
                                                                 "end_date": "2099-01-01T00:00:00Z"})
    assert len(await window.json()) == 2
    xml = ET.fromstring(await (await o311.get("/open311/v2/requests.xml")).text())
    assert xml.tag == "service_requests" and len(xml.findall("request")) == 2
    assert xml.find("request/status").text == "closed"


async def test_bad_filters_and_unknown_requests(o311) -> None:
    bad = await o311.get("/open311/v2/requests.json?status=pending&service_code=lamp&start_date=yesterday")
    assert bad.status == 400
    assert [e["description"][:20] for e in await bad.json()] == ["start_date must be a"]
    bad = await o311.get("/open311/v2/requests.json?status=pending&service_code=lamp")
    assert bad.status == 400 and len(await bad.json()) == 2
    naive = await o311.get("/open311/v2/requests.json", params={"end_date": "2026-11-01T00:00:00"})
    assert naive.status == 400 and "time zone" in (await naive.json())[0]["description"]
    missing = await o311.get("/open311/v2/requests/999999.json")
    assert missing.status == 404 and (await missing.json())[0]["description"] == "service_request_id '999999' not found"
    assert (await o311.get("/open311/v2/requests/abc.xml")).status == 404


async def test_a_request_shows_its_progress_to_closure(o311, db) -> None:
    staff = await make_staff(db)
    number = (await (await post_request(o311, service_code="C0118", **point())).json())[0]["service_request_id"]
    now = utcnow()
    await act(db, number, "register", staff.operator, now)
    await act(db, number, "dispatch", staff.operator, now)
    [item] = await (await o311.get(f"/open311/v2/requests/{number}.json")).json()
    assert item["agency_responsible"] == "区路灯管理所" and item["expected_datetime"] is not None
    assert item["status"] == "open" and item["status_notes"] == "已派遣给责任部门"
    english = await (await o311.get(f"/open311/v2/requests/{number}.json", headers={"Accept-Language": "en"})).json()
    assert english[0]["agency_responsible"] == "District Street Lighting Office"
    await act(db, number, "accept", staff.ld, now)
    await act(db, number, "handle", staff.ld, now, note="已更换灯具")
    await act(db, number, "check", staff.operator, now)
    await act(db, number, "close", staff.operator, now)
    [item] = await (await o311.get(f"/open311/v2/requests/{number}.json")).json()
    assert item["status"] == "closed" and item["status_notes"] == "已更换灯具" and item["expected_datetime"] is None
