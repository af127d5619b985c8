"""Validating the rows of a persons import: each row on its own, refused with its
physical line number, a stable code and an English reason that never repeats a
value from the file (a shifted column could put an ID number or a phone into
any field); taken rows are vault-encoded for the writers."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from qinqing.identity import ric
from qinqing.identity.phone import normalize_phone
from qinqing.identity.vault import Vault
from qinqing.persons.import_file import COLUMNS, EXPECTED_HEADER, ROW_MAX_BYTES
from qinqing.persons.models import PersonStatus, Scheme
from qinqing.persons.service import ID_KIND, PHONE_KIND

NAME_MAX = 64
MAX_GUARDIANS = 6
SCHEMES = frozenset(s.value for s in Scheme)
STATUSES = frozenset(s.value for s in PersonStatus)

# C0/C1 controls, invisible format characters, line/paragraph separators.
_BAD_NAME_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")

ID_REASONS = {
    "ID_NUMBER_LENGTH": "the ID number must have 18 characters",
    "ID_NUMBER_FORMAT": "the ID number must be 17 digits followed by a digit or X",
    "ID_NUMBER_CHECK_DIGIT": "the ID number's check digit is wrong",
    "ID_NUMBER_BIRTH_DATE": (
        "the birth date in the ID number is not a real date or lies in the future"
    ),
    "ID_NUMBER_AREA_CODE": (
        "the ID number's area code (first six digits) is not a known GB/T 2260 code"
    ),
}
REASONS = {
    "COLUMNS_INVALID": "the row must have as many fields as the header "
    f"({EXPECTED_HEADER}, optionally ,guardians)",
    "ENCODING_INVALID": "the row is not valid text in the file's encoding (UTF-8 by default)",
    "CSV_MALFORMED": "the row is not well-formed CSV",
    "ROW_TOO_LONG": f"the row is longer than {ROW_MAX_BYTES} bytes, the limit for one row",
    "NAME_INVALID": f"the name must be 1 to {NAME_MAX} characters without control characters",
    "REGION_UNKNOWN": "the region code is not a known region",
    "SCHEME_INVALID": "the scheme must be one of " + ", ".join(s.value for s in Scheme),
    "STATUS_INVALID": "the status must be one of " + ", ".join(s.value for s in PersonStatus),
    "PHONE_INVALID": "the phone must be empty or an 11-digit mainland mobile number",
    "GUARDIANS_INVALID": f"the guardians must be up to {MAX_GUARDIANS} valid ID numbers "
    "separated by ';', none of them the person's own",
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """One refused row: physical line (header = 1), stable code, English reason without PII."""

    line: int
    code: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "code": self.code, "reason": self.reason}


# A validated row, in the staging table's column order:
# line, id, id_number_index, id_number_cipher, name, region_code, scheme, status,
# birth_date, sex, phone_index, phone_cipher
StagedRow = tuple[
    int, uuid.UUID, str, bytes, str, str, str, str, date, str, str | None, bytes | None
]
STAGED_COLUMNS = (
    "line",
    "id",
    "id_number_index",
    "id_number_cipher",
    "name",
    "region_code",
    "scheme",
    "status",
    "birth_date",
    "sex",
    "phone_index",
    "phone_cipher",
)


def refusal(line: int, code: str) -> Refusal:
    return Refusal(line, code, ID_REASONS.get(code) or REASONS[code])


class RowValidator:
    """Validates and vault-encodes rows; remembers accepted ID numbers to find duplicates,
    and each accepted person's guardians (blind indexes) in ``guardians``."""

    def __init__(
        self,
        vault: Vault,
        today: date,
        regions: frozenset[str],
        columns: tuple[str, ...] = COLUMNS,
    ) -> None:
        self._vault = vault
        self._today = today
        self._regions = regions
        self._columns = len(columns)
        self.has_guardians = self._columns > len(COLUMNS)
        # first 17 digits of an accepted ID number -> its line (the 18th follows from them)
        self._seen: dict[int, int] = {}
        # person id (as staged) -> the guardians' ID-number blind indexes
        self.guardians: dict[uuid.UUID, tuple[str, ...]] = {}

    def _guardians(self, raw: str, own: str) -> tuple[str, ...] | None:
        """The guardians' blind indexes (deduplicated), or None when the field is wrong."""
        found: list[str] = []
        for part in raw.split(";"):
            if not part.strip():
                continue
            try:
                number = ric.parse(part, self._today).number
            except ric.InvalidIdNumber:
                return None
            if number == own:
                return None
            index = self._vault.index(ID_KIND, number)
            if index not in found:
                found.append(index)
        return tuple(found) if len(found) <= MAX_GUARDIANS else None

    def row(self, line: int, fields: list[str]) -> StagedRow | Refusal:
        if len(fields) != self._columns:
            return refusal(line, "COLUMNS_INVALID")
        raw_id, raw_name, raw_region, raw_scheme, raw_status, raw_phone = fields[:6]
        try:
            ident = ric.parse(raw_id, self._today)
        except ric.InvalidIdNumber as exc:
            return refusal(line, exc.code)
        name = unicodedata.normalize("NFC", raw_name.strip())
        if not name or len(name) > NAME_MAX or _BAD_NAME_CHAR.search(name):
            return refusal(line, "NAME_INVALID")
        region = raw_region.strip()
        if region not in self._regions:
            return refusal(line, "REGION_UNKNOWN")
        scheme = raw_scheme.strip().lower()
        if scheme not in SCHEMES:
            return refusal(line, "SCHEME_INVALID")
        status = raw_status.strip().lower()
        if status not in STATUSES:
            return refusal(line, "STATUS_INVALID")
        phone: str | None = None
        if raw_phone.strip():
            phone = normalize_phone(raw_phone)
            if phone is None:
                return refusal(line, "PHONE_INVALID")
        guardians: tuple[str, ...] = ()
        if self._columns > len(COLUMNS):
            parsed = self._guardians(fields[6], ident.number)
            if parsed is None:
                return refusal(line, "GUARDIANS_INVALID")
            guardians = parsed
        key = int(ident.number[:17])
        first = self._seen.setdefault(key, line)
        if first != line:
            return Refusal(line, "DUPLICATE_IN_FILE", f"the same ID number is on line {first}")
        vault = self._vault
        number = ident.number
        person_id = uuid.uuid4()
        if guardians:
            self.guardians[person_id] = guardians
        return (
            line,
            person_id,
            vault.index(ID_KIND, number),
            vault.encrypt(ID_KIND, number),
            name,
            region,
            scheme,
            status,
            ident.birth_date,
            ident.sex,
            vault.index(PHONE_KIND, phone) if phone else None,
            vault.encrypt(PHONE_KIND, phone) if phone else None,
        )
