from __future__ import annotations

import pytest

from helpline.classify import RuleClassifier, normalise
from helpline.request import Intent


def is_greeting(text: str) -> bool:
    return RuleClassifier.shipped().classify(text, "zh").intent is Intent.MENU
from helpline.lang import detect_lang


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("路灯坏了", "zh"),
        ("my rice leaves are yellow", "en"),
        ("我的 ID card 丢了", "zh"),
        ("CX 12345", "fallback"),
        ("STOP", "fallback"),
        ("Stop please", "en"),
        ("好", "zh"),
        ("12345", "fallback"),
        ("👍👍", "fallback"),
        ("ok 好", "en"),
    ],
)
def test_detect_lang(text: str, expected: str) -> None:
    assert detect_lang(text, "fallback") == expected


def test_normalise_folds_width_case_and_punctuation() -> None:
    assert normalise("  ＨＥＬＬＯ！！ ") == "hello"
    assert normalise("你好，在吗？") == "你好在吗"


@pytest.mark.parametrize("text", ["你好", "您好！", "在吗", "你好在吗", "Hi", "hello there", "HELP", "menu", "帮助"])
def test_greetings(text: str) -> None:
    assert is_greeting(text)


@pytest.mark.parametrize("text", ["history of rice", "hi my pig is sick", "你好，我家猪不吃食了怎么办", "路灯坏了", "helpful"])
def test_not_greetings(text: str) -> None:
    assert not is_greeting(text)


def test_normalise_folds_dialect_and_question_endings() -> None:
    assert normalise("俺家娃咋整") == "我家娃怎么办"
    assert normalise("處理了嗎") == normalise("处理了没有") == "处理了没"


@pytest.mark.parametrize("text", ["您好 有人在吗", "你们能干啥", "what do u do"])
def test_colloquial_greetings(text: str) -> None:
    assert is_greeting(text)


def test_search_tokens_skip_bigrams_that_straddle_words() -> None:
    from knowledge.tokens import tokens

    # particles, suffixes and "place + verb" pairs name no topic: 子上, 上有, 了怎, 什么
    assert tokens("茄子上有蓟马") == ["茄子", "有蓟", "蓟马"]
    assert tokens("叶子上有虫怎么办") == ["叶子", "有虫"]
    # dialect function words fold first; a verb and its object said apart still meet: 驱一次虫 = 驱虫
    assert "驱虫" in tokens("羊多久驱一次虫")
    assert tokens("苞米秆上鼓包") == tokens("玉米秆上鼓包")
    # SMS shorthand, irregular verbs and American spellings fold to one form
    assert tokens("u r the best") == tokens("you are the best")
    assert tokens("the road sank") == ["road", "sink"]
    assert tokens("diarrhea") == tokens("diarrhoea")
    # the index keeps every bigram, so a question can still be matched against it
    assert "子上" in tokens("茄子上有蓟马", keep_stop=True)
