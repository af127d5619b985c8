"""The ledger state machine across regions: random credits, quota top-ups, the
member's authorize / settle / void in their own region, time passing and the link's
end, through the services, checked after every step against a simple model — the
holder's balance, the quota's balance and holds, no fen lost or doubled (the
money credited is always the holder's balance plus the quota plus what was paid),
and reconcile clean."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import select

from qinqing.accounting.reconcile import reconcile
from qinqing.auth.verification import FaceVerification, simulated_face_token
from qinqing.family.events import LINK_ENDED, FamilyEvent
from qinqing.family.models import FamilyLink
from qinqing.family.service import end_link
from qinqing.kit.clock import FrozenClock
from qinqing.kit.errors import DomainError
from qinqing.ledger.accounts import personal_code, quota_code
from qinqing.ledger.models import LedgerAccount
from qinqing.payments import service as payments
from qinqing.quota import service as quota
from qinqing.runtime import Runtime
from support.banks import person_principal
from support.ledger import fund, institution_principal, make_family
from support.profiles import examples

amounts = st.integers(min_value=1, max_value=50_000)


def test_quota_state_machine(rt: Runtime, clock: FrozenClock) -> None:
    rt.settings.authorize_failures_per_hour = 1_000_000
    inst = institution_principal(rt, region="440100")
    hours = rt.policies.policy("150600").hold_expiry_hours
    families = itertools.count(1)
    refs = itertools.count(1)

    class Quota(RuleBasedStateMachine):
        holds = Bundle("holds")

        def __init__(self) -> None:
            super().__init__()
            n = next(families)
            self.fam = make_family(
                rt,
                seq=n % 200,
                born=date(1950, 1, 1) + timedelta(days=n),
                member_region="440100",
                member_area="440106",
            )
            self.credited = 0
            self.balance = 0  # the holder's personal account
            self.quota = 0
            self.paid = 0
            self.open: dict[str, tuple[int, object]] = {}
            self.ended = False

        def run(self, op: payments.Op) -> payments.Outcome:
            with rt.db.unit_of_work() as s:
                return payments.execute(s, rt, inst, [op])[0]

        def held(self) -> int:
            return sum(a for a, _ in self.open.values())

        def _drop_expired(self) -> None:
            for pid, (_, exp) in list(self.open.items()):
                if exp <= clock.now():  # type: ignore[operator]
                    del self.open[pid]

        @rule(amount=amounts)
        def credit(self, amount: int) -> None:
            fund(rt, self.fam.holder_id, amount)
            self.balance += amount
            self.credited += amount

        @rule(amount=amounts)
        def top_up(self, amount: int) -> None:
            face = FaceVerification(
                method="face", face_token=simulated_face_token(self.fam.holder_id)
            )
            try:
                with rt.db.unit_of_work() as s:
                    quota.top_up(
                        s, rt, person_principal(self.fam.holder_id), self.fam.link_id, amount, face
                    )
            except DomainError as exc:
                expected = "NO_MUTUAL_AID_LINK" if self.ended else "INSUFFICIENT_BALANCE"
                assert exc.code == expected, exc.code
                assert self.ended or amount > self.balance
                return
            assert not self.ended and amount <= self.balance
            self.balance -= amount
            self.quota += amount

        @rule(target=holds, amount=amounts)
        def authorize(self, amount: int) -> str:
            res = self.run(
                payments.Authorize(
                    self.fam.holder_number, self.fam.member_number, amount, f"Q{next(refs)}"
                )
            )
            self._drop_expired()
            fits = not self.ended and amount <= self.quota - self.held()
            assert res.ok == fits, (res.code, res.detail, amount, self.quota, self.held())
            if not res.ok:
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
                self.quota -= amount
                self.paid += amount
            else:
                assert not res.ok

        @rule(pid=holds)
        def void(self, pid: str) -> None:
            if pid == "none":
                return
            self._drop_expired()
            res = self.run(payments.Void(pid))
            assert res.ok == (pid in self.open), res.code
            self.open.pop(pid, None)

        @rule(hours_=st.integers(min_value=1, max_value=hours + 1), sweep=st.booleans())
        def time_passes(self, hours_: int, sweep: bool) -> None:
            clock.advance(timedelta(hours=hours_))
            if sweep:
                with rt.db.unit_of_work() as s:
                    payments.expire_holds(s, clock.now())
                    if quota.sweep_ended(s, clock.now()):
                        self._returned()
                self._drop_expired()

        def _returned(self) -> None:
            self.balance += self.quota - self.held()
            self.quota = self.held()

        @precondition(lambda self: not self.ended)
        @rule()
        def link_ends(self) -> None:
            """The registry ends the link (as a death or a move would): open holds stay
            for their payments, the rest returns at once."""
            with rt.db.unit_of_work() as s:
                link = s.execute(
                    select(FamilyLink)
                    .where(
                        FamilyLink.holder_id == self.fam.holder_id,
                        FamilyLink.id == self.fam.link_id,
                    )
                    .with_for_update()
                ).scalar_one()
                end_link(
                    link,
                    by_kind="system",
                    by_id="registry",
                    channel="registry",
                    reason="test",
                    at=clock.now(),
                )
                rt.events.publish(s, FamilyEvent(LINK_ENDED, link, clock.now()))
            self.ended = True
            self._drop_expired()
            self._returned()

        @invariant()
        def agrees_with_model(self) -> None:
            with rt.db.unit_of_work() as s:
                rows = {
                    a.code: a
                    for a in s.execute(
                        select(LedgerAccount).where(LedgerAccount.person_id == self.fam.holder_id)
                    ).scalars()
                }
                own = rows.get(personal_code(self.fam.holder_id))
                q = rows.get(quota_code(self.fam.link_id))
                assert (own.balance_fen if own else 0) == self.balance
                assert (q.balance_fen if q else 0) == self.quota
                # Nothing lost or doubled: credited = balance + quota + paid out.
                assert self.balance + self.quota + self.paid == self.credited
                if q is not None:
                    assert q.balance_fen - q.held_fen >= 0
                    assert self.held() <= q.held_fen
                assert reconcile(s) == []

    Quota.TestCase.settings = settings(
        max_examples=examples(20),
        stateful_step_count=20,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    Quota.TestCase().runTest()
