"""The greeting/help menu and the fallback: tell the caller what the line can do, in their language."""

from __future__ import annotations

from sqlalchemy import select

from helpline.handlers.knowledge import closest_topics
from helpline.models import ContactAddress
from helpline.request import Intent, Option, Reply
from helpline.router import Context

# key -> (intent it leads to, zh label, en label, zh prompt, en prompt)
MENU: tuple[tuple[str, Intent, str, str, str, str], ...] = (
    ("1", Intent.KNOWLEDGE, "农业技术咨询", "Farming advice",
     "请直接说出您的问题，比如：水稻叶子上有褐色斑点怎么办？",
     "Please type your question, for example: brown spots on my rice leaves, what should I do?"),
    ("2", Intent.KNOWLEDGE, "社区与政策咨询", "Community and benefits questions",
     "请直接说出您想了解的事情，比如：低保怎么申请？",
     "Please type what you want to know, for example: how do I apply for the minimum living allowance?"),
    ("3", Intent.BOOKING, "预约上门服务", "Book a service",
     "请说出您需要的服务和时间，比如：水管漏了，明天上午找个师傅。",
     "Please say what service you need and when, for example: a plumber tomorrow morning."),
    ("4", Intent.GRID_CASE, "反映城市管理问题", "Report a street problem",
     "请说出问题和地点，比如：幸福路口路灯坏了。",
     "Please describe the problem and the place, for example: street light broken at Xingfu Road."),
    ("5", Intent.CASE_STATUS, "查询办理进度", "Check a case or booking",
     "请发送您的案件号或预约号。",
     "Please send your case or booking number."),
    ("0", Intent.OPERATOR, "人工服务", "Talk to an operator",
     "请稍候，我们的话务员会尽快回复您。",
     "Please hold on: an operator will answer you as soon as possible."),
)


def menu_options(lang: str) -> tuple[Option, ...]:
    return tuple(Option(key, zh if lang == "zh" else en) for key, _, zh, en, _, _ in MENU)


def menu_reply(ctx: Context, intro_zh: str, intro_en: str, intent: Intent = Intent.MENU) -> Reply:
    lines = [ctx.t(intro_zh, intro_en)]
    lines += [f"{o.key} {o.label}" for o in menu_options(ctx.lang)]
    ctx.set_state(flow=Intent.MENU.value)
    return Reply(text="\n".join(lines), intent=intent, lang=ctx.lang, options=menu_options(ctx.lang))


async def subscription(ctx: Context, action: str) -> Reply:
    """STOP / 退订 ends outbound messages to this address (replies still come); START resumes them."""
    address = await ctx.session.scalar(select(ContactAddress).where(ContactAddress.urn == ctx.request.address))
    if address is not None:
        address.opted_out_at = ctx.now if action == "stop" else None
    ctx.audit(f"subscription.{action}", {}, subject_type="address", subject_id=ctx.request.address)
    if action == "stop":
        text = ctx.t(
            "您已退订，我们不会再主动给您发消息。需要帮助时随时发消息或来电；回复START可恢复。",
            "You are unsubscribed: we will send you no more messages. Write or call whenever you need help; reply START to resume.",
        )
    else:
        text = ctx.t("已恢复订阅，我们会继续给您发送办理进度等消息。", "You are subscribed again: we will send you updates.")
    return Reply(text=text, intent=Intent.MENU, lang=ctx.lang)


async def menu(ctx: Context) -> Reply | None:
    """Greeting or help: list the services. As a flow, a bare menu key picks a service."""
    action = (ctx.classification.category or {}).get("subscription")
    if action is not None and ctx.classification.intent is Intent.MENU:
        ctx.set_state(flow=None)
        return await subscription(ctx, action)
    choice = ctx.request.text.strip().rstrip(".。")
    if ctx.state.get("flow") == Intent.MENU.value and ctx.classification.intent is not Intent.MENU:
        for key, intent, _zh, _en, prompt_zh, prompt_en in MENU:
            if choice == key:
                ctx.set_state(flow=None, menu_choice=key)
                if ctx.router is not None and intent in (Intent.CASE_STATUS, Intent.OPERATOR):
                    return await ctx.router.dispatch(ctx, intent)
                return Reply(text=ctx.t(prompt_zh, prompt_en), intent=Intent.MENU, lang=ctx.lang)
        return None  # not a menu key: let the router classify the message afresh
    return menu_reply(
        ctx,
        "您好，这里是便民服务热线，7×24小时为您服务。请回复数字：",
        "Hello, this is the community help-line, open 24 hours a day. Reply with a number:",
    )


async def fallback(ctx: Context) -> Reply:
    """When nothing fits: offer the closest topics if any, else say so plainly and show the menu."""
    topics = await closest_topics(ctx)
    if topics is not None:
        return topics
    return menu_reply(
        ctx,
        "抱歉，没能理解您的意思。您可以换个说法，或回复数字选择服务：",
        "Sorry, I did not understand that. Please say it another way, or reply with a number:",
        intent=Intent.UNKNOWN,
    )
