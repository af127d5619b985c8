"""办事指南: how to bind and unbind online and offline, every condition with what
to do about it, and how the regions differ — read from the loaded policies."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.regions.policy import Policy, UnbindReview
from qinqing.unbind.rules import CODES
from qinqing.web import labels
from qinqing.web.render import page

router = APIRouter(include_in_schema=False)
HOTLINE = "12333"


def policy_row(code: str | None, name: str, policy: Policy) -> dict[str, Any]:
    return {
        "code": code,
        "name": name,
        "manual_review": policy.unbind_review is UnbindReview.manual,
        "cooling_off_days": policy.unbind_cooling_off_days,
        "blocking_statuses": [str(s) for s in policy.unbind_blocking_statuses],
        "max_members": policy.max_members,
        "relations": [str(r) for r in policy.relations],
        "mutual_aid_relations": [str(r) for r in policy.mutual_aid_relations],
        "mutual_aid_scope": str(policy.mutual_aid_scope),
        "consent_age": policy.consent_age,
    }


@router.get("/help")
def help_page(request: Request, session: SessionDep, rt: RuntimeDep) -> Response:
    rows = [policy_row(r.code, r.name, rt.policies.policy(r.code)) for r in rt.policies.regions()]
    conditions = [(code, *labels.BLOCKER_HELP[code]) for code in CODES]
    return page(
        request,
        rt,
        session,
        "help.html",
        regions=rows,
        national=policy_row(None, "", rt.policies.national()),
        conditions=conditions,
        hotline=HOTLINE,
    )
