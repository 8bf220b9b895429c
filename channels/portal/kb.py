"""Browse the knowledge base by category, and read an article.

The knowledge base's categories (knowledge/README.md) are grouped the way residents look for
things: farming, livestock, weather, social security, documents, safety, and daily life.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.portal.common import page
from helpline.appkeys import DB
from knowledge.models import Article


@dataclass(frozen=True)
class Group:
    code: str
    zh: str
    en: str
    categories: tuple[str, ...]

    def name(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


GROUPS = (
    Group("farming", "种植技术", "Farming", ("crops", "soil", "pesticides")),
    Group("livestock", "畜禽水产", "Livestock", ("livestock",)),
    Group("weather", "天气与防灾", "Weather", ("weather",)),
    Group("social", "社保与补贴", "Social security", ("social", "policy")),
    Group("documents", "证件办理", "Documents", ("documents",)),
    Group("safety", "安全与急救", "Safety", ("safety", "emergency")),
    Group("daily", "水电气与本热线", "Utilities & this line", ("utilities", "helpline")),
)
BY_CODE = {g.code: g for g in GROUPS}
GROUP_OF = {c: g for g in GROUPS for c in g.categories}
# The jump links at the top of a group's page, when it has several sections.
SHORT = {
    "crops": ("农作物", "Crops"), "soil": ("土壤肥料", "Soil"), "pesticides": ("农药", "Pesticides"),
    "social": ("社保救助", "Social security"), "policy": ("补贴土地", "Subsidies and land"),
    "safety": ("防骗安全", "Scams and safety"), "emergency": ("紧急情况", "Emergencies"),
    "utilities": ("水电气", "Utilities"), "helpline": ("本热线", "This line"),
}
SECTIONS = {
    "crops": ("农作物病虫害与栽培", "Crops: pests, diseases and growing"),
    "soil": ("土壤与施肥", "Soil and fertiliser"),
    "pesticides": ("农药安全使用", "Using pesticides safely"),
    "livestock": ("畜禽和水产养殖", "Livestock, poultry and fish"),
    "weather": ("天气、季节与灾害", "Weather, seasons and disasters"),
    "social": ("医保、养老、低保与救助", "Health insurance, pensions and assistance"),
    "policy": ("农业补贴、保险与土地", "Farm subsidies, insurance and land"),
    "documents": ("身份证、户口、婚姻、入学", "ID cards, household registration, marriage, school"),
    "safety": ("防诈骗与居家安全", "Scams and safety at home"),
    "emergency": ("紧急情况", "Emergencies"),
    "utilities": ("水、电、燃气", "Water, power and gas"),
    "helpline": ("本热线能做什么", "What this line can do"),
}


def blocks(text: str) -> list[tuple[str, Any]]:
    """An article's text as headings, paragraphs and lists, for readable HTML without markup.

    The articles write one paragraph per line, lists as "- " lines, and a short first line of a
    block without a full stop ("一、农药中毒", "1. Pesticide poisoning") or a line ending in a
    colon ("What to do now:") as what leads the lines below it.
    """
    out: list[tuple[str, Any]] = []
    for chunk in text.strip().split("\n\n"):
        lines = [line.strip() for line in chunk.strip().splitlines() if line.strip()]
        items: list[str] = []
        for n, line in enumerate(lines):
            if line.startswith(("- ", "• ", "* ")):
                items.append(line[2:].strip())
                continue
            if items:
                out.append(("ul", items))
                items = []
            leads = (line.endswith(("：", ":")) and len(line) < 60) or (
                n == 0 and len(lines) > 1 and len(line) <= 40 and not line.endswith(_STOPS))
            out.append(("h" if leads else "p", line))
        if items:
            out.append(("ul", items))
    return out


_STOPS = ("。", ".", "！", "!", "？", "?", "；", ";", "）", ")", "”", '"')


async def neighbours(session: AsyncSession, article: Article, n: int) -> list[Article]:
    """Other articles on the same topic (or, without one, in the same category)."""
    same = Article.topic == article.topic if article.topic else Article.category == article.category
    return list(await session.scalars(
        select(Article).where(same, Article.status == "published", Article.id != article.id)
        .order_by(Article.slug).limit(n)))


async def index(request: web.Request) -> web.Response:
    async with request.app[DB].read() as session:
        counts = dict((await session.execute(
            select(Article.category, func.count()).where(Article.status == "published").group_by(Article.category))).all())
    groups = [(g, sum(counts.get(c, 0) for c in g.categories)) for g in GROUPS]
    return page(request, "portal/kb_index.html", {"groups": groups}, title=("便民知识", "Help articles"))


async def category(request: web.Request) -> web.Response:
    group = BY_CODE.get(request.match_info["category"])
    if group is None:
        raise web.HTTPNotFound()
    async with request.app[DB].read() as session:
        rows = list(await session.execute(
            select(Article.slug, Article.category, Article.title_zh, Article.title_en)
            .where(Article.category.in_(group.categories), Article.status == "published")
            .order_by(Article.topic, Article.slug)))
    sections = [(SECTIONS.get(c, (c, c)), [r for r in rows if r.category == c], SHORT.get(c, (c, c)))
                for c in group.categories]
    return page(request, "portal/kb_category.html", {"group": group, "sections": [s for s in sections if s[1]]},
                title=(group.zh, group.en))


async def article(request: web.Request) -> web.Response:
    slug = request.match_info["slug"]
    async with request.app[DB].read() as session:
        found = await session.scalar(select(Article).where(Article.slug == slug[:100], Article.status == "published"))
        if found is None:
            raise web.HTTPNotFound()
        related = await neighbours(session, found, 5)
    return page(request, "portal/article.html",
                {"article": found, "related": related, "group": GROUP_OF.get(found.category), "blocks": blocks},
                title=(found.title_zh, found.title_en))
