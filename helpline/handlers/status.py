"""Status of an earlier case or booking, by its number.

Services that keep numbered records (grid cases, bookings) register a lookup here; until one
knows the number, the caller is told plainly that nothing was found and how to reach a person.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from helpline.request import Intent, Option, Reply
from helpline.router import Context

# A lookup returns a finished reply for a number it knows, or None.
Lookup = Callable[[Context, str], Awaitable[Reply | None]]


class StatusDesk:
    def __init__(self) -> None:
        self._lookups: list[Lookup] = []

    def register(self, lookup: Lookup) -> None:
        self._lookups.append(lookup)

    async def __call__(self, ctx: Context) -> Reply | None:
        number = (ctx.classification.category or {}).get("number")
        if ctx.state.get("flow") == Intent.CASE_STATUS.value:
            digits = "".join(ch for ch in ctx.request.text if ch.isdigit())
            if len(digits) >= 3:
                number = digits
            elif ctx.classification.intent is not Intent.CASE_STATUS:
                return None
        if not number:
            ctx.set_state(flow=Intent.CASE_STATUS.value)
            return Reply(
                text=ctx.t(
                    "请发送您的案件号或预约号（在受理短信里），例如：CX 12345。",
                    "Please send your case or booking number (it is in the confirmation message), e.g. CX 12345.",
                ),
                intent=Intent.CASE_STATUS,
                lang=ctx.lang,
            )
        ctx.set_state(flow=None)
        for lookup in self._lookups:
            reply = await lookup(ctx, number)
            if reply is not None:
                return reply
        return Reply(
            text=ctx.t(
                f"没有查到编号为{number}的案件或预约。请核对号码后再发一次，或回复0转人工帮您查。",
                f"We found no case or booking numbered {number}. Please check the number and send it again, "
                "or reply 0 and an operator will look it up.",
            ),
            intent=Intent.CASE_STATUS,
            lang=ctx.lang,
            options=(Option("0", ctx.t("转人工", "Talk to an operator")),),
        )
