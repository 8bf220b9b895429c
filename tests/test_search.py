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
