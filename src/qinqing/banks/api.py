"""Routes of the bank channel: bank associations (医保关联) and a bank's view of its
customer's family links. The unbind check and the unbind for a bank's customer
are the family routes (``?customer=holder|member`` and ``customer_id_number``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from qinqing.auth import otp
from qinqing.auth.deps import PrincipalDep
from qinqing.banks import service
from qinqing.banks.models import BankLink, BankLinkStatus
from qinqing.banks.schemas import (
    BankFamilyOut,
    BankLinkConfirmIn,
    BankLinkIn,
    BankLinkOut,
    BankLinkPage,
)
from qinqing.family.views import link_out
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.http.idempotency import IdempotencyKeyDep, run_for_request
from qinqing.runtime import Runtime

router = APIRouter(tags=["banks"])


def bank_link_out(session: Session, rt: Runtime, link: BankLink) -> BankLinkOut:
    return BankLinkOut(
        id=str(link.id),
        bank_code=link.bank_code,
        account_number_masked=service.masked_account_of(rt, link),
        status=link.status,
        awaiting=link.awaiting,
        created_at=link.created_at,
        created_channel=link.created_channel,
        id_number_masked=service.id_number_masked_of(session, rt, link),
        confirmed_at=link.confirmed_at,
        ended_at=link.ended_at,
        ended_by_kind=link.ended_by_kind,
        ended_channel=link.ended_channel,
    )


@router.post(
    "/bank-links",
    status_code=202,
    response_model=BankLinkOut,
    summary="医保关联: start linking a bank account (pending until the other side confirms)",
)
def create_bank_link(
    body: BankLinkIn,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    rt: RuntimeDep,
    key: IdempotencyKeyDep,
    background: BackgroundTasks,
) -> JSONResponse:
    """Both sides confirm a link; it answers 202 with the `pending` link.

    A person links their own account and names the bank (`bank_code`); the link
    waits for that bank's confirmation. A bank client (scope `bank-links`) names its
    customer by `id_number` and `name` as registered; the link waits for the person,
    who gets a one-time code on the registry phone (the bank's app forwards it to
    `POST /bank-links/{id}/confirm`) or confirms in the app. The bank gets the same
    answer, after the same work, whether or not the person exists, the name matches
    or the person is of its region: it learns nothing until a confirmation.

    Refusals: 422 `BANK_ACCOUNT_NUMBER_INVALID`, `BANK_ACCOUNT_NUMBER_CHECK_DIGIT`,
    `BANK_CODE_MISSING`, `BANK_CODE_INVALID`, `BANK_NOT_PARTNER`, `CUSTOMER_REQUIRED`,
    `PARAMETER_NOT_ALLOWED`, `ID_NUMBER_*`; 409 `BANK_ACCOUNT_ALREADY_LINKED` (the
    account is in an active link); 429 `SMS_CODE_THROTTLED` (too many requests of this
    bank for one ID number in an hour or a day, counted whoever has it). Send an `Idempotency-Key` to make a
    retry safe.
    """
    sent: list[otp.Outgoing] = []

    def handler() -> tuple[int, BankLinkOut]:
        started = service.create_link(
            session,
            rt,
            principal,
            account_number=body.account_number,
            bank_code=body.bank_code,
            id_number=body.id_number,
            name=body.name,
        )
        if started.message is not None:
            sent.append(started.message)
        return 202, bank_link_out(session, rt, started.link)

    answer = run_for_request(
        request, session, rt, principal, key, body.model_dump(mode="json"), handler
    )
    for message in sent:
        otp.send(rt, message, later=background.add_task, commit=session.commit)
    return answer


@router.post(
    "/bank-links/{link_id}/confirm",
    response_model=BankLinkOut,
    summary="Confirm a pending bank link (it becomes active)",
)
def confirm_bank_link(
    link_id: str,
    body: BankLinkConfirmIn,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    rt: RuntimeDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """The other side confirms: the person (`{}`) or the bank with the person's one-time
    code (`{sms_code}`) for a link a bank started; the bank (`{}`) for a link the
    person started in the app. Answers the now `active` link.

    404 for an id the caller may not see; 422 `SMS_CODE_REQUIRED`, `SMS_CODE_INVALID`,
    `SMS_CODE_LOCKED` (5 wrong tries), `SMS_CODE_EXPIRED` (10 minutes),
    `PARAMETER_NOT_ALLOWED`; 409 `BANK_LINK_NOT_PENDING`, `BANK_LINK_AWAITS_BANK`,
    `BANK_ACCOUNT_ALREADY_LINKED`, `SMS_CODE_USED`.
    """

    def handler() -> tuple[int, BankLinkOut]:
        link = service.confirm_link(session, rt, principal, link_id, sms_code=body.sms_code)
        return 200, bank_link_out(session, rt, link)

    return run_for_request(
        request, session, rt, principal, key, body.model_dump(mode="json"), handler
    )


@router.get("/bank-links", response_model=BankLinkPage, summary="Bank associations")
def list_bank_links(
    principal: PrincipalDep,
    session: SessionDep,
    rt: RuntimeDep,
    status: BankLinkStatus | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> BankLinkPage:
    """A person's own associations, or a bank client's: its bank's, newest first."""
    rows, total = service.list_links(
        session, principal, status=status, page=page, page_size=page_size
    )
    return BankLinkPage(
        items=[bank_link_out(session, rt, link) for link in rows],
        total=total,
        page=page,
        page_size=page_size,
    )


@router.delete("/bank-links/{link_id}", response_model=BankLinkOut, summary="Unlink a bank account")
def end_bank_link(
    link_id: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    rt: RuntimeDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    """The person, or a bank client of that bank, ends the association, active or
    pending (kept, `ended`).

    404 for an id the caller may not see; 409 `BANK_LINK_ENDED` when already ended.
    """

    def handler() -> tuple[int, BankLinkOut]:
        link = service.end_link(session, rt, principal, link_id)
        return 200, bank_link_out(session, rt, link)

    return run_for_request(request, session, rt, principal, key, {}, handler)


@router.get(
    "/bank-links/{link_id}/family",
    response_model=BankFamilyOut,
    summary="The customer's family links",
)
def customer_family(
    link_id: str, principal: PrincipalDep, session: SessionDep, rt: RuntimeDep
) -> BankFamilyOut:
    """For the bank client of an active association (scope `family`): its customer's
    links as holder and as member, for the bank's app. Ended or foreign associations
    answer 404 like an unknown id."""
    found = service.customer_family(session, rt, principal, link_id)
    return BankFamilyOut(
        as_holder=[link_out(session, rt, link, principal) for link in found["as_holder"]],
        as_member=[link_out(session, rt, link, principal) for link in found["as_member"]],
    )
