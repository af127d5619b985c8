"""Response bodies of the personal-account statement."""

from __future__ import annotations

from datetime import datetime
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
    kind: Literal["contribution", "payment"]
    period: str | None = Field(description="the contribution month, for contributions")
    payment_id: str | None
    member: MemberRef | None = Field(description="whose bill a payment paid")


class StatementOut(BaseModel):
    has_personal_account: bool
    balance_fen: int
    held_fen: int
    available_fen: int
    holds: list[HoldOut]
    entries: list[EntryOut]
    next_before: str | None = Field(description="pass as ?before= for the next page")
