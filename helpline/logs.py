"""Structured logs: one line per event, key=value, with the request id; phone numbers masked."""

from __future__ import annotations

import contextvars
import logging
import re
import sys

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_DIGITS = re.compile(r"(\+?\d{3})\d+(\d{4})")


def mask_urn(urn: str) -> str:
    """'tel:+8613800001234' -> 'tel:+86****1234'; other addresses keep only their start."""
    scheme, _, rest = urn.partition(":")
    if scheme == "tel":
        return f"tel:{_DIGITS.sub(lambda m: m.group(1) + '****' + m.group(2), rest)}"
    return f"{scheme}:{rest[:4]}…" if len(rest) > 6 else urn


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def configure(level: str = "INFO") -> None:
    """Send our log lines to stderr; idempotent, so tests and the CLI may both call it."""
    root = logging.getLogger("helpline")
    root.setLevel(level)
    if any(getattr(h, "_helpline", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._helpline = True  # type: ignore[attr-defined]
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        logging.Formatter("ts=%(asctime)s level=%(levelname)s logger=%(name)s request_id=%(request_id)s %(message)s")
    )
    root.addHandler(handler)
    root.propagate = False
