"""Statement routes for persons: the personal account and a link's payments."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from qinqing.auth.principal import PersonDep
from qinqing.deps import RuntimeDep, SessionDep
from qinqing.family.access import load_link
from qinqing.ledger import statements
from qinqing.persons.models import Person

router = APIRouter(tags=["statements"])


class MemberRef(BaseModel):
    id: str
    name: str


class HoldOut(BaseModel):
    payment_id: str
    amount_fen: int
    member: MemberRef
    created_at: datetime
    expires_at: datetime


class EntryOut(BaseModel):
    id: str
    at: datetime
    amount_fen: int = Field(description="+ credited to the account, - paid from it")
    kind: Literal["contribution", "payment"]
    period: str | None = Field(description="the contribution month, for contributions")
    payment_id: str | None
    member: MemberRef | None = Field(description="whose bill a payment paid")


class StatementOut(BaseModel):
    has_personal_account: bool
    balance_fen: int
    held_fen: int
    available_fen: int
    holds: list[HoldOut]
    entries: list[EntryOut]
    next_before: str | None = Field(description="pass as ?before= for the next page")


class LinkPaymentOut(BaseModel):
    payment_id: str
    status: Literal["authorized", "settled", "voided", "expired"]
    amount_fen: int
    settled_fen: int | None
    created_at: datetime
    resolved_at: datetime | None


class LinkPaymentsOut(BaseModel):
    link_id: str
    year: int
    yearly_limit_fen: int | None
    used_fen: int = Field(description="settled amounts plus open holds this year")
    remaining_fen: int | None
    payments: list[LinkPaymentOut]


@router.get(
    "/me/account/entries",
    response_model=StatementOut,
    summary="个人账户明细 (personal-account statement)",
)
def my_entries(
    principal: PersonDep,
    session: SessionDep,
    rt: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[str | None, Query(max_length=64)] = None,
) -> StatementOut:
    """Contributions credited, payments and for which member, and open holds; newest first."""
    person = session.get(Person, principal.person_id)
    assert person is not None
    st = statements.statement(session, person, rt.clock.now(), limit=limit, before=before)
    return StatementOut(
        has_personal_account=st.balance.has_personal_account,
        balance_fen=st.balance.balance_fen,
        held_fen=st.balance.held_fen,
        available_fen=st.balance.available_fen,
        holds=[
            HoldOut(
                payment_id=str(h.payment_id),
                amount_fen=h.amount_fen,
                member=MemberRef(id=str(h.member_id), name=h.member_name),
                created_at=h.created_at,
                expires_at=h.expires_at,
            )
            for h in st.holds
        ],
        entries=[
            EntryOut(
                id=str(e.id),
                at=e.at,
                amount_fen=e.amount_fen,
                kind="payment" if e.kind == "payment" else "contribution",
                period=e.period,
                payment_id=str(e.payment_id) if e.payment_id else None,
                member=MemberRef(id=str(e.member_id), name=e.member_name)
                if e.member_id and e.member_name
                else None,
            )
            for e in st.lines
        ],
        next_before=st.next_before,
    )


@router.get("/family/links/{link_id}/payments", response_model=LinkPaymentsOut)
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
