"""The outbox's sender for web addresses (``web:<session id>``).

A message for a resident on the web (an operator's reply, a notice) is already in their
conversation when it is queued, and the portal's ``/talk`` page shows the conversation: there
is nothing to hand to a provider. Sending records that it is on its way to the page, so the
console shows "sent" rather than "skipped: no sender for channel 'web'".
"""

from __future__ import annotations

from helpline.models import OutboxItem


class PortalSender:
    async def send(self, item: OutboxItem) -> str:
        return f"portal-{item.id}"

    async def close(self) -> None:
        return None
