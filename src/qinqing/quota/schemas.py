"""Request and response bodies of the quota routes (共济额度)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from qinqing.auth.verification import Verification
from qinqing.kit.fen import PositiveFen


class QuotaTopUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount_fen: PositiveFen = Field(
        description="fen moved from the holder's personal account into the quota (positive)"
    )
    verification: Verification | None = Field(
        default=None,
        description="the holder's verification (payment password or face); without it the "
        "answer is 409 VERIFICATION_REQUIRED",
    )


class QuotaEntryOut(BaseModel):
    id: str
    kind: str = Field(description="top_up | payment | resident_contribution | refund")
    amount_fen: int = Field(description="+ into the quota, - out of it")
    created_at: datetime


class QuotaOut(BaseModel):
    link_id: str
    balance_fen: int = Field(description="in the quota, open holds included")
    held_fen: int = Field(description="held by authorized, unsettled payments")
    available_fen: int = Field(description="balance less holds: what the member may use")
    entries: list[QuotaEntryOut] = Field(description="newest first")
