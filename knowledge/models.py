"""The article table. Its search index lives beside it: an FTS5 table kept in step by triggers on
SQLite, a GIN expression index on PostgreSQL (both created by the migration)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from helpline.models import Base, utcnow


class Article(Base):
    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    category: Mapped[str] = mapped_column(String(32), index=True)
    topic: Mapped[str | None] = mapped_column(String(64))
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    keywords: Mapped[dict[str, Any]] = mapped_column(default=dict)
    short_zh: Mapped[str] = mapped_column(Text)
    short_en: Mapped[str] = mapped_column(Text)
    full_zh: Mapped[str] = mapped_column(Text)
    full_en: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(300))
    reviewer: Mapped[str | None] = mapped_column(String(100))
    reviewed: Mapped[date] = mapped_column(Date)
    # published | draft | retired
    status: Mapped[str] = mapped_column(String(16), default="published")
    # shipped (from the package) | import (helpline kb import) | console (edited by staff)
    origin: Mapped[str] = mapped_column(String(16), default="import")
    content_hash: Mapped[str] = mapped_column(String(64))
    # Pre-tokenised text for the search index: titles and keywords (weighted high), answers (low).
    search_key: Mapped[str] = mapped_column(Text)
    search_body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def title(self, lang: str) -> str:
        return self.title_zh if lang == "zh" else self.title_en

    def short(self, lang: str) -> str:
        return self.short_zh if lang == "zh" else self.short_en

    def full(self, lang: str) -> str:
        return self.full_zh if lang == "zh" else self.full_en


class ArticleTerm(Base):
    """Every token of the knowledge base with the number of articles it names as a topic (in a
    title or keywords: ``df``) and mentions at all (``df_all``): what the search confidence weighs
    query words by.

    ``top`` lists the articles that name the token as a topic, most focused first, at most
    ``knowledge.search.TOP_PER_TERM`` of them (ids packed as 4-byte unsigned integers): the
    candidates of a search come from these lists, read in the same query as the weights.
    """

    __tablename__ = "article_terms"

    term: Mapped[str] = mapped_column(String(64), primary_key=True)
    df: Mapped[int] = mapped_column()
    df_all: Mapped[int] = mapped_column()
    top: Mapped[bytes | None] = mapped_column(LargeBinary)
