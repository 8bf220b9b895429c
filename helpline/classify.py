"""Tell what a message is, from word lists in both languages (data/intents.yaml, grid_keywords.yaml).

The order is the order an 81890 operator listens in: an emergency first, then a question about an
earlier case, a wish for a person, a street problem to report, a service to book, a greeting.
Anything else is a question for the knowledge base, whose search decides how sure it is.

Text is normalised first, so SMS shorthand and missing punctuation match as well as careful
writing: Chinese is matched as substrings of the text with spaces and punctuation removed,
English as whole words or phrases, with plurals folded (street lights = street light).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import yaml

from helpline.request import Intent
from helpline.router import Classification
from helpline.taxonomy import GridClass, data_path, shipped_keywords, shipped_taxonomy
from knowledge.tokens import fold_word, to_simplified, tokens

_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)
_WORD = re.compile(r"[a-z0-9]+")
_NUMBER = re.compile(r"\d{3,}")
_QUESTION_ZH = ("吗", "怎么", "如何", "什么", "是否", "能不能", "可不可以", "可以不", "多少", "哪里", "为什么", "咋")
_QUESTION_EN = frozenset({"how", "what", "why", "can", "is", "should", "which", "where", "do", "does", "are"})


def normalise(text: str) -> str:
    """Fold width, case and traditional characters, drop punctuation and spaces: '  HELLO！！' -> 'hello'."""
    return _PUNCT.sub("", to_simplified(unicodedata.normalize("NFKC", text)).lower())


def _words(text: str, stem: bool = True) -> list[str]:
    folded = unicodedata.normalize("NFKC", text).lower().replace("'", "").replace("\u2019", "")
    return [fold_word(w) if stem else w for w in _WORD.findall(folded)]


@dataclass(frozen=True)
class Text:
    """A message in the two forms the matchers need."""

    raw: str

    @cached_property
    def zh(self) -> str:
        return normalise(self.raw)

    @cached_property
    def words(self) -> list[str]:
        return _words(self.raw)

    @cached_property
    def en(self) -> str:
        return f" {' '.join(self.words)} "

    @cached_property
    def en_exact(self) -> str:
        """Words as written (no stemming), for lists where tense matters: "I booked" vs "do I book"."""
        return f" {' '.join(_words(self.raw, stem=False))} "

    @cached_property
    def heads(self) -> set[str]:
        """Every character and pair of characters: where a Chinese term could start."""
        z = self.zh
        return {z[i : i + 2] for i in range(len(z))} | set(z)

    @cached_property
    def wordset(self) -> set[str]:
        return set(self.words)

    @cached_property
    def wordset_exact(self) -> set[str]:
        return set(self.en_exact.split())

    @cached_property
    def is_question(self) -> bool:
        return any(q in self.zh for q in _QUESTION_ZH) or "?" in self.raw or "？" in self.raw or (
            bool(self.words) and self.words[0] in _QUESTION_EN
        )


class Terms:
    """A word list in both languages; ``find`` returns the terms present, longest first.

    Terms are filed by how they start (a Chinese term by its first two characters, an English
    one by its first word), so a message is only checked against terms whose start it contains:
    the classifier runs a few thousand terms per message in tens of microseconds.
    """

    def __init__(self, zh: list[str] | None = None, en: list[str] | None = None, exact: bool = False) -> None:
        self.exact = exact
        self.zh = sorted({normalise(t) for t in zh or [] if normalise(t)}, key=len, reverse=True)
        self.en = sorted(
            {f" {' '.join(_words(t, stem=not exact))} " for t in en or [] if _words(t)}, key=len, reverse=True
        )
        self._index()

    @classmethod
    def normalised(cls, zh: list[str], en: list[str]) -> Terms:
        """Terms already in matching form (as ``find`` returns them), to merge several lists into one."""
        terms = cls()
        terms.zh = sorted(set(zh), key=len, reverse=True)
        terms.en = sorted({f" {t} " for t in en}, key=len, reverse=True)
        terms._index()
        return terms

    def _index(self) -> None:
        self._zh_by_head: dict[str, list[str]] = {}
        for t in self.zh:
            self._zh_by_head.setdefault(t[:2], []).append(t)
        self._en_by_first: dict[str, list[str]] = {}
        for t in self.en:
            self._en_by_first.setdefault(t.split()[0], []).append(t)

    @classmethod
    def of(cls, data: dict[str, Any], zh: str = "zh", en: str = "en", exact: bool = False) -> Terms:
        return cls([str(t) for t in data.get(zh, [])], [str(t) for t in data.get(en, [])], exact)

    def _candidates(self, text: Text) -> tuple[list[str], list[str], str]:
        zh = [t for head in text.heads & self._zh_by_head.keys() for t in self._zh_by_head[head]]
        words = text.wordset_exact if self.exact else text.wordset
        en = [t for first in words & self._en_by_first.keys() for t in self._en_by_first[first]]
        return zh, en, text.en_exact if self.exact else text.en

    def find(self, text: Text) -> list[str]:
        zh, en, en_text = self._candidates(text)
        found = [t for t in zh if _zh_in(t, text.zh)] + [t.strip() for t in en if t in en_text]
        return sorted(found, key=len, reverse=True)

    def __contains__(self, text: Text) -> bool:
        zh, en, en_text = self._candidates(text)
        return any(_zh_in(t, text.zh) for t in zh) or any(t in en_text for t in en)


_GAP = 6


def _zh_in(term: str, text: str) -> bool:
    """A Chinese term is in the text as written, or - for 4+ characters - as its first two
    characters followed within a few characters by the rest: 河里垃圾 matches 河里漂了好多垃圾."""
    if term in text:
        return True
    if len(term) < 4:
        return False
    head, rest = term[:2], term[2:]
    start = text.find(head)
    while start != -1:
        window = text[start + 2 : start + 2 + len(rest) + _GAP]
        if rest in window:
            return True
        start = text.find(head, start + 1)
    return False


@dataclass(frozen=True)
class GridMatch:
    cls: GridClass
    term: str
    needs_problem: bool  # a component, or an event's "thing" word: a problem only with a problem word


class RuleClassifier:
    """The router's classifier: data-driven, both languages, no model to train or download."""

    def __init__(self, intents: dict[str, Any], taxonomy: dict[str, GridClass], grid_words: dict[str, dict[str, list[str]]]) -> None:
        em = intents["emergency"]
        self.emergency = [(kind, str(v["number"]), Terms.of(v)) for kind, v in em.items() if kind != "not"]
        self.emergency_not = Terms.of(em["not"], exact=True)
        st = intents["case_status"]
        self.status = Terms.of(st, exact=True)
        self.status_weak = Terms(st.get("weak_zh", []))
        self.status_patterns = [re.compile(p, re.IGNORECASE) for p in st["patterns"]]
        self.status_howto = Terms.of(st, "howto_zh", "howto_en", exact=True)
        self.status_past = Terms.of(st, "past_zh", "past_en", exact=True)
        self.status_waiting = Terms.of(st, "waiting_zh", "waiting_en", exact=True)
        op = intents["operator"]
        self.operator = Terms.of(op)
        self.operator_not = Terms.of(op, "not_zh", "not_en")
        self.operator_exact = {normalise(str(x)) for x in op.get("exact", [])}
        bk = intents["booking"]
        self.booking_verbs = Terms.of(bk, "verbs_zh", "verbs_en")
        self.booking_strong = Terms(["预约", "预定", "预订", "挂号", "约个", "帮我约"], ["book", "booking", "appointment", "reserve", "schedule"])
        self.booking_services = Terms.of(bk, "services_zh", "services_en")
        self.providers = Terms.of(bk, "providers_zh", "providers_en")
        self.appliances = Terms.of(bk, "appliances_zh", "appliances_en")
        self.when = Terms.of(bk, "when_zh", "when_en")
        self.home = Terms.of(bk, "home_zh", "home_en")
        gr = intents["grid"]
        self.problem = Terms.of(gr, "problem_zh", "problem_en")
        self.report = Terms.of(gr, "report_zh", "report_en")
        self.public = Terms.of(gr, "public_zh", "public_en")
        self.report_howto = Terms.of(gr, "howto_zh", "howto_en")
        self.grid_not = Terms.of(gr, "not_zh", "not_en")
        self.farm = Terms.of(gr, "farm_zh", "farm_en")
        self.menu = Terms.of(intents["menu"])
        sub = intents["subscription"]
        self.subscription = {normalise(str(w)): action for action in ("stop", "start") for w in sub[action]}
        self.grid: list[tuple[GridClass, Terms, Terms]] = []
        for code, cls in taxonomy.items():
            words = grid_words.get(code, {"zh": [], "en": []})
            # "Other" classes (99) are never guessed from words: an operator codes them.
            if cls.minor_code == "99":
                continue
            zh = [cls.minor_zh, *words["zh"]]
            en = [cls.minor_en, *words["en"]]
            plain = Terms([w for w in zh if not w.startswith("~")], [w for w in en if not w.startswith("~")])
            things = Terms([w[1:] for w in zh if w.startswith("~")], [w[1:] for w in en if w.startswith("~")])
            self.grid.append((cls, plain, things))
        # One index over every class's words, and which classes (and whether as a "thing") own each.
        self.grid_owner: dict[str, list[tuple[GridClass, bool]]] = {}
        for cls, plain, things in self.grid:
            for terms, thing in ((plain, False), (things, True)):
                for term in [*terms.zh, *(t.strip() for t in terms.en)]:
                    self.grid_owner.setdefault(term, []).append((cls, thing))
        self.grid_terms = Terms.normalised(
            [t for t in self.grid_owner if not t.isascii()], [t for t in self.grid_owner if t.isascii()]
        )
        self.grid_index = GridIndex((cls, [*plain.zh, *things.zh], [*plain.en, *things.en]) for cls, plain, things in self.grid)

    @classmethod
    @cache
    def shipped(cls) -> RuleClassifier:
        with data_path("intents.yaml").open(encoding="utf-8") as fh:
            intents = yaml.safe_load(fh)
        return cls(intents, shipped_taxonomy(), shipped_keywords())

    def classify(self, text: str, lang: str) -> Classification:
        msg = Text(text)
        for check in (self._emergency, self._status, self._operator, self._grid_or_booking, self._menu):
            verdict = check(msg)
            if verdict is not None:
                return verdict
        return Classification(Intent.KNOWLEDGE, 0.5, second=self.second_reading(msg))

    def _emergency(self, msg: Text) -> Classification | None:
        if msg.raw.strip() in {"119", "120", "110", "122"}:
            return None  # a bare number is a question about it, not a report
        for kind, number, terms in self.emergency:
            if msg in terms and msg not in self.emergency_not:
                return Classification(Intent.EMERGENCY, 1.0, {"kind": kind, "number": number})
        return None

    def _status(self, msg: Text) -> Classification | None:
        number = _NUMBER.search(msg.raw)
        for pattern in self.status_patterns:
            if pattern.search(msg.raw.strip()) or pattern.search(msg.zh):
                return Classification(Intent.CASE_STATUS, 1.0, {"number": number.group() if number else None})
        strong = [t for t in self.status.find(msg) if t not in self.status_weak.zh]
        if not number and msg in self.status_howto:
            return None  # "how do I check my case?" is a question for the knowledge base
        if strong or (number and msg in self.status) or (msg in self.status_past and msg in self.status_waiting):
            return Classification(Intent.CASE_STATUS, 0.9, {"number": number.group() if number else None})
        return None

    def _operator(self, msg: Text) -> Classification | None:
        if msg.zh in self.operator_exact or (
            msg in self.operator and msg not in self.operator_not and "人工授精" not in msg.zh
        ):
            return Classification(Intent.OPERATOR, 1.0)
        return None

    def grid_class(self, msg: Text) -> GridMatch | None:
        """The grid class the message names: a problem named outright (an event) before a
        component (often only where it happened), and among those the longest matching word."""
        best: GridMatch | None = None
        for term in self.grid_terms.find(msg):
            for cls, thing in self.grid_owner[term]:
                match = GridMatch(cls, term, cls.kind == "component" or thing)
                if best is None or _grid_rank(match) > _grid_rank(best):
                    best = match
        return best

    def _grid_or_booking(self, msg: Text) -> Classification | None:
        reported = msg in self.problem or msg in self.report
        asking = msg in self.report_howto or msg in self.grid_not
        grid = self.grid_class(msg)
        if grid is not None and not (reported or (not grid.needs_problem and not msg.is_question)):
            grid = None
        guess = self.grid_index.best(msg) if msg not in self.farm else None
        if grid is None and guess is not None and reported and not msg.is_question:
            grid = guess  # no known phrase, but its words and a problem word say which class
        if asking:
            grid = None  # "how do I report …?", "is burning straw allowed?": questions for the knowledge base
        service = msg in self.booking_services
        verb = msg in self.booking_verbs
        at_home = msg in self.home
        public = msg in self.public
        booking = (
            (service and (verb or at_home or msg in self.when))
            or msg in self.booking_strong
            or msg in self.providers
            or (msg in self.appliances and (reported or verb) and not public)
        )
        if grid is not None and booking and (at_home or not public) and (service or at_home or msg in self.appliances):
            grid = None  # a repair job at someone's home is a booking, not a city case
        if grid is not None:
            return Classification(Intent.GRID_CASE, 0.9, {"code": grid.cls.code, "term": grid.term})
        if booking:
            return Classification(Intent.BOOKING, 0.9)
        return None

    def second_reading(self, msg: Text) -> Classification | None:
        """What the words might be if the knowledge base has no answer: a street problem named by
        its words alone, or a repair wanted at home."""
        if msg in self.report_howto or msg in self.grid_not:
            return None
        guess = self.grid_index.best(msg) if msg not in self.farm else None
        if guess is not None and (msg in self.problem or msg in self.report or not guess.needs_problem):
            return Classification(Intent.GRID_CASE, 0.5, {"code": guess.cls.code, "term": guess.term})
        if msg in self.appliances or msg in self.booking_services:
            return Classification(Intent.BOOKING, 0.5)
        return None

    def _menu(self, msg: Text) -> Classification | None:
        action = self.subscription.get(msg.zh)
        if action is not None:
            return Classification(Intent.MENU, 1.0, {"subscription": action})
        if is_greeting(msg, self.menu):
            return Classification(Intent.MENU, 1.0)
        return None


_POLITE = frozenset(fold_word(w) for w in ("there", "please", "all", "sir", "madam", "everyone", "guys"))


class GridIndex:
    """Grid classes as bags of search tokens, for messages that use none of the known phrases
    ("sewage coming up out of the drain"): the class sharing the most specific tokens wins."""

    MIN_SCORE = 5.5  # more than one token: one shared word ("green", "night") is a coincidence

    def __init__(self, classes: Iterable[tuple[GridClass, list[str], list[str]]]) -> None:
        self.classes: list[tuple[GridClass, frozenset[str], bool]] = []
        for cls, zh, en in classes:
            bag = frozenset(t for term in [*zh, *en] for t in tokens(term))
            self.classes.append((cls, bag, cls.kind == "component"))
        spread = Counter(t for _, bag, _ in self.classes for t in bag)
        self.weight = {t: math.log(1 + len(self.classes) / n) for t, n in spread.items()}

    def best(self, msg: Text) -> GridMatch | None:
        found = set(tokens(msg.raw))
        if not found:
            return None
        best: tuple[float, GridClass, str] | None = None
        for cls, bag, _ in self.classes:
            shared = found & bag
            if not shared:
                continue
            score = sum(self.weight[t] for t in shared)
            if best is None or score > best[0]:
                best = (score, cls, " ".join(sorted(shared)))
        if best is None or best[0] < self.MIN_SCORE:
            return None
        return GridMatch(best[1], best[2], best[1].kind == "component")


def _grid_rank(match: GridMatch) -> tuple[bool, bool, int]:
    """Problems named outright first, then components, then the longest word."""
    return (not match.needs_problem, match.cls.kind == "component", len(match.term))


def is_greeting(msg: Text, menu: Terms) -> bool:
    """A short message that is only a greeting or a call for help ("你好在吗", "Hi there!")."""
    if not msg.zh:
        return False
    rest_zh = msg.zh
    for term in menu.zh:
        rest_zh = rest_zh.replace(term, "")
    if msg.zh and not rest_zh and len(msg.zh) <= 12:
        return True
    rest_en = msg.en
    for term in menu.en:
        rest_en = rest_en.replace(term, " ")
    leftover = [w for w in rest_en.split() if w not in _POLITE]
    return bool(msg.words) and not leftover and len(msg.words) <= 6 and msg.zh.isascii()
