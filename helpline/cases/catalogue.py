"""The city's services as Open311 sees them: one service per minor class of the taxonomy in
force, its attributes, and the notice of its time limit. Channel-neutral, so the Open311 channel
and anything else that lists services (a portal form, a partner's platform) describe them alike.
"""

from __future__ import annotations

import re
from typing import Any

from helpline.grid import shipped_grid
from helpline.taxonomy import GridClass, shipped_keywords

_COMPONENT_ID = re.compile(r"^\d{16}$")


def time_notice(cls: GridClass, area_class: str | None, lang: str) -> str | None:
    """The class's time limit in words, for the area class (the default when None)."""
    limit = cls.limit_for(area_class)
    if limit is None:
        return None
    return f"处理时限：{limit.describe('zh')}" if lang == "zh" else f"Time limit: {limit.describe('en')}"


def service_item(cls: GridClass, lang: str) -> dict[str, Any]:
    """A GeoReport v2 service: the minor class, grouped by its major class."""
    kind = ("部件" if cls.kind == "component" else "事件") if lang == "zh" else cls.kind
    words = shipped_keywords().get(cls.code, {}).get(lang, [])[:6]
    limit = time_notice(cls, None, lang)
    description = f"{kind}：{cls.major_zh} / {cls.minor_zh}" if lang == "zh" else f"{kind}: {cls.major_en} / {cls.minor_en}"
    return {
        "service_code": cls.code,
        "service_name": cls.name(lang),
        "description": description if limit is None else f"{description}。{limit}" if lang == "zh" else f"{description}. {limit}",
        "metadata": True,
        "type": "realtime",
        "keywords": ",".join([cls.name(lang), *words]),
        "group": cls.major(lang),
    }


def attributes_of(cls: GridClass, lang: str) -> list[dict[str, Any]]:
    """What a client may add to a request of this service: a hazard flag, and for components the
    16-digit identifier painted on the object (6 district + 2 major + 2 minor + 6 serial)."""
    zh = lang == "zh"
    attrs: list[dict[str, Any]] = [{
        "variable": True, "code": "hazard", "datatype": "singlevaluelist", "required": False,
        "datatype_description": None, "order": 1,
        "description": "是否正在危及行人或车辆安全？" if zh else "Is it a danger to people or vehicles right now?",
        "values": [{"key": "yes", "name": "是" if zh else "Yes"}, {"key": "no", "name": "否" if zh else "No"}],
    }]
    if cls.kind == "component":
        attrs.append({
            "variable": True, "code": "component_id", "datatype": "string", "required": False,
            "datatype_description": "16位部件编号：6位区县+2位大类+2位小类+6位流水号" if zh else
            "16 digits: 6 district + 2 major + 2 minor + 6 serial",
            "order": 2,
            "description": "部件上喷涂的编号（如能看到）" if zh else "The number painted on the object, if you can read it",
            "values": [],
        })
    return attrs


def component_ok(value: str, cls: GridClass) -> bool:
    """A 16-digit component identifier of this class in one of our districts."""
    districts = {cell.district_code for cell in shipped_grid().cells}
    return bool(_COMPONENT_ID.match(value)) and value[:6] in districts and value[6:10] == cls.major_code + cls.minor_code
