"""Real concurrent transactions on PostgreSQL: two payments for one member and year,
by the same holder or by two holders, pay exactly once."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from qinqing.auth.verification import PaymentPasswordVerification
from qinqing.kit.errors import DomainError
from qinqing.ledger.models import LedgerTransfer
from qinqing.resident import service
from qinqing.resident.models import ResidentContribution
from qinqing.runtime import Runtime
from support.concurrency import race
from support.family import PAYMENT_PASSWORD, MadeLink, principal_of
from support.resident import assert_reconciled, balance_of, resident_family


@pytest.fixture
def pg(rt: Runtime) -> Runtime:
    if rt.db.is_sqlite:
        pytest.skip("row-lock races are a PostgreSQL property (SQLite serializes writers)")
    return rt


def _pay(rt: Runtime, made: MadeLink) -> str:
    verification = PaymentPasswordVerification(
        method="payment_password", payment_password=PAYMENT_PASSWORD
    )
    try:
        with rt.db.unit_of_work() as s:
            service.pay(s, rt, principal_of(rt, made.holder_id), made.link_id, 2027, verification)
    except DomainError as exc:
        return exc.code
    return "paid"


def _counts(rt: Runtime) -> tuple[int, int]:
    with rt.db.unit_of_work() as s:
        rows = s.execute(select(func.count()).select_from(ResidentContribution)).scalar_one()
        debits = s.execute(
            select(func.count())
            .select_from(LedgerTransfer)
            .where(LedgerTransfer.kind == "resident")
        ).scalar_one()
    return int(rows), int(debits)


def test_the_same_holder_twice_at_once_pays_once(pg: Runtime, client: TestClient) -> None:
    made = resident_family(pg, client)
    results = race(2, lambda _i: _pay(pg, made))
    assert sorted(map(str, results)) == ["RESIDENT_ALREADY_PAID", "paid"], results
    assert _counts(pg) == (1, 1)
    assert balance_of(pg, made) == 60_000
    assert_reconciled(pg)


def test_two_holders_of_one_member_at_once_pay_once(pg: Runtime, client: TestClient) -> None:
    first = resident_family(pg, client)
    second = resident_family(pg, client, member=first.member)
    results = race(2, lambda i: _pay(pg, (first, second)[i]))
    assert sorted(map(str, results)) == ["RESIDENT_ALREADY_PAID", "paid"], results
    assert _counts(pg) == (1, 1)
    assert sorted([balance_of(pg, first), balance_of(pg, second)]) == [60_000, 100_000]
    assert_reconciled(pg)


def test_an_unbind_and_a_payment_at_once_never_both_see_the_link_in_force(
    pg: Runtime, client: TestClient
) -> None:
    """The payment holds the link FOR SHARE, the unbind FOR NO KEY UPDATE: one waits
    for the other. Paid first, the unbind then ends the link and the payment stays;
    unbound first, the payment is refused. Either way no deadlock, no 5xx."""
    from qinqing.unbind import service as unbind

    verification = PaymentPasswordVerification(
        method="payment_password", payment_password=PAYMENT_PASSWORD
    )
    for _ in range(3):
        made = resident_family(pg, client)

        def act(i: int, made: MadeLink = made) -> str:
            if i == 0:
                return _pay(pg, made)
            with pg.db.unit_of_work() as s:
                out = unbind.unbind(
                    s, pg, principal_of(pg, made.holder_id), made.link_id, verification
                )
                return out.request.status

        results = race(2, act)
        assert results[1] == "completed", results
        assert results[0] in ("paid", "NO_MUTUAL_AID_LINK"), results
        with pg.db.unit_of_work() as s:
            paid = s.execute(
                select(func.count())
                .select_from(ResidentContribution)
                .where(ResidentContribution.holder_id == made.holder_id)
            ).scalar_one()
        assert paid == (1 if results[0] == "paid" else 0)
        assert balance_of(pg, made) == (60_000 if results[0] == "paid" else 100_000)
    assert_reconciled(pg)
