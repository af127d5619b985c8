from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from qinqing.kit.fen import PositiveFen

Reference = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
IdNumber = Annotated[str, Field(min_length=1, max_length=32)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AuthorizeIn(Strict):
    """The persons by their two ID numbers, or by the voucher the holder showed."""

    holder_id_number: IdNumber | None = None
    member_id_number: IdNumber | None = None
    voucher_token: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="a family e-voucher token (POST /vouchers), instead of the ID numbers",
    )
    amount_fen: PositiveFen
    reference: Reference = Field(
        description="the institution's bill number, unique per institution"
    )

    @model_validator(mode="after")
    def _one_form(self) -> AuthorizeIn:
        numbers = (self.holder_id_number, self.member_id_number)
        if self.voucher_token is not None:
            if numbers != (None, None):
                raise ValueError("send voucher_token or the two ID numbers, not both")
        elif None in numbers:
            raise ValueError("send holder_id_number and member_id_number, or voucher_token")
        return self


class SettleIn(Strict):
    amount_fen: PositiveFen


class PaymentOut(BaseModel):
    payment_id: str
    status: Literal["authorized", "settled", "voided", "expired"]
    amount_fen: int = Field(description="the amount authorized (held)")
    settled_fen: int | None
    released_fen: int = Field(description="what this call released from the hold")
    expires_at: datetime


class AuthorizeOp(AuthorizeIn):
    op: Literal["authorize"]


class SettleOp(Strict):
    op: Literal["settle"]
    payment_id: str = Field(min_length=1, max_length=64)
    amount_fen: PositiveFen


class VoidOp(Strict):
    op: Literal["void"]
    payment_id: str = Field(min_length=1, max_length=64)


Operation = Annotated[AuthorizeOp | SettleOp | VoidOp, Field(discriminator="op")]


class BatchIn(Strict):
    operations: list[Operation] = Field(min_length=1, max_length=1000)


class BatchResult(BaseModel):
    index: int
    ok: bool
    payment_id: str | None = None
    status: Literal["authorized", "settled", "voided", "expired"] | None = None
    amount_fen: int | None = None
    settled_fen: int | None = None
    code: str | None = Field(default=None, description="why the operation was refused")
    message: str | None = None
    retry_after: int | None = Field(
        default=None,
        description="AUTHORIZE_RATE_LIMITED: seconds until authorizations by ID number "
        "are answered again",
    )


class BatchOut(BaseModel):
    results: list[BatchResult]
    succeeded: int
    failed: int


class LinkPaymentOut(BaseModel):
    payment_id: str
    status: Literal["authorized", "settled", "voided", "expired"]
    amount_fen: int
    settled_fen: int | None
    created_at: datetime
    resolved_at: datetime | None


class LinkPaymentsOut(BaseModel):
    link_id: str
    year: int
    yearly_limit_fen: int | None
    used_fen: int = Field(description="settled amounts plus open holds this year")
    remaining_fen: int | None
    payments: list[LinkPaymentOut]
