"""Request and response models of the counter desk."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from qinqing.auth.rules import DocumentType
from qinqing.counter.rules import FORM_NUMBER_MAX, FORM_NUMBER_PATTERN
from qinqing.family.schemas import YEARLY_LIMIT_CEILING_FEN, DocumentTypeName, RelationName
from qinqing.family.views import LinkOut
from qinqing.unbind.schemas import RequestRef

ID_NUMBER_FIELD = Field(
    min_length=1, max_length=32, description="the 18-digit number read from the document"
)
# Other names desks and integrators commonly use for the same two documents.
DOCUMENT_TYPE_ALIASES = {
    "id_card": "resident_id",
    "resident_id_card": "resident_id",
    "social_security_card": "medical_card",
    "medical_insurance_card": "medical_card",
}
FORM_NUMBER_FIELD = Field(
    min_length=1,
    max_length=FORM_NUMBER_MAX,
    pattern=FORM_NUMBER_PATTERN,
    description="the serial of the paper application form (申请表编号): letters, digits "
    "and / _ . -; an ID or mobile number is refused (FORM_NUMBER_INVALID)",
)
REASON_FIELD = Field(default=None, max_length=500)


class LookupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id_number: str = Field(
        min_length=1, max_length=32, description="the person's 18-digit resident ID number"
    )
    reason: str | None = Field(
        default=None,
        max_length=200,
        description="why the record is opened, when it is more than serving the person "
        "at the desk (recorded in the audit log)",
    )


class CounterPersonOut(BaseModel):
    id: str
    name: str
    id_number: str = Field(description="in full for a person of the clerk's region, else masked")
    phone: str | None = Field(description="the registry's phone; masked like the ID number")
    sex: Literal["M", "F"]
    birth_date: str
    status: Literal["active", "arrears", "suspended", "terminated", "deceased"]
    scheme: Literal["employee", "resident", "flexible"]
    region_code: str
    region_name: str


class LookupOut(BaseModel):
    person: CounterPersonOut
    as_holder: list[LinkOut] = Field(
        description="links where the person is the holder (绑定人): open ones, then those "
        "ended in the last year; a link whose `region_code` is not the clerk's is handled "
        "by that region's agency"
    )
    as_member: list[LinkOut] = Field(description="links where the person is the bound member")
    id_document_locked_until: datetime | None = Field(
        description="counter unbinds for this person are locked until then after repeated "
        "document mismatches"
    )


class IdDocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: DocumentType = Field(
        description="resident_id: 居民身份证; medical_card: 医保卡/社会保障卡, whose "
        "社会保障号码 is the holder's citizen ID number"
    )
    number: str = ID_NUMBER_FIELD

    @field_validator("type", mode="before")
    @classmethod
    def _alias(cls, value: object) -> object:
        if isinstance(value, str):
            return DOCUMENT_TYPE_ALIASES.get(value.strip().lower(), value)
        return value


class NamedIdDocumentIn(IdDocumentIn):
    name: str = Field(min_length=1, max_length=64, description="the name on the document")


class CounterUnbindIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    link_id: str = Field(min_length=1, max_length=64)
    on_behalf_of: Literal["holder", "member"] = Field(
        description="the party who came to the counter and whose document is presented"
    )
    id_document: IdDocumentIn
    form_number: str = FORM_NUMBER_FIELD
    reason: str | None = REASON_FIELD


class CounterUnbindOut(BaseModel):
    request: RequestRef
    link: LinkOut = Field(description="the link after the unbind; parties masked")


class CounterBindIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    holder_id_document: NamedIdDocumentIn
    member_id_document: NamedIdDocumentIn
    relation: RelationName
    mutual_aid: bool = Field(default=False, strict=True)
    mutual_aid_yearly_limit_fen: int | None = Field(
        default=None, strict=True, ge=0, le=YEARLY_LIMIT_CEILING_FEN
    )
    form_number: str = FORM_NUMBER_FIELD
    reason: str | None = REASON_FIELD


class ProofDocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: DocumentTypeName = Field(
        description="birth_certificate (出生医学证明), household_register (户口本) or "
        "guardianship_order (监护证明 / a court's order)"
    )
    number: str = Field(min_length=1, max_length=64, description="the document's own number")


class CounterProofIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: ProofDocumentIn
    form_number: str = FORM_NUMBER_FIELD


class CounterProofOut(BaseModel):
    proof_id: str
    link: LinkOut
    receipt_url: str = Field(description="the printed receipt (回执), a PDF")
