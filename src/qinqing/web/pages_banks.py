"""我的 → 银行账户: the person's bank links (医保关联) with their status; confirm a
link a bank started, unlink an active or pending one. The page calls the same
service functions as the API (``banks.service``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.banks import service as banks
from qinqing.banks.models import BankLink
from qinqing.http.deps import RuntimeDep, SessionDep
from qinqing.kit.errors import DomainError
from qinqing.runtime import Runtime
from qinqing.web.forms import Errors, FormDep, attempt, domain_text
from qinqing.web.render import page, redirect
from qinqing.web.session import PersonPage

router = APIRouter(include_in_schema=False)

# A person has a handful of links; one page shows them all.
PAGE_SIZE = 100


def _entries(session: Session, rt: Runtime, principal: Principal) -> list[dict[str, Any]]:
    rows, _ = banks.list_links(session, principal, page_size=PAGE_SIZE)
    names = banks.bank_names(session, {link.bank_code for link in rows})
    return [
        {
            "link": link,
            "bank": names.get(link.bank_code, link.bank_code),
            "account": banks.masked_account_of(rt, link),
        }
        for link in rows
    ]


def _list_page(
    request: Request,
    session: Session,
    rt: RuntimeDep,
    principal: Principal,
    refused: DomainError | None = None,
) -> Response:
    errors = Errors()
    if refused is not None:
        errors.add("", domain_text(request, refused.code, refused.params))
    return page(
        request,
        rt,
        session,
        "bank_links.html",
        status_code=200 if refused is None else 409,
        entries=_entries(session, rt, principal),
        **errors.context(),
    )


@router.get("/me/bank-links")
def my_bank_links(
    request: Request, principal: PersonPage, session: SessionDep, rt: RuntimeDep
) -> Response:
    return _list_page(request, session, rt, principal)


@router.post("/me/bank-links/{link_id}/confirm")
def confirm_submit(
    link_id: str,
    request: Request,
    form: FormDep,
    principal: PersonPage,
    session: SessionDep,
    rt: RuntimeDep,
) -> Response:
    def action() -> BankLink:
        return banks.confirm_link(session, rt, principal, link_id)

    _, refused = attempt(session, action)
    if refused is None:
        return redirect(request, rt, "/me/bank-links?done=bank_link_confirmed")
    if refused.status == 404:
        raise refused
    return _list_page(request, session, rt, principal, refused)


@router.post("/me/bank-links/{link_id}/end")
def end_submit(
    link_id: str,
    request: Request,
    form: FormDep,
    principal: PersonPage,
    session: SessionDep,
    rt: RuntimeDep,
) -> Response:
    def action() -> BankLink:
        return banks.end_link(session, rt, principal, link_id)

    _, refused = attempt(session, action)
    if refused is None:
        return redirect(request, rt, "/me/bank-links?done=bank_link_ended")
    if refused.status == 404:
        raise refused
    return _list_page(request, session, rt, principal, refused)
