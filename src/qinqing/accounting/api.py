"""The personal-account statement route for persons."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from qinqing.accounting import statements
from qinqing.accounting.schemas import (
    EntryOut,
    HoldOut,
    MemberRef,
    PaidForMeOut,
    QuotaSummaryOut,
    StatementOut,
)
from qinqing.auth.deps import PersonDep
from qinqing.http.deps import CursorPaging, RuntimeDep, SessionDep
from qinqing.persons.models import Person

router = APIRouter(tags=["statements"])
_KINDS: dict[
    str,
    Literal["contribution", "payment", "resident_contribution", "quota_top_up", "quota_refund"],
] = {
    "contribution": "contribution",
    "payment": "payment",
    "resident": "resident_contribution",
    "quota": "quota_top_up",
    "quota_refund": "quota_refund",
}


@router.get(
    "/me/account/entries",
    response_model=StatementOut,
    summary="个人账户明细 (personal-account statement)",
    dependencies=[CursorPaging],
)
def my_entries(
    principal: PersonDep,
    session: SessionDep,
    rt: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[str | None, Query(max_length=64)] = None,
) -> StatementOut:
    """Contributions credited, payments and for which member, resident insurance paid
    for a member (with its cover start), and open holds; newest first, `limit` (1 to
    200) entries at a time, the next (older) page by `before`. A member also sees the
    resident insurance family members paid for them (`resident_paid_for_me`).
    `page`, `page_size` or `offset` (offset paging, which this list does not do) is
    422."""
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
                kind=_KINDS.get(e.kind, "contribution"),
                period=e.period,
                payment_id=str(e.payment_id) if e.payment_id else None,
                member=MemberRef(id=str(e.member_id), name=e.member_name)
                if e.member_id and e.member_name
                else None,
                resident_contribution_id=str(e.resident_contribution_id)
                if e.resident_contribution_id
                else None,
                cover_year=e.cover_year,
                cover_starts_on=e.cover_starts_on,
                link_id=str(e.link_id) if e.link_id else None,
            )
            for e in st.lines
        ],
        next_before=st.next_before,
        resident_paid_for_me=[
            PaidForMeOut(
                id=str(p.id),
                year=p.year,
                amount_fen=p.amount_fen,
                paid_by=MemberRef(id=str(p.holder_id), name=p.holder_name),
                paid_at=p.paid_at,
                cover_starts_on=p.cover_starts_on,
            )
            for p in st.resident_paid_for_me
        ],
        quotas=[
            QuotaSummaryOut(
                link_id=str(q.link_id),
                member=MemberRef(id=str(q.member_id), name=q.member_name),
                balance_fen=q.balance_fen,
                held_fen=q.held_fen,
                available_fen=q.balance_fen - q.held_fen,
            )
            for q in st.quotas
        ],
    )
