"""Counter decisions over plain values, no I/O: form numbers, the receipt's words.
(The ID documents a clerk attests are ``auth.rules``: the unbind's ``id_document``
verification is checked there.)

The conditions of an unbind or a binding are not here: the counter asks
``unbind.rules.blockers`` and ``family.rules.refusals`` like every channel.
This module only decides what is particular to the counter desk.
"""

from __future__ import annotations

import re
from datetime import date

from qinqing.identity import ric
from qinqing.kit.errors import DomainError

# Form numbers: the serial printed on the paper application form (申请表编号).
FORM_NUMBER_MAX = 32
FORM_NUMBER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9/_.-]*$"
_FORM_NUMBER = re.compile(FORM_NUMBER_PATTERN)
_MOBILE = re.compile(r"1[3-9]\d{9}")


def check_form_number(raw: str) -> str:
    """The form number as stored, or 422 FORM_NUMBER_INVALID.

    Letters, digits and ``/ _ . -``, at most 32 characters. A form number
    that is an ID number or a mobile number is refused: it would put personal
    data in clear into the request table and the audit log (a clerk typing
    the number into the wrong field is the likely cause).
    """
    value = raw.strip()
    if not 1 <= len(value) <= FORM_NUMBER_MAX or not _FORM_NUMBER.fullmatch(value):
        raise DomainError("FORM_NUMBER_INVALID", 422, reason="format")
    if looks_like_personal_number(value):
        raise DomainError("FORM_NUMBER_INVALID", 422, reason="personal_data")
    return value


def looks_like_personal_number(value: str) -> bool:
    """Whether the text is, or contains, a valid ID number, or is a mobile number."""
    upper = value.upper()
    if _MOBILE.fullmatch(upper):
        return True
    for start in range(0, max(len(upper) - 17, 0)):
        window = upper[start : start + 18]
        if window[:17].isdigit() and (window[17].isdigit() or window[17] == "X"):
            try:
                ric.parse(window, date.max)
            except DomainError:
                continue
            return True
    return False


# --- the receipt -------------------------------------------------------------

# request status -> what the receipt says happened (解除成功 / 审核中, or the decision).
OUTCOME_LABELS: dict[str, str] = {
    "completed": "解除成功",
    "pending_review": "审核中",
    "approved": "审核通过，解除成功",
    "rejected": "审核未通过，关系继续有效",
    "closed": "参保登记变更，亲情关系已终止，申请不再审核",
    "proof_accepted": "监护关系证明已查验，亲情关系生效",
}

PARTY_LABELS: dict[str, str] = {"holder": "绑定人本人", "member": "被绑定的家庭成员本人"}


def outcome_label(status: str) -> str:
    return OUTCOME_LABELS.get(status, status)
