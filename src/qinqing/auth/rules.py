"""Authentication decisions over plain values, no I/O: the ID documents a clerk attests
at the counter (the ``id_document`` verification) and their lockout."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from qinqing.identity import ric

DocumentType = Literal["resident_id", "medical_card"]
DOCUMENT_TYPES: tuple[DocumentType, ...] = ("resident_id", "medical_card")
# What the receipt and the messages call each document.
DOCUMENT_LABELS: dict[str, str] = {
    "resident_id": "居民身份证",
    "medical_card": "医保卡（社会保障卡）",
}
# The verification method recorded on a counter request (the guide §3 calls it "id_document").
ID_DOCUMENT_METHOD = "id_document"


def document_number(doc_type: DocumentType, raw: str, today: date) -> str:
    """The 18-digit number a document carries, validated (ID_NUMBER_* 422 otherwise).

    A resident ID card (居民身份证) carries the citizen ID number. A medical
    insurance card (医保卡 / 社会保障卡) carries the 社会保障号码, which for a
    mainland resident *is* that same ID number; the card's own serial (卡号)
    is not something the agency's registry knows, so it is not accepted here.
    Both types therefore compare the same number; the type is what the clerk
    attests to having seen, and is recorded.
    """
    del doc_type  # same number on both documents; kept in the signature for the record
    return ric.parse(raw, today).number


@dataclass(frozen=True, slots=True)
class Lockout:
    """The state of a person's counter-document counter after one more mismatch."""

    failures: int
    locked_until: datetime | None

    def remaining(self, max_failures: int) -> int:
        return max(max_failures - self.failures, 0)


def after_mismatch(failures: int, now: datetime, *, max_failures: int, lock_hours: int) -> Lockout:
    """One more consecutive mismatch: at ``max_failures`` the counter locks for
    ``lock_hours`` and starts again from zero (the payment password's rule)."""
    failures += 1
    if failures >= max_failures:
        return Lockout(0, now + timedelta(hours=lock_hours))
    return Lockout(failures, None)


def is_locked(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and locked_until > now
