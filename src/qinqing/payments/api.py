"""/payments routes for designated institutions (scope ``payments``), and a link's
payments as its parties see them (``statements_router``, tagged ``statements``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.access.roles import check_scope
from qinqing.auth.deps import BearerDep, PersonDep, bearer_token, scope_dep
from qinqing.auth.tokens import principal_from_token, token_digest
from qinqing.family.access import load_usable_link
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.http.idempotency import REPLAYED_HEADER, IdempotencyKeyDep, run_for_request
from qinqing.http.problems import locale_of
from qinqing.kit import i18n
from qinqing.payments import fast_batch, statements
from qinqing.payments import service as payments
from qinqing.payments.fast import Answer, FastPath, Reply
from qinqing.payments.schemas import (
    AuthorizeIn,
    AuthorizeOp,
    BatchIn,
    BatchOut,
    LinkPaymentOut,
    LinkPaymentsOut,
    PaymentOut,
    SettleIn,
    SettleOp,
)
from qinqing.runtime import Runtime
from qinqing.vouchers import service as vouchers

router = APIRouter(tags=["payments"])
# Included after the ledger's statement route, as one "statements" group with it.
statements_router = APIRouter(tags=["statements"])
InstitutionDep = Annotated[Principal, scope_dep("payments")]


def payment_out(o: payments.Outcome) -> PaymentOut:
    assert o.payment_id and o.status and o.amount_fen is not None and o.expires_at
    return PaymentOut(
        payment_id=str(o.payment_id),
        status=o.status,
        amount_fen=o.amount_fen,
        settled_fen=o.settled_fen,
        released_fen=o.released_fen,
        expires_at=o.expires_at,
    )


async def institution(request: Request, creds: BearerDep) -> Principal:
    """The calling institution (scope ``payments``): from the fast path's cache when
    its token was seen in the last seconds, else from the database (in a worker
    thread). The cache holds only principals that passed this check."""
    token = bearer_token(creds)
    fast = fast_path_of(request)
    if fast is not None and (cached := fast.principals.get(token_digest(token))) is not None:
        return cached
    rt: Runtime = request.app.state.runtime
    principal = check_scope(await run_in_threadpool(_principal_of, rt, token), "payments")
    if fast is not None:
        fast.principals.put(principal)
    return principal


def _principal_of(rt: Runtime, token: str) -> Principal:
    with rt.db.read_only() as session:
        return principal_from_token(session, rt, token)


FastInstitutionDep = Annotated[Principal, Depends(institution)]


def fast_path_of(request: Request) -> FastPath | None:
    fast: FastPath | None = getattr(request.app.state, "fast_payments", None)
    return fast


def _ordinary(
    request: Request,
    creds: HTTPAuthorizationCredentials | None,
    key: str | None,
    body: dict[str, Any],
    run: Callable[[Session, Runtime, Principal], tuple[int, Any]],
) -> JSONResponse:
    """The ORM path in a worker thread, as a sync route runs: the caller read again
    in the unit of work (a cached principal is never trusted here), the
    idempotency key, the commit before the answer."""
    rt: Runtime = request.app.state.runtime
    with rt.db.unit_of_work() as session:
        principal = check_scope(principal_from_token(session, rt, bearer_token(creds)), "payments")
        return run_for_request(
            request, session, rt, principal, key, body, lambda: run(session, rt, principal)
        )


def answer(status: int) -> Answer:
    return lambda o: (status, jsonable_encoder(payment_out(o)))


def reply_response(reply: Reply) -> JSONResponse:
    headers = {REPLAYED_HEADER: "true"} if reply.replayed else None
    return JSONResponse(reply.body, status_code=reply.status, headers=headers)


def _authorize_data(body: AuthorizeIn) -> dict[str, Any]:
    """What an authorization's Idempotency-Key is bound to (both paths use this)."""
    return body.model_dump(exclude_none=True)


def _resolve_data(body: SettleIn | None) -> dict[str, Any]:
    """What a settle's (body) or a void's (none) Idempotency-Key is bound to."""
    return body.model_dump() if body is not None else {}


async def fast_authorize(
    fast: FastPath, principal: Principal, body: AuthorizeIn, key: str | None, path: str
) -> Reply | None:
    """The fast path's answer to an authorization (for the route and the lane), or
    None when it is not its case — an ID number that does not parse — and the
    ordinary path answers."""
    op = _authorize_op(body)
    if isinstance(op, vouchers.VoucherAuthorize):
        keyed = fast.keyed(principal, key, "POST", path, _authorize_data(body))
        return await fast.authorize_by_voucher(
            principal,
            vouchers.token_hash(fast.rt, op.voucher_token),
            op.amount_fen,
            op.reference,
            keyed,
            answer(201),
            vouchers.STATUS_OF,
        )
    ix = fast.indexes(op)
    if ix is None:
        return None
    keyed = fast.keyed(principal, key, "POST", path, _authorize_data(body))
    return await fast.authorize(principal, op, ix, keyed, answer(201))


async def fast_resolve(
    fast: FastPath,
    principal: Principal,
    payment_id: str,
    body: SettleIn | None,
    key: str | None,
    path: str,
) -> Reply:
    """The fast path's answer to a settle (``body`` given) or a void (for the route
    and the lane)."""
    op: payments.Settle | payments.Void = (
        payments.Settle(payment_id, body.amount_fen)
        if body is not None
        else payments.Void(payment_id)
    )
    keyed = fast.keyed(principal, key, "POST", path, _resolve_data(body))
    return await fast.resolve(principal, op, keyed, answer(200))


@router.post("/payments/authorize", status_code=201, response_model=PaymentOut)
async def authorize(
    body: AuthorizeIn,
    request: Request,
    creds: BearerDep,
    principal: FastInstitutionDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """Place a hold on the holder's personal account for a bound member's bill.
    Name the two persons by ID number, or by the family e-voucher the holder showed
    (`voucher_token`: used up by the payment).

    By ID numbers, without a voucher of that holder and member this institution
    redeemed, every refusal about the persons is one answer, 409
    `MUTUAL_AID_UNAVAILABLE` (ask for the e-voucher); past the hourly limit of such
    refusals, 429 `AUTHORIZE_RATE_LIMITED` with `Retry-After`."""
    fast = fast_path_of(request)
    if fast is not None:
        reply = await fast_authorize(fast, principal, body, key, request.url.path)
        if reply is not None:
            return reply_response(reply)
    op = _authorize_op(body)

    def run(session: Session, rt: Runtime, p: Principal) -> tuple[int, PaymentOut]:
        if isinstance(op, vouchers.VoucherAuthorize):
            return 201, payment_out(vouchers.authorize(session, rt, p, op))
        return 201, payment_out(payments.authorize(session, rt, p, op))

    return await run_in_threadpool(_ordinary, request, creds, key, _authorize_data(body), run)


def _authorize_op(body: AuthorizeIn) -> payments.Authorize | vouchers.VoucherAuthorize:
    if body.voucher_token is not None:
        return vouchers.VoucherAuthorize(body.voucher_token, body.amount_fen, body.reference)
    assert body.holder_id_number is not None and body.member_id_number is not None
    return payments.Authorize(
        body.holder_id_number, body.member_id_number, body.amount_fen, body.reference
    )


async def _resolve(
    request: Request,
    creds: HTTPAuthorizationCredentials | None,
    principal: Principal,
    key: str | None,
    payment_id: str,
    body: SettleIn | None,
) -> JSONResponse:
    fast = fast_path_of(request)
    if fast is not None:
        reply = await fast_resolve(fast, principal, payment_id, body, key, request.url.path)
        return reply_response(reply)

    def run(session: Session, rt: Runtime, p: Principal) -> tuple[int, PaymentOut]:
        done = (
            payments.settle(session, rt, p, payments.Settle(payment_id, body.amount_fen))
            if body is not None
            else payments.void(session, rt, p, payments.Void(payment_id))
        )
        return 200, payment_out(done)

    return await run_in_threadpool(_ordinary, request, creds, key, _resolve_data(body), run)


@router.post("/payments/{payment_id}/settle", response_model=PaymentOut)
async def settle(
    payment_id: str,
    body: SettleIn,
    request: Request,
    creds: BearerDep,
    principal: FastInstitutionDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """Post the hold: the same or a smaller amount; the rest is released."""
    return await _resolve(request, creds, principal, key, payment_id, body)


@router.post("/payments/{payment_id}/void", response_model=PaymentOut)
async def void(
    payment_id: str,
    request: Request,
    creds: BearerDep,
    principal: FastInstitutionDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """Release the hold without paying."""
    return await _resolve(request, creds, principal, key, payment_id, None)


@router.post("/payments/batch", response_model=BatchOut)
async def batch(
    body: BatchIn,
    request: Request,
    creds: BearerDep,
    principal: FastInstitutionDep,
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
    fast = fast_path_of(request)
    # A voucher's authorization is the engine's (vouchers.execute), and so its batch.
    bare = [o for o in ops if not isinstance(o, vouchers.VoucherAuthorize)]
    if fast is not None and len(bare) == len(ops):
        keyed = fast.keyed(principal, key, "POST", request.url.path, _batch_data(body, key))
        reply = await fast_batch.run(
            fast, principal, bare, keyed, lambda outs: (200, batch_body(outs, locale))
        )
        return reply_response(reply)

    def run(session: Session, rt: Runtime, p: Principal) -> tuple[int, Any]:
        return 200, batch_body(vouchers.execute(session, rt, p, ops), locale)

    return await run_in_threadpool(_ordinary, request, creds, key, _batch_data(body, key), run)


def _batch_data(body: BatchIn, key: str | None) -> dict[str, Any]:
    """What a batch's Idempotency-Key is bound to; without a key nothing reads it (a
    thousand operations' dump is not free)."""
    return body.model_dump(exclude_none=True) if key is not None else {}


def batch_body(outcomes: list[payments.Outcome], locale: str) -> dict[str, Any]:
    """A batch's answer (both paths), as ``BatchOut`` renders it: one result per
    operation, in order. Written as plain dicts: through the models a thousand
    results cost 25 ms of CPU, more than the batch's own Python work."""
    messages: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    for i, res in enumerate(outcomes):
        if res.ok:
            results.append(
                {
                    "index": i,
                    "ok": True,
                    "payment_id": str(res.payment_id),
                    "status": res.status,
                    "amount_fen": res.amount_fen,
                    "settled_fen": res.settled_fen,
                    "code": None,
                    "message": None,
                    "retry_after": None,
                }
            )
            continue
        assert res.code
        if (message := messages.get(res.code)) is None:
            message = messages[res.code] = i18n.text(res.code, locale)[0]
        results.append(
            {
                "index": i,
                "ok": False,
                "payment_id": None,
                "status": None,
                "amount_fen": None,
                "settled_fen": None,
                "code": res.code,
                "message": message,
                "retry_after": res.retry_after,
            }
        )
    ok = sum(r["ok"] for r in results)
    return {"results": results, "succeeded": ok, "failed": len(results) - ok}


@statements_router.get("/family/links/{link_id}/payments", response_model=LinkPaymentsOut)
def link_payments(
    link_id: str, principal: PersonDep, session: SessionDep, rt: RuntimeDep
) -> LinkPaymentsOut:
    """This year's mutual-aid payments on the link, with the yearly limit used (its parties
    only; a link still waiting for consent or proof answers 404)."""
    link = load_usable_link(session, rt, principal, link_id)
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
