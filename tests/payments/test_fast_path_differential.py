"""The fast path's SQL decides as the ORM engine does.

The same random sequences of authorize / settle / void / funding / time
passing run through :func:`qinqing.payments.service.execute` (which asks
``payments/rules.py``) in one world and through the server-side functions of
``fast_path.sql`` in an identical second world. Every step must give the same
outcome (refusal code, status, amounts, expiry), and at the end every holder's
balance and held amount and every payment's state must be the same, and the
ledger must reconcile.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from ledger_support import Family, fund, institution_headers, make_family, through_fast
from qinqing.access.principal import Principal
from qinqing.accounting.reconcile import reconcile
from qinqing.auth.models import AccessToken
from qinqing.auth.tokens import principal_from_token
from qinqing.kit.clock import FrozenClock
from qinqing.ledger.models import LedgerAccount
from qinqing.payments import service as payments
from qinqing.payments.fast import FastPath
from qinqing.payments.models import Payment
from qinqing.runtime import Runtime

# (yearly limit, mutual aid, holder scheme): a limited link, an unlimited one, a
# link without mutual aid, and a resident holder (who may not pay for others).
SHAPES = [
    (20_000, True, "employee"),
    (None, True, "employee"),
    (None, False, "employee"),
    (None, True, "resident"),
]

amount = st.one_of(st.integers(1, 25_000), st.integers(1, 25_000), st.integers(-2, 0))
# Mostly the two families whose links allow payments.
payer = st.one_of(st.integers(0, 1), st.integers(0, 1), st.integers(0, len(SHAPES) - 1))
step = st.one_of(
    st.tuples(st.just("authorize"), payer, amount, st.integers(0, 6)),
    st.tuples(st.just("authorize"), payer, amount, st.just(0)),
    # holder of one family, member of another: no link between them
    st.tuples(st.just("cross"), st.integers(0, len(SHAPES) - 1), amount, st.just(0)),
    st.tuples(st.just("settle"), st.integers(0, 3), amount, st.just(0)),
    st.tuples(st.just("settle"), st.integers(0, 1), amount, st.just(0)),
    st.tuples(st.just("void"), st.integers(0, 4), st.just(0), st.just(0)),
    st.tuples(st.just("fund"), payer, st.integers(1, 30_000), st.just(0)),
    st.tuples(st.just("time"), st.integers(1, 80), st.just(0), st.just(0)),
)


@dataclass
class World:
    families: list[Family]
    payments: list[uuid.UUID]


def _world(rt: Runtime, seq: itertools.count[int]) -> World:
    fams = []
    for limit, aid, scheme in SHAPES:
        n = next(seq)
        fam = make_family(
            rt,
            seq=n % 400 + 1,
            born=date(1950, 1, 1) + timedelta(days=n),
            yearly_limit_fen=limit,
            mutual_aid=aid,
            holder_scheme=scheme,
        )
        fund(rt, fam.holder_id, 30_000)
        fams.append(fam)
    return World(fams, [])


def _op(world: World, s: tuple[str, int, int, int], ref: str) -> payments.Op:
    kind, a, n, _ = s
    if kind in ("settle", "void"):
        # The a-th most recent authorization, or (rarely) none at all.
        pid = world.payments[-1 - a] if a < len(world.payments) else uuid.UUID(int=a + 1)
        return payments.Settle(str(pid), n) if kind == "settle" else payments.Void(str(pid))
    fam = world.families[a]
    member = world.families[(a + 1) % len(SHAPES)] if kind == "cross" else fam
    return payments.Authorize(fam.holder_number, member.member_number, n, ref)


def _seen(world: World, outcome: payments.Outcome, op: payments.Op) -> tuple[Any, ...]:
    if outcome.ok and isinstance(op, payments.Authorize):
        assert outcome.payment_id is not None
        world.payments.append(outcome.payment_id)
    return (
        outcome.ok,
        outcome.code,
        outcome.status,
        outcome.amount_fen,
        outcome.settled_fen,
        outcome.released_fen if outcome.ok else None,
        outcome.expires_at,
    )


def _state(rt: Runtime, world: World) -> list[Any]:
    with rt.db.unit_of_work() as s:
        out: list[Any] = []
        for fam in world.families:
            acct = s.execute(
                select(LedgerAccount.balance_fen, LedgerAccount.held_fen).where(
                    LedgerAccount.person_id == fam.holder_id
                )
            ).one()
            pays = s.execute(
                select(Payment.status, Payment.amount_fen, Payment.settled_fen)
                .where(Payment.holder_id == fam.holder_id)
                .order_by(Payment.created_at, Payment.amount_fen, Payment.status)
            ).all()
            out.append((tuple(acct), sorted(tuple(p) for p in pays)))
        return out


@pytest.fixture
def fast(rt: Runtime) -> FastPath:
    path = FastPath.for_runtime(rt)
    if path is None:
        pytest.skip(
            "the payment fast path runs on plain PostgreSQL only "
            "(SQLite has no stored functions; a Citus coordinator keeps the engine)"
        )
    return path


def test_fast_path_decides_as_the_engine(
    rt: Runtime, clock: FrozenClock, client: TestClient, fast: FastPath
) -> None:
    def institutions() -> list[Principal]:
        """Two institutions, one per world, each with a token (the SQL checks it) that
        outlives the example's clock: the ORM engine is not the one checking tokens."""
        out = []
        for _ in range(2):
            token = institution_headers(rt, client)["Authorization"].removeprefix("Bearer ")
            with rt.db.unit_of_work() as s:
                p = principal_from_token(s, rt, token)
                s.execute(
                    update(AccessToken)
                    .where(AccessToken.token_hash == p.token_hash)
                    .values(expires_at=clock.now() + timedelta(days=365))
                )
            out.append(p)
        return out

    seq = itertools.count(1)
    refs = itertools.count(1)

    @settings(
        max_examples=80,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(steps=st.lists(step, min_size=1, max_size=24))
    def run(steps: list[tuple[str, int, int, int]]) -> None:
        a, b = _world(rt, seq), _world(rt, seq)
        orm_inst, fast_inst = institutions()
        reused = [f"D{next(refs)}" for _ in range(7)]

        async def go() -> None:
            try:
                # Every sequence starts with a hold on each paying family, so settles
                # and voids have something to act on.
                for s in [("authorize", 0, 5_000, 0), ("authorize", 1, 8_000, 0), *steps]:
                    kind = s[0]
                    if kind == "time":
                        clock.advance(timedelta(hours=s[1]))
                        continue
                    if kind == "fund":
                        fund(rt, a.families[s[1]].holder_id, s[2])
                        fund(rt, b.families[s[1]].holder_id, s[2])
                        continue
                    # Reference 0 is always new; 1..6 may repeat one used before.
                    ref = f"N{next(refs)}" if s[3] == 0 else reused[s[3]]
                    op_a, op_b = _op(a, s, ref), _op(b, s, ref)
                    with rt.db.unit_of_work() as session:
                        got_a = payments.execute(session, rt, orm_inst, [op_a])[0]
                    got_b = await through_fast(fast, fast_inst, op_b)
                    assert _seen(a, got_a, op_a) == _seen(b, got_b, op_b), (s, got_a, got_b)
            finally:
                await fast.close()

        asyncio.run(go())
        assert _state(rt, a) == _state(rt, b)

    run()
    with rt.db.unit_of_work() as s:
        assert reconcile(s) == []
