"""The personal-account statement route for persons."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from qinqing.accounting import statements
from qinqing.accounting.schemas import EntryOut, HoldOut, MemberRef, StatementOut
from qinqing.auth.deps import PersonDep
from qinqing.http.deps import CursorPaging, RuntimeDep, SessionDep
from qinqing.persons.models import Person

router = APIRouter(tags=["statements"])


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
    """Contributions credited, payments and for which member, and open holds; newest
    first, `limit` (1 to 200) entries at a time, the next (older) page by `before`.
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
