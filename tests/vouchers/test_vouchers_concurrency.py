"""Real concurrent transactions on PostgreSQL: one voucher, many cashiers at once
→ exactly one hold; the others are told the voucher is used."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from qinqing.accounting.reconcile import reconcile
from qinqing.ledger.accounts import personal_code
from qinqing.ledger.models import LedgerAccount
from qinqing.payments.models import Payment
from qinqing.payments.service import Outcome
from qinqing.runtime import Runtime
from qinqing.vouchers import service
from qinqing.vouchers.models import Voucher
from support.concurrency import race
from support.ledger import institution_principal
from support.vouchers import scene, token_for


@pytest.fixture
def pg(rt: Runtime) -> Runtime:
    if rt.db.is_sqlite:
        pytest.skip("row-lock races are a PostgreSQL property (SQLite serializes writers)")
    return rt


def _state(rt: Runtime, holder_code: str) -> tuple[int, int, int]:
    with rt.db.unit_of_work() as s:
        held = s.execute(
            select(LedgerAccount.held_fen).where(LedgerAccount.code == holder_code)
        ).scalar_one()
        payments = s.execute(select(func.count()).select_from(Payment)).scalar_one()
        used = s.execute(
            select(func.count()).select_from(Voucher).where(Voucher.used_at.is_not(None))
        ).scalar_one()
        assert reconcile(s) == []
        return int(held), int(payments), int(used)


def test_one_voucher_pays_once_under_concurrent_use(pg: Runtime, client: TestClient) -> None:
    rt = pg
    sc = scene(rt, client)
    token = token_for(client, sc)
    inst = institution_principal(rt)

    def authorize(i: int) -> Outcome:
        with rt.db.unit_of_work() as s:
            return service.execute(
                s, rt, inst, [service.VoucherAuthorize(token, 1_000, f"RACE-{i}")]
            )[0]

    results = race(8, authorize)
    outcomes = [r for r in results if isinstance(r, Outcome)]
    assert len(outcomes) == 8, results
    assert sum(o.ok for o in outcomes) == 1
    assert {o.code for o in outcomes if not o.ok} == {"VOUCHER_USED"}
    assert _state(rt, personal_code(sc.made.holder_id)) == (1_000, 1, 1)


def test_concurrent_batches_naming_the_same_vouchers_pay_each_once(
    pg: Runtime, client: TestClient
) -> None:
    rt = pg
    sc = scene(rt, client)
    tokens = [token_for(client, sc) for _ in range(4)]
    inst = institution_principal(rt)

    def batch(i: int) -> list[Outcome]:
        order = tokens if i % 2 else list(reversed(tokens))
        ops: list[service.payments.Op | service.VoucherAuthorize] = [
            service.VoucherAuthorize(t, 500, f"B{i}-{j}") for j, t in enumerate(order)
        ]
        with rt.db.unit_of_work() as s:
            return service.execute(s, rt, inst, ops)

    results = race(6, batch)
    assert all(isinstance(r, list) for r in results), results
    assert sum(o.ok for r in results if isinstance(r, list) for o in r) == 4
    assert _state(rt, personal_code(sc.made.holder_id)) == (2_000, 4, 4)
