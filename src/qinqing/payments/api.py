"""/payments routes for designated institutions (scope ``payments``), and a link's
payments as its parties see them (``statements_router``, tagged ``statements``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from qinqing import i18n
from qinqing.auth.principal import PersonDep, Principal, require_scope
from qinqing.deps import RuntimeDep, SessionDep
from qinqing.family.access import load_link
from qinqing.idempotency import IdempotencyKeyDep, run_for_request
from qinqing.payments import service as payments
from qinqing.payments import statements
from qinqing.payments.schemas import (
    AuthorizeIn,
    AuthorizeOp,
    BatchIn,
    BatchOut,
    BatchResult,
    LinkPaymentOut,
    LinkPaymentsOut,
    PaymentOut,
    SettleIn,
    SettleOp,
)
from qinqing.problems import locale_of
from qinqing.vouchers import service as vouchers

router = APIRouter(tags=["payments"])
# Included after the ledger's statement route, as one "statements" group with it.
statements_router = APIRouter(tags=["statements"])
InstitutionDep = Annotated[Principal, require_scope("payments")]


def _out(o: payments.Outcome) -> PaymentOut:
    assert o.payment_id and o.status and o.amount_fen is not None and o.expires_at
    return PaymentOut(
        payment_id=str(o.payment_id),
        status=o.status,
        amount_fen=o.amount_fen,
        settled_fen=o.settled_fen,
        released_fen=o.released_fen,
        expires_at=o.expires_at,
    )


@router.post("/payments/authorize", status_code=201, response_model=PaymentOut)
def authorize(
    body: AuthorizeIn,
    request: Request,
    principal: InstitutionDep,
    session: SessionDep,
    rt: RuntimeDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """Place a hold on the holder's personal account for a bound member's bill.
    Name the two persons by ID number, or by the family e-voucher the holder showed
    (`voucher_token`: used up by the payment)."""
    op = _authorize_op(body)
    return run_for_request(
        request,
        session,
        rt,
        principal,
        key,
        body.model_dump(exclude_none=True),
        lambda: (
            201,
            _out(
                vouchers.authorize(session, rt, principal, op)
                if isinstance(op, vouchers.VoucherAuthorize)
                else payments.authorize(session, rt, principal, op)
            ),
        ),
    )


def _authorize_op(body: AuthorizeIn) -> payments.Authorize | vouchers.VoucherAuthorize:
    if body.voucher_token is not None:
        return vouchers.VoucherAuthorize(body.voucher_token, body.amount_fen, body.reference)
    assert body.holder_id_number is not None and body.member_id_number is not None
    return payments.Authorize(
        body.holder_id_number, body.member_id_number, body.amount_fen, body.reference
    )


@router.post("/payments/{payment_id}/settle", response_model=PaymentOut)
def settle(
    payment_id: str,
    body: SettleIn,
    request: Request,
    principal: InstitutionDep,
    session: SessionDep,
    rt: RuntimeDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """Post the hold: the same or a smaller amount; the rest is released."""
    op = payments.Settle(payment_id, body.amount_fen)
    return run_for_request(
        request,
        session,
        rt,
        principal,
        key,
        body.model_dump(),
        lambda: (200, _out(payments.settle(session, rt, principal, op))),
    )


@router.post("/payments/{payment_id}/void", response_model=PaymentOut)
def void(
    payment_id: str,
    request: Request,
    principal: InstitutionDep,
    session: SessionDep,
    rt: RuntimeDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """Release the hold without paying."""
    op = payments.Void(payment_id)
    return run_for_request(
        request,
        session,
        rt,
        principal,
        key,
        {},
        lambda: (200, _out(payments.void(session, rt, principal, op))),
    )


@router.post("/payments/batch", response_model=BatchOut)
def batch(
    body: BatchIn,
    request: Request,
    principal: InstitutionDep,
    session: SessionDep,
    rt: RuntimeDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """Up to 1000 authorize/settle/void operations, one result each, in order.
    A refused operation does not undo the others."""
    ops: list[payments.Op | vouchers.VoucherAuthorize] = []
    for o in body.operations:
        if isinstance(o, AuthorizeOp):
            ops.append(_authorize_op(o))
        elif isinstance(o, SettleOp):
            ops.append(payments.Settle(o.payment_id, o.amount_fen))
        else:
            ops.append(payments.Void(o.payment_id))
    locale = locale_of(request)

    def run() -> tuple[int, BatchOut]:
        results = []
        for i, res in enumerate(vouchers.execute(session, rt, principal, ops)):
            if res.ok:
                results.append(
                    BatchResult(
                        index=i,
                        ok=True,
                        payment_id=str(res.payment_id),
                        status=res.status,
                        amount_fen=res.amount_fen,
                        settled_fen=res.settled_fen,
                    )
                )
            else:
                assert res.code
                results.append(
                    BatchResult(
                        index=i, ok=False, code=res.code, message=i18n.text(res.code, locale)[0]
                    )
                )
        ok = sum(r.ok for r in results)
        return 200, BatchOut(results=results, succeeded=ok, failed=len(results) - ok)

    return run_for_request(
        request, session, rt, principal, key, body.model_dump(exclude_none=True), run
    )


@statements_router.get("/family/links/{link_id}/payments", response_model=LinkPaymentsOut)
def link_payments(
    link_id: str, principal: PersonDep, session: SessionDep, rt: RuntimeDep
) -> LinkPaymentsOut:
    """This year's mutual-aid payments on the link, with the yearly limit used (its parties only)."""
    link = load_link(session, principal, link_id)
    lp = statements.link_payments(session, link, rt.clock.now())
    return LinkPaymentsOut(
        link_id=str(link.id),
        year=lp.year,
        yearly_limit_fen=lp.yearly_limit_fen,
        used_fen=lp.used_fen,
        remaining_fen=lp.remaining_fen,
        payments=[
            LinkPaymentOut(
                payment_id=str(p.id),
                status=p.status,
                amount_fen=p.amount_fen,
                settled_fen=p.settled_fen,
                created_at=p.created_at,
                resolved_at=p.resolved_at,
            )
            for p in lp.payments
        ],
    )
