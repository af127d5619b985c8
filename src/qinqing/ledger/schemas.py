from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from qinqing.fen import PositiveFen

Reference = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
IdNumber = Annotated[str, Field(min_length=1, max_length=32)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AuthorizeIn(Strict):
    holder_id_number: IdNumber
    member_id_number: IdNumber
    amount_fen: PositiveFen
    reference: Reference = Field(
        description="the institution's bill number, unique per institution"
    )


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


class BatchOut(BaseModel):
    results: list[BatchResult]
    succeeded: int
    failed: int
