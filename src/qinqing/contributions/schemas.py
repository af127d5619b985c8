"""Request and response bodies of the contribution routes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from qinqing.kit.fen import Fen


class QuoteRegion(BaseModel):
    code: str = Field(description="GB/T 2260 region code (统筹区)")
    name: str


class QuoteLineOut(BaseModel):
    insurance: str = Field(description="pension | medical | unemployment | injury | maternity")
    personal_fen: int = Field(description="the insured person's share")
    employer_fen: int = Field(description="the employer's share")


class QuoteOut(BaseModel):
    region: QuoteRegion
    base_fen: int = Field(description="the base asked about")
    clamped_base_fen: int = Field(description="the base clamped to the region's floor and ceiling")
    clamped: bool = Field(
        description="whether the base was raised to the floor or cut to the ceiling"
    )
    insurances: list[QuoteLineOut]
    personal_total_fen: int
    employer_total_fen: int
    total_fen: int
    personal_account_fen: int = Field(
        description="what an employee's personal account (个人账户) is credited"
    )
    rounding: str = Field(description="how each amount is rounded to whole fen")


class ContributionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id_number: str = Field(
        min_length=1, max_length=32, description="the insured person's 18-digit resident ID number"
    )
    period: str = Field(
        min_length=1,
        max_length=16,
        description="the contribution month, YYYY-MM (China time), not after the current month",
        examples=["2026-10"],
    )
    base_fen: Fen = Field(
        description="the contribution base in fen; clamped to the region's floor and ceiling",
    )


class ContributionOut(BaseModel):
    contribution_id: str
    person_id: str
    period: str
    clamped_base_fen: int
    personal_total_fen: int
    employer_total_fen: int
    credited_fen: int = Field(
        description="credited to the personal account (employees only; 0 for other schemes)"
    )
    person_status: str = Field(
        description="the person's insurance status after the post: active once no month is missing"
    )
