"""Request and response models of the bank routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from qinqing.family.views import LinkOut


class BankLinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    account_number: str = Field(
        min_length=1,
        max_length=40,
        description="the bank card or account number, 12 to 19 digits (spaces allowed); "
        "16 to 19 digits must carry a valid Luhn check digit",
    )
    bank_code: str | None = Field(
        default=None,
        min_length=1,
        max_length=16,
        description="persons: the partner bank's code; bank clients leave it out (their own)",
    )
    id_number: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="bank clients: the customer's 18-digit resident ID number",
    )
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="bank clients: the customer's name, as registered",
    )


class BankLinkConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    sms_code: str | None = Field(
        default=None,
        min_length=1,
        max_length=12,
        description="a bank confirming the link it started: the one-time code the person "
        "received on the registry phone; everyone else sends `{}`",
    )


class BankLinkOut(BaseModel):
    id: str = Field(description="opaque id of the association")
    bank_code: str
    account_number_masked: str = Field(description="e.g. 6214********2345")
    status: Literal["pending", "active", "ended"]
    awaiting: Literal["person", "bank"] | None = Field(
        default=None,
        description="pending: who must still confirm (the person for a link a bank "
        "started, the bank for one the person started)",
    )
    created_at: datetime
    created_channel: str = Field(description="app | wechat | bank")
    id_number_masked: str = Field(
        description="the person's ID number, masked (for a link a bank started: the one it named)"
    )
    confirmed_at: datetime | None = None
    ended_at: datetime | None = None
    ended_by_kind: Literal["person", "client", "staff", "operator"] | None = None
    ended_channel: str | None = None


class BankLinkPage(BaseModel):
    items: list[BankLinkOut]
    total: int
    page: int
    page_size: int


class BankFamilyOut(BaseModel):
    """The customer's family links, as 我的家庭成员 shows them in the app."""

    as_holder: list[LinkOut] = Field(description="links where the customer is the holder")
    as_member: list[LinkOut] = Field(description="links where the customer is the bound member")
