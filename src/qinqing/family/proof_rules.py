"""What counts as guardianship proof (docs/decisions.md "What counts as proof"): pure
decisions over plain values, no I/O.

A binding of a member under the consent age by someone who is not one of their
registered guardians waits (``pending_proof``) for one of three documents: the
出生医学证明 (birth certificate, naming the parents), the 户口本 (household
register, naming the household's guardians), or a court's guardianship
document (监护证明 / 判决书). It is either uploaded by the holder — a JPEG, PNG
or PDF of at most ``MAX_FILE_BYTES``, recognised by its content, never by its
name — and decided by a reviewer of the member's region, or seen by a clerk at
the counter of the member's region, who records its number and the paper
form's.
"""

from __future__ import annotations

import unicodedata
from typing import Literal

from qinqing.kit.errors import DomainError
from qinqing.kit.i18n import N_

DocumentType = Literal["birth_certificate", "household_register", "guardianship_order"]
DOCUMENT_TYPES: tuple[DocumentType, ...] = (
    "birth_certificate",
    "household_register",
    "guardianship_order",
)
# What the pages, the receipt and the messages call each document (message ids of
# the web app's catalogs: ``make locales-extract`` reads this file too).
DOCUMENT_NAMES: dict[str, str] = {
    "birth_certificate": N_("出生医学证明"),
    "household_register": N_("户口本"),
    "guardianship_order": N_("监护证明（法院判决或裁定）"),
}
MAX_FILE_BYTES = 5 * 1024 * 1024
DOCUMENT_NUMBER_MAX = 64

# Leading bytes of each accepted format (their "magic numbers").
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
)
CONTENT_TYPES = tuple(ct for _, ct in _SIGNATURES)


def content_type_of(data: bytes) -> str | None:
    """``image/jpeg``, ``image/png`` or ``application/pdf`` by the file's first bytes;
    None for anything else, whatever it is called."""
    for signature, content_type in _SIGNATURES:
        if data.startswith(signature):
            return content_type
    return None


def check_file(data: bytes) -> str:
    """The file's content type, or 422 ``PROOF_FILE_INVALID`` (empty, too large, or
    not a JPEG, PNG or PDF by its content)."""
    if not data:
        raise DomainError("PROOF_FILE_INVALID", 422, reason="empty", max_bytes=MAX_FILE_BYTES)
    if len(data) > MAX_FILE_BYTES:
        raise DomainError("PROOF_FILE_INVALID", 422, reason="too_large", max_bytes=MAX_FILE_BYTES)
    content_type = content_type_of(data)
    if content_type is None:
        raise DomainError("PROOF_FILE_INVALID", 422, reason="type", max_bytes=MAX_FILE_BYTES)
    return content_type


def check_document_number(raw: str) -> str:
    """A document's number as a clerk read it: 1-64 printable characters (a court's
    case number has Chinese characters and brackets), or 422 ``DOCUMENT_NUMBER_INVALID``."""
    value = unicodedata.normalize("NFC", raw.strip())
    if not 1 <= len(value) <= DOCUMENT_NUMBER_MAX or not value.isprintable():
        raise DomainError("DOCUMENT_NUMBER_INVALID", 422)
    return value
