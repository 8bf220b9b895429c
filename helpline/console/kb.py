"""The knowledge-base editor: search, create, edit, review date, publish, retire.

Operators write drafts; supervisors and admins edit what is published, publish and retire
(a retired article is kept, out of search: the knowledge base never forgets what it answered).
Articles saved here are marked ``origin = console``, so a refresh of the shipped content on the
next start leaves them as staff left them. Publishing recounts the search terms, as an import does.

Candidates for new articles (questions the router could not answer) are in ``candidates.py``.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.appkeys import DB
from helpline.console.auth import audit, can, require_permission
from helpline.console.labels import ARTICLE_STATUS_LABELS
from helpline.console.live import console_write
from helpline.console.render import flash, redirect, render
from helpline.models import User, utcnow
from knowledge.loader import CATEGORIES, SHORT_LIMIT, ArticleData
from knowledge.models import Article
from knowledge.search import refresh_terms, search

PAGE_SIZE = 40
REVIEW_AFTER = timedelta(days=365)
_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")  # as knowledge/loader.py requires
_UNSPEAKABLE = re.compile(r"https?://|www\.|[*#•]")  # short answers go out by SMS and voice
CATEGORY_LABELS = {
    "crops": ("农作物", "Crops"),
    "soil": ("土壤肥料", "Soil"),
    "weather": ("气象", "Weather"),
    "livestock": ("畜牧水产", "Livestock"),
    "pesticides": ("农药", "Pesticides"),
    "policy": ("惠农政策", "Policy"),
    "social": ("社会保障", "Social security"),
    "documents": ("证件办理", "Documents"),
    "safety": ("安全防骗", "Safety"),
    "utilities": ("水电气", "Utilities"),
    "emergency": ("紧急", "Emergency"),
    "helpline": ("热线服务", "The help-line"),
}
FIELDS = (
    "slug",
    "category",
    "topic",
    "title_zh",
    "title_en",
    "keywords_zh",
    "keywords_en",
    "short_zh",
    "short_en",
    "full_zh",
    "full_en",
    "source",
    "reviewer",
    "reviewed",
)


def _keywords(text: str) -> list[str]:
    return [k.strip() for k in re.split(r"[,，、;；\n]", text) if k.strip()]


def parse_form(form: MultiDictProxy[Any], slug: str | None) -> tuple[dict[str, str], ArticleData | None, list[str]]:
    """The submitted fields, the article they make (None when invalid) and what is wrong, per field."""
    values = {k: str(form.get(k, "")).strip() for k in FIELDS}
    if slug is not None:
        values["slug"] = slug
    problems: list[str] = []
    if not _SLUG.match(values["slug"]) or len(values["slug"]) > 100:
        problems.append("slug")
    if values["category"] not in CATEGORIES:
        problems.append("category")
    for key in ("title_zh", "title_en", "short_zh", "short_en", "full_zh", "full_en", "source"):
        if not values[key]:
            problems.append(key)
    for lang in ("zh", "en"):
        short = values[f"short_{lang}"]
        if len(short) > SHORT_LIMIT[lang] or _UNSPEAKABLE.search(short):
            problems.append(f"short_{lang}")
        if not _keywords(values[f"keywords_{lang}"]):
            problems.append(f"keywords_{lang}")
    for key, limit in (("title_zh", 200), ("title_en", 200), ("source", 300), ("topic", 64), ("reviewer", 100)):
        if len(values[key]) > limit:
            problems.append(key)
    try:
        reviewed = date.fromisoformat(values["reviewed"])
    except ValueError:
        problems.append("reviewed")
        reviewed = None
    if problems or reviewed is None:
        return values, None, sorted(set(problems))
    data = ArticleData(
        slug=values["slug"],
        category=values["category"],
        topic=values["topic"] or None,
        title_zh=values["title_zh"],
        title_en=values["title_en"],
        keywords={"zh": _keywords(values["keywords_zh"]), "en": _keywords(values["keywords_en"])},
        short_zh=values["short_zh"],
        short_en=values["short_en"],
        full_zh=values["full_zh"],
        full_en=values["full_en"],
        source=values["source"],
        reviewer=values["reviewer"] or None,
        reviewed=reviewed,
    )
    return values, data, []


def _values_of(article: Article) -> dict[str, str]:
    return {
        "slug": article.slug,
        "category": article.category,
        "topic": article.topic or "",
        "title_zh": article.title_zh,
        "title_en": article.title_en,
        "keywords_zh": "\n".join(article.keywords.get("zh", [])),
        "keywords_en": "\n".join(article.keywords.get("en", [])),
        "short_zh": article.short_zh,
        "short_en": article.short_en,
        "full_zh": article.full_zh,
        "full_en": article.full_en,
        "source": article.source,
        "reviewer": article.reviewer or "",
        "reviewed": article.reviewed.isoformat(),
    }


def _apply(article: Article, data: ArticleData) -> None:
    for key in (
        "category",
        "topic",
        "title_zh",
        "title_en",
        "keywords",
        "short_zh",
        "short_en",
        "full_zh",
        "full_en",
        "source",
        "reviewer",
        "reviewed",
    ):
        setattr(article, key, getattr(data, key))
    for key, value in data.search_columns().items():
        setattr(article, key, value)
    article.content_hash = data.content_hash
    article.origin = "console"
    article.updated_at = utcnow()


async def _article(session: AsyncSession, article_id: str) -> Article:
    article = await session.get(Article, int(article_id)) if article_id.isdigit() else None
    if article is None:
        raise web.HTTPNotFound(text="404: there is no such article")
    return article


def may_edit(user: User, article: Article | None) -> bool:
    """Drafts are anyone's on the staff; what is live only a publisher changes."""
    if article is None or article.status == "draft":
        return can(user, "kb.edit")
    return can(user, "kb.publish")


# -- pages ---------------------------------------------------------------------------------


async def kb_list(request: web.Request) -> web.Response:
    await require_permission(request, "kb.view")
    q = request.query.get("q", "").strip()[:200]
    status = request.query.get("status", "")
    category = request.query.get("category", "")
    due = request.query.get("due") == "1"
    try:
        page = max(1, min(int(request.query.get("page", "1")), 1000))
    except ValueError:
        page = 1
    confidences: dict[int, float] = {}
    async with request.app[DB].read() as session:
        query = select(Article)
        if q:
            hits = await search(session, q, limit=PAGE_SIZE)
            confidences = {h.article.id: h.confidence for h in hits}
            like = or_(
                Article.slug.contains(q, autoescape=True),
                Article.title_zh.contains(q, autoescape=True),
                Article.title_en.contains(q, autoescape=True),
            )
            query = query.where(or_(Article.id.in_(list(confidences)), like))
        if status in ARTICLE_STATUS_LABELS:
            query = query.where(Article.status == status)
        if category in CATEGORIES:
            query = query.where(Article.category == category)
        if due:
            query = query.where(Article.reviewed <= date.today() - REVIEW_AFTER, Article.status != "retired")
        rows = list(
            await session.scalars(
                query.order_by(Article.updated_at.desc(), Article.id)
                .offset((page - 1) * PAGE_SIZE)
                .limit(PAGE_SIZE + 1)
            )
        )
        counts = dict((await session.execute(select(Article.status, func.count()).group_by(Article.status))).all())
        due_count = await session.scalar(
            select(func.count())
            .select_from(Article)
            .where(Article.reviewed <= date.today() - REVIEW_AFTER, Article.status != "retired")
        )
    if confidences:
        rows.sort(key=lambda a: -confidences.get(a.id, 0.0))
    return await render(
        request,
        "console/kb_list.html",
        {
            "articles": rows[:PAGE_SIZE],
            "more": len(rows) > PAGE_SIZE,
            "page": page,
            "q": q,
            "status": status,
            "category": category,
            "due": due,
            "confidences": confidences,
            "counts": counts,
            "due_count": due_count,
            "status_labels": ARTICLE_STATUS_LABELS,
            "category_labels": CATEGORY_LABELS,
            "review_before": date.today() - REVIEW_AFTER,
        },
        active="knowledge",
    )


async def _editor(
    request: web.Request,
    user: User,
    article: Article | None,
    values: dict[str, str],
    problems: list[str],
    status: int = 200,
) -> web.Response:
    return await render(
        request,
        "console/kb_edit.html",
        {
            "article": article,
            "values": values,
            "problems": problems,
            "editable": may_edit(user, article),
            "categories": CATEGORIES,
            "category_labels": CATEGORY_LABELS,
            "status_labels": ARTICLE_STATUS_LABELS,
            "short_limit": SHORT_LIMIT,
        },
        status=status,
        active="knowledge",
    )


async def kb_new(request: web.Request) -> web.Response:
    user = await require_permission(request, "kb.edit")
    question = request.query.get("q", "").strip()[:200]
    cjk = any(unicodedata.east_asian_width(ch) in "WF" for ch in question)
    values = {k: "" for k in FIELDS} | {
        "reviewed": date.today().isoformat(),
        "reviewer": user.username,
        "keywords_zh" if cjk else "keywords_en": question,
    }
    return await _editor(request, user, None, values, [])


async def kb_edit(request: web.Request) -> web.Response:
    user = await require_permission(request, "kb.view")
    async with request.app[DB].read() as session:
        article = await _article(session, request.match_info["id"])
    return await _editor(request, user, article, _values_of(article), [])


async def kb_create(request: web.Request) -> web.Response:
    user = await require_permission(request, "kb.edit")
    form = await request.post()
    values, data, problems = parse_form(form, None)
    publish = form.get("publish") == "1" and can(user, "kb.publish")
    if data is None:
        return await _editor(request, user, None, values, problems, status=400)
    article: Article | None = None
    async with console_write(request) as session:
        if await session.scalar(select(Article.id).where(Article.slug == data.slug)) is None:
            article = Article(slug=data.slug, status="published" if publish else "draft")
            _apply(article, data)
            session.add(article)
            await session.flush()
            audit(session, user, "kb.created", "article", article.id, {"slug": data.slug, "status": article.status})
            if publish:
                await refresh_terms(session)
    if article is None:  # rendered after the transaction: never hold the write lock to draw a page
        return await _editor(request, user, None, values, ["slug_taken"], status=409)
    flash(request, "ok", "文章已保存。", "Article saved.")
    return redirect(f"/console/kb/{article.id}")


async def kb_save(request: web.Request) -> web.Response:
    user = await require_permission(request, "kb.edit")
    form = await request.post()
    async with request.app[DB].read() as session:
        article = await _article(session, request.match_info["id"])
    if not may_edit(user, article):
        raise web.HTTPForbidden(text="403: only a supervisor changes a published article")
    values, data, problems = parse_form(form, article.slug)
    if data is None:
        return await _editor(request, user, article, values, problems, status=400)
    async with console_write(request) as session:
        article = await _article(session, request.match_info["id"])
        if not may_edit(user, article):  # published meanwhile
            raise web.HTTPForbidden(text="403: only a supervisor changes a published article")
        changed = data.content_hash != article.content_hash
        indexed = (article.search_key, article.search_body)
        _apply(article, data)
        audit(session, user, "kb.edited", "article", article.id, {"slug": article.slug, "changed": changed})
        if article.status == "published" and (article.search_key, article.search_body) != indexed:
            await refresh_terms(session)  # the words changed: recount them (a source or date does not)
    flash(request, "ok", "修改已保存。", "Changes saved.")
    return redirect(f"/console/kb/{article.id}")


async def _set_status(request: web.Request, permission: str, status: str, action: str) -> web.Response:
    user = await require_permission(request, permission)
    async with console_write(request) as session:
        article = await _article(session, request.match_info["id"])
        was = article.status
        article.status = status
        article.updated_at = utcnow()
        audit(session, user, action, "article", article.id, {"slug": article.slug, "from": was})
        if (was == "published") != (status == "published"):  # in or out of search: recount its words
            await refresh_terms(session)
    flash(request, "ok", "状态已更新。", "Status updated.")
    return redirect(f"/console/kb/{article.id}")


async def kb_publish(request: web.Request) -> web.Response:
    return await _set_status(request, "kb.publish", "published", "kb.published")


async def kb_retire(request: web.Request) -> web.Response:
    return await _set_status(request, "kb.retire", "retired", "kb.retired")


async def kb_reviewed(request: web.Request) -> web.Response:
    """Confirm an article is still right today: its review date moves to today."""
    user = await require_permission(request, "kb.publish")
    async with console_write(request) as session:
        article = await _article(session, request.match_info["id"])
        was = article.reviewed
        article.reviewed = date.today()
        article.reviewer = user.username
        article.origin = "console"
        article.updated_at = utcnow()
        audit(session, user, "kb.reviewed", "article", article.id, {"slug": article.slug, "was": was.isoformat()})
    flash(request, "ok", "已更新审核日期。", "Review date updated.")
    return redirect(f"/console/kb/{article.id}")
