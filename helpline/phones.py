"""Phone numbers as one canonical form, E.164, whatever way they were written."""

from __future__ import annotations

import phonenumbers


def to_e164(raw: str, region: str = "CN") -> str | None:
    """'138 0013 8000' (region CN) -> '+8613800138000'; None when it is not a possible number."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def tel_urn(raw: str, region: str = "CN") -> str | None:
    e164 = to_e164(raw, region)
    return f"tel:{e164}" if e164 else None
