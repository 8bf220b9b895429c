"""Hand-off to a human: the conversation joins the operators' queue, and the caller is told so."""

from __future__ import annotations

from helpline.request import Intent, Reply
from helpline.router import Context


async def request_operator(ctx: Context, reason: str) -> None:
    """Put the conversation in the operators' queue (once), with why it is there."""
    if ctx.conversation.status not in ("waiting", "assigned"):  # queued already, or in an operator's hands
        ctx.conversation.status = "waiting"
        ctx.audit("handoff.requested", {"reason": reason, "text": ctx.request.text[:500]})


async def operator(ctx: Context) -> Reply:
    await request_operator(ctx, "asked")
    ctx.set_state(flow=None)
    return Reply(
        text=ctx.t(
            "好的，正在为您转接人工服务，话务员会尽快在这里回复您。如有紧急情况请直接拨打110、119或120。",
            "All right: an operator will reply to you here as soon as possible. In an emergency call 110, 119 or 120.",
        ),
        intent=Intent.OPERATOR,
        lang=ctx.lang,
    )
