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
