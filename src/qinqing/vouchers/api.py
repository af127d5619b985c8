"""/vouchers routes: a person shows a voucher, an institution redeems it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from qinqing.access.principal import Principal
from qinqing.auth.deps import PersonDep, scope_dep
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.vouchers import service
from qinqing.vouchers.schemas import IssueIn, RedeemIn, RedeemOut, VoucherOut

router = APIRouter(tags=["vouchers"])
InstitutionDep = Annotated[Principal, scope_dep("payments")]
# The answer carries a live token: no cache may keep it.
NO_STORE = {"Cache-Control": "no-store"}


@router.post(
    "/vouchers",
    status_code=201,
    response_model=VoucherOut,
    summary="Show an e-voucher (出示医保电子凭证)",
)
def issue(
    principal: PersonDep, session: SessionDep, rt: RuntimeDep, body: IssueIn | None = None
) -> JSONResponse:
    """A short-lived, single-use e-voucher for yourself or, with `link_id`, for the
    member of an active link you hold. Show `qr_svg` at the hospital or pharmacy.

    Refusals: 404 `NOT_FOUND` (no such link among yours), 403 `VOUCHER_HOLDER_ONLY`
    (you are the link's member), 409 `VOUCHER_LINK_NOT_ACTIVE`, 429
    `VOUCHER_RATE_LIMITED` (with `Retry-After`). Not idempotent by key on purpose: a
    stored answer would keep the token; ask for a new voucher instead.
    """
    # No body at all is the person's own voucher, like `{}`.
    issued = service.issue(session, rt, principal, body.link_id if body else None)
    out = VoucherOut(token=issued.token, expires_at=issued.expires_at, qr_svg=issued.qr_svg)
    return JSONResponse(jsonable_encoder(out), status_code=201, headers=NO_STORE)


@router.post(
    "/vouchers/redeem",
    response_model=RedeemOut,
    summary="Redeem an e-voucher (institution)",
)
def redeem(
    body: RedeemIn, principal: InstitutionDep, session: SessionDep, rt: RuntimeDep
) -> JSONResponse:
    """Who the voucher names (masked) and, for a family member's voucher, what the
    holder's account can pay for them. Redeeming does not use the voucher up (paying
    with it does), but the first institution to redeem it is the only one that may.

    Refusals: 404 `VOUCHER_INVALID` (not one of ours, or its link has ended), 403
    `REGION_MISMATCH`, 409 `VOUCHER_USED`, 409 `VOUCHER_EXPIRED`.
    """
    view = RedeemOut.model_validate(service.redeem(session, rt, principal, body.token))
    return JSONResponse(jsonable_encoder(view), headers=NO_STORE)
