"""Group commit on the fast path (QINQING_GROUP_COMMIT): concurrent single payments
share a transaction, and each still gets the answer it would have had alone —
no overdraft, exact refusals — and a group that fails as a whole falls back to
running each call alone."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from qinqing.accounting.reconcile import reconcile
from qinqing.ledger.models import LedgerAccount
from qinqing.payments import service as payments
from qinqing.payments.fast import FastPath
from qinqing.runtime import Runtime
from support.ledger import fund, make_family, through_fast, token_principal


@pytest.fixture
def grouped(rt: Runtime) -> FastPath:
    rt.settings.group_commit = True
    fast = FastPath.for_runtime(rt)
    if fast is None:
        pytest.skip("group commit is the PostgreSQL fast path's (SQLite has no stored functions)")
    return fast


def test_concurrent_payments_share_transactions_and_keep_every_rule(
    rt: Runtime, client: TestClient, grouped: FastPath, monkeypatch: pytest.MonkeyPatch
) -> None:
    inst = token_principal(rt, client)
    fams = [make_family(rt, seq=n) for n in (1, 2, 3)]
    for f in fams:
        fund(rt, f.holder_id, 10_000)
    ops = [
        payments.Authorize(f.holder_number, f.member_number, 1_000, f"G{n}-{i}")
        for i in range(12)
        for n, f in enumerate(fams)
    ]

    async def go() -> tuple[list[Any], list[Any]]:
        try:
            first = await asyncio.gather(*(through_fast(grouped, inst, op) for op in ops))

            # Now every group fails as a whole: each call must then run alone.
            async def broken(*_: Any) -> list[Any]:
                raise RuntimeError("a group that failed as a whole")

            monkeypatch.setattr(grouped, "_run_group", broken)
            held = [o.payment_id for o in first if o.ok][:6]
            voids = [payments.Void(str(pid)) for pid in held]
            second = await asyncio.gather(*(through_fast(grouped, inst, op) for op in voids))
            return list(first), list(second)
        finally:
            await grouped.close()

    first, second = asyncio.run(go())
    # Ten holds of 1,000 fit in each 10,000 account; the other two are refused (by
    # bare ID numbers, a short balance is told MUTUAL_AID_UNAVAILABLE).
    outcomes = Counter("ok" if o.ok else o.code for o in first)
    assert outcomes == {"ok": 30, "MUTUAL_AID_UNAVAILABLE": 6}
    assert max(grouped.group_sizes) > 1  # they really were grouped
    assert all(o.ok and o.status == "voided" for o in second)
    with rt.db.unit_of_work() as s:
        held = dict(
            (r[0], r[1]) for r in s.execute(select(LedgerAccount.person_id, LedgerAccount.held_fen))
        )
        # 30 holds placed, 6 of them voided.
        assert sum(held[f.holder_id] for f in fams) == 24_000
        assert reconcile(s) == []
