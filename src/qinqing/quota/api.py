"""Routes of a cross-region link's 共济额度 (quota): the holder fills it, both parties
read it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from qinqing.auth.deps import PersonDep
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.http.idempotency import IdempotencyKeyDep, run_for_request
from qinqing.quota import service
from qinqing.quota.schemas import QuotaEntryOut, QuotaOut, QuotaTopUpIn

router = APIRouter(tags=["quota"])


def quota_out(v: service.QuotaView) -> QuotaOut:
    return QuotaOut(
        link_id=str(v.link_id),
        balance_fen=v.balance_fen,
        held_fen=v.held_fen,
        available_fen=v.available_fen,
        entries=[
            QuotaEntryOut(
                id=str(e.id), kind=e.kind, amount_fen=e.amount_fen, created_at=e.created_at
            )
            for e in v.entries
        ],
    )


@router.post(
    "/family/links/{link_id}/quota",
    status_code=201,
    response_model=QuotaOut,
    summary="充入共济额度 (move money into a cross-region link's quota)",
)
def top_up_quota(
    link_id: str,
    body: QuotaTopUpIn,
    request: Request,
    principal: PersonDep,
    session: SessionDep,
    rt: RuntimeDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """The holder of an active cross-region mutual-aid link (beyond the policy's
    `mutual_aid_scope`, where `cross_region = "quota"`) moves `amount_fen` from the
    personal account into the link's quota. The money is then locked for this
    member: their payments and resident contributions draw only on it, and what is
    not used returns to the holder when the link ends.

    Refusals: 404 `NOT_FOUND`; 403 `QUOTA_HOLDER_ONLY`; 422 `QUOTA_AMOUNT_INVALID`;
    409 `NO_MUTUAL_AID_LINK`, `QUOTA_NOT_CROSS_REGION`, `HOLDER_NOT_EMPLOYEE`,
    `PAYER_NOT_ACTIVE`; the verification codes; 409 `INSUFFICIENT_BALANCE`. Send an
    `Idempotency-Key` to make a retry safe.
    """

    def handler() -> tuple[int, QuotaOut]:
        got = service.top_up(session, rt, principal, link_id, body.amount_fen, body.verification)
        return 201, quota_out(got)

    return run_for_request(
        request, session, rt, principal, key, body.model_dump(mode="json"), handler
    )


@router.get(
    "/family/links/{link_id}/quota",
    response_model=QuotaOut,
    summary="共济额度 of a cross-region link",
)
def read_quota(link_id: str, principal: PersonDep, session: SessionDep, rt: RuntimeDep) -> QuotaOut:
    """Balance, open holds, what is available and the movements (newest first) of a
    cross-region link's quota, for either party. 409 `QUOTA_NOT_CROSS_REGION` for a
    link within the scope; 404 `NOT_FOUND` for a link the caller cannot see."""
    return quota_out(service.view(session, rt, principal, link_id))
