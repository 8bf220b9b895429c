"""Search tokens for Chinese and English, the same on SQLite (FTS5) and PostgreSQL (tsvector).

Chinese has no spaces, and the 2-character words residents type (井盖, 低保, 赤霉) are too short for
trigram indexes, so Chinese runs become overlapping character bigrams: 稻瘟病 -> 稻瘟 瘟病. English
becomes lower-cased words with a light plural fold (pigs -> pig). Both are joined with spaces and
handed to the database's plain tokenizer, which then only has to split on spaces.

Residents write colloquially, so before that dialect words and local names fold to the standard
ones (俺家 -> 我家, 苞米 -> 玉米, 西红柿 -> 番茄), SMS shorthand, irregular verbs and American
spellings to one form (u -> you, sank -> sink, diarrhea -> diarrhoea). A question's bigrams that
straddle two words (子上, 上有, 了怎) are dropped as carrying no topic, and a verb said apart from
its object adds their bigram (驱一次虫 -> 驱虫). The stored index keeps every bigram.
"""

from __future__ import annotations

import re
import unicodedata

import zhconv

# Bump when tokens change: stored articles are then re-indexed on the next import or start.
INDEX_VERSION = 4

_RUNS = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[a-z0-9]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

# Bigrams that carry no topic: question words and filler residents put around what they mean.
CJK_STOP = frozenset(
    """怎么 么办 怎样 如何 什么 为什 么了 请问 问一 一下 我家 我们 你们 他们 这个 那个 这样 那样 可以 能不
    不能 是不 不是 有没 没有 吗请 一个 个月 的时 时候 现在 还是 应该 需要 要怎 么样 啥时 咋办 咋整 谢谢
    好的 帮我 帮忙 麻烦 我的 有什 了怎 了咋 的话 就是 已经 知道 告诉 了吗 办法 一点 为啥 这种 那种 多久 多少
    回事 还有 还能 能用 可能 行不 好多 好几 几天 不行 行吗 请教 今天 明天 后天 昨天 前天 晚上 早上 上午 下午
    中午 白天 最近 今年 去年 明年 每天 天天 这几 几个 前几""".split()
)
# Bigrams that straddle two words, told by the characters they are made of rather than listed one
# by one: particles and pronouns (either side: 了吗, 我的, 的叶), a suffix that ends a word and so
# cannot start one (子上, 了怎, 儿补), a place word followed by a verb or particle (上有, 里生, 边发),
# "has/is/one + the next word" (有白, 是虫, 一亩, 上一). A real word made of such characters is kept.
_CJK_EITHER = frozenset("的吗呢吧啊呀嘛啥咋怎什么哪俺您你我她它们这那很都也又把是在个")
_CJK_FIRST = frozenset("了子儿一")
_CJK_SECOND = frozenset("一")
_CJK_PLACE = frozenset("上里中下边内")
_CJK_AFTER_PLACE = frozenset("有长是全都一能生出发还也就被起好多")
_CJK_WORDS = frozenset(
    """子女 子宫 儿童 儿女 儿科 儿子 了解 的士 目的 酒吧 网吧 有机 有效 有毒 有害 有线 有关 一卡 一氧 统一
    那曲""".split()
)


# A verb and its object said apart, as they are in speech: 驱一次虫 = 驱虫, 打了药 = 打药, 施过肥 = 施肥.
_INSERTED = re.compile(
    r"(?=([\u3400-\u9fff])(?:[了过完](?:[一几两]?[次下个群只头遍回趟块片把])?|[一几两]?[次下个群只头遍回趟块片把])([\u3400-\u9fff]))"
)


def _split_words(run: str) -> list[str]:
    """The bigrams of words said apart (驱一次虫 -> 驱虫), as extra search tokens of a question."""
    return [a + b for a, b in _INSERTED.findall(run) if not _straddles(a + b) and a + b not in CJK_STOP]


def _straddles(gram: str) -> bool:
    """A bigram that spans two words (子上, 了怎, 上有, 有白): it names no topic."""
    if gram in _CJK_WORDS:
        return False
    first, second = gram
    return (
        first in _CJK_EITHER
        or second in _CJK_EITHER
        or first in _CJK_FIRST
        or second in _CJK_SECOND
        or (first in _CJK_PLACE and second in _CJK_AFTER_PLACE)
    )


# Dialect and colloquial spellings of function words, folded to the standard ones the word lists
# and the knowledge base use: 咋整 = 怎么办, 啥 = 什么, 俺 = 我; Cantonese 冇 = 没有, 咗 = 了.
_COLLOQUIAL = {
    "咋整": "怎么办", "咋办": "怎么办", "咋弄": "怎么办", "咋搞": "怎么办", "咋回事": "怎么回事", "咋样": "怎么样",
    "咋": "怎么", "啥子": "什么", "啥": "什么", "俺们": "我们", "俺": "我", "咱们": "我们", "咱": "我",
    "冇": "没有", "咗": "了", "嘅": "的", "乜嘢": "什么", "乜": "什么", "点解": "为什么", "晓得": "知道",
    "礼拜天": "星期天", "礼拜": "星期",
    # one crop, animal or job, many local names
    "苞谷": "玉米", "包谷": "玉米", "苞米": "玉米", "玉蜀黍": "玉米", "棒子面": "玉米面",
    "西红柿": "番茄", "洋柿子": "番茄", "辣子": "辣椒", "土豆": "马铃薯", "洋芋": "马铃薯",
    "稻子": "水稻", "麦子": "小麦", "橘子": "柑橘", "桔子": "柑橘", "腻虫": "蚜虫", "蜜虫": "蚜虫",
    "猪崽": "小猪", "猪仔": "小猪", "鸡崽": "小鸡", "鸡仔": "小鸡", "拉肚子": "拉稀", "跑肚": "拉稀",
    "打农药": "打药", "喷农药": "打药", "喷药": "打药",
}
_COLLOQUIAL_RE = re.compile("|".join(sorted(map(re.escape, _COLLOQUIAL), key=len, reverse=True)))

EN_STOP = frozenset(
    """a an the and or but if of to in on at for with from by about as is are was were be been being am do does did
    doing have has had having i me my we our you your he she it its they them their this that these those there
    here what which who whom how why when where can could should would will shall may might must please help hi
    hello thanks thank just get got so not no yes any some all very too also than then into out up down over again
    there im dont cant wont whats hows hey ok okay thanks thank sir madam dear guys ive youre theyre isnt arent
    didnt doesnt hasnt havent wasnt werent""".split()
)


_IRREGULAR = {"leaves": "leaf", "lives": "life", "knives": "knife", "children": "child", "feet": "foot", "teeth": "tooth",
              "mice": "mouse", "geese": "goose", "women": "woman", "men": "man", "people": "person", "burnt": "burn",
              "taxis": "taxi",
              # irregular past tenses: "the road sank" = "road sinking", "fell down" = "fallen"
              "sank": "sink", "sunk": "sink", "fell": "fall", "fallen": "fall", "broke": "break", "stole": "steal",
              "stolen": "steal", "hung": "hang", "blew": "blow", "blown": "blow", "dug": "dig", "bitten": "bite",
              "ate": "eat", "eaten": "eat", "drank": "drink", "drunk": "drink", "froze": "freeze", "frozen": "freeze",
              "caught": "catch", "grew": "grow", "grown": "grow", "built": "build", "spilt": "spill", "swollen": "swell",
              "bled": "bleed", "fed": "feed", "bought": "buy", "sold": "sell", "paid": "pay", "flew": "fly",
              "shot": "shoot", "struck": "strike", "torn": "tear", "tore": "tear", "worn": "wear",
              # American spellings and common misspellings of words the knowledge base spells the British way
              "diarrhea": "diarrhoea", "color": "colour", "colored": "colour", "mold": "mould", "molds": "mould",
              "moldy": "mouldy", "tire": "tyre", "tires": "tyre", "fertilizer": "fertiliser",
              "fertilizers": "fertiliser", "fertilize": "fertilise", "neighbor": "neighbour", "neighbors": "neighbour",
              "gray": "grey", "center": "centre", "liter": "litre", "liters": "litre", "plow": "plough",
              "tomatos": "tomato", "potatos": "potato", "leafs": "leaf", "sheeps": "sheep", "fishes": "fish"}
# SMS shorthand, expanded before anything else: "wat do u do" = "what do you do".
_SHORTHAND = {"u": "you", "ur": "your", "r": "are", "pls": "please", "plz": "please", "plse": "please", "thx": "thanks",
              "wat": "what", "wot": "what", "abt": "about", "tmr": "tomorrow", "tmrw": "tomorrow", "tmw": "tomorrow",
              "2moro": "tomorrow", "2day": "today", "nite": "night", "lite": "light", "ppl": "people",
              "govt": "government", "cud": "could", "wud": "would", "shud": "should", "coz": "because", "cos": "because",
              "bcoz": "because", "msg": "message", "txt": "text", "sum1": "someone", "some1": "someone",
              "any1": "anyone", "no1": "nobody", "b4": "before", "nd": "and", "n": "and", "ya": "you", "yr": "your",
              "hv": "have", "wen": "when", "hw": "how", "becoz": "because", "asap": "now", "tnx": "thanks"}
_DOUBLED = re.compile(r"([bdfgklmnprtz])\1$")


def fold_word(word: str) -> str:
    """A light English stem (predictable beats clever), the same for questions and articles.

    pigs -> pig, flies -> fly, scammed -> scam, rotting -> rot, bloated -> bloat, leaves -> leaf;
    a final e goes too, so vaccinate and vaccinated (and rice and rices) meet.
    """
    word = _SHORTHAND.get(word, word)
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


def expand_shorthand(word: str) -> str:
    """SMS shorthand written out: u -> you, pls -> please, nite -> night."""
    return _SHORTHAND.get(word, word)


def to_simplified(text: str) -> str:
    """Traditional characters to simplified (路燈壞了 -> 路灯坏了): the knowledge base is simplified."""
    return zhconv.convert(text, "zh-cn") if _CJK.search(text) else text


def to_standard(text: str) -> str:
    """Simplified characters, and dialect function words in their standard form (俺家娃咋整 -> 我家娃怎么办)."""
    if not _CJK.search(text):
        return text
    return _COLLOQUIAL_RE.sub(lambda m: _COLLOQUIAL[m.group()], zhconv.convert(text, "zh-cn"))


def tokens(text: str, *, keep_stop: bool = False) -> list[str]:
    """Search tokens of ``text``, in order, duplicates kept (the caller dedupes if it wants)."""
    out: list[str] = []
    for run in _RUNS.findall(to_standard(unicodedata.normalize("NFKC", text)).lower()):
        if _CJK.match(run):
            if len(run) == 1:
                out.append(run)
                continue
            for i in range(len(run) - 1):
                gram = run[i : i + 2]
                if keep_stop or (gram not in CJK_STOP and not _straddles(gram)):
                    out.append(gram)
            if not keep_stop:
                out.extend(_split_words(run))
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
