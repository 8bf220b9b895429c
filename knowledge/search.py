"""Ranked knowledge search with an honest confidence, on SQLite (FTS5) and PostgreSQL (tsvector).

Two steps. The database finds candidates fast: any query token in an article's index, ranked by
BM25 (SQLite) or ts_rank (PostgreSQL), titles and keywords weighted above the answer text. Then a
confidence is computed for those few candidates: of the query's *topic words* — tokens that occur
in some article's title or keywords, weighted by how rare they are — how much does this article's
title and keywords cover? Chinese bigrams that straddle two words (子上, 上有) name no topic and so
do not dilute the score, which is why a 2-character query (低保) and a rambling SMS both score well
when they are about the same thing.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from knowledge.models import Article, ArticleTerm
from knowledge.tokens import query_tokens

CANDIDATES = 50
LOOKUP_TOKENS = 12
# The article_terms row that holds the number of published articles (no token is empty).
TOTAL = ""
MAX_QUERY_TOKENS = 40
_BODY_WEIGHT = 0.15
_BODY_ONLY = 0.25


# Built once: SQLAlchemy caches their compiled form, the lists bind as expanding parameters.
_INDEX_ROWS = select(Article.id, Article.search_key, Article.search_body).where(
    Article.id.in_(bindparam("ids", expanding=True)), Article.status == "published"
)
_TERMS = select(ArticleTerm.term, ArticleTerm.df, ArticleTerm.df_all).where(
    ArticleTerm.term.in_(bindparam("terms", expanding=True))
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
    df = {term: (n, n_all) for term, n, n_all in await session.execute(_TERMS, {"terms": [*tokens, TOTAL]})}
    total = df.pop(TOTAL, (0, 0))[0] or await _article_count(session)
    ids = await _candidates(session, lookup_tokens(tokens, df, total), enough=limit)
    if not ids:
        return []
    # Score on the index columns only; load whole articles just for the few we return.
    index = {article_id: (key, body) for article_id, key, body in await session.execute(_INDEX_ROWS, {"ids": ids})}
    weights = query_weights(tokens, df, total)
    scored = sorted(
        ((_confidence(*index[i], weights), -rank, i) for rank, i in enumerate(ids) if i in index), reverse=True
    )[:limit]
    articles = {a.id: a for a in await session.scalars(_ARTICLES, {"ids": [i for _, _, i in scored]})}
    return [Hit(articles[i], round(conf, 3)) for conf, _, i in scored if i in articles]


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


def _confidence(search_key: str, search_body: str, weights: dict[str, float]) -> float:
    """Weighted share of the question found in the article's title and keywords (mostly) or text."""
    total = sum(weights.values())
    if not total:
        return 0.0
    # The columns are space-padded token lists (index_text): look the few query tokens up directly.
    found = {t: (f" {t} " in search_key, f" {t} " in search_body) for t in weights}
    in_key = sum(w for t, w in weights.items() if found[t][0])
    in_any = sum(w for t, w in weights.items() if found[t][0] or found[t][1])
    return ((1 - _BODY_WEIGHT) * in_key + _BODY_WEIGHT * in_any) / total


async def _candidates(session: AsyncSession, tokens: list[str], enough: int = 1) -> list[int]:
    """Articles worth scoring, best-ranked first by the database.

    Titles and keywords are asked first: that is where the confidence mostly comes from, and it
    ranks far fewer rows than the whole text in a large knowledge base. Only when that finds
    fewer than ``enough`` articles is the answer text searched too.
    """
    if not tokens:
        return []
    sqlite = session.bind.dialect.name == "sqlite"
    found: list[int] = []
    for statement in (_SQLITE_KEY, _SQLITE_ALL) if sqlite else (_PG_KEY, _PG_ALL):
        params = {"m": " OR ".join(f'"{t}"' for t in tokens)} if sqlite else {"q": " | ".join(tokens)}
        rows = await session.execute(statement, {**params, "n": CANDIDATES})
        found = [row[0] for row in rows]
        if len(found) >= enough:
            break
    return found


# The candidate queries. FTS5 ranks with BM25 (titles and keywords weigh 5x); PostgreSQL ranks
# with ts_rank on stored generated tsvector columns (see the migration), never re-parsing text.
_SQLITE_KEY = text(
    "SELECT rowid FROM articles_fts WHERE articles_fts MATCH '{search_key} : (' || :m || ')' "
    "ORDER BY bm25(articles_fts, 5.0, 1.0) LIMIT :n"
)
_SQLITE_ALL = text(
    "SELECT rowid FROM articles_fts WHERE articles_fts MATCH :m ORDER BY bm25(articles_fts, 5.0, 1.0) LIMIT :n"
)
_PG_KEY = text(
    "SELECT id FROM articles, to_tsquery('simple', :q) AS q WHERE search_key_vector @@ q "
    "ORDER BY ts_rank(search_key_vector, q) DESC LIMIT :n"
)
_PG_ALL = text(
    "SELECT id FROM articles, to_tsquery('simple', :q) AS q WHERE search_vector @@ q "
    "ORDER BY ts_rank(search_vector, q) DESC LIMIT :n"
)


async def _article_count(session: AsyncSession) -> int:
    return max(1, await session.scalar(select(func.count()).select_from(Article)) or 1)


async def refresh_terms(session: AsyncSession) -> int:
    """Recount in how many published articles each token names a topic, and appears at all."""
    key_df: Counter[str] = Counter()
    all_df: Counter[str] = Counter()
    result = await session.stream(
        select(Article.search_key, Article.search_body)
        .where(Article.status == "published")
        .execution_options(yield_per=2000)
    )
    async for key, body in result:
        key_terms = set(key.split())
        key_df.update(key_terms)
        all_df.update(key_terms | set(body.split()))
    await session.execute(delete(ArticleTerm))
    rows = [{"term": t, "df": key_df[t], "df_all": n} for t, n in all_df.items() if len(t) <= 64]
    articles = await session.scalar(select(func.count()).select_from(Article).where(Article.status == "published"))
    rows.append({"term": TOTAL, "df": articles or 0, "df_all": articles or 0})
    for start in range(0, len(rows), 5000):
        await session.execute(insert(ArticleTerm), rows[start : start + 5000])
    return len(rows)



