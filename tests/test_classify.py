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


@pytest.mark.parametrize(
    ("text", "intent", "code"),
    [
        # dialect and SMS spellings fold to the forms the word lists use
        ("你们能干啥", Intent.MENU, None),
        ("what do u do", Intent.MENU, None),
        ("stret lite flickring all nite", Intent.GRID_CASE, "C0118"),  # one slip of the keys mended
        # a component that is only the place: the problem is the other thing
        ("公交站旁边的井盖没了", Intent.GRID_CASE, "C0114"),
        ("manhole with no cover near the bus stop", Intent.GRID_CASE, "C0114"),
        # a railing knocked down by a car is a street problem; a person knocked down an emergency
        ("马路中间的护栏被车撞倒了", Intent.GRID_CASE, "C0211"),
        # English phrases with words between ("drain ... blocked") and irregular verbs ("sank")
        ("the drain outside our block has been blocked for days", Intent.GRID_CASE, "E0404"),
        ("the road sank overnight", Intent.GRID_CASE, "E0401"),
        # many words of one street problem say it without a problem word
        ("隔壁工地大半夜还在电钻", Intent.GRID_CASE, "E0301"),
        # a street thing named outright beats a shorter home word ("wires")
        ("telecom cabinet door hanging open with wires sticking out", Intent.GRID_CASE, "C0115"),
    ],
)
def test_colloquial_writing_is_understood(text: str, intent: Intent, code: str | None) -> None:
    result = classify(text, "zh")
    assert result.intent is intent
    if code is not None:
        assert result.category is not None and result.category["code"] == code


def test_a_person_hit_by_a_car_is_an_emergency() -> None:
    assert classify("我爸被车撞倒了", "zh").intent is Intent.EMERGENCY


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("查下 CX 20781", Intent.CASE_STATUS),  # the reference need not start the message
        ("check booking B2290", Intent.CASE_STATUS),  # references with a letter prefix
        ("my plumber booking for today, is he still coming?", Intent.CASE_STATUS),
        ("我上次投诉的噪音 处理了吗", Intent.CASE_STATUS),  # 了吗 = 了没
        ("今年的种地补贴咋还没发", Intent.KNOWLEDGE),  # money not yet paid: not a case
        ("人工 人工", Intent.OPERATOR),
        ("能不能找个工作人员跟我说", Intent.OPERATOR),
        ("this bot is useless give me a person", Intent.OPERATOR),
        ("how do i book a service with you", Intent.KNOWLEDGE),  # a question about booking
        ("猪发烧了 要不要找兽医", Intent.KNOWLEDGE),  # asking whether, not asking for
        ("收割机下周能来不", Intent.BOOKING),
        ("can someone come and test the soil in my field", Intent.BOOKING),  # a service's words in any order
        ("明天股票涨不涨", Intent.UNKNOWN),  # nothing the line is for
        ("炒股票被骗了钱怎么办", Intent.KNOWLEDGE),  # ... unless it is about being cheated
        ("after the flood is tap water safe to drink", Intent.KNOWLEDGE),  # "tap" is part of "tap water"
    ],
)
def test_more_intents_that_are_easily_confused(text: str, intent: Intent) -> None:
    assert classify(text, "zh").intent is intent
