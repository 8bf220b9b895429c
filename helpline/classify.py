"""Tell what a message is, from word lists in both languages (data/intents.yaml, grid_keywords.yaml).

The order is the order an 81890 operator listens in: an emergency first, then a question about an
earlier case, a wish for a person, a street problem to report, a service to book, a greeting.
Anything else is a question for the knowledge base, whose search decides how sure it is.

Text is normalised first, so SMS shorthand and missing punctuation match as well as careful
writing: Chinese is matched as substrings of the text with spaces and punctuation removed, with
traditional characters and dialect function words folded (咋還沒修 = 怎么还没修); English as whole
words or phrases, with plurals, irregular verbs and SMS shorthand folded (street lights = street
light, sank = sinking, u = you) and one slip of the keys mended (stret = street). Words that
belong together may stand a little apart: 河里垃圾 matches 河里漂了好多垃圾, "drain blocked"
matches "the drain outside has been blocked".

Out-of-scope chat (shares, lottery, concerts, jokes) is told apart as ``unknown`` rather than
answered from the knowledge base.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any

import yaml

from helpline.request import Intent
from helpline.router import Classification
from helpline.taxonomy import GridClass, data_path, shipped_keywords, shipped_taxonomy
from knowledge.tokens import EN_STOP, expand_shorthand, fold_word, to_standard, tokens

_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)
_WORD = re.compile(r"[a-z0-9]+")
_NUMBER = re.compile(r"\d{3,}")
_QUESTION_ZH = ("吗", "怎么", "如何", "什么", "是否", "能不能", "可不可以", "可以不", "多少", "哪里", "为什么", "咋")
# "处理了吗", "处理了没", "处理了没有" ask the same: one form, so a word list needs only one of them.
_ASKED_DONE = re.compile(r"了(?:吗|没有)")
_QUESTION_EN = frozenset({"how", "what", "why", "can", "is", "should", "which", "where", "do", "does", "are"})


def normalise(text: str) -> str:
    """Fold width, case, traditional characters and dialect function words, drop punctuation and
    spaces: '  HELLO！！' -> 'hello', '咋還沒修' -> '怎么还没修'."""
    return _ASKED_DONE.sub("了没", _PUNCT.sub("", to_standard(unicodedata.normalize("NFKC", text)).lower()))


def _words(text: str, stem: bool = True, speller: Speller | None = None) -> list[str]:
    folded = unicodedata.normalize("NFKC", text).lower().replace("'", "").replace("\u2019", "")
    words = [expand_shorthand(w) for w in _WORD.findall(folded)]
    if speller is not None:
        words = [speller(w) for w in words]
    return [fold_word(w) for w in words] if stem else words


class Speller:
    """Mends one slip of the keys in an English word the word lists use: stret -> street,
    flickring -> flickering, rubish -> rubbish. Only words of five letters or more that are no
    English word the line knows (word lists, knowledge base) are mended, and only when exactly
    one listed word, with the same first letter, is one letter away."""

    def __init__(self, vocabulary: Iterable[str], known: Iterable[str] = ()) -> None:
        self.vocabulary = {w for w in vocabulary if len(w) >= 4 and w.isalpha() and w.isascii()}
        self.known = self.vocabulary | {w for w in known if w.isascii()} | EN_STOP
        self._mended: dict[str, str] = {}

    def __call__(self, word: str) -> str:
        if len(word) < 5 or word in self.known or not word.isalpha():
            return word
        mended = self._mended.get(word)
        if mended is None:
            near = {w for w in _one_slip(word) if w in self.vocabulary and w[0] == word[0]}
            mended = self._mended[word] = near.pop() if len(near) == 1 else word
        return mended


def _one_slip(word: str) -> set[str]:
    """Every word one deletion, swap, change or insertion away."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    return (
        {a + b[1:] for a, b in splits if b}
        | {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
        | {a + c + b[1:] for a, b in splits if b for c in letters}
        | {a + c + b for a, b in splits for c in letters}
    )


@dataclass(frozen=True)
class Text:
    """A message in the two forms the matchers need."""

    raw: str
    speller: Speller | None = field(default=None, compare=False)

    @cached_property
    def zh(self) -> str:
        return normalise(self.raw)

    @cached_property
    def words(self) -> list[str]:
        return _words(self.raw, speller=self.speller)

    @cached_property
    def en(self) -> str:
        return f" {' '.join(self.words)} "

    @cached_property
    def en_exact(self) -> str:
        """Words as written (no stemming), for lists where tense matters: "I booked" vs "do I book"."""
        return f" {' '.join(_words(self.raw, stem=False, speller=self.speller))} "

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
        self.gap = False
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
        found = [t for t in zh if _zh_in(t, text.zh)] + [t.strip() for t in en if t in en_text or self._en_gap(t, text)]
        return sorted(found, key=lambda t: (-len(t), t))

    def _en_gap(self, term: str, text: Text) -> bool:
        """With ``gap`` set, an English phrase of two or three words also matches with a word or two
        between its words, as a Chinese term does with characters between (``_zh_in``): "the drain
        outside has been blocked" has "drain blocked", "tables out on the sidewalk" "tables on the sidewalk"."""
        if not self.gap:
            return False
        words = term.split()
        if not 2 <= len(words) <= 4:
            return False
        if any(w in EN_STOP for w in words):
            return False  # "parks on" is no gap phrase: "parking meter on Jiefang Rd"
        seq = text.words
        for start, word in enumerate(seq):
            if word != words[0]:
                continue
            at, ok = start, True
            for want in words[1:]:
                window = seq[at + 1 : at + 2 + _EN_GAP]
                if want not in window:
                    ok = False
                    break
                at = at + 1 + window.index(want)
            if ok:
                return True
        return False

    def __contains__(self, text: Text) -> bool:
        zh, en, en_text = self._candidates(text)
        return any(_zh_in(t, text.zh) for t in zh) or any(t in en_text or self._en_gap(t, text) for t in en)


_GAP = 6
_EN_GAP = 3
_ARTICLE_END = re.compile(r" (?:the|a|an|that|this|our|my) $")


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
    score: float = 0.0  # for a guess from the words alone: how much they say (GridIndex)
    place: bool = False  # named only as where the problem is ("公交站旁边的井盖": 公交站)


class RuleClassifier:
    """The router's classifier: data-driven, both languages, no model to train or download."""

    def __init__(
        self,
        intents: dict[str, Any],
        taxonomy: dict[str, GridClass],
        grid_words: dict[str, dict[str, list[str]]],
        known_words: Iterable[str] = (),
    ) -> None:
        """``known_words``: other English words residents use that are spelt right (the knowledge
        base's), so that the speller leaves them alone."""
        listed = [*_strings(intents), *_strings(grid_words), *(c.minor_en for c in taxonomy.values())]
        self.speller = Speller(
            (w for t in listed if t.isascii() for w in _WORD.findall(t.lower().lstrip("~"))), known_words
        )
        em = intents["emergency"]
        # A word marked ~ ("~被车撞倒") is an emergency only when a person is named: a railing
        # knocked down by a car is a street problem.
        self.emergency = [
            (kind, str(v["number"]), _plain(Terms, v), _marked(Terms, v))
            for kind, v in em.items()
            if kind not in ("not", "person")
        ]
        self.emergency_not = Terms.of(em["not"], exact=True)
        self.person = Terms.of(em.get("person", {}))
        st = intents["case_status"]
        self.status = Terms.of(st, exact=True)
        self.status_weak = Terms(st.get("weak_zh", []))
        self.status_patterns = [re.compile(p, re.IGNORECASE) for p in st["patterns"]]
        self.status_howto = Terms.of(st, "howto_zh", "howto_en", exact=True)
        self.status_past = Terms.of(st, "past_zh", "past_en", exact=True)
        self.status_waiting = Terms.of(st, "waiting_zh", "waiting_en", exact=True)
        self.status_past_patterns = [re.compile(p, re.IGNORECASE) for p in st.get("past_patterns", [])]
        self.status_not = Terms.of(st, "not_zh", "not_en")
        op = intents["operator"]
        self.operator = Terms.of(op)
        self.operator_not = Terms.of(op, "not_zh", "not_en")
        self.operator_exact = {normalise(str(x)) for x in op.get("exact", [])}
        # A person asked for: "找个工作人员跟我说", "give me a person".
        self.operator_who = Terms.of(op, "who_zh", "who_en")
        self.operator_want = Terms.of(op, "want_zh", "want_en")
        bk = intents["booking"]
        self.booking_verbs = Terms.of(bk, "verbs_zh", "verbs_en")
        self.booking_strong = Terms(["预约", "预定", "预订", "挂号", "约个", "帮我约"], ["book", "booking", "appointment", "reserve", "schedule"])
        self.booking_services = Terms.of(bk, "services_zh", "services_en")
        # "test the soil" is a "soil test": with a request verb, a service's words in any order count.
        self.booking_bag = [set(t.split()) for t in self.booking_services.en if len(t.split()) > 1]
        self.booking_howto = Terms.of(bk, "howto_zh", "howto_en")
        self.booking_not = Terms.of(bk, "not_zh", "not_en")
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
        off = intents.get("off_topic", {})
        self.off_topic = Terms.of(off)
        self.off_topic_not = Terms.of(off, "not_zh", "not_en")
        self.place_after = Terms.of(gr, "place_after_zh", "place_before_en")
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
        self.grid_terms.gap = True
        # Where a problem is ("路边", "street") says nothing about what it is, unless it names a
        # street thing itself (a bus stop, a car park): such words are no evidence for a class.
        named = {t for cls, _, _ in self.grid for t in tokens(f"{cls.minor_zh} {cls.minor_en}")}
        places = {t for w in [*gr.get("public_zh", []), *gr.get("public_en", [])] for t in tokens(str(w))} - named
        self.grid_index = GridIndex(
            ((cls, [*plain.zh, *things.zh], [*plain.en, *things.en]) for cls, plain, things in self.grid), places
        )

    @classmethod
    @cache
    def shipped(cls) -> RuleClassifier:
        with data_path("intents.yaml").open(encoding="utf-8") as fh:
            intents = yaml.safe_load(fh)
        return cls(intents, shipped_taxonomy(), shipped_keywords(), _knowledge_words())

    def classify(self, text: str, lang: str) -> Classification:
        msg = Text(text, self.speller)
        checks = (self._emergency, self._status, self._operator, self._grid_or_booking, self._menu, self._off_topic)
        for check in checks:
            verdict = check(msg)
            if verdict is not None:
                return verdict
        return Classification(Intent.KNOWLEDGE, 0.5, second=self.second_reading(msg))

    def _off_topic(self, msg: Text) -> Classification | None:
        """Shares, lottery, concerts, train tickets, jokes: nothing the line (or its knowledge base) is for."""
        if msg in self.off_topic and msg not in self.off_topic_not:
            return Classification(Intent.UNKNOWN, 0.8)
        return None

    def _emergency(self, msg: Text) -> Classification | None:
        if msg.raw.strip() in {"119", "120", "110", "122"}:
            return None  # a bare number is a question about it, not a report
        for kind, number, terms, needs_person in self.emergency:
            if (msg in terms or (msg in needs_person and msg in self.person)) and msg not in self.emergency_not:
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
        past = msg in self.status_past or any(p.search(msg.en_exact) for p in self.status_past_patterns)
        if not number and msg in self.status_not:
            return None  # "补贴怎么还没发": money not yet paid is a question for the knowledge base
        if strong or (number and msg in self.status) or (past and msg in self.status_waiting):
            return Classification(Intent.CASE_STATUS, 0.9, {"number": number.group() if number else None})
        return None

    def _operator(self, msg: Text) -> Classification | None:
        if _repeats_one_of(msg.zh, self.operator_exact) or (
            msg in self.operator and msg not in self.operator_not and "人工授精" not in msg.zh
        ):
            return Classification(Intent.OPERATOR, 1.0)
        if (
            msg in self.operator_who
            and msg in self.operator_want
            and msg not in self.operator_not
            and msg not in self.booking_services
        ):
            return Classification(Intent.OPERATOR, 0.9)
        return None

    def grid_class(self, msg: Text) -> GridMatch | None:
        """The grid class the message names: a problem named outright (an event) before a
        component, a component with its problem word beside it ("井盖没了") before one that is
        only where it happened ("路灯杆底下那个小井盖没了"), then the most specific matching word;
        among equals, the class more of whose words the message uses."""
        found = self.grid_terms.find(msg)
        if not found:
            return None
        scores = self.grid_index.scores(msg) if len(found) > 1 or len(self.grid_owner[found[0]]) > 1 else {}
        best: GridMatch | None = None
        best_rank: tuple[bool, bool, bool, int, float] | None = None
        for term in found:
            place = self._names_a_place(msg, term)
            beside = self._problem_beside(msg, term)
            for cls, thing in self.grid_owner[term]:
                match = GridMatch(cls, term, cls.kind == "component" or thing, place=place)
                outright = not match.needs_problem
                specific = self.grid_index.specific(term)
                rank = (not place, outright, outright or beside, specific, scores.get(cls.code, 0.0))
                if best_rank is None or rank > best_rank:
                    best, best_rank = match, rank
        return best

    def _problem_beside(self, msg: Text, term: str) -> bool:
        """Whether a problem word is right beside the term: "垃圾桶满得往外冒", "bin at the corner broken"."""
        if term.isascii():
            words, want = msg.en.split(), term.split()
            literal = f" {term} " in msg.en
            span = len(want) if literal else len(want) + _EN_GAP * (len(want) - 1)
            for i in range(len(words)):
                if words[i : i + len(want)] == want or (not literal and words[i] == want[0]):
                    window = f" {' '.join(words[max(0, i - 2) : i + span + 4])} "
                    if any(p in window for p in self.problem.en):
                        return True
            return False
        literal = term in msg.zh
        at = msg.zh.find(term if literal else term[:2])  # a term found with a gap: from its head on
        span = len(term) if literal else len(term) + _GAP
        while at >= 0:
            window = msg.zh[max(0, at - 3) : at + span + 6]
            if any(p in window for p in self.problem.zh):
                return True
            at = msg.zh.find(term if literal else term[:2], at + 1)
        return False

    def _names_a_place(self, msg: Text, term: str) -> bool:
        """Whether a component is only where the problem is: "公交站旁边的井盖", "manhole near the bus stop"."""
        if term.isascii():
            at = msg.en.find(f" {term} ")
            before = _ARTICLE_END.sub(" ", msg.en[: at + 1]) if at >= 0 else ""
            return any(before.endswith(p) for p in self.place_after.en)
        at = msg.zh.find(term)
        if at < 0:
            return False
        after = msg.zh[at + len(term) : at + len(term) + 4]
        return any(after.startswith(w) for w in self.place_after.zh)

    def _grid_or_booking(self, msg: Text) -> Classification | None:
        reported = msg in self.problem or msg in self.report
        asking = msg in self.report_howto or msg in self.grid_not
        grid = self.grid_class(msg)
        if grid is not None and not (reported or (not grid.needs_problem and not msg.is_question)):
            grid = None
        farm = msg in self.farm
        guess = self.grid_index.best(msg) if not farm or msg in self.public else None
        if guess is not None and not msg.is_question:
            event = not guess.needs_problem
            if grid is None and ((reported and not farm) or (event and self.grid_index.strong(guess))):
                # No known phrase, but its words and a problem word say which class; or the words
                # of one kind of street problem are so many and so specific that they say it alone.
                grid = guess
            elif grid is not None and grid.needs_problem and grid.place and event:
                grid = guess  # the component named is only the place ("桥洞下面就淹"): the event is the problem
        if asking:
            grid = None  # "how do I report …?", "is burning straw allowed?": questions for the knowledge base
        appliances = _outside(self.appliances.find(msg), self.farm.find(msg) + self.grid_not.find(msg))
        verb = msg in self.booking_verbs
        service = msg in self.booking_services or (verb and any(bag <= msg.wordset for bag in self.booking_bag))
        at_home = msg in self.home
        public = msg in self.public
        when = msg in self.when
        booking = (
            (service and (verb or at_home or when))
            or msg in self.booking_strong
            or msg in self.providers
            or (appliances and (reported or verb) and not public)
        )
        if booking and (msg in self.booking_not or (msg in self.booking_howto and not when)):
            booking = False  # "should I call a vet?", "how do I book through you?": questions
        if grid is not None and booking and (at_home or not public) and (service or at_home or appliances):
            # A repair job at someone's home is a booking, not a city case - unless the street
            # thing is named outright and the home one only by a shorter word ("telecom cabinet"
            # with its "wires").
            if service or at_home or max(map(len, appliances)) >= len(grid.term) or grid.term not in self.grid_owner:
                grid = None
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


def _plain(terms: type[Terms], data: dict[str, Any]) -> Terms:
    return terms([str(w) for w in data.get("zh", []) if not str(w).startswith("~")],
                 [str(w) for w in data.get("en", []) if not str(w).startswith("~")])


def _marked(terms: type[Terms], data: dict[str, Any]) -> Terms:
    return terms([str(w)[1:] for w in data.get("zh", []) if str(w).startswith("~")],
                 [str(w)[1:] for w in data.get("en", []) if str(w).startswith("~")])


def _strings(data: Any) -> Iterable[str]:
    """Every string in a nest of dicts and lists (a word list file)."""
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for value in data.values():
            yield from _strings(value)
    elif isinstance(data, list):
        for value in data:
            yield from _strings(value)


def _knowledge_words() -> set[str]:
    """The English words of the shipped knowledge base: real words, never to be "mended"."""
    from knowledge.loader import read_articles, shipped_path

    words: set[str] = set()
    for article in read_articles(shipped_path()):
        keywords = map(str, article.keywords.get("en", []))
        text = " ".join([article.title_en, *keywords, article.short_en, article.full_en])
        words.update(_WORD.findall(text.lower()))
    return words


def _outside(found: list[str], longer: list[str]) -> list[str]:
    """The terms of ``found`` that are not part of a longer term found in another list: "tap" is
    no appliance in "tap water"."""
    return [t for t in found if not any(t != other and t in other for other in longer)]


def _repeats_one_of(text: str, words: set[str]) -> bool:
    """The text is one of ``words``, said once or more ("人工", "人工人工")."""
    return any(text == w * (len(text) // len(w)) for w in words if w and len(text) % len(w) == 0)


_POLITE = frozenset(fold_word(w) for w in ("there", "please", "all", "sir", "madam", "everyone", "guys"))


class GridIndex:
    """Grid classes as bags of search tokens, for messages that use none of the known phrases
    ("sewage coming up out of the drain"): the class sharing the most specific tokens wins."""

    MIN_SCORE = 5.5  # more than one token: one shared word ("green", "night") is a coincidence
    # Twice that: two or three words found only in one class's list ("工地" "电钻" "半夜") say what
    # the street problem is even with no problem word beside them.
    STRONG_SCORE = 11.0

    def __init__(
        self, classes: Iterable[tuple[GridClass, list[str], list[str]]], ignore: set[str] | None = None
    ) -> None:
        self.classes: list[tuple[GridClass, frozenset[str], bool]] = []
        ignore = ignore or set()
        for cls, zh, en in classes:
            bag = frozenset(t for term in [*zh, *en] for t in tokens(term) if t not in ignore)
            self.classes.append((cls, bag, cls.kind == "component"))
        spread = Counter(t for _, bag, _ in self.classes for t in bag)
        self.weight = {t: math.log(1 + len(self.classes) / n) for t, n in spread.items()}

    def specific(self, term: str) -> float:
        """How much a matched term says: the weights of its words (a word of one class's list
        counts most, a place or a word many classes share little), so "bbq stall" says more
        than "stalls on the street"."""
        return round(sum(self.weight.get(t, 0.0) for t in set(tokens(term))), 6) or len(term) / 100

    def scores(self, msg: Text) -> dict[str, float]:
        """How much of each class's words the message uses (by class code)."""
        found = set(tokens(msg.raw))
        return {cls.code: sum(self.weight[t] for t in found & bag) for cls, bag, _ in self.classes if found & bag}

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
        return GridMatch(best[1], best[2], best[1].kind == "component", best[0])

    def strong(self, match: GridMatch) -> bool:
        return match.score >= self.STRONG_SCORE


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
