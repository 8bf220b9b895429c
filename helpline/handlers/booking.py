"""Booking requests: understood here, arranged by an operator until the booking service takes over."""

from __future__ import annotations

from helpline.handlers.operator import request_operator
from helpline.request import Intent, Reply
from helpline.router import Context


async def booking(ctx: Context) -> Reply:
    await request_operator(ctx, "booking")
    ctx.set_state(flow=None)
    return Reply(
        text=ctx.t(
            "好的，我们来帮您预约上门服务。话务员会尽快联系您，确认服务内容、时间和地址。",
            "Fine: we will arrange the service for you. An operator will contact you shortly to confirm what you "
            "need, when, and the address.",
        ),
        intent=Intent.BOOKING,
        lang=ctx.lang,
    )
