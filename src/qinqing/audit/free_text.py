"""What free text typed by a person or a clerk (an unbind reason, a reviewer's
comment, a look-up's purpose) may not hold: a personal number. Such text is kept
as typed in the hash-chained audit log, which can never be edited, so a number in
it would stay there in clear for good. A run of 11 or more digits — spaces, dots
and dashes between them ignored, an ID number's final X included — is an ID
number, a mobile phone or an account number in every form people write them;
the text is refused with a clear message rather than altered behind the writer's
back."""

from __future__ import annotations

import re

from qinqing.kit.errors import DomainError

_NUMBER = re.compile(r"\d(?:[\s.\-]?\d){10,}(?:[\s.\-]?[Xx])?")


def holds_personal_number(text: str) -> bool:
    return _NUMBER.search(text) is not None


def check_free_text(text: str | None) -> None:
    """``FREE_TEXT_PERSONAL_NUMBER`` (422) when ``text`` holds a personal number."""
    if text and holds_personal_number(text):
        raise DomainError("FREE_TEXT_PERSONAL_NUMBER", 422)
