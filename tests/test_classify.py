"""The rule classifier: what each kind of message is, and the cases that must not be confused."""

from __future__ import annotations

import pytest

from helpline.classify import RuleClassifier
from helpline.request import Intent

classify = RuleClassifier.shipped().classify


@pytest.mark.parametrize(
    ("text", "kind", "number"),
    [
        ("快来人啊我家厨房着火了", "fire", "119"),
        ("my dad collapsed and is not breathing", "medical", "120"),
        ("有人拿着刀在打人", "crime", "110"),
        ("家里一股煤气味", "gas", "119"),
        ("there is a gas smell in the kitchen", "gas", "119"),
    ],
)
def test_emergencies_come_first_with_the_right_number(text: str, kind: str, number: str) -> None:
    result = classify(text, "zh")
    assert result.intent is Intent.EMERGENCY
    assert result.category == {"kind": kind, "number": number}


@pytest.mark.parametrize(
    "text",
    ["燃气费怎么交", "火灾保险怎么买", "what should I do if I ever smell gas", "119", "前几天家里失火了 人没事 有补助吗"],
)
def test_talk_about_danger_is_not_an_emergency(text: str) -> None:
    assert classify(text, "zh").intent is not Intent.EMERGENCY


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("路口那个路灯坏了好几天了", "C0118"),
        ("井盖丢了", "C0114"),
        ("马路上那个电力的井盖翘起来了", "C0105"),
        ("小区门口有人乱摆摊", "E0501"),
        ("there is a pothole on main street", "E0110"),
        ("the street lights on our road are out", "C0118"),
        ("路边水管爆了一直冒水", "E0402"),
        ("工地半夜还在打桩 吵死了", "E0301"),
        ("rubbish piled up by the bus stop for a week", "E0102"),
        ("十字路口红绿灯坏了", "C0214"),
    ],
)
def test_street_problems_get_their_standard_class(text: str, code: str) -> None:
    result = classify(text, "zh")
    assert result.intent is Intent.GRID_CASE
    assert result.category is not None and result.category["code"] == code


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("水管漏了帮我找个师傅", Intent.BOOKING),
        ("book a vet for my goats on Friday", Intent.BOOKING),
        ("小区路灯坏了", Intent.GRID_CASE),
        ("以后看到井盖丢了 该怎么报", Intent.KNOWLEDGE),
        ("焚烧秸秆允许吗", Intent.KNOWLEDGE),
        ("CX 12345", Intent.CASE_STATUS),
        ("我上次报的路灯修了没", Intent.CASE_STATUS),
        ("how do I check my case", Intent.KNOWLEDGE),
        ("转人工", Intent.OPERATOR),
        ("0", Intent.OPERATOR),
        ("人工授精怎么做", Intent.KNOWLEDGE),
        ("你好", Intent.MENU),
        ("Hi there!", Intent.MENU),
        ("你好，我家猪不吃食了", Intent.KNOWLEDGE),
        ("低保", Intent.KNOWLEDGE),
    ],
)
def test_intents_that_are_easily_confused(text: str, intent: Intent) -> None:
    assert classify(text, "zh").intent is intent


def test_status_number_is_extracted() -> None:
    assert classify("查询 20251", "zh").category == {"number": "20251"}
    assert classify("status of booking 2031", "en").category == {"number": "2031"}
    assert classify("我反映的问题有结果了吗", "zh").category == {"number": None}
