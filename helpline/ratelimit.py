"""Per-contact rate limits: a sender who floods the line is told once to slow down, then ignored
until the minute has passed.

Every message is still stored (nothing is lost, an operator can read it); only the answering
stops. On SMS an answer is an outbound message that costs money, so past the limit the line
answers the first message with a polite refusal and the rest with nothing at all.

The window lives in this process's memory: it costs nothing per message, and with several
instances behind a proxy each one allows the limit (so a flooder gets at most N times it).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import Enum

WINDOW = 60.0
# Past this many senders tracked, those idle for a whole window are forgotten.
_PRUNE_AT = 10_000


class Verdict(Enum):
    ALLOW = "allow"
    REFUSE = "refuse"  # the first message over the limit in this window: say why, once
    SILENT = "silent"  # every further one: store it, answer nothing


class ContactLimiter:
    """A sliding one-minute window of answered messages per address."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._answered: dict[str, deque[float]] = {}
        self._refused_at: dict[str, float] = {}

    def check(self, address: str) -> Verdict:
        """Count one message from ``address`` and say how to treat it (0 per minute: no limit)."""
        if self.per_minute <= 0:
            return Verdict.ALLOW
        now = self._clock()
        times = self._answered.get(address)
        if times is None:
            if len(self._answered) >= _PRUNE_AT:
                self._prune(now)
            times = self._answered[address] = deque()
        while times and now - times[0] >= WINDOW:
            times.popleft()
        if len(times) < self.per_minute:
            times.append(now)
            return Verdict.ALLOW
        refused = self._refused_at.get(address)
        if refused is not None and now - refused < WINDOW:
            return Verdict.SILENT
        self._refused_at[address] = now
        return Verdict.REFUSE

    def _prune(self, now: float) -> None:
        for address in [a for a, t in self._answered.items() if not t or now - t[-1] >= WINDOW]:
            del self._answered[address]
            self._refused_at.pop(address, None)
