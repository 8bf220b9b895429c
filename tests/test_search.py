"""Knowledge search in Chinese (2-character words included) and English, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from helpline.db import Database
from knowledge.models import Article
from knowledge.search import search
from knowledge.tokens import query_tokens, tokens


def test_chinese_becomes_bigrams_and_english_words() -> None:
    assert tokens("稻瘟病") == ["稻瘟", "瘟病"]
    assert tokens("井盖") == ["井盖"]
    assert tokens("Pigs flies Leaves") == ["pig", "fly", "leaf"]
    assert tokens("路燈壞了") == ["路灯", "灯坏", "坏了"]  # traditional characters fold to simplified
    assert query_tokens("怎么办") == ["怎么", "么办"]  # only stop words: keep them rather than nothing


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("井盖", "helpline-report-city-problem"),
        ("低保", "dibao-application"),
        ("赤霉", "wheat-fusarium-head-blight"),
        ("稻瘟病怎么治", "rice-blast"),
        ("鱼浮头了", "fish-floating-head-low-oxygen"),
        ("农机补贴怎么申请", "subsidy-agri-machinery"),
        ("有人打电话说我医保卡冻结了", "scam-medical-insurance-card-frozen"),
        ("my cow is bloated", "cattle-bloat"),
        ("tomato leaves curling and yellow", "veg-tomato-yellow-leaf-curl-virus"),
        ("how do I pay my electricity bill", "pay-electricity-bill"),
        ("fall armyworm in my maize", "maize-fall-armyworm"),
    ],
)
async def test_questions_find_their_article(db: Database, query: str, expected: str) -> None:
    async with db.read() as s:
        hits = await search(s, query)
    slugs = [h.article.slug for h in hits]
    assert expected in slugs[:2], slugs
    best = next(h for h in hits if h.article.slug == expected)
    assert best.confidence >= 0.5
    assert [h.confidence for h in hits] == sorted((h.confidence for h in hits), reverse=True)


@pytest.mark.parametrize("query", ["", "   ", "!!!", "给我讲个笑话", "zxqv wvvk"])
async def test_nothing_relevant_gives_nothing_confident(db: Database, query: str) -> None:
    async with db.read() as s:
        hits = await search(s, query)
    assert all(h.confidence < 0.35 for h in hits)


async def test_unpublished_articles_are_not_found(db: Database) -> None:
    async with db.write() as s:
        await s.execute(update(Article).where(Article.slug == "cattle-bloat").values(status="draft"))
    try:
        async with db.read() as s:
            assert "cattle-bloat" not in [h.article.slug for h in await search(s, "cattle bloat")]
    finally:
        async with db.write() as s:
            await s.execute(update(Article).where(Article.slug == "cattle-bloat").values(status="published"))


def test_topic_candidates_rank_by_topic_weight_then_focus() -> None:
    from array import array

    from knowledge.search import topic_candidates

    lists = {"rare": array("I", [7, 3]).tobytes(), "common": array("I", [3, 9, 7, 5]).tobytes()}
    ranked = topic_candidates(lists, {"rare": 5.0, "common": 1.0})
    # 7 and 3 carry both words, and 7 leads the list of the rarer (weightier) one; 9 and 5 carry
    # only the common word, 9 higher in its list.
    assert [article_id for article_id, _ in ranked] == [7, 3, 9, 5]
    assert ranked[0][1] > ranked[1][1] > 5.99 and 1.0 > ranked[2][1] > ranked[3][1] > 0.99


async def test_other_instances_see_a_rebuilt_index_through_the_stamp(db: Database, monkeypatch) -> None:
    """Term rows are cached per process; a rebuild elsewhere changes the stamp, which drops them."""
    from sqlalchemy import select

    import knowledge.terms as terms
    from knowledge.models import ArticleTerm
    from knowledge.search import refresh_terms

    async with db.read() as s:
        assert [h.article.slug for h in await search(s, "cattle bloat")][:1] == ["cattle-bloat"]
    async with db.read() as s:
        stamp = await s.scalar(select(ArticleTerm.top).where(ArticleTerm.term == ""))
    async with db.write() as s:  # another instance retires the article and rebuilds the index
        await s.execute(update(Article).where(Article.slug == "cattle-bloat").values(status="draft"))
        await refresh_terms(s)
        new_stamp = await s.scalar(select(ArticleTerm.top).where(ArticleTerm.term == ""))
    assert new_stamp != stamp
    try:
        # This process still holds rows read before the rebuild, as if it had not seen it happen.
        cache = terms._cache_for_url(db.engine.url.render_as_string(hide_password=True))
        cache.stamp, cache.rows["bloat"] = stamp, terms.TermRow(1, 1, None)
        monkeypatch.setattr(terms, "STAMP_TTL", 0.0)
        async with db.read() as s:
            assert "cattle-bloat" not in [h.article.slug for h in await search(s, "cattle bloat")]
        assert cache.stamp == new_stamp and cache.rows.get("bloat") != terms.TermRow(1, 1, None)
    finally:
        async with db.write() as s:
            await s.execute(update(Article).where(Article.slug == "cattle-bloat").values(status="published"))
            await refresh_terms(s)
