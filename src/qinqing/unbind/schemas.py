"""Request and response models of the unbind part."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from qinqing.auth.verification import Verification
from qinqing.family.rules import REVIEW_COMMENT_MAX
from qinqing.family.views import LinkOut


class BlockerOut(BaseModel):
    code: str = Field(description="stable blocker code, e.g. COOLING_OFF")
    message: str = Field(description="what stands in the way, in the caller's language")
    hint: str | None = Field(description="what to do about it")
    params: dict[str, str | int] = Field(
        default_factory=dict,
        description="the values in the message (count, total_fen, until, locked_until, ...)",
    )


class UnbindCheckOut(BaseModel):
    eligible: bool = Field(description="true exactly when `blockers` is empty")
    blockers: list[BlockerOut]
    on_behalf_of: Literal["holder", "member"] | None = Field(
        description="the party the check was made for (None: the caller is not a party)"
    )
    review_required: bool = Field(
        description="whether an unbind here waits for a reviewer (policy unbind_review)"
    )
    region_code: str


class UnbindIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verification: Verification | None = Field(
        default=None,
        description="the initiator's verification; without it the answer is 409 "
        "with the blocker VERIFICATION_REQUIRED",
    )
    reason: str | None = Field(default=None, max_length=500)
    customer_id_number: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="bank clients only: the ID number of the customer (a party of the "
        "link) the unbind is for; verification then comes from that customer",
    )


class RequestRef(BaseModel):
    id: str
    status: Literal["completed", "pending_review", "approved", "rejected", "closed"]


class UnbindOut(BaseModel):
    request: RequestRef
    link: LinkOut


class UnbindRequestOut(BaseModel):
    id: str
    status: Literal["completed", "pending_review", "approved", "rejected", "closed"]
    link_id: str
    region_code: str
    on_behalf_of: Literal["holder", "member"]
    actor_kind: str = Field(description="person | client | staff: who submitted it")
    channel: str
    verification_method: str
    reason: str | None
    created_at: datetime
    decided_at: datetime | None
    decision_comment: str | None
    link: LinkOut


class UnbindRequestPage(BaseModel):
    items: list[UnbindRequestOut]
    total: int
    page: int
    page_size: int


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    comment: str | None = Field(
        default=None,
        max_length=REVIEW_COMMENT_MAX,
        description="required to reject: why, for the applicant",
    )
