"""The reviewer's decision form (审核结果 and 审核意见), shared by the unbind-request
and the guardianship-proof review pages: the choice read, and the comment held to
the same limit as the API's decision bodies, so a page cannot store what the API
refuses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fastapi import Request

from qinqing.family.rules import REVIEW_COMMENT_MAX
from qinqing.web.forms import Errors
from qinqing.web.render import t
from qinqing.web.translations import N_


@dataclass(frozen=True)
class ReviewDecision:
    values: dict[str, str]  # as posted (comment trimmed), to show the form again
    decision: Literal["approve", "reject"] | None  # None: no valid choice (an error is added)
    # At most REVIEW_COMMENT_MAX characters, as the API takes (the textarea's maxlength
    # holds a browser to it; this, a form posted without it); None when empty.
    comment: str | None


def read_decision(request: Request, form: dict[str, str], errors: Errors) -> ReviewDecision:
    values = {"decision": form.get("decision", ""), "comment": form.get("comment", "").strip()}
    chosen = values["decision"]
    decision: Literal["approve", "reject"] | None = (
        "approve" if chosen == "approve" else "reject" if chosen == "reject" else None
    )
    if decision is None:
        errors.add("decision", t(request, N_("请选择审核结果")))
    return ReviewDecision(values, decision, values["comment"][:REVIEW_COMMENT_MAX] or None)


def refused_field(code: str) -> str:
    """The form field a refused decision's message belongs to."""
    return "comment" if code == "COMMENT_REQUIRED" else "decision"
