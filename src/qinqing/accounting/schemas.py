"""Response bodies of the personal-account statement."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field


class MemberRef(BaseModel):
    id: str
    name: str


class HoldOut(BaseModel):
    payment_id: str
    amount_fen: int
    member: MemberRef
    created_at: datetime
    expires_at: datetime


class EntryOut(BaseModel):
    id: str
    at: datetime
    amount_fen: int = Field(description="+ credited to the account, - paid from it")
    kind: Literal[
        "contribution", "payment", "resident_contribution", "quota_top_up", "quota_refund"
    ] = Field(
        description="quota_top_up: moved into a relative's 共济额度; quota_refund: its unused "
        "rest returned"
    )
    period: str | None = Field(description="the contribution month, for contributions")
    payment_id: str | None
    member: MemberRef | None = Field(
        description="whose bill a payment paid, whose resident insurance was paid, or whose "
        "quota the money moved to or from"
    )
    resident_contribution_id: str | None = Field(
        default=None, description="a resident contribution (共济缴费) paid for the member"
    )
    cover_year: int | None = Field(default=None, description="its cover year")
    cover_starts_on: date | None = Field(default=None, description="from when it covers")
    link_id: str | None = Field(
        default=None, description="for a quota_top_up or quota_refund: the quota's link"
    )


class PaidForMeOut(BaseModel):
    """A resident contribution a family member paid for you (共济缴费)."""

    id: str
    year: int = Field(description="the cover year")
    amount_fen: int
    paid_by: MemberRef
    paid_at: datetime
    cover_starts_on: date


class QuotaSummaryOut(BaseModel):
    """A 共济额度 you set aside for a relative insured in another region."""

    link_id: str
    member: MemberRef
    balance_fen: int
    held_fen: int
    available_fen: int


class StatementOut(BaseModel):
    has_personal_account: bool
    balance_fen: int
    held_fen: int
    available_fen: int
    holds: list[HoldOut]
    entries: list[EntryOut]
    next_before: str | None = Field(description="pass as ?before= for the next page")
    resident_paid_for_me: list[PaidForMeOut] = Field(
        default_factory=list,
        description="resident insurance (居民医保) that family members paid for you",
    )
    quotas: list[QuotaSummaryOut] = Field(
        default_factory=list,
        description="共济额度 set aside for relatives in other regions: not in balance_fen, "
        "returned when the link ends",
    )
