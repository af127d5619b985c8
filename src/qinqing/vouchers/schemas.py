from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# Long enough for any token we issue (45 characters) and then some; the shape is
# checked by the signature, so anything else is simply VOUCHER_INVALID.
Token = Annotated[str, Field(min_length=1, max_length=128, description="the voucher token")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class IssueIn(Strict):
    link_id: str | None = Field(
        default=None,
        max_length=64,
        description="a family link you hold: the voucher then names its member",
    )


class VoucherOut(BaseModel):
    token: str = Field(description="single-use; what the QR code holds")
    expires_at: datetime
    qr_svg: str = Field(description="the token as an SVG QR code")


class RedeemIn(Strict):
    token: Token


class VoucherPerson(BaseModel):
    name: str
    id_number: str = Field(description="masked")
    status: Literal["active", "arrears", "suspended", "terminated", "deceased"]
    scheme: Literal["employee", "resident", "flexible"]
    region_code: str


class VoucherMutualAid(BaseModel):
    link_id: str
    relation: str = Field(description="who the member is to the holder")
    holder_name: str = Field(description="masked")
    enabled: bool = Field(description="whether the link carries mutual aid (家庭共济)")
    via_quota: bool = Field(
        default=False,
        description="the member is insured in another region: the link pays only from the "
        "共济额度 the holder set aside (payable_fen is then the quota's)",
    )
    yearly_limit_fen: int | None
    used_this_year_fen: int
    payable_fen: int = Field(
        description=(
            "what the holder's account can pay for this member now: the holder's "
            "available balance (the quota's, for a cross-region link), capped by what is "
            "left of the yearly limit"
        )
    )
    blocked_by: str | None = Field(
        description="the code an authorization would be refused with now, if any"
    )


class RedeemOut(BaseModel):
    kind: Literal["self", "family"]
    expires_at: datetime
    person: VoucherPerson
    mutual_aid: VoucherMutualAid | None = Field(
        description="for a family voucher: the link it pays from"
    )
