"""Unit grid cells: ids, numbering, point location, the GeoJSON endpoint, and reports landing in a cell."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select

from helpline.grid import (
    Gazetteer,
    Place,
    feature_collection,
    locate,
    resolve_place,
    shipped_gazetteer,
    shipped_grid,
)
from helpline.cases.models import Case, CaseReport, case_id_of
from helpline.models import Conversation

PROPERTIES = {"id", "name", "community", "street", "district", "area_class"}


def _west_north(cell):  # type: ignore[no-untyped-def]
    west, _, _, north = cell.bbox
    return west, north


def _centre(cell):  # type: ignore[no-untyped-def]
    west, south, east, north = cell.bbox
    return (south + north) / 2, (west + east) / 2


async def post(client, text: str, sender: str, **extra):  # type: ignore[no-untyped-def]
    resp = await client.post("/api/v1/messages", json={"from": sender, "text": text, **extra})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def state_of(db, conversation_id: str) -> dict:  # type: ignore[no-untyped-def]
    async with db.read() as s:
        conv = await s.scalar(select(Conversation).where(Conversation.id == conversation_id))
    return conv.state or {}


async def case_of(db, body: dict) -> Case:  # type: ignore[no-untyped-def]
    """The case a reply announced (its number is in the text and in ``case``)."""
    number = body["case"]["id"]
    assert number in body["reply"]["text"]
    async with db.read() as s:
        case = await s.get(Case, case_id_of(number))
        (report,) = (await s.scalars(select(CaseReport).where(CaseReport.case_id == case.id))).all()
    assert report.urn is not None and report.contact_id is not None
    return case


# --- the shipped cells ---------------------------------------------------------------------------


def test_ids_have_15_digits_with_the_district_prefix_and_are_unique() -> None:
    cells = shipped_grid().cells
    assert 40 <= len(cells) <= 80
    ids = [c.id for c in cells]
    assert len(set(ids)) == len(ids)
    for c in cells:
        assert len(c.id) == 15 and c.id.isdigit() and c.id.startswith("330203")
    streets = {c.id[6:9] for c in cells}
    assert len(streets) == 2
    for street in streets:
        communities = {c.id[9:12] for c in cells if c.id[6:9] == street}
        assert 2 <= len(communities) <= 3


def test_cells_are_numbered_west_to_east_then_north_to_south_within_a_community() -> None:
    by_community = defaultdict(list)
    for c in shipped_grid().cells:
        by_community[c.id[:12]].append(c)
    for prefix, cells in by_community.items():
        assert len({c.community for c in cells}) == 1 and len({c.street for c in cells}) == 1
        by_seq = sorted(cells, key=lambda c: c.id)
        assert [int(c.id[12:]) for c in by_seq] == list(range(1, len(cells) + 1)), prefix
        # reading order: rows from north to south, and within a row from west to east
        reading = sorted(cells, key=lambda c: (-_west_north(c)[1], _west_north(c)[0]))
        assert [c.id for c in reading] == [c.id for c in by_seq], prefix
        assert all(f"第{int(c.id[12:])}格" in c.name and c.community in c.name for c in cells)


def test_cells_are_about_ten_thousand_square_metres() -> None:
    for c in shipped_grid().cells:
        west, south, east, north = c.bbox
        assert 0.0009 <= north - south <= 0.0011 and 0.001 <= east - west <= 0.0013
        assert c.ring[0] == c.ring[-1]


def test_a_point_inside_a_cell_is_located() -> None:
    for cell in shipped_grid().cells:
        lat, lon = _centre(cell)
        assert locate(lat, lon) is cell
    assert locate(29.87, 121.55).id == "330203001002010"


def test_a_point_on_a_shared_edge_belongs_to_exactly_one_cell() -> None:
    grid = shipped_grid()
    # a north-south edge shared by two neighbours in the same row: it goes to the east cell
    west_cell = grid.by_id["330203001001001"]
    east_cell = grid.by_id["330203001001002"]
    _, south, east, north = west_cell.bbox
    assert east == east_cell.bbox[0]
    lat = (south + north) / 2
    owners = [c for c in grid.cells if c.contains(lat, east)]
    assert owners == [east_cell] and locate(lat, east) is east_cell
    # an east-west edge shared with the cell to the south (across a community border): the north cell
    north_cell = grid.by_id["330203001001006"]  # 幸福社区, second row, first column
    south_cell = grid.by_id["330203001002001"]  # 和平社区, first row, first column
    assert north_cell.bbox[1] == south_cell.bbox[3]
    lon = (north_cell.bbox[0] + north_cell.bbox[2]) / 2
    owners = [c for c in grid.cells if c.contains(north_cell.bbox[1], lon)]
    assert owners == [north_cell]
    # a corner shared by four cells: exactly one owner, the north-east one
    corner_lat, corner_lon = north_cell.bbox[1], north_cell.bbox[2]
    owners = [c for c in grid.cells if c.contains(corner_lat, corner_lon)]
    assert len(owners) == 1 and owners[0].bbox[0] == corner_lon and owners[0].bbox[1] == corner_lat
    # every grid line crossing inside the area has one owner
    for c in grid.cells:
        west, south, east, north = c.bbox
        for lat_, lon_ in ((south, west), ((south + north) / 2, west), (south, (west + east) / 2)):
            assert [o.id for o in grid.cells if o.contains(lat_, lon_)] == [c.id]


def test_a_point_outside_the_district_is_in_no_cell() -> None:
    assert locate(30.0, 121.0) is None
    assert locate(29.87, 121.60) is None
    west, south, east, north = shipped_grid().bbox
    assert locate(north + 0.0001, (west + east) / 2) is None
    assert locate((south + north) / 2, west - 0.0001) is None


# --- the gazetteer -------------------------------------------------------------------------------


def test_every_gazetteer_place_lies_in_a_cell_and_resolves_by_its_name() -> None:
    places = shipped_gazetteer().places
    assert 25 <= len(places) <= 40
    for place in places:
        found = resolve_place(place.name)
        assert found is not None and found[0] is place, place.name
        assert found[1] is locate(place.lat, place.lon)
        assert resolve_place(place.en) is not None, place.en


def test_the_longest_alias_wins() -> None:
    place, cell = resolve_place("幸福路与人民路交叉口这里")  # also contains 幸福路 and 人民路
    assert place.name == "幸福路与人民路交叉口" and cell.id.startswith("330203")
    place, _ = resolve_place("就在幸福路上")
    assert place.name == "幸福路"
    place, _ = resolve_place("近く 人民公園 (traditional)")
    assert place.name == "人民公园"
    place, _ = resolve_place("next to the Central Primary School gate")
    assert place.name == "中心小学"
    assert resolve_place("by the embankment") is None  # English aliases match whole words only ("bank")
    assert resolve_place("村口大槐树下") is None


def test_ties_go_to_the_earlier_alias_in_the_text() -> None:
    a = Place("甲路", "A Road", "road", 29.87, 121.55)
    b = Place("乙路", "B Road", "road", 29.87, 121.55)
    gaz = Gazetteer([a, b])
    assert gaz.find("乙路和甲路") is b and gaz.find("甲路和乙路") is a


def test_the_feature_collection_has_every_cell() -> None:
    fc = feature_collection()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == len(shipped_grid().cells)


# --- the HTTP endpoint ---------------------------------------------------------------------------


async def test_the_geojson_endpoint(client) -> None:
    resp = await client.get("/api/v1/grid/cells")
    assert resp.status == 200
    assert resp.content_type in ("application/geo+json", "application/json")
    body = await resp.json(content_type=None)
    assert body["type"] == "FeatureCollection"
    assert len(body["features"]) == len(shipped_grid().cells)
    for feature in body["features"]:
        assert feature["type"] == "Feature"
        assert feature["geometry"]["type"] == "Polygon"
        ring = feature["geometry"]["coordinates"][0]
        assert ring[0] == ring[-1] and len(ring) >= 4
        lon, lat = ring[0]
        assert 121 < lon < 122 and 29 < lat < 30  # lon/lat order
        assert PROPERTIES <= set(feature["properties"]) and all(feature["properties"][k] for k in PROPERTIES)
        assert feature["properties"]["district"] == "海曙区"
    assert "幸福社区" in {f["properties"]["community"] for f in body["features"]}


# --- reports through the API ---------------------------------------------------------------------


async def test_a_report_with_a_location_lands_in_its_cell(client, db) -> None:
    cell = shipped_grid().by_id["330203002002007"]
    lat, lon = _centre(cell)
    body = await post(client, "路灯坏了", "web:gridloc", location={"lat": lat, "lon": lon})
    assert body["intent"] == "grid_case" and body["grid"]["minor_code"] == "18"
    assert cell.id in body["reply"]["text"] and cell.name in body["reply"]["text"]
    case = await case_of(db, body)
    assert (case.cell_id, case.lat, case.lon, case.class_code) == (cell.id, lat, lon, "C0118")
    assert case.status == "reported" and case.area_class == cell.area_class and case.source == "web"
    assert body["case"]["status"] == "reported"
    state = await state_of(db, body["conversation_id"])
    assert "report" not in state and state["case"] == case.number and "flow" not in state


async def test_a_report_in_english_with_a_location_names_the_grid_cell(client) -> None:
    body = await post(client, "there is a pothole outside the school", "web:gridgeo", location={"lat": 29.87, "lon": 121.55})
    assert "recorded" in body["reply"]["text"] and "grid cell 330203001002010" in body["reply"]["text"]


async def test_a_typed_landmark_resolves_to_its_cell(client, db) -> None:
    first = await post(client, "路灯坏了", "web:gridlm")
    assert "地点" in first["reply"]["text"]
    second = await post(client, "中心小学门口", "web:gridlm")
    place, cell = resolve_place("中心小学")
    assert second["intent"] == "grid_case" and second["grid"]["minor_code"] == "18"
    assert "中心小学门口" in second["reply"]["text"]
    assert f"网格：{cell.name}（{cell.id}）" in second["reply"]["text"]
    state = await state_of(db, second["conversation_id"])
    assert state.get("flow") is None and "report" not in state
    case = await case_of(db, second)
    assert case.cell_id == cell.id and case.address == "中心小学门口" and case.description == "路灯坏了"
    assert (case.lat, case.lon) == (place.lat, place.lon) and case.landmark == "中心小学"


async def test_a_typed_unknown_place_is_still_recorded(client, db) -> None:
    await post(client, "路灯坏了", "web:gridunk")
    second = await post(client, "村口大槐树下", "web:gridunk")
    assert second["intent"] == "grid_case" and "村口大槐树下" in second["reply"]["text"]
    assert "网格" not in second["reply"]["text"]
    case = await case_of(db, second)
    assert case.address == "村口大槐树下" and case.cell_id is None and case.lat is None  # the operator places it


async def test_a_point_outside_the_area_gets_a_polite_answer(client, db) -> None:
    body = await post(client, "路灯坏了", "web:gridout", location={"lat": 30.2, "lon": 120.1})
    assert body["intent"] == "grid_case" and body["grid"]["minor_code"] == "18"
    assert "不在" in body["reply"]["text"] and "服务区域" in body["reply"]["text"]
    assert "标志性建筑" in body["reply"]["text"] or "地址" in body["reply"]["text"]
    state = await state_of(db, body["conversation_id"])
    assert state["flow"] == "grid_case" and state["report"]["lat"] == 30.2
    # the answer in words then places it
    second = await post(client, "菜市场旁边", "web:gridout")
    _, cell = resolve_place("菜市场")
    assert cell.id in second["reply"]["text"]
    case = await case_of(db, second)
    assert case.cell_id == cell.id and case.address == "菜市场旁边"


async def test_a_point_outside_the_area_in_english(client) -> None:
    body = await post(client, "there is a pothole outside the school", "web:gridout2", location={"lat": 31.0, "lon": 121.4})
    assert body["intent"] == "grid_case" and "outside our service area" in body["reply"]["text"]
    assert "landmark" in body["reply"]["text"]


async def test_a_location_sent_after_the_question_places_the_report(client, db) -> None:
    await post(client, "路灯坏了", "web:gridlate")
    cell = shipped_grid().by_id["330203001003010"]
    lat, lon = _centre(cell)
    second = await post(client, "就在这里", "web:gridlate", location={"lat": lat, "lon": lon})
    assert second["intent"] == "grid_case" and cell.id in second["reply"]["text"] and "已记录" in second["reply"]["text"]
    case = await case_of(db, second)
    assert (case.cell_id, case.lat, case.lon) == (cell.id, lat, lon)
    # a named place outside the area is named back, and the question stands
    await post(client, "井盖丢了", "web:gridlate")
    third = await post(client, "幸福小区东门", "web:gridlate", location={"lat": 29.9, "lon": 121.6})
    assert "幸福小区东门" in third["reply"]["text"] and "服务区域" in third["reply"]["text"]
    assert (await state_of(db, third["conversation_id"]))["flow"] == "grid_case"


async def test_photos_kept_with_the_draft_go_with_the_case(client, db) -> None:
    """A channel that receives a photo while the place is awaited adds it to the draft (as Telegram
    does); the case opened from the draft carries it."""
    first = await post(client, "路灯坏了", "web:gridphoto")
    async with db.write() as s:
        conv = await s.scalar(select(Conversation).where(Conversation.id == first["conversation_id"]))
        conv.state = {**conv.state, "report": {**conv.state["report"], "media": ["media/telegram/p1.jpg"]}}
    second = await post(client, "中心小学门口", "web:gridphoto")
    case = await case_of(db, second)
    assert case.media == [{"path": "media/telegram/p1.jpg"}]
