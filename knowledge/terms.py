"""The term rows searches weigh and draw candidates from, kept in memory between searches.

Every search needs the ``article_terms`` rows of its tokens; the same few thousand tokens come
up again and again (the SMS of a typhoon night ask the same things), so each process keeps the
rows it has read, absent tokens included, and a search reads only the tokens it has not seen.

The rows change only when ``refresh_terms`` rebuilds the index. It writes a new random stamp on
the row of the empty token; a process compares that stamp at most once every ``STAMP_TTL``
seconds and drops its rows when it changed, and the process that rebuilt drops its own at once.
So an article published in one instance is found by the others within a second or so.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from knowledge.models import ArticleTerm

# The article_terms row that holds the number of published articles and the index stamp.
TOTAL = ""
STAMP_TTL = 1.0
# Past this many cached tokens the cache starts afresh (a bound on memory, not a tuning knob).
MAX_CACHED = 200_000


class TermRow(NamedTuple):
    df: int  # published articles naming the token as a topic (title or keywords)
    df_all: int  # published articles mentioning it anywhere
    top: bytes | None  # the topic list: article ids, most focused first


_ROWS = select(ArticleTerm.term, ArticleTerm.df, ArticleTerm.df_all, ArticleTerm.top).where(
    ArticleTerm.term.in_(bindparam("terms", expanding=True))
)
_STAMP = select(ArticleTerm.top).where(ArticleTerm.term == TOTAL)


class _Cache:
    def __init__(self) -> None:
        self.rows: dict[str, TermRow | None] = {}
        self.stamp: bytes | None = None
        self.checked = float("-inf")


_caches: dict[str, _Cache] = {}


def _cache_for_url(url: str) -> _Cache:
    cache = _caches.get(url)
    if cache is None:
        cache = _caches[url] = _Cache()
    return cache


def _cache_for(session: AsyncSession) -> _Cache:
    """One cache per database (not per engine): every Database object on a URL shares it."""
    return _cache_for_url(session.get_bind().url.render_as_string(hide_password=True))


async def term_rows(session: AsyncSession, terms: list[str]) -> dict[str, TermRow]:
    """The rows of ``terms`` that exist (always ask for TOTAL too), from memory where possible."""
    cache = _cache_for(session)
    now = time.monotonic()
    if now - cache.checked >= STAMP_TTL:
        stamp = await session.scalar(_STAMP)
        if stamp != cache.stamp or len(cache.rows) > MAX_CACHED:
            cache.rows.clear()
            cache.stamp = stamp
        cache.checked = now
    missing = [t for t in dict.fromkeys(terms) if t not in cache.rows]
    if missing:
        found = {t: TermRow(n, n_all, top) for t, n, n_all, top in await session.execute(_ROWS, {"terms": missing})}
        for term in missing:
            cache.rows[term] = found.get(term)
    rows = {}
    for term in terms:
        row = cache.rows[term]
        if row is not None:
            rows[term] = row
    return rows


def forget() -> None:
    """The index was rebuilt in this process: read every row afresh."""
    _caches.clear()
