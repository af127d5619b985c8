"""Masking used by every response that shows personal information (docs/guide.md §3)."""

from __future__ import annotations


def mask_id_number(number: str) -> str:
    """``150602********0023``: area code and last four kept."""
    if len(number) < 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def mask_phone(phone: str) -> str:
    """``138****5678``."""
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_account_number(number: str) -> str:
    """``6214********2345``: the issuer prefix (first four) and the last four digits."""
    if len(number) < 12:
        return "*" * max(len(number) - 4, 0) + number[-4:]
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def mask_name(name: str) -> str:
    """张三丰 -> 张**: for listings shown to people other than the person."""
    if len(name) <= 1:
        return name
    return name[0] + "*" * (len(name) - 1)


def mask_document_number(number: str) -> str:
    """A document's number on a printed slip: only its last four characters
    (``******3456``), so a lost receipt does not carry it."""
    tail = number[-4:] if len(number) > 4 else ""
    return "*" * max(len(number) - len(tail), 4) + tail
