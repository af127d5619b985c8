"""A Hypothesis state machine drives random credit / authorize / settle / void /
expire sequences through the payment engine and checks, after every step, that
the database agrees with a simple model: available never negative, every hold
resolves exactly once, and reconcile stays clean."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule
from sqlalchemy import select

from qinqing.access.principal import Principal
from qinqing.accounting.reconcile import reconcile
from qinqing.kit.clock import FrozenClock
from qinqing.ledger.accounts import personal_code
from qinqing.ledger.models import LedgerAccount
from qinqing.payments import service as payments
from qinqing.runtime import Runtime
from support.accounts import add_client
from support.ledger import fund, make_family
from support.profiles import examples

amounts = st.integers(min_value=1, max_value=50_000)


def test_ledger_state_machine(rt: Runtime, clock: FrozenClock) -> None:
    # Every short balance by bare ID numbers counts as a probe: not what this tests.
    rt.settings.authorize_failures_per_hour = 1_000_000
    client_id, _ = add_client(rt, "institution")
    inst = Principal(
        "client",
        client_id,
        "institution",
        token_hash="-",
        region_code="150600",
        scopes=frozenset({"payments"}),
        role="institution",
    )
    hours = rt.policies.policy("150600").hold_expiry_hours
    families = itertools.count(1)
    refs = itertools.count(1)

    class Ledger(RuleBasedStateMachine):
        holds = Bundle("holds")

        def __init__(self) -> None:
            super().__init__()
            n = next(families)
            self.fam = make_family(rt, seq=n % 200, born=date(1950, 1, 1) + timedelta(days=n))
            self.balance = 0
            self.open: dict[str, tuple[int, object]] = {}  # payment id -> (amount, expires_at)
            self.resolved: set[str] = set()

        def run(self, op: payments.Op) -> payments.Outcome:
            with rt.db.unit_of_work() as s:
                return payments.execute(s, rt, inst, [op])[0]

        def held(self) -> int:
            return sum(a for a, _ in self.open.values())

        def _drop_expired(self) -> None:
            """What the engine does whenever it locks the account: release overdue holds."""
            now = clock.now()
            for pid, (_, exp) in list(self.open.items()):
                if exp <= now:  # type: ignore[operator]
                    del self.open[pid]
                    self.resolved.add(pid)

        @rule(amount=amounts)
        def credit(self, amount: int) -> None:
            fund(rt, self.fam.holder_id, amount)
            self.balance += amount

        @rule(target=holds, amount=amounts)
        def authorize(self, amount: int) -> str:
            res = self.run(
                payments.Authorize(
                    self.fam.holder_number, self.fam.member_number, amount, f"R{next(refs)}"
                )
            )
            self._drop_expired()
            fits = amount <= self.balance - self.held()
            assert res.ok == fits, (res.code, amount, self.balance, self.held())
            if not res.ok:
                assert (res.code, res.detail) == ("MUTUAL_AID_UNAVAILABLE", "INSUFFICIENT_BALANCE")
                return "none"
            self.open[str(res.payment_id)] = (amount, res.expires_at)
            return str(res.payment_id)

        @rule(pid=holds, fraction=st.integers(min_value=1, max_value=100))
        def settle(self, pid: str, fraction: int) -> None:
            if pid == "none":
                return
            self._drop_expired()
            amount = max(1, self.open[pid][0] * fraction // 100) if pid in self.open else 1
            res = self.run(payments.Settle(pid, amount))
            if pid in self.open:
                assert res.ok, res.code
                del self.open[pid]
                self.resolved.add(pid)
                self.balance -= amount
            else:
                assert not res.ok and res.code in ("PAYMENT_ALREADY_RESOLVED", "PAYMENT_EXPIRED")

        @rule(pid=holds)
        def void(self, pid: str) -> None:
            if pid == "none":
                return
            self._drop_expired()
            res = self.run(payments.Void(pid))
            if pid in self.open:
                assert res.ok, res.code
                del self.open[pid]
                self.resolved.add(pid)
            else:
                assert not res.ok

        @rule(hours_=st.integers(min_value=1, max_value=hours + 1), sweep=st.booleans())
        def time_passes(self, hours_: int, sweep: bool) -> None:
            clock.advance(timedelta(hours=hours_))
            if sweep:
                with rt.db.unit_of_work() as s:
                    payments.expire_holds(s, clock.now())
                self._drop_expired()

        @invariant()
        def agrees_with_model(self) -> None:
            with rt.db.unit_of_work() as s:
                acct = s.execute(
                    select(LedgerAccount).where(
                        LedgerAccount.code == personal_code(self.fam.holder_id)
                    )
                ).scalar_one_or_none()
                balance = acct.balance_fen if acct else 0
                held = acct.held_fen if acct else 0
                assert balance == self.balance
                assert balance - held >= 0
                # Overdue holds may still be counted until the account is next touched,
                # but never more than the model's open holds including overdue ones.
                assert self.held() <= held <= self.held() + sum(a for a, _ in self.open.values())
                assert reconcile(s) == []

    Ledger.TestCase.settings = settings(
        max_examples=examples(25),
        stateful_step_count=20,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    Ledger.TestCase().runTest()
