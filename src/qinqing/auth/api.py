"""/auth/* and /me routes: parse, authorize, call the service."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from urllib.parse import unquote_plus

from fastapi import APIRouter, BackgroundTasks, Form, Request, Response
from fastapi.responses import JSONResponse

from qinqing.accounting.statements import balance_of
from qinqing.auth import otp, payment_reset, phone_change, recovery, registration, service, sessions
from qinqing.auth.deps import PersonDep, PrincipalDep
from qinqing.auth.schemas import (
    LoginIn,
    LoginOut,
    MeOut,
    PasswordChangeIn,
    PasswordResetIn,
    PaymentPasswordIn,
    PaymentPasswordResetIn,
    PhoneChangeIn,
    PhoneCodeIn,
    RegionRef,
    RegisterIn,
    RegisterOut,
    SessionOut,
    SessionsOut,
    SmsCodeIn,
    SmsCodeOut,
    TokenOut,
)
from qinqing.http.deps import RuntimeDep, SessionDep, client_address
from qinqing.http.problems import locale_of, problem
from qinqing.kit import i18n
from qinqing.kit.errors import DomainError
from qinqing.persons.models import Person
from qinqing.persons.service import person_view
from qinqing.runtime import Runtime

router = APIRouter()


@router.post("/auth/register/sms-code", status_code=202, response_model=SmsCodeOut, tags=["auth"])
def register_sms_code(
    body: SmsCodeIn, request: Request, rt: RuntimeDep, background: BackgroundTasks
) -> SmsCodeOut:
    """Send a one-time code to the phone on the registry record. The answer is the
    same whether or not the person exists, the name matches, or a code was sent."""
    message = registration.request_code(
        rt, id_number=body.id_number, name=body.name, source=client_address(request)
    )
    otp.send(rt, message, later=background.add_task)
    message_text, _ = i18n.text("SMS_CODE_REQUESTED", locale_of(request))
    return SmsCodeOut(
        detail=message_text,
        expires_in=rt.settings.sms_code_ttl_seconds,
        resend_after=rt.settings.sms_resend_seconds,
    )


@router.post("/auth/register", status_code=201, response_model=RegisterOut, tags=["auth"])
def register(body: RegisterIn, rt: RuntimeDep) -> RegisterOut:
    """Open the app account of an insured person who proves it is them: with the
    code sent to the registry phone (`sms_code`) or a face check (`face_token`)."""
    account = registration.register(
        rt,
        id_number=body.id_number,
        name=body.name,
        phone=body.phone,
        password=body.password,
        sms_code=body.sms_code,
        face_token=body.face_token,
    )
    return RegisterOut(account_id=str(account.id), person_id=str(account.person_id))


@router.post("/auth/login", response_model=LoginOut, tags=["auth"])
def login(body: LoginIn, request: Request, rt: RuntimeDep) -> LoginOut:
    issued = service.login(
        rt,
        login=body.login,
        password=body.password,
        source=client_address(request),
        channel=body.channel,
        totp=body.totp,
    )
    return LoginOut(access_token=issued.access_token, expires_in=issued.expires_in)


_BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="qinqing"'}


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """Client id and secret from ``Authorization: Basic`` (RFC 6749 section 2.3.1):
    base64 of ``id:secret``, each form-url-encoded first. None without such a header."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise DomainError("INVALID_CLIENT", 401, extra={"error": "invalid_client"}) from None
    raw_id, colon, raw_secret = decoded.partition(":")
    if not colon:
        raise DomainError("INVALID_CLIENT", 401, extra={"error": "invalid_client"})
    return unquote_plus(raw_id), unquote_plus(raw_secret)


@router.post(
    "/auth/token",
    response_model=TokenOut,
    tags=["auth"],
    responses={
        401: {"description": "invalid_client"},
        400: {"description": "invalid_request"},
        429: {"description": "slow_down: too many failed attempts (Retry-After)"},
    },
)
def token(
    request: Request,
    rt: RuntimeDep,
    grant_type: Annotated[str, Form(max_length=64)],
    client_id: Annotated[str | None, Form(max_length=64)] = None,
    client_secret: Annotated[str | None, Form(max_length=128)] = None,
    scope: Annotated[str | None, Form(max_length=255)] = None,
) -> TokenOut | JSONResponse:
    """OAuth2 client-credentials for partner banks, institutions and collectors.

    The client authenticates with HTTP Basic (`curl -u id:secret`) or with
    `client_id` and `client_secret` in the form body, not both at once."""
    try:
        if grant_type != "client_credentials":
            raise DomainError(
                "UNSUPPORTED_GRANT_TYPE", 400, extra={"error": "unsupported_grant_type"}
            )
        basic = _basic_credentials(request.headers.get("authorization"))
        if basic is not None and (client_id is not None or client_secret is not None):
            raise DomainError("CLIENT_CREDENTIALS_TWICE", 400, extra={"error": "invalid_request"})
        cid, secret = basic if basic is not None else (client_id, client_secret)
        if cid is None or secret is None or len(cid) > 64 or len(secret) > 128:
            raise DomainError("INVALID_CLIENT", 401, extra={"error": "invalid_client"})
        issued = service.client_token(
            rt, client_id=cid, client_secret=secret, scope=scope, source=client_address(request)
        )
    except DomainError as exc:
        tried_basic = request.headers.get("authorization", "")[:6].lower() == "basic "
        if exc.status != 401 or not tried_basic:
            raise
        # A failed Basic attempt is answered with the Basic challenge (RFC 6749 5.2).
        return problem(request, 401, exc.code, exc.params, exc.extra, _BASIC_CHALLENGE)
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
    body: PaymentPasswordIn,
    principal: PersonDep,
    session: SessionDep,
    rt: RuntimeDep,
    request: Request,
) -> Response:
    """Set it the first time with the login password (counted by the login throttle),
    or change it with the current payment password (counted by its own lockout,
    which a change never clears)."""
    # End the token look-up's transaction: the two password hashes must not run
    # while it holds SQLite's write lock.
    session.commit()
    service.set_payment_password(
        session,
        rt,
        principal,
        password=body.password,
        payment_password=body.payment_password,
        new_payment_password=body.new_payment_password,
        source=client_address(request),
    )
    return Response(status_code=204)


@router.put("/me/password", status_code=204, tags=["me"])
def put_password(
    body: PasswordChangeIn,
    principal: PersonDep,
    session: SessionDep,
    rt: RuntimeDep,
    request: Request,
) -> Response:
    """Change the login password with the current one (a wrong one counts as a failed
    login). Every other session ends; this one stays; a notice tells the person."""
    session.commit()  # no open transaction while the hashes run
    service.change_password(
        session,
        rt,
        principal,
        password=body.password,
        new_password=body.new_password,
        source=client_address(request),
    )
    return Response(status_code=204)


@router.get("/me/sessions", response_model=SessionsOut, tags=["me"])
def get_sessions(principal: PersonDep, session: SessionDep, rt: RuntimeDep) -> SessionsOut:
    """The account's live sessions, newest first; ``current`` marks this one."""
    rows = sessions.list_sessions(session, rt, principal)
    return SessionsOut(
        items=[
            SessionOut(
                id=r.id,
                created_at=r.created_at,
                last_seen_at=r.last_seen_at,
                channel=r.channel,
                current=r.current,
            )
            for r in rows
        ]
    )


@router.delete("/me/sessions", status_code=204, tags=["me"])
def delete_sessions(principal: PersonDep, session: SessionDep, rt: RuntimeDep) -> Response:
    """End every session of the account, this one included (after a lost phone)."""
    sessions.end_all(session, rt, principal)
    return Response(status_code=204)


@router.post(
    "/auth/password-reset/sms-code", status_code=202, response_model=SmsCodeOut, tags=["auth"]
)
def password_reset_sms_code(
    body: SmsCodeIn, request: Request, rt: RuntimeDep, background: BackgroundTasks
) -> SmsCodeOut:
    """A forgotten login password: a one-time code to the phone on the registry
    record. The answer is the same whether or not the person exists, has an account,
    the name matches, or a code was sent."""
    message = recovery.request_code(
        rt, id_number=body.id_number, name=body.name, source=client_address(request)
    )
    otp.send(rt, message, later=background.add_task)
    return _code_sent(request, rt)


@router.post("/auth/password-reset", status_code=204, tags=["auth"])
def password_reset(body: PasswordResetIn, rt: RuntimeDep) -> Response:
    """Set a new login password with the code sent to the registry phone (`sms_code`)
    or a face check (`face_token`). Every session of the account ends, and a login
    lock is lifted: the owner's way back in."""
    recovery.reset(
        rt,
        id_number=body.id_number,
        name=body.name,
        new_password=body.new_password,
        sms_code=body.sms_code,
        face_token=body.face_token,
    )
    return Response(status_code=204)


def _code_sent(request: Request, rt: Runtime) -> SmsCodeOut:
    message_text, _ = i18n.text("SMS_CODE_REQUESTED", locale_of(request))
    return SmsCodeOut(
        detail=message_text,
        expires_in=int(otp.TTL.total_seconds()),
        resend_after=rt.settings.sms_resend_seconds,
    )


@router.post("/me/phone/sms-code", status_code=202, response_model=SmsCodeOut, tags=["me"])
def phone_sms_code(
    body: PhoneCodeIn,
    request: Request,
    principal: PersonDep,
    session: SessionDep,
    rt: RuntimeDep,
    background: BackgroundTasks,
) -> SmsCodeOut:
    """A code to the new login phone, which `PUT /me/phone` takes to make it the login."""
    message = phone_change.request_code(session, rt, principal, body.phone, client_address(request))
    otp.send(rt, message, later=background.add_task, commit=session.commit)
    return _code_sent(request, rt)


@router.put("/me/phone", status_code=204, tags=["me"])
def put_phone(
    body: PhoneChangeIn, principal: PersonDep, session: SessionDep, rt: RuntimeDep
) -> Response:
    """Make the new phone the login, with the code sent to it (409 `PHONE_IN_USE` when
    another account logs in with it)."""
    phone_change.change(session, rt, principal, body.phone, body.sms_code)
    return Response(status_code=204)


@router.post(
    "/me/payment-password/reset/sms-code", status_code=202, response_model=SmsCodeOut, tags=["me"]
)
def payment_reset_sms_code(
    request: Request,
    principal: PersonDep,
    session: SessionDep,
    rt: RuntimeDep,
    background: BackgroundTasks,
) -> SmsCodeOut:
    """The step-up for a forgotten or locked payment password: a code to the phone on
    the registry record."""
    message = payment_reset.request_code(session, rt, principal)
    otp.send(rt, message, later=background.add_task, commit=session.commit)
    return _code_sent(request, rt)


@router.post("/me/payment-password/reset", status_code=204, tags=["me"])
def post_payment_reset(
    body: PaymentPasswordResetIn, principal: PersonDep, session: SessionDep, rt: RuntimeDep
) -> Response:
    """A new payment password after the step-up (`sms_code` or `face_token`); it lifts
    a lock, which a change with the old one never does."""
    payment_reset.reset(
        session,
        rt,
        principal,
        new_payment_password=body.new_payment_password,
        sms_code=body.sms_code,
        face_token=body.face_token,
    )
    return Response(status_code=204)
