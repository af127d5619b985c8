"""Request and response bodies of the resident-contribution routes (共济缴费)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict

from qinqing.auth.verification import Verification

CoverYear = Annotated[int, Strict(), Field(ge=2000, le=2200, description="the cover year C")]


class ResidentContributionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    year: CoverYear
    verification: Verification | None = Field(
        default=None,
        description="the holder's verification (payment password or face); without it the "
        "answer is 409 VERIFICATION_REQUIRED",
    )


class MemberRef(BaseModel):
    id: str
    name: str


class ResidentContributionOut(BaseModel):
    id: str
    member: MemberRef
    year: int = Field(description="the cover year")
    amount_fen: int
    cover_starts_on: date = Field(
        description="1 January of the year when paid in the enrollment window; after it, "
        "the payment date plus the region's waiting period"
    )
    created_at: datetime


class CollectorItemOut(BaseModel):
    id: str
    year: int
    amount_fen: int
    member_name: str
    member_id_number: str = Field(description="in full: the collector remits by it")
    paid_at: datetime
    cover_starts_on: date
    member_left_scheme_at: datetime | None = Field(
        default=None,
        description="when the registry said the member left the resident scheme (another "
        "scheme, terminated or deceased) for this cover year; null while they are in it",
    )


class CollectorPage(BaseModel):
    items: list[CollectorItemOut]
    total: int
    page: int
    page_size: int
