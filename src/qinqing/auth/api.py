"""/auth/* and /me routes: parse, authorize, call the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from qinqing.auth import service
from qinqing.auth.principal import PersonDep, PrincipalDep
from qinqing.auth.schemas import (
    LoginIn,
    MeOut,
    PaymentPasswordIn,
    RegionRef,
    RegisterIn,
    RegisterOut,
    TokenOut,
)
from qinqing.deps import RuntimeDep, SessionDep
from qinqing.errors import DomainError
from qinqing.ledger.statements import balance_of
from qinqing.persons.models import Person
from qinqing.persons.service import person_view

router = APIRouter()


def _source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/auth/register", status_code=201, response_model=RegisterOut, tags=["auth"])
def register(body: RegisterIn, session: SessionDep, rt: RuntimeDep) -> RegisterOut:
    account = service.register(
        session,
        rt,
        id_number=body.id_number,
        name=body.name,
        phone=body.phone,
        password=body.password,
    )
    return RegisterOut(account_id=str(account.id), person_id=str(account.person_id))


@router.post("/auth/login", response_model=TokenOut, tags=["auth"])
def login(body: LoginIn, request: Request, session: SessionDep, rt: RuntimeDep) -> TokenOut:
    issued = service.login(
        session,
        rt,
        login=body.login,
        password=body.password,
        source=_source(request),
        channel=body.channel,
    )
    return TokenOut(access_token=issued.access_token, expires_in=issued.expires_in)


@router.post("/auth/token", response_model=TokenOut, tags=["auth"])
def token(
    session: SessionDep,
    rt: RuntimeDep,
    grant_type: Annotated[str, Form(max_length=64)],
    client_id: Annotated[str, Form(max_length=64)],
    client_secret: Annotated[str, Form(max_length=128)],
    scope: Annotated[str | None, Form(max_length=255)] = None,
) -> TokenOut:
    """OAuth2 client-credentials for partner banks, institutions and collectors."""
    if grant_type != "client_credentials":
        raise DomainError("UNSUPPORTED_GRANT_TYPE", 400, extra={"error": "unsupported_grant_type"})
    issued = service.client_token(
        session, rt, client_id=client_id, client_secret=client_secret, scope=scope
    )
    return TokenOut(
        access_token=issued.access_token, expires_in=issued.expires_in, scope=issued.scope
    )


@router.post("/auth/logout", status_code=204, tags=["auth"])
def logout(principal: PrincipalDep, session: SessionDep, rt: RuntimeDep) -> Response:
    service.logout(session, rt, principal)
    return Response(status_code=204)


@router.get("/me", response_model=MeOut, tags=["me"])
def me(principal: PersonDep, session: SessionDep, rt: RuntimeDep) -> MeOut:
    account = service.person_account(session, principal)
    person = session.get(Person, account.person_id)
    assert person is not None
    view = person_view(rt.vault, person)
    locked = account.payment_locked_until
    money = balance_of(session, person, rt.clock.now())
    return MeOut(
        **{k: v for k, v in view.items() if k != "region_code"},
        region=RegionRef(code=person.region_code, name=rt.policies.region(person.region_code).name),
        channel=principal.channel,
        payment_password_set=account.payment_password_hash is not None,
        payment_password_locked_until=locked if locked and locked > rt.clock.now() else None,
        has_personal_account=money.has_personal_account,
        balance_fen=money.balance_fen,
        available_fen=money.available_fen,
    )


@router.put("/me/payment-password", status_code=204, tags=["me"])
def put_payment_password(
    body: PaymentPasswordIn, principal: PersonDep, session: SessionDep, rt: RuntimeDep
) -> Response:
    service.set_payment_password(
        session,
        rt,
        principal,
        password=body.password,
        new_payment_password=body.new_payment_password,
    )
    return Response(status_code=204)
