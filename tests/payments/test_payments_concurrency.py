"""Real concurrent transactions on PostgreSQL: authorizations racing for one
account never overdraw it, and concurrent settles of one hold resolve it once."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from qinqing.access.principal import Principal
from qinqing.accounting.reconcile import reconcile
from qinqing.auth.models import LoginThrottle
from qinqing.ledger.accounts import personal_code
from qinqing.ledger.models import LedgerAccount
from qinqing.payments import fast_batch, probes
from qinqing.payments import service as payments
from qinqing.payments.fast import FastPath
from qinqing.runtime import Runtime
from support.accounts import id_number
from support.concurrency import race
from support.ledger import fund, institution_principal, make_family, token_principal

T = TypeVar("T")


@pytest.fixture
def pg(rt: Runtime) -> Runtime:
    if rt.db.is_sqlite:
        pytest.skip("row-lock races are a PostgreSQL property (SQLite serializes writers)")
    return rt


def test_concurrent_authorizations_never_overdraw(pg: Runtime) -> None:
    rt = pg
    fam = make_family(rt)
    fund(rt, fam.holder_id, 100_000)
    inst = institution_principal(rt)

    def authorize(i: int) -> payments.Outcome:
        with rt.db.unit_of_work() as s:
            return payments.execute(
                s,
                rt,
                inst,
                [payments.Authorize(fam.holder_number, fam.member_number, 30_000, f"RACE-{i}")],
            )[0]

    results = race(8, authorize)
    outcomes = [r for r in results if isinstance(r, payments.Outcome)]
    assert len(outcomes) == 8, results
    assert sum(o.ok for o in outcomes) == 3  # 3 × 30 000 ≤ 100 000 < 4 × 30 000
    # By bare ID numbers a short balance is told MUTUAL_AID_UNAVAILABLE.
    assert {(o.code, o.detail) for o in outcomes if not o.ok} == {
        ("MUTUAL_AID_UNAVAILABLE", "INSUFFICIENT_BALANCE")
    }
    with rt.db.unit_of_work() as s:
        acct = s.execute(
            select(LedgerAccount).where(LedgerAccount.code == personal_code(fam.holder_id))
        ).scalar_one()
        assert (acct.balance_fen, acct.held_fen) == (100_000, 90_000)
        assert reconcile(s) == []


def test_concurrent_settles_resolve_once(pg: Runtime) -> None:
    rt = pg
    fam = make_family(rt)
    fund(rt, fam.holder_id, 100_000)
    inst = institution_principal(rt)
    with rt.db.unit_of_work() as s:
        hold = payments.execute(
            s, rt, inst, [payments.Authorize(fam.holder_number, fam.member_number, 50_000, "ONE")]
        )[0]
    assert hold.ok and hold.payment_id

    def resolve(i: int) -> payments.Outcome:
        op: payments.Op = (
            payments.Settle(str(hold.payment_id), 40_000)
            if i % 2
            else payments.Void(str(hold.payment_id))
        )
        with rt.db.unit_of_work() as s:
            return payments.execute(s, rt, inst, [op])[0]

    outcomes = race(6, resolve)
    assert all(isinstance(o, payments.Outcome) for o in outcomes), outcomes
    oks = [o for o in outcomes if isinstance(o, payments.Outcome) and o.ok]
    assert len(oks) == 1
    with rt.db.unit_of_work() as s:
        acct = s.execute(
            select(LedgerAccount).where(LedgerAccount.code == personal_code(fam.holder_id))
        ).scalar_one()
        assert acct.held_fen == 0
        assert acct.balance_fen == (60_000 if oks[0].status == "settled" else 100_000)
        assert reconcile(s) == []


def test_concurrent_batches_on_shared_accounts_do_not_deadlock(pg: Runtime) -> None:
    rt = pg
    fams = [make_family(rt, seq=i + 1) for i in range(6)]
    for f in fams:
        fund(rt, f.holder_id, 10_000)
    inst = institution_principal(rt)

    def batch(i: int) -> list[payments.Outcome]:
        order = fams if i % 2 else list(reversed(fams))
        ops: list[payments.Op] = [
            payments.Authorize(f.holder_number, f.member_number, 1_000, f"B{i}-{j}")
            for j, f in enumerate(order)
        ]
        with rt.db.unit_of_work() as s:
            return payments.execute(s, rt, inst, ops)

    results = race(6, batch)
    assert all(isinstance(r, list) for r in results), results
    assert sum(o.ok for r in results if isinstance(r, list) for o in r) == 36
    with rt.db.unit_of_work() as s:
        assert reconcile(s) == []


def _batch_function(rt: Runtime) -> FastPath:
    fast = FastPath.for_runtime(rt)
    if fast is None:
        pytest.skip("the batch function is the PostgreSQL fast path's")
    return fast


def _batch(fast: FastPath, inst: Principal, ops: list[payments.Op]) -> list[payments.Outcome]:
    """One batch through ``qinqing_payment_batch``, on an event loop of its own."""

    def answer(outs: list[payments.Outcome]) -> tuple[int, Any]:
        return 200, outs

    async def run() -> list[payments.Outcome]:
        try:
            reply = await fast_batch.run(fast, inst, ops, None, answer)
        finally:
            await fast.close()
        outs: list[payments.Outcome] = reply.body
        return outs

    return asyncio.run(run())


def test_concurrent_fast_batches_on_shared_accounts_do_not_deadlock(
    pg: Runtime, client: TestClient
) -> None:
    """The same through ``qinqing_payment_batch``: it takes the batch's links and
    accounts in the global order before deciding, so batches naming the same holders
    in opposite orders wait for each other instead of deadlocking (a deadlock here
    would surface as an error: nothing retries it)."""
    rt = pg
    fast = _batch_function(rt)
    fams = [make_family(rt, seq=i + 1) for i in range(6)]
    for f in fams:
        fund(rt, f.holder_id, 20_000)
    inst = token_principal(rt, client)

    def one(rnd: int, i: int) -> list[payments.Outcome]:
        order = fams if i % 2 else list(reversed(fams))
        ops: list[payments.Op] = [
            payments.Authorize(f.holder_number, f.member_number, 1_000, f"F{rnd}-{i}-{j}")
            for j, f in enumerate(order)
        ]
        return _batch(fast, inst, ops)

    for rnd in range(3):  # rounds: each a fresh chance to interleave
        results = race(6, lambda i, rnd=rnd: one(rnd, i))
        assert all(isinstance(r, list) for r in results), results
        assert all(o.ok for r in results if isinstance(r, list) for o in r), results
    with rt.db.unit_of_work() as s:
        held = s.execute(
            select(LedgerAccount.held_fen).where(
                LedgerAccount.person_id.in_([f.holder_id for f in fams])
            )
        ).scalars()
        assert sorted(held) == [18_000] * 6  # 3 rounds x 6 batches x 1,000 each
        assert reconcile(s) == []


def test_concurrent_batches_of_probes_count_every_one(pg: Runtime, client: TestClient) -> None:
    """Batches of authorizations whose refusals are probes (the member's number is
    nobody's), sent at once by one institution whose hour has no counter yet: every
    probe is counted once — none lost to a batch that wrote the counter from what it
    had read — and each is answered MUTUAL_AID_UNAVAILABLE."""
    rt = pg
    rt.settings.authorize_failures_per_hour = 1_000
    fast = _batch_function(rt)
    fam = make_family(rt)
    fund(rt, fam.holder_id, 20_000)
    nobody = id_number(area="150602", born=date(1941, 2, 3), seq=77)
    inst = token_principal(rt, client)

    def one(i: int) -> list[payments.Outcome]:
        ops: list[payments.Op] = [
            payments.Authorize(fam.holder_number, nobody, 1_000, f"P{i}-{j}") for j in range(3)
        ]
        return _batch(fast, inst, ops)

    results = race(6, one)
    assert all(isinstance(r, list) for r in results), results
    codes = {o.code for r in results if isinstance(r, list) for o in r}
    assert codes == {"MUTUAL_AID_UNAVAILABLE"}
    with rt.db.unit_of_work() as s:
        counted = s.execute(
            select(LoginThrottle.failures).where(LoginThrottle.key == probes.key(inst.id))
        ).scalar_one()
    assert counted == 18  # 6 batches x 3 probes
