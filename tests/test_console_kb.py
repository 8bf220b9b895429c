"""The knowledge-base editor: drafts, publishing into search, edits, review dates, retiring,
and the unanswered questions offered as candidates — on both databases."""

from __future__ import annotations

from datetime import date

import pytest
from aiohttp.test_utils import TestClient
from browser.console_support import login, make_user, post, resident_says
from sqlalchemy import select

from helpline.app import create_app
from helpline.config import Settings
from helpline.db import Database
from helpline.models import Event
from knowledge.models import Article
from knowledge.search import search

ARTICLE = {
    "slug": "tea-frost-protection",
    "category": "crops",
    "topic": "tea",
    "title_zh": "茶园倒春寒防冻",
    "title_en": "Protecting tea gardens from late frost",
    "keywords_zh": "茶园霜冻, 倒春寒\n茶叶冻害",
    "keywords_en": "tea frost, late frost",
    "short_zh": "倒春寒来前给茶园盖遮阳网或稻草，清晨可喷水护芽；冻后剪去受冻芽叶，追施速效氮肥。",
    "short_en": "Before a late frost cover tea rows with shade net or straw; "
    "after it prune the frozen shoots and give quick nitrogen.",
    "full_zh": "倒春寒来临前……",
    "full_en": "Before a late cold spell …",
    "source": "省茶叶站 / provincial tea station",
    "reviewer": "tea desk",
    "reviewed": "2026-11-01",
}


async def audit(db: Database, action: str) -> list[Event]:
    async with db.read() as session:
        return list(await session.scalars(select(Event).where(Event.action == action)))


async def found(db: Database, query: str) -> list[str]:
    async with db.read() as session:
        return [h.article.slug for h in await search(session, query, limit=5)]


@pytest.fixture
async def boss(aiohttp_client, settings: Settings, db: Database) -> TestClient:  # type: ignore[no-untyped-def]
    client = await aiohttp_client(create_app(settings))
    await make_user(db, "boss", "supervisor")
    await login(client, "boss")
    return client


async def test_an_operator_writes_a_draft_that_search_does_not_see_until_published(
    client: TestClient, boss: TestClient, db: Database
) -> None:
    await make_user(db, "oper", "operator")
    await login(client, "oper")
    resp = await post(client, "/console/kb/new", ARTICLE | {"publish": "1"})  # an operator cannot publish
    assert resp.status == 303
    async with db.read() as session:
        article = await session.scalar(select(Article).where(Article.slug == ARTICLE["slug"]))
        assert article is not None
        assert (article.status, article.origin, article.keywords["zh"]) == (
            "draft",
            "console",
            ["茶园霜冻", "倒春寒", "茶叶冻害"],
        )
    assert ARTICLE["slug"] not in await found(db, "茶园霜冻")
    assert (await post(client, f"/console/kb/{article.id}/publish")).status == 403
    assert (await post(boss, f"/console/kb/{article.id}/publish")).status == 303
    assert (await found(db, "茶园霜冻"))[0] == ARTICLE["slug"]
    assert [e.subject_id for e in await audit(db, "kb.published")] == [str(article.id)]
    # Now it is published, only a publisher edits it.
    assert (await post(client, f"/console/kb/{article.id}", ARTICLE)).status == 403


async def test_bad_fields_are_named_and_nothing_is_saved(boss: TestClient, db: Database) -> None:
    bad = ARTICLE | {"slug": "Tea Frost", "short_zh": "很长" * 100, "reviewed": "yesterday", "keywords_en": " , "}
    resp = await post(boss, "/console/kb/new", bad)
    assert resp.status == 400
    html = await resp.text()
    for problem in ("编号须为小写英文", "中文简答必填", "审核日期格式", "至少一个英文关键词"):
        assert problem in html
    assert 'value="Tea Frost"' in html  # what was typed is kept
    async with db.read() as session:
        assert await session.scalar(select(Article).where(Article.title_zh == ARTICLE["title_zh"])) is None
    resp = await post(boss, "/console/kb/new", ARTICLE | {"short_en": "See https://example.org"})
    assert resp.status == 400  # short answers are spoken and texted: no links


async def test_a_supervisor_edits_a_published_article_and_search_follows(boss: TestClient, db: Database) -> None:
    await post(boss, "/console/kb/new", ARTICLE | {"publish": "1"})
    async with db.read() as session:
        article_id = await session.scalar(select(Article.id).where(Article.slug == ARTICLE["slug"]))
    assert "tea-frost-protection" not in await found(db, "茶芽发黑")
    resp = await post(
        boss, f"/console/kb/{article_id}", ARTICLE | {"keywords_zh": "茶芽发黑, 茶园霜冻", "slug": "ignored"}
    )
    assert resp.status == 303
    assert (await found(db, "茶芽发黑"))[0] == "tea-frost-protection"
    async with db.read() as session:
        article = await session.get(Article, article_id)
        assert article is not None and article.slug == "tea-frost-protection"  # the id never changes
    [edited] = await audit(db, "kb.edited")
    assert edited.data == {"slug": "tea-frost-protection", "changed": True}
    resp = await post(boss, "/console/kb/new", ARTICLE)
    assert resp.status == 409  # the id is taken


async def test_review_date_and_retiring(boss: TestClient, db: Database) -> None:
    await post(boss, "/console/kb/new", ARTICLE | {"publish": "1", "reviewed": "2024-01-10"})
    async with db.read() as session:
        article_id = await session.scalar(select(Article.id).where(Article.slug == ARTICLE["slug"]))
    due = await (await boss.get("/console/kb?due=1")).text()
    assert "tea-frost-protection" in due
    await post(boss, f"/console/kb/{article_id}/reviewed")
    async with db.read() as session:
        article = await session.get(Article, article_id)
        assert article is not None and (article.reviewed, article.reviewer) == (date.today(), "boss")
    assert "tea-frost-protection" not in await (await boss.get("/console/kb?due=1")).text()
    await post(boss, f"/console/kb/{article_id}/retire")
    assert "tea-frost-protection" not in await found(db, "茶园霜冻")
    async with db.read() as session:
        assert (await session.get(Article, article_id)).status == "retired"  # type: ignore[union-attr]


async def test_list_search_and_filters(boss: TestClient) -> None:
    html = await (await boss.get("/console/kb?q=赤霉")).text()
    assert "赤霉" in html and "%" in html  # ranked with its confidence
    crops = await (await boss.get("/console/kb?category=crops&status=published")).text()
    assert "kb/" in crops
    none = await (await boss.get("/console/kb?q=zzzzqqqq")).text()
    assert "没有找到文章" in none


async def test_unanswered_questions_are_candidates_those_seen_by_operators_first(
    client: TestClient, boss: TestClient, db: Database
) -> None:
    await resident_says(client, "xq zzv blorp", address="tel:+8613800000001")
    await resident_says(client, "XQ zzv blorp!", address="tel:+8613800000002")
    await resident_says(client, "frobnicate the wug", address="tel:+8613800000003")
    await resident_says(client, "转人工", address="tel:+8613800000003")  # this one reached an operator
    html = (await (await boss.get("/console/kb/candidates")).text()).lower()
    assert html.index("frobnicate the wug") < html.index("xq zzv blorp")
    row = html[html.index("xq zzv blorp") :]
    assert '<td class="num">2</td>' in row[:600]  # two askings, grouped
    new = await (await boss.get("/console/kb/new?q=frobnicate the wug")).text()
    assert "frobnicate the wug</textarea>" in new  # the question becomes a first keyword
