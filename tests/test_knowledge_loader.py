"""Article files: the shipped content, malformed files reported by file and line, all-or-nothing import."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from helpline.db import Database
from knowledge.loader import CATEGORIES, KnowledgeError, read_articles, shipped_path
from knowledge.models import Article
from knowledge.search import search
from knowledge.store import import_path

GOOD = """\
id: {slug}
category: crops
title:
  zh: 测试文章{n}
  en: Test article {n}
keywords:
  zh: [测试词{n}]
  en: [testword{n}]
short:
  zh: 这是测试的简短回答。
  en: This is the short test answer.
full:
  zh: 这是测试的完整回答。
  en: This is the full test answer.
source: Helpline test desk
reviewed: 2026-11-15
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_knowledge_base_is_large_bilingual_and_covers_every_category() -> None:
    articles = read_articles(shipped_path())
    assert len(articles) >= 200
    per_category = Counter(a.category for a in articles)
    assert set(per_category) == set(CATEGORIES)
    for a in articles:
        assert a.title_zh and a.title_en and a.short_zh and a.short_en and a.full_zh and a.full_en
        assert len(a.short_zh) <= 120 and len(a.short_en) <= 300
        assert "http" not in a.short_zh + a.short_en
        assert a.keywords["zh"] and a.keywords["en"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("id: x\ncategory: [unclosed\n", ":3: YAML error"),
        ("id: x\ntitle:\n  zh: a\n en: b\ncategory: crops\n", ":4: YAML error"),
        (GOOD.format(slug="a-b", n=1).replace("category: crops", "category: astrology"), ":2: category: must be one of"),
        (GOOD.format(slug="Bad_Id", n=1), ":1: id: must be lowercase kebab-case"),
        (GOOD.format(slug="a-b", n=1).replace("source: Helpline test desk\n", ""), "missing field 'source'"),
        (GOOD.format(slug="a-b", n=1).replace("  zh: 这是测试的简短回答。", "  zh: " + "长" * 121), "short: zh is 121 characters"),
        (GOOD.format(slug="a-b", n=1).replace("This is the short test answer.", "See https://x.org"), "must be speakable"),
        (GOOD.format(slug="a-b", n=1).replace("reviewed: 2026-11-15", "reviewed: last week"), "reviewed: must be a date"),
        ("- just\n- a list\n", ":1: an article must be a YAML mapping"),
    ],
)
def test_malformed_files_are_reported_with_file_and_line(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path, "a-b.yaml", text)
    with pytest.raises(KnowledgeError) as info:
        read_articles(path)
    assert str(path) in str(info.value) and needle in str(info.value)


def test_duplicate_ids_across_files_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "one.yaml", GOOD.format(slug="same-id", n=1))
    write(tmp_path, "two.yaml", GOOD.format(slug="same-id", n=2))
    with pytest.raises(KnowledgeError, match="already used"):
        read_articles(tmp_path)


async def test_import_is_all_or_nothing(db: Database, tmp_path: Path) -> None:
    write(tmp_path, "good-one.yaml", GOOD.format(slug="good-one", n=1))
    write(tmp_path, "good-two.yaml", GOOD.format(slug="good-two", n=2))
    write(tmp_path, "bad.yaml", "id: bad\ncategory: [\n")
    async with db.read() as s:
        before = await s.scalar(select(func.count()).select_from(Article))
    with pytest.raises(KnowledgeError) as info:
        await import_path(db, tmp_path)
    assert len(info.value.problems) == 1 and "bad.yaml" in info.value.problems[0]
    async with db.read() as s:
        assert await s.scalar(select(func.count()).select_from(Article)) == before


async def test_reimport_updates_in_place_and_the_index_follows(db: Database, tmp_path: Path) -> None:
    path = write(tmp_path, "kb-test.yaml", GOOD.format(slug="kb-test", n=7))
    first = await import_path(db, path)
    assert (first.created, first.updated) == (1, 0)
    assert (await import_path(db, path)).unchanged == 1
    async with db.read() as s:
        assert [h.article.slug for h in await search(s, "testword7")] == ["kb-test"]
    write(tmp_path, "kb-test.yaml", GOOD.format(slug="kb-test", n=7).replace("testword7", "freshterm"))
    again = await import_path(db, path)
    assert (again.created, again.updated) == (0, 1)
    async with db.read() as s:
        assert await s.scalar(select(func.count()).select_from(Article).where(Article.slug == "kb-test")) == 1
        assert await search(s, "testword7") == []
        assert [h.article.slug for h in await search(s, "freshterm")] == ["kb-test"]


async def test_a_shipped_refresh_keeps_what_staff_edited(db: Database, tmp_path: Path) -> None:
    from knowledge.loader import import_articles

    data = read_articles(write(tmp_path, "kept.yaml", GOOD.format(slug="kept", n=3)))
    async with db.write() as s:
        await import_articles(s, data, origin="console")
    changed = read_articles(write(tmp_path, "kept.yaml", GOOD.format(slug="kept", n=4)))
    async with db.write() as s:
        result = await import_articles(s, changed, origin="shipped")
    assert result.kept == 1
    async with db.read() as s:
        assert await s.scalar(select(Article.title_en).where(Article.slug == "kept")) == "Test article 3"
