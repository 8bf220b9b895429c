"""Consultations: answer from the knowledge base, shaped for the channel, and never pretend.

A confident match is answered (short on SMS and voice, full with its source on web and chat).
A weak match offers the closest topics by number, with an operator as the way out; nothing at
all returns None, so the router's fallback says plainly that it did not understand.
"""

from __future__ import annotations

from sqlalchemy import select

from helpline.request import Channel, Intent, Option, Reply
from helpline.router import Context
from knowledge.models import Article
from knowledge.search import Hit, search

ANSWER_AT = 0.3  # confidence from which we answer outright (chosen on the dev splits)
SUGGEST_AT = 0.2  # confidence from which a topic is worth offering


def render_article(ctx: Context, article: Article) -> str:
    """The answer as the channel should carry it: speakable and short, or full with its source."""
    if ctx.request.channel in (Channel.SMS, Channel.VOICE):
        return article.short(ctx.lang)
    reviewed = article.reviewed.isoformat()
    source = ctx.t(f"来源：{article.source}（{reviewed}审核）", f"Source: {article.source} (reviewed {reviewed})")
    return f"{article.title(ctx.lang)}\n\n{article.full(ctx.lang)}\n\n{source}"


def _operator_option(ctx: Context) -> Option:
    return Option("0", ctx.t("转人工专家", "Talk to an expert"))


def answer(ctx: Context, article: Article, related: list[Hit]) -> Reply:
    options = [Option(str(i), h.article.title(ctx.lang)) for i, h in enumerate(related, 1)]
    ctx.set_state(flow=Intent.KNOWLEDGE.value, offered=[h.article.slug for h in related], last_article=article.slug)
    return Reply(
        text=render_article(ctx, article),
        intent=Intent.KNOWLEDGE,
        lang=ctx.lang,
        options=(*options, _operator_option(ctx)),
        article={"id": article.slug, "title": article.title(ctx.lang)},
    )


async def knowledge(ctx: Context) -> Reply | None:
    choice = ctx.request.text.strip()
    offered: list[str] = ctx.state.get("offered", [])
    if ctx.state.get("flow") == Intent.KNOWLEDGE.value:
        if choice.isdigit() and 1 <= int(choice) <= len(offered):
            article = await _article(ctx, offered[int(choice) - 1])
            if article is not None:
                return answer(ctx, article, [])
        if choice == "0" and ctx.router is not None:
            ctx.set_state(flow=None, offered=None)
            return await ctx.router.dispatch(ctx, Intent.OPERATOR)
        if ctx.classification.intent is not Intent.KNOWLEDGE:
            return None  # not a choice and not a new question: let the router decide
    hits = await search(ctx.session, ctx.request.text, limit=4)
    if hits and hits[0].confidence >= ANSWER_AT:
        related = [h for h in hits[1:] if h.confidence >= SUGGEST_AT][:2]
        return answer(ctx, hits[0].article, related)
    ctx.set_state(flow=None, offered=None)
    return None  # not sure: the router tries another reading, then the fallback offers topics


async def closest_topics(ctx: Context) -> Reply | None:
    """When nothing fits: offer the closest topics by number, with an expert as the way out."""
    hits = await search(ctx.session, ctx.request.text, limit=3)
    close = [h for h in hits if h.confidence >= SUGGEST_AT]
    if not close:
        return None
    ctx.set_state(flow=Intent.KNOWLEDGE.value, offered=[h.article.slug for h in close])
    options = [Option(str(i), h.article.title(ctx.lang)) for i, h in enumerate(close, 1)]
    lines = [ctx.t("我不太确定您问的是哪一个。您是想了解：", "I am not sure which of these you mean:")]
    lines += [f"{o.key} {o.label}" for o in options]
    lines.append(ctx.t("回复0由专家人工解答。", "Reply 0 to ask one of our experts."))
    # Only topics to offer, no answer: honestly, we did not understand (yet).
    return Reply(text="\n".join(lines), intent=Intent.UNKNOWN, lang=ctx.lang, options=(*options, _operator_option(ctx)))


async def _article(ctx: Context, slug: str) -> Article | None:
    return await ctx.session.scalar(select(Article).where(Article.slug == slug, Article.status == "published"))
