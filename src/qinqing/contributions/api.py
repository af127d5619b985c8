"""Contribution routes: the public calculator and a collector's monthly post."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from qinqing.access.principal import Principal
from qinqing.auth.deps import scope_dep
from qinqing.contributions import service as contributions
from qinqing.contributions.schemas import (
    ContributionIn,
    ContributionOut,
    QuoteLineOut,
    QuoteOut,
    QuoteRegion,
)
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.http.idempotency import IdempotencyKeyDep, run_for_request
from qinqing.kit.fen import FenQuery

router = APIRouter()

CONTRIBUTIONS_TAG = "contributions"
CollectorDep = Annotated[Principal, scope_dep("contributions")]


@router.get(
    "/regions/{code}/contribution-quote",
    response_model=QuoteOut,
    tags=[CONTRIBUTIONS_TAG],
    summary="Contribution calculator (缴费测算)",
)
def contribution_quote(
    code: str,
    rt: RuntimeDep,
    base_fen: Annotated[FenQuery, Query(description="the monthly contribution base in fen")],
) -> QuoteOut:
    """Each insurance's personal and employer amount on the base clamped to the
    region's floor and ceiling, and the totals. Open to anyone.

    Every amount is rounded on its own by the policy's `rounding`; the totals are
    sums of the rounded amounts. 404 `REGION_NOT_FOUND` for an unknown region."""
    found = contributions.region_quote(rt, code, base_fen)
    q = found.quote
    return QuoteOut(
        region=QuoteRegion(code=found.region.code, name=found.region.name),
        base_fen=q.base_fen,
        clamped_base_fen=q.clamped_base_fen,
        clamped=q.clamped_base_fen != q.base_fen,
        insurances=[
            QuoteLineOut(
                insurance=line.insurance,
                personal_fen=line.personal_fen,
                employer_fen=line.employer_fen,
            )
            for line in q.lines
        ],
        personal_total_fen=q.personal_total_fen,
        employer_total_fen=q.employer_total_fen,
        total_fen=q.total_fen,
        personal_account_fen=q.personal_account_fen,
        rounding=found.rounding,
    )


@router.post(
    "/contributions",
    status_code=201,
    response_model=ContributionOut,
    tags=[CONTRIBUTIONS_TAG],
    summary="Post a monthly contribution (collector)",
)
def post_contribution(
    body: ContributionIn,
    request: Request,
    principal: CollectorDep,
    session: SessionDep,
    rt: RuntimeDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """A collector (税务/社保, scope `contributions`) posts one person's contribution
    for one month, within its own region. The base is clamped to the region's floor
    and ceiling; an employee's personal account is credited the personal medical
    share (`credited_fen`). A person in arrears who has no missing month left after
    this post is `active` again.

    Refusals: 422 `ID_NUMBER_*`, `PERIOD_INVALID`; 404 `PERSON_NOT_FOUND` (nobody
    with that ID number is insured in the collector's region — the same answer
    whether the number is unknown or insured elsewhere); 403 `INSUFFICIENT_SCOPE`;
    409 `CONTRIBUTION_EXISTS` (each month is posted once). With an
    `Idempotency-Key`, a retry replays the first answer.
    """

    def handler() -> tuple[int, ContributionOut]:
        posted = contributions.post_contribution(
            session,
            rt,
            principal,
            id_number=body.id_number,
            period=body.period,
            base_fen=body.base_fen,
        )
        c = posted.contribution
        return 201, ContributionOut(
            contribution_id=str(c.id),
            person_id=str(c.person_id),
            period=c.period,
            clamped_base_fen=c.clamped_base_fen,
            personal_total_fen=c.personal_total_fen,
            employer_total_fen=c.employer_total_fen,
            credited_fen=c.credited_fen,
            person_status=posted.person_status,
        )

    return run_for_request(request, session, rt, principal, key, body.model_dump(), handler)
