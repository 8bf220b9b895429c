"""Reporting a problem on the portal: the class suggestion, the place (a point, a named place, a
cell), photos with their limits (size, kind by content, count, the whole body), missing fields,
double submission — and the case made by the real case service."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp import FormData
from sqlalchemy import select
from test_portal_support import INSIDE, OUTSIDE, count, demo_data, errors_of, png, report_form, token

from helpline.app import MAX_BODY
from helpline.cases import media
from helpline.cases.models import Case, CaseReport
from helpline.grid import locate
from helpline.models import Contact


@pytest.fixture
async def demo(settings) -> None:  # type: ignore[no-untyped-def]
    await demo_data(settings)


def saved_photos(settings) -> list[Path]:  # type: ignore[no-untyped-def]
    folder = settings.var_dir / media.FOLDER
    return sorted(folder.iterdir()) if folder.exists() else []


async def send(client, form: FormData):  # type: ignore[no-untyped-def]
    return await client.post("/report", data=form, allow_redirects=False)


async def test_the_form_has_the_map_the_classes_and_the_photo_box(client) -> None:
    page = await (await client.get("/report?text=井盖没了")).text()
    assert page.count("<polygon ") == 60  # every demo cell, drawn from our own data
    assert 'enctype="multipart/form-data"' in page and 'type="file"' in page and 'accept="image/jpeg,image/png,image/webp"' in page
    assert '<option value="C0118">路灯</option>' in page
    assert "我们判断是：" in page  # the suggestion for the words it was opened with
    for field in ("description", "class", "place", "photo", "phone"):
        assert f'<label for="{field}">' in page


async def test_the_router_suggests_the_class(client) -> None:
    light = await (await client.get("/report/suggest", params={"text": "路灯不亮了", "lang": "zh"})).json()
    assert light == {"code": "C0118", "name": "路灯", "major": "公用设施"}
    nothing = await (await client.get("/report/suggest", params={"text": "你好"})).json()
    assert nothing == {"code": None}


async def test_a_report_with_a_point_and_a_photo_becomes_a_case(client, db, settings, demo) -> None:
    photo = png()
    resp = await send(client, report_form(await token(client, "/report"), [("lamp.png", photo, "image/png")]))
    assert resp.status == 303, await resp.text()
    done = resp.headers["Location"]
    number = re.search(r"n=(\d+)", done).group(1)
    async with db.read() as s:
        case = await s.scalar(select(Case))
        report = await s.scalar(select(CaseReport))
    assert case.number == number and case.source == "web" and case.status == "reported"
    assert case.class_code == "C0118"  # suggested by the router from the words
    assert case.cell_id == locate(*INSIDE).id and (case.lat, case.lon) == INSIDE
    assert len(case.media) == 1 and (settings.var_dir / case.media[0]["path"]).read_bytes() == photo
    assert report.urn == "tel:+8613800138000" and report.contact_id is not None
    page = await (await client.get(done)).text()
    assert number in page and "路灯" in page and f'href="/track?n={number}"' in page
    client.session.cookie_jar.clear()  # the confirmation is this browser's only
    assert (await client.get(done)).status == 404


async def test_a_named_place_is_found_in_the_gazetteer(client, db, demo) -> None:
    form = report_form(await token(client, "/report"), lat="", lon="", place="人民公园东门", description="垃圾堆在路边",
                       **{"class": "E0102"})
    assert (await send(client, form)).status == 303
    async with db.read() as s:
        case = await s.scalar(select(Case))
    assert case.class_code == "E0102" and case.landmark == "人民公园" and case.cell_id is not None
    assert case.address == "人民公园东门"


async def test_an_unknown_place_still_makes_a_case_for_the_operator_to_place(client, db, demo) -> None:
    form = report_form(await token(client, "/report"), lat="", lon="", place="村东头老槐树下")
    assert (await send(client, form)).status == 303
    async with db.read() as s:
        case = await s.scalar(select(Case))
    assert case.address == "村东头老槐树下" and case.cell_id is None


@pytest.mark.parametrize(
    ("photos", "message"),
    [
        ([("big.png", png(pad=media.MAX_BYTES), "image/png")], "第1张照片太大了（每张最多5MB）。"),
        ([("fake.jpg", b"this is not a picture at all", "image/jpeg")], "第1张照片不是照片：请用JPG、PNG或WebP格式。"),
        ([("evil.png", b"<?php echo 1; ?>" + png(), "image/png")], "第1张照片不是照片：请用JPG、PNG或WebP格式。"),
        ([(f"p{i}.png", png(), "image/png") for i in range(4)], "最多只能上传3张照片。"),
        ([("empty.png", b"", "image/png")], "第1张照片是空的。"),
    ],
    ids=["oversized", "wrong-type", "disguised", "too-many", "empty"],
)
async def test_photos_over_the_limits_are_refused_and_nothing_is_kept(client, db, settings, demo, photos, message) -> None:
    resp = await send(client, report_form(await token(client, "/report"), photos))
    assert resp.status == 400
    page = await resp.text()
    assert ("photo", message) in errors_of(page)
    assert "请重新选择照片" in page  # the resident is told the photos must be chosen again
    assert 'value="13800138000"' in page  # the rest of the form is kept
    assert await count(db, Case) == 0 and saved_photos(settings) == []


async def test_a_body_over_the_whole_limit_gets_the_413_every_route_gives(client, db, settings, demo) -> None:
    chunk = png(pad=media.MAX_BYTES - 100)
    photos = [(f"p{i}.png", chunk, "image/png") for i in range(MAX_BODY // len(chunk) + 1)]
    resp = await send(client, report_form(await token(client, "/report"), photos))
    assert resp.status == 413
    assert await count(db, Case) == 0 and saved_photos(settings) == []


async def test_missing_fields_are_each_named(client, db, demo) -> None:
    form = report_form(await token(client, "/report"), description="", lat="", lon="", phone="")
    resp = await send(client, form)
    assert resp.status == 400
    assert [f for f, _ in errors_of(await resp.text())] == ["description", "map", "phone"]
    bad = report_form(await token(client, "/report"), phone="12", lat=str(OUTSIDE[0]), lon=str(OUTSIDE[1]),
                      **{"class": "Z9999"})
    page = await (await send(client, bad)).text()
    assert [f for f, _ in errors_of(page)] == ["class", "map", "phone"]
    assert await count(db, Case) == 0 and await count(db, Contact) == 0


async def test_the_same_form_sent_twice_makes_one_case(client, db, settings, demo) -> None:
    csrf = await token(client, "/report")
    first = await send(client, report_form(csrf, [("a.png", png(), "image/png")], lat="", lon="", place="村东头"))
    second = await send(client, report_form(csrf, [("a.png", png(), "image/png")], lat="", lon="", place="村东头"))
    assert first.status == second.status == 303
    assert re.search(r"n=(\d+)", first.headers["Location"]).group(1) == re.search(r"n=(\d+)", second.headers["Location"]).group(1)
    assert await count(db, Case) == 1 and await count(db, CaseReport) == 1
    assert len(saved_photos(settings)) == 1  # the second copy's photo was not kept


async def test_a_report_without_this_browsers_token_is_refused(client, db, demo) -> None:
    await client.get("/report")
    resp = await send(client, report_form("lz1.abcdefghijkl.abcdefghijklmnopqrstuvwxyz0123"))
    assert resp.status == 403
    assert await count(db, Case) == 0


async def test_one_browser_cannot_flood_the_centre_with_reports(client, db, demo) -> None:
    statuses = []
    for n in range(12):
        form = report_form(await token(client, "/report"), lat="", lon="", place=f"村东头{n}号")
        statuses.append((await send(client, form)).status)
    assert statuses[:10] == [303] * 10 and statuses[10:] == [429, 429]
    assert await count(db, Case) == 10
