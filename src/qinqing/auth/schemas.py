from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SmsCodeIn(Strict):
    id_number: str = Field(min_length=1, max_length=32, description="18-digit resident ID number")
    name: str = Field(min_length=1, max_length=64)


class SmsCodeOut(BaseModel):
    status: Literal["accepted"] = "accepted"
    detail: str = Field(description="what happens next, in the caller's language")
    expires_in: int = Field(description="seconds a code stays valid")
    resend_after: int = Field(description="seconds before another code may be asked for")


class RegisterIn(Strict):
    id_number: str = Field(min_length=1, max_length=32, description="18-digit resident ID number")
    name: str = Field(min_length=1, max_length=64)
    phone: str = Field(min_length=1, max_length=20, description="mainland mobile number")
    password: str = Field(min_length=1, max_length=128)
    sms_code: str | None = Field(
        default=None,
        pattern=r"^[0-9]{6}$",
        description="the 6-digit code sent to the phone on the registry record",
    )
    face_token: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="a face check from the face provider (instead of sms_code)",
    )


class RegisterOut(BaseModel):
    account_id: str
    person_id: str


class LoginIn(Strict):
    login: str = Field(
        min_length=1, max_length=64, description="phone (persons) or username (staff)"
    )
    password: str = Field(min_length=1, max_length=128)
    channel: Literal["app", "wechat"] = "app"
    totp: str | None = Field(
        default=None,
        min_length=6,
        max_length=6,
        pattern=r"^\d{6}$",
        description="staff only: the 6-digit code of the authenticator app (TOTP, RFC 6238); "
        "required in production and for every enrolled account",
    )


class LoginOut(BaseModel):
    """A login's answer: exactly the token, its type and lifetime (no scopes:
    a person's or a staff member's rights come from who they are)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class TokenOut(LoginOut):
    scope: str | None = None


class PaymentPasswordIn(Strict):
    """Exactly one proof: ``password`` (the login password) to set the payment password
    the first time, or ``payment_password`` (the current one) to change it."""

    password: str | None = Field(
        default=None, min_length=1, max_length=128, description="the login password (first time)"
    )
    payment_password: str | None = Field(
        default=None,
        min_length=1,
        max_length=16,
        description="the current payment password (change)",
    )
    new_payment_password: str = Field(min_length=1, max_length=16, description="six digits")


class RegionRef(BaseModel):
    code: str
    name: str


class MeOut(BaseModel):
    kind: Literal["person"] = "person"
    id: str
    name: str
    id_number: str = Field(description="masked, e.g. 150602********0023")
    phone: str | None = Field(description="masked, e.g. 138****5678")
    sex: Literal["M", "F"]
    birth_date: date
    region: RegionRef
    scheme: Literal["employee", "resident", "flexible"]
    status: Literal["active", "arrears", "suspended", "terminated", "deceased"]
    channel: str
    payment_password_set: bool
    payment_password_locked_until: datetime | None
    has_personal_account: bool = Field(description="only employee (职工) members have one")
    balance_fen: int = Field(description="personal-account balance")
    available_fen: int = Field(description="balance less open holds")


class PasswordChangeIn(Strict):
    password: str = Field(min_length=1, max_length=128, description="the current login password")
    new_password: str = Field(
        min_length=1, max_length=128, description="8 to 128 characters, letters and digits"
    )


class SessionOut(BaseModel):
    id: str = Field(description="an opaque name of the session (never its token)")
    created_at: datetime
    last_seen_at: datetime | None = Field(description="when it was last used (to a few minutes)")
    channel: str
    current: bool = Field(description="the session this request came with")


class SessionsOut(BaseModel):
    items: list[SessionOut]


class PasswordResetIn(Strict):
    id_number: str = Field(min_length=1, max_length=32, description="18-digit resident ID number")
    name: str = Field(min_length=1, max_length=64)
    new_password: str = Field(min_length=1, max_length=128)
    sms_code: str | None = Field(
        default=None,
        pattern=r"^[0-9]{6}$",
        description="the 6-digit code sent to the phone on the registry record",
    )
    face_token: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="a face check from the face provider (instead of sms_code)",
    )


class PhoneCodeIn(Strict):
    phone: str = Field(min_length=1, max_length=20, description="the new login phone")


class PhoneChangeIn(Strict):
    phone: str = Field(min_length=1, max_length=20, description="the new login phone")
    sms_code: str = Field(pattern=r"^[0-9]{6}$", description="the code sent to the new phone")


class PaymentPasswordResetIn(Strict):
    new_payment_password: str = Field(min_length=1, max_length=16, description="six digits")
    sms_code: str | None = Field(
        default=None,
        pattern=r"^[0-9]{6}$",
        description="the code sent to the phone on the registry record",
    )
    face_token: str | None = Field(
        default=None, min_length=1, max_length=512, description="a face check instead"
    )
