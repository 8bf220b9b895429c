"""Emergencies: the right number at once, in the fewest words, and the contact flagged urgent."""

from __future__ import annotations

from helpline.request import Intent, Reply
from helpline.router import Context

ADVICE = {
    "fire": (
        "请立即拨打119火警！先离开着火的房间，关上门，弯腰捂住口鼻往外走，不要乘电梯。",
        "Call 119 (fire) now! Get out of the room and close the door behind you, keep low under the smoke, do not use lifts.",
    ),
    "gas": (
        "请立即离开房间，不要开关电灯电器、不要打电话或点火，出门后拨打119和燃气公司抢修电话。",
        "Leave at once. Do not switch anything on or off, do not use a phone or flame inside. From outside call 119 and the gas company.",
    ),
    "medical": (
        "请立即拨打120急救电话！说清地址和病人情况，保持电话畅通，按调度员的指导施救。",
        "Call 120 (ambulance) now! Give the address and what happened, keep your phone free and follow the dispatcher's instructions.",
    ),
    "crime": (
        "请立即拨打110报警！先保证自己的安全，到安全的地方再说清地址和情况。",
        "Call 110 (police) now! Get yourself safe first, then give the address and what is happening.",
    ),
}


async def emergency(ctx: Context) -> Reply:
    kind = (ctx.classification.category or {}).get("kind", "medical")
    zh, en = ADVICE.get(kind, ADVICE["medical"])
    number = (ctx.classification.category or {}).get("number")
    ctx.audit("contact.urgent", {"kind": kind, "number": number, "text": ctx.request.text[:500]})
    ctx.set_state(flow=None)
    text = ctx.t(zh + "我们的话务员也已收到您的紧急求助。", en + " Our operators have also been alerted.")
    return Reply(text=text, intent=Intent.EMERGENCY, lang=ctx.lang, urgent=True)
