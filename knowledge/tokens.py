"""Search tokens for Chinese and English, the same on SQLite (FTS5) and PostgreSQL (tsvector).

Chinese has no spaces, and the 2-character words residents type (井盖, 低保, 赤霉) are too short for
trigram indexes, so Chinese runs become overlapping character bigrams: 稻瘟病 -> 稻瘟 瘟病. English
becomes lower-cased words with a light plural fold (pigs -> pig). Both are joined with spaces and
handed to the database's plain tokenizer, which then only has to split on spaces.
"""

from __future__ import annotations

import re
import unicodedata

import zhconv

# Bump when tokens change: stored articles are then re-indexed on the next import or start.
INDEX_VERSION = 3

_RUNS = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[a-z0-9]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

# Bigrams that carry no topic: question words and filler residents put around what they mean.
CJK_STOP = frozenset(
    """怎么 么办 怎样 如何 什么 为什 么了 请问 问一 一下 我家 我们 你们 他们 这个 那个 这样 那样 可以 能不
    不能 是不 不是 有没 没有 吗请 一个 个月 的时 时候 现在 还是 应该 需要 要怎 么样 啥时 咋办 咋整 谢谢
    好的 帮我 帮忙 麻烦 我的 有什 了怎 了咋 的话 就是 已经 知道 告诉 了吗 办法 一点 为啥 这种 那种""".split()
)
EN_STOP = frozenset(
    """a an the and or but if of to in on at for with from by about as is are was were be been being am do does did
    doing have has had having i me my we our you your he she it its they them their this that these those there
    here what which who whom how why when where can could should would will shall may might must please help hi
    hello thanks thank just get got so not no yes any some all very too also than then into out up down over again
    there im dont cant wont whats hows""".split()
)


_IRREGULAR = {"leaves": "leaf", "lives": "life", "knives": "knife", "children": "child", "feet": "foot", "teeth": "tooth",
              "mice": "mouse", "geese": "goose", "women": "woman", "men": "man", "people": "person", "burnt": "burn"}
_DOUBLED = re.compile(r"([bdfgklmnprtz])\1$")


def fold_word(word: str) -> str:
    """A light English stem (predictable beats clever), the same for questions and articles.

    pigs -> pig, flies -> fly, scammed -> scam, rotting -> rot, bloated -> bloat, leaves -> leaf;
    a final e goes too, so vaccinate and vaccinated (and rice and rices) meet.
    """
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if not word.isalpha():
        return word
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 5 and word.endswith("ing"):
        word = _undouble(word[:-3])
    elif len(word) > 4 and word.endswith("ed") and not word.endswith("eed"):
        word = _undouble(word[:-2])
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 3 and word.endswith("e") and not word.endswith("ee"):
        word = word[:-1]
    return word


def _undouble(stem: str) -> str:
    return stem[:-1] if _DOUBLED.search(stem) and len(stem) > 3 else stem


def to_simplified(text: str) -> str:
    """Traditional characters to simplified (路燈壞了 -> 路灯坏了): the knowledge base is simplified."""
    return zhconv.convert(text, "zh-cn") if _CJK.search(text) else text


def tokens(text: str, *, keep_stop: bool = False) -> list[str]:
    """Search tokens of ``text``, in order, duplicates kept (the caller dedupes if it wants)."""
    out: list[str] = []
    for run in _RUNS.findall(to_simplified(unicodedata.normalize("NFKC", text)).lower()):
        if _CJK.match(run):
            if len(run) == 1:
                out.append(run)
                continue
            for i in range(len(run) - 1):
                gram = run[i : i + 2]
                if keep_stop or gram not in CJK_STOP:
                    out.append(gram)
        elif keep_stop or (run not in EN_STOP and (len(run) > 1 or run.isdigit())):
            out.append(fold_word(run))
    return out


def query_tokens(text: str) -> list[str]:
    """Distinct tokens of a query, in order; falls back to stop tokens when nothing else is left."""
    seen = dict.fromkeys(tokens(text))
    if not seen:
        seen = dict.fromkeys(tokens(text, keep_stop=True))
    return list(seen)


def index_text(*parts: str) -> str:
    """Tokens joined by spaces, with a space at each end too, so that search can test a token
    with ``f" {token} " in text`` without splitting the whole text."""
    return " " + " ".join(t for part in parts for t in tokens(part, keep_stop=True)) + " "
