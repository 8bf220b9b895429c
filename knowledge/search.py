"""Ranked knowledge search with an honest confidence, on SQLite and PostgreSQL alike.

Confidence first: of the query's *topic words* - tokens that occur in some article's title or
keywords, weighted by how rare they are - how much does an article's title and keywords cover
(and, a little, its answer text)? Chinese bigrams that straddle two words (子上, 上有) name no
topic and so do not dilute the score, which is why a 2-character query (低保) and a rambling SMS
both score well when they are about the same thing.

Candidates come from the same place as the weights. Each token's row in ``article_terms``
carries its document frequencies and the list of articles that name it as a topic, most focused
first, cut at ``TOP_PER_TERM`` (an impact-ordered posting list, as search engines keep). One
indexed read of the query's tokens therefore gives both the weights and the candidates, ranked
by the weight of the topic words they cover, without the database ranking every article that
shares a word with the question. Only when titles and keywords give too few candidates is the
answer text searched, through FTS5 (SQLite) or a tsvector GIN index (PostgreSQL).
"""

from __future__ import annotations

import heapq
import math
import os
from array import array
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from knowledge.models import Article, ArticleTerm
from knowledge.terms import TOTAL, forget, term_rows
from knowledge.tokens import query_tokens

CANDIDATES = 50
LOOKUP_TOKENS = 12
# Articles kept per token in its topic list. A token that more articles name as a topic is so
# common that the most focused few hundred of them are the ones worth scoring.
TOP_PER_TERM = 256
MAX_QUERY_TOKENS = 40
# Most index rows the answer-text search may rank: words that many answers share say nothing
# about any one of them.
TEXT_BUDGET = 2000
_BODY_WEIGHT = 0.15
_BODY_ONLY = 0.25


# Built once: SQLAlchemy caches their compiled form, the lists bind as expanding parameters.
_INDEX_ROWS = select(Article.id, Article.search_key, Article.search_body).where(
    Article.id.in_(bindparam("ids", expanding=True)), Article.status == "published"
)
_ARTICLES = select(Article).where(Article.id.in_(bindparam("ids", expanding=True)))


@dataclass(frozen=True, slots=True)
class Hit:
    article: Article
    confidence: float


async def search(session: AsyncSession, query: str, limit: int = 5) -> list[Hit]:
    """The best ``limit`` published articles for ``query``, best first, with confidences in 0..1."""
    tokens = query_tokens(query)[:MAX_QUERY_TOKENS]
    if not tokens or limit <= 0:
        return []
    rows = await term_rows(session, [*tokens, TOTAL])
    counts = rows.pop(TOTAL, None)
    total = counts.df if counts and counts.df else await _article_count(session)
    df = {term: (row.df, row.df_all) for term, row in rows.items()}
    weights = query_weights(tokens, df, total)
    wanted = lookup_tokens(tokens, df, total)
    topics = {t: rows[t].top for t in wanted if rows.get(t) and rows[t].top}
    ranked = topic_candidates(topics, weights)
    if len(ranked) < limit:  # titles and keywords say too little: look in the answer text too
        seen = {i for i, _ in ranked}
        more = await _text_candidates(session, _within(wanted, df, TEXT_BUDGET))
        ranked += [(i, 0.0) for i in more if i not in seen][: CANDIDATES - len(ranked)]
    if not ranked:
        return []
    # Score on the index columns only; load whole articles just for the few we return.
    ids = [i for i, _ in ranked]
    index = {article_id: (key, body) for article_id, key, body in await session.execute(_INDEX_ROWS, {"ids": ids})}
    scored = _best(ranked, index, weights, limit)
    articles = {a.id: a for a in await session.scalars(_ARTICLES, {"ids": [i for _, _, i in scored]})}
    return [Hit(articles[i], round(conf, 3)) for conf, _, i in scored if i in articles]


def _best(
    ranked: list[tuple[int, float]], index: dict[int, tuple[str, str]], weights: dict[str, float], limit: int
) -> list[tuple[float, int, int]]:
    """The ``limit`` most confident candidates as (confidence, -rank, id), best first.

    Titles and keywords are short, so every candidate's share there is worked out; the long answer
    text is read only for candidates that could still make the cut. A candidate's confidence is
    at most its title-and-keyword share plus the whole answer-text share, so once that bound falls
    below the ``limit``-th confidence found, the rest (with smaller shares) cannot matter.
    """
    total = sum(weights.values())
    if not total:
        return []
    # The columns are space-padded token lists (index_text): look the query tokens up directly.
    padded = [(f" {token} ", weight) for token, weight in weights.items()]
    keyed = []
    for rank, (article_id, _listed) in enumerate(ranked):
        row = index.get(article_id)
        if row is not None:
            keyed.append((sum(w for p, w in padded if p in row[0]), rank, article_id))
    keyed.sort(key=lambda item: (-item[0], item[1]))
    best: list[tuple[float, int, int]] = []
    for in_key, rank, article_id in keyed:
        if len(best) == limit and _confidence(in_key, total - in_key, total) < best[0][0]:
            break
        key, body = index[article_id]
        in_body = sum(w for p, w in padded if p not in key and p in body)
        item = (_confidence(in_key, in_body, total), -rank, article_id)
        if len(best) < limit:
            heapq.heappush(best, item)
        elif item > best[0]:
            heapq.heapreplace(best, item)
    return sorted(best, reverse=True)


def _within(tokens: list[str], df: dict[str, tuple[int, int]], budget: int) -> list[str]:
    """The rarest of ``tokens`` (they come rarest first) whose answer-text matches fit ``budget``."""
    chosen: list[str] = []
    rows = 0
    for token in tokens:
        rows += df[token][1]
        if rows > budget:
            break
        chosen.append(token)
    return chosen


def topic_candidates(
    topics: dict[str, bytes], weights: dict[str, float], n: int = CANDIDATES
) -> list[tuple[int, float]]:
    """The ``n`` articles whose titles and keywords carry the most query weight, from the tokens'
    topic lists, with that weight; among equals, the more focused article (higher in the lists)
    first."""
    score: dict[int, float] = {}
    for term, packed in topics.items():
        ids = array("I")
        ids.frombytes(packed)
        weight = weights.get(term, 0.0)
        step = weight / (len(ids) * 1000 + 1)  # a tie-break that never outweighs a whole word
        for rank, article_id in enumerate(ids):
            score[article_id] = score.get(article_id, 0.0) + weight - rank * step
    return heapq.nlargest(n, score.items(), key=lambda item: item[1])


def lookup_tokens(tokens: list[str], df: dict[str, tuple[int, int]], total: int) -> list[str]:
    """The tokens worth asking the index for: known ones, rarest first, and no very common ones
    while rarer ones remain. A token in a tenth of all articles would make the index rank tens of
    thousands of rows in a large knowledge base and pick none of them out."""
    known = sorted((t for t in tokens if df.get(t, (0, 0))[1]), key=lambda t: df[t][1])
    if not known:
        return []
    common = max(50, total // 10)
    rare = [t for t in known if df[t][1] <= common]
    return (rare or known[:1])[:LOOKUP_TOKENS]


def query_weights(tokens: list[str], df: dict[str, tuple[int, int]], total: int) -> dict[str, float]:
    """How much each query token counts towards the confidence.

    A topic word (in some title or keywords) counts by its rarity. An English word that names no
    topic still counts - English words are real words, so one the knowledge base does not know
    ("football") is a part of the question we cannot answer. A Chinese bigram that names no topic
    counts a quarter if the answers use it, and not at all otherwise: most such bigrams straddle
    two words (子上, 上有) and mean nothing.
    """
    weights: dict[str, float] = {}
    for t in tokens:
        key_df, all_df = df.get(t, (0, 0))
        if key_df:
            weights[t] = math.log(1 + total / key_df)
        elif t.isascii():
            weights[t] = math.log(1 + total / max(all_df, 1))
        elif all_df:
            weights[t] = _BODY_ONLY * math.log(1 + total / all_df)
    return weights


def _confidence(in_key: float, in_body: float, total: float) -> float:
    """Weighted share of the question found in the article's title and keywords (mostly) or text:
    ``in_key`` is the weight found in titles and keywords, ``in_body`` the rest found in the text."""
    return ((1 - _BODY_WEIGHT) * in_key + _BODY_WEIGHT * (in_key + in_body)) / total


async def _text_candidates(session: AsyncSession, tokens: list[str]) -> list[int]:
    """Articles whose text (answers included) has any of ``tokens``, best-ranked first by the database."""
    if not tokens:
        return []
    if session.bind.dialect.name == "sqlite":
        statement, params = _SQLITE_ALL, {"m": " OR ".join(f'"{t}"' for t in tokens)}
    else:
        statement, params = _PG_ALL, {"q": " | ".join(tokens)}
    return [row[0] for row in await session.execute(statement, {**params, "n": CANDIDATES})]


# FTS5 ranks with BM25 (titles and keywords weigh 5x); PostgreSQL ranks with ts_rank on a stored
# generated tsvector column (see the migration), never re-parsing text.
_SQLITE_ALL = text(
    "SELECT rowid FROM articles_fts WHERE articles_fts MATCH :m ORDER BY bm25(articles_fts, 5.0, 1.0) LIMIT :n"
)
_PG_ALL = text(
    "SELECT id FROM articles, to_tsquery('simple', :q) AS q WHERE search_vector @@ q "
    "ORDER BY ts_rank(search_vector, q) DESC LIMIT :n"
)


async def _article_count(session: AsyncSession) -> int:
    return max(1, await session.scalar(select(func.count()).select_from(Article)) or 1)


async def refresh_terms(session: AsyncSession) -> int:
    """Recount in how many published articles each token names a topic, and appears at all, and
    rebuild each token's topic list (most focused articles first)."""
    key_df: Counter[str] = Counter()
    all_df: Counter[str] = Counter()
    # Per token, a min-heap of (focus, -id) packed into one int, so the least focused leaves first.
    best: dict[str, list[int]] = {}
    result = await session.stream(
        select(Article.id, Article.search_key, Article.search_body)
        .where(Article.status == "published")
        .execution_options(yield_per=2000)
    )
    async for article_id, key, body in result:
        key_tokens = key.split()
        counts = Counter(key_tokens)
        key_df.update(counts.keys())
        all_df.update(counts.keys() | set(body.split()))
        length = math.sqrt(len(key_tokens))
        for term, tf in counts.items():
            entry = (int(tf / length * 1_000_000) << 32) | (0xFFFFFFFF - article_id)
            heap = best.setdefault(term, [])
            if len(heap) < TOP_PER_TERM:
                heapq.heappush(heap, entry)
            elif entry > heap[0]:
                heapq.heapreplace(heap, entry)
    await session.execute(delete(ArticleTerm))
    rows = [
        {"term": t, "df": key_df[t], "df_all": n, "top": _pack(best.get(t))} for t, n in all_df.items() if len(t) <= 64
    ]
    articles = await session.scalar(select(func.count()).select_from(Article).where(Article.status == "published"))
    # The empty token's row: the article count, and a new stamp that tells every process's term
    # cache (knowledge/terms.py) that the index changed.
    rows.append({"term": TOTAL, "df": articles or 0, "df_all": articles or 0, "top": os.urandom(8)})
    for start in range(0, len(rows), 5000):
        await session.execute(insert(ArticleTerm.__table__), rows[start : start + 5000])
    forget()
    return len(rows)


def _pack(heap: list[int] | None) -> bytes | None:
    """A topic heap as article ids, most focused first, in 4-byte unsigned integers."""
    if not heap:
        return None
    return array("I", (0xFFFFFFFF - (entry & 0xFFFFFFFF) for entry in sorted(heap, reverse=True))).tobytes()
