"""Read article files, check them, and load them all-or-nothing into the database.

Every problem is reported with its file and line, and nothing is written unless every file is
good: a half-loaded knowledge base would answer some questions from old text and some from new.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from knowledge.models import Article
from knowledge.tokens import INDEX_VERSION, index_text

CATEGORIES = (
    "crops", "soil", "weather", "livestock", "pesticides", "policy",
    "social", "documents", "safety", "utilities", "emergency", "helpline",
)
LANGS = ("zh", "en")
SHORT_LIMIT = {"zh": 120, "en": 300}
_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_UNSPEAKABLE = re.compile(r"https?://|www\.|[*#•]")
_REQUIRED = ("id", "category", "title", "keywords", "short", "full", "source", "reviewed")

try:
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[attr-defined]
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader


class KnowledgeError(ValueError):
    """One or more article files are malformed; ``problems`` lists them as 'file:line: what'."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ArticleData:
    slug: str
    category: str
    topic: str | None
    title_zh: str
    title_en: str
    keywords: dict[str, list[str]]
    short_zh: str
    short_en: str
    full_zh: str
    full_en: str
    source: str
    reviewer: str | None
    reviewed: date

    @property
    def content_hash(self) -> str:
        blob = json.dumps(asdict(self) | {"index": INDEX_VERSION}, sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def search_columns(self) -> dict[str, str]:
        return {
            "search_key": index_text(
                self.title_zh, self.title_en, *self.keywords.get("zh", []), *self.keywords.get("en", [])
            ),
            "search_body": index_text(self.short_zh, self.short_en, self.full_zh, self.full_en),
        }


def shipped_path() -> Path:
    return Path(str(files("knowledge") / "articles"))


def article_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path]


def read_articles(path: Path) -> list[ArticleData]:
    """Parse and check every article under ``path``; raise KnowledgeError listing all problems."""
    if not path.exists():
        raise KnowledgeError([f"{path}: no such file or folder"])
    problems: list[str] = []
    articles: list[ArticleData] = []
    seen: dict[str, str] = {}
    paths = article_files(path)
    if not paths:
        raise KnowledgeError([f"{path}: no .yaml article files found"])
    for file in paths:
        try:
            article = _read_one(file)
        except KnowledgeError as exc:
            problems.extend(exc.problems)
            continue
        if article.slug in seen:
            problems.append(f"{file}:1: id {article.slug!r} is already used by {seen[article.slug]}")
            continue
        seen[article.slug] = str(file)
        articles.append(article)
    if problems:
        raise KnowledgeError(problems)
    return articles


def _read_one(file: Path) -> ArticleData:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeError([f"{file}:1: cannot read: {exc}"]) from None
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        raise KnowledgeError([f"{file}:{line}: YAML error: {reason}"]) from None
    if not isinstance(data, dict) or node is None:
        raise KnowledgeError([f"{file}:1: an article must be a YAML mapping of fields"])
    lines = {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    problems: list[str] = []

    def bad(key: str, what: str) -> None:
        problems.append(f"{file}:{lines.get(key, 1)}: {key}: {what}")

    for key in _REQUIRED:
        if key not in data:
            problems.append(f"{file}:1: missing field {key!r}")
    if problems:
        raise KnowledgeError(problems)
    slug = data["id"]
    if not isinstance(slug, str) or not _SLUG.match(slug):
        bad("id", "must be lowercase kebab-case ASCII, e.g. rice-blast")
    if data["category"] not in CATEGORIES:
        bad("category", f"must be one of {', '.join(CATEGORIES)}")
    texts: dict[str, dict[str, str]] = {}
    for key in ("title", "short", "full"):
        value = data[key]
        if not isinstance(value, dict):
            bad(key, "must have zh and en")
            continue
        texts[key] = {}
        for lang in LANGS:
            item = value.get(lang)
            if not isinstance(item, str) or not item.strip():
                bad(key, f"{lang} is missing or empty")
            else:
                texts[key][lang] = item.strip()
    for lang in LANGS:
        short = texts.get("short", {}).get(lang, "")
        if len(short) > SHORT_LIMIT[lang]:
            bad("short", f"{lang} is {len(short)} characters; at most {SHORT_LIMIT[lang]} (two SMS segments)")
        if _UNSPEAKABLE.search(short):
            bad("short", f"{lang} must be speakable: no links or symbols such as * or #")
    keywords = data["keywords"]
    clean_kw: dict[str, list[str]] = {}
    if not isinstance(keywords, dict):
        bad("keywords", "must have zh and en lists")
    else:
        for lang in LANGS:
            items = keywords.get(lang)
            if not isinstance(items, list) or not items:
                bad("keywords", f"{lang} must be a non-empty list")
            else:
                clean_kw[lang] = [str(k).strip() for k in items if str(k).strip()]
    reviewed = data["reviewed"]
    if not isinstance(reviewed, date):
        bad("reviewed", "must be a date, YYYY-MM-DD")
    for key in ("source",):
        if not isinstance(data[key], str) or not data[key].strip():
            bad(key, "must be a non-empty text")
    for key in ("topic", "reviewer"):
        if data.get(key) is not None and not isinstance(data[key], str):
            bad(key, "must be a text")
    if problems:
        raise KnowledgeError(problems)
    return ArticleData(
        slug=slug,
        category=data["category"],
        topic=data.get("topic"),
        title_zh=texts["title"]["zh"],
        title_en=texts["title"]["en"],
        keywords=clean_kw,
        short_zh=texts["short"]["zh"],
        short_en=texts["short"]["en"],
        full_zh=texts["full"]["zh"],
        full_en=texts["full"]["en"],
        source=data["source"].strip(),
        reviewer=data.get("reviewer"),
        reviewed=reviewed,
    )


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int
    kept: int = 0  # articles staff edited in the console, left alone by a shipped-content refresh


async def import_articles(
    session: AsyncSession, articles: Iterable[ArticleData], origin: str = "import"
) -> ImportResult:
    """Upsert by id in the caller's transaction. A shipped refresh never overwrites staff edits."""
    articles = list(articles)
    existing = {
        a.slug: a
        for a in await session.scalars(select(Article).where(Article.slug.in_([x.slug for x in articles])))
    }
    created = updated = unchanged = kept = 0
    for data in articles:
        digest = data.content_hash
        row = existing.get(data.slug)
        if row is not None and row.content_hash == digest:
            unchanged += 1
            continue
        if row is not None and origin == "shipped" and row.origin != "shipped":
            kept += 1
            continue
        fields: dict[str, Any] = {
            k: v for k, v in asdict(data).items() if k != "slug"
        } | data.search_columns() | {"content_hash": digest, "origin": origin}
        if row is None:
            session.add(Article(slug=data.slug, status="published", **fields))
            created += 1
        else:
            for key, value in fields.items():
                setattr(row, key, value)
            updated += 1
    await session.flush()
    return ImportResult(created, updated, unchanged, kept)
