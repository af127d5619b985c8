"""Routes of paying a relative's resident insurance (共济缴费): the holder pays, the
collector of the member's region lists what was paid."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.auth.deps import PersonDep, scope_dep
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.http.idempotency import IdempotencyKeyDep, run_for_request
from qinqing.persons.models import Person
from qinqing.resident import service
from qinqing.resident.models import ResidentContribution
from qinqing.resident.schemas import (
    CollectorItemOut,
    CollectorPage,
    MemberRef,
    ResidentContributionIn,
    ResidentContributionOut,
)

router = APIRouter(tags=["resident"])
CollectorDep = Annotated[Principal, scope_dep(service.COLLECTOR_SCOPE)]


def contribution_out(session: Session, c: ResidentContribution) -> ResidentContributionOut:
    member = session.get(Person, c.member_id)
    return ResidentContributionOut(
        id=str(c.id),
        member=MemberRef(id=str(c.member_id), name=member.name if member else ""),
        year=c.year,
        amount_fen=c.amount_fen,
        cover_starts_on=c.cover_starts_on,
        created_at=c.created_at,
    )


@router.post(
    "/family/links/{link_id}/resident-contribution",
    status_code=201,
    response_model=ResidentContributionOut,
    summary="为家人缴纳居民医保 (pay a member's resident insurance)",
)
def pay_resident_contribution(
    link_id: str,
    body: ResidentContributionIn,
    request: Request,
    principal: PersonDep,
    session: SessionDep,
    rt: RuntimeDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """The holder of an active mutual-aid link pays the member's yearly 城乡居民医保
    contribution for cover year `year` from the personal account, debited at once.
    The amount, the enrollment window and what happens after it are the member's
    region policy (`[resident]`).

    Refusals: 404 `NOT_FOUND`; 403 `RESIDENT_HOLDER_ONLY`; 409 `NO_MUTUAL_AID_LINK`,
    `HOLDER_NOT_EMPLOYEE`, `PAYER_NOT_ACTIVE`, `MEMBER_NOT_RESIDENT`; 422
    `RESIDENT_YEAR_INVALID`; 409 `ENROLLMENT_NOT_OPEN`, `ENROLLMENT_CLOSED`,
    `RESIDENT_ALREADY_PAID`; the verification codes; 409 `INSUFFICIENT_BALANCE`.
    Send an `Idempotency-Key` to make a retry safe.
    """

    def handler() -> tuple[int, ResidentContributionOut]:
        paid = service.pay(session, rt, principal, link_id, body.year, body.verification)
        return 201, contribution_out(session, paid)

    return run_for_request(
        request, session, rt, principal, key, body.model_dump(mode="json"), handler
    )


@router.get(
    "/resident-contributions",
    response_model=CollectorPage,
    summary="Resident contributions paid in the collector's region",
)
def list_resident_contributions(
    principal: CollectorDep,
    session: SessionDep,
    rt: RuntimeDep,
    year: Annotated[int, Query(ge=2000, le=2200, description="the cover year")],
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> CollectorPage:
    """For a collector (税务/社保, scope `contributions`): the resident contributions
    paid from personal accounts for members insured in its region, for cover year
    `year`, oldest first, with each member's full ID number (the collector remits by
    it; every page read is audited)."""
    items, total = service.collector_list(
        session, rt, principal, year=year, page=page, page_size=page_size
    )
    return CollectorPage(
        items=[
            CollectorItemOut(
                id=str(i.contribution.id),
                year=i.contribution.year,
                amount_fen=i.contribution.amount_fen,
                member_name=i.member_name,
                member_id_number=i.member_id_number,
                paid_at=i.contribution.created_at,
                cover_starts_on=i.contribution.cover_starts_on,
                member_left_scheme_at=i.contribution.member_left_scheme_at,
            )
            for i in items
        ],
        total=total,
        page=page,
        page_size=page_size,
    )
