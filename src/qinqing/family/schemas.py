"""Request and response models of the family routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from qinqing.auth.verification import Verification
from qinqing.family.rules import REVIEW_COMMENT_MAX
from qinqing.family.views import LinkOut
from qinqing.kit.fen import Fen

RelationName = Literal[
    "spouse", "father", "mother", "child", "sibling", "grandparent", "grandchild"
]

# A yearly limit above this (100 million yuan) is surely a typing error.
YEARLY_LIMIT_CEILING_FEN = 10_000_000_000
YearlyLimitFen = Annotated[Fen, Field(le=YEARLY_LIMIT_CEILING_FEN)]


class BindIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    member_id_number: str = Field(
        min_length=1, max_length=32, description="the member's 18-digit resident ID number"
    )
    member_name: str = Field(
        min_length=1, max_length=64, description="the member's name, as registered"
    )
    relation: RelationName = Field(
        description="the member's relation to you; sibling, grandparent and grandchild only "
        "where the region's policy admits close relatives"
    )
    mutual_aid: bool = Field(
        default=False,
        strict=True,
        description="家庭共济: your personal account pays the member's medical costs",
    )
    mutual_aid_yearly_limit_fen: YearlyLimitFen | None = Field(
        default=None,
        description="optional yearly cap on mutual aid, in fen (at least 1); only with mutual_aid",
    )


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verification: Verification | None = Field(
        default=None, description="the member's own payment password or face check"
    )


class FamilyOut(BaseModel):
    """我的家庭成员: open links first (newest first), then links ended in the last year."""

    as_holder: list[LinkOut] = Field(description="links where you are the holder (绑定人)")
    as_member: list[LinkOut] = Field(description="links where you are the bound member")


DocumentTypeName = Literal["birth_certificate", "household_register", "guardianship_order"]


class ProofOut(BaseModel):
    """An uploaded guardianship proof, as its holder sees it."""

    id: str
    link_id: str
    status: Literal["pending", "approved", "rejected"]


class ProofReviewOut(BaseModel):
    """A guardianship proof as a reviewer or clerk of the member's region sees it."""

    id: str
    link_id: str
    status: Literal["pending", "approved", "rejected"]
    document_type: DocumentTypeName
    channel: str
    content_type: str | None = Field(description="image/jpeg, image/png or application/pdf")
    size_bytes: int | None
    document_url: str | None = Field(
        description="the file itself (reviewers and clerks of the member's region only)"
    )
    form_number: str | None = Field(description="the paper form, for a proof seen at the counter")
    created_at: datetime
    decided_at: datetime | None
    decision_comment: str | None
    link: LinkOut


class ProofPage(BaseModel):
    items: list[ProofReviewOut]
    total: int
    page: int
    page_size: int


class ProofDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    comment: str | None = Field(
        default=None,
        max_length=REVIEW_COMMENT_MAX,
        description="required to reject: why, for the holder",
    )
