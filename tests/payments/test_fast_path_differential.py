"""The fast path's SQL decides as the ORM engine does.

The same random sequences of authorize / settle / void / funding / time
passing run through :func:`qinqing.payments.service.execute` (which asks
``payments/rules.py``) in one world and through the server-side functions of
``fast_path.sql`` in an identical second world. Every step must give the same
outcome (refusal code, status, amounts, expiry, a throttled call's wait) and
write the same audit entries for the refusals told MUTUAL_AID_UNAVAILABLE (their
real reasons and counts), and at the end every holder's balance and held amount,
every payment's state and the institutions' probe counters must be the same, and
the ledger must reconcile. The sequences include unknown ID numbers, a family
insured in another region, family vouchers the institution was shown (the real
reasons), a low probe limit (AUTHORIZE_RATE_LIMITED), and a family across regions
whose payments hold and settle on its 共济额度 (QUOTA_INSUFFICIENT), topped up
along the way.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from qinqing.access.principal import Principal
from qinqing.accounting.reconcile import reconcile
from qinqing.audit.models import AuditEntry
from qinqing.auth.models import AccessToken, LoginThrottle
from qinqing.auth.verification import FaceVerification, simulated_face_token
from qinqing.kit.clock import FrozenClock
from qinqing.kit.errors import DomainError
from qinqing.ledger.models import LedgerAccount
from qinqing.payments import fast_batch
from qinqing.payments import service as payments
from qinqing.payments.fast import FastPath
from qinqing.payments.models import Payment
from qinqing.quota import service as quota
from qinqing.runtime import Runtime
from qinqing.vouchers import service as vouchers
from qinqing.vouchers import tokens as vouchers_tokens
from qinqing.vouchers.models import Voucher, VoucherToken
from support.accounts import id_number
from support.banks import person_principal
from support.ledger import Family, fund, make_family, through_fast, token_principal
from support.profiles import examples

# (yearly limit, mutual aid, holder scheme): a limited link, an unlimited one, a
# link without mutual aid, and a resident holder (who may not pay for others).
SHAPES = [
    (20_000, True, "employee"),
    (None, True, "employee"),
    (None, False, "employee"),
    (None, True, "resident"),
]

FAR = "440100"  # the region of one more family: neither party insured where the institution is
UNKNOWN = id_number(area="150602", born=date(1940, 1, 1), seq=321)
PROBE_LIMIT = 4  # refusals told MUTUAL_AID_UNAVAILABLE per hour before the 429s

amount = st.one_of(st.integers(1, 25_000), st.integers(1, 25_000), st.integers(-2, 0))
# Mostly the two families whose links allow payments.
payer = st.one_of(st.integers(0, 1), st.integers(0, 1), st.integers(0, len(SHAPES) - 1))
# What an institution sends: one operation.
op_step = st.one_of(
    st.tuples(st.just("authorize"), payer, amount, st.integers(0, 6)),
    st.tuples(st.just("authorize"), payer, amount, st.just(0)),
    # holder of one family, member of another: no link between them
    st.tuples(st.just("cross"), st.integers(0, len(SHAPES) - 1), amount, st.just(0)),
    st.tuples(st.just("settle"), st.integers(0, 3), amount, st.just(0)),
    st.tuples(st.just("settle"), st.integers(0, 1), amount, st.just(0)),
    st.tuples(st.just("void"), st.integers(0, 4), st.just(0), st.just(0)),
    # a member whose ID number nobody has; the family of another region
    st.tuples(st.just("unknown"), payer, amount, st.just(0)),
    st.tuples(st.just("far"), st.just(0), amount, st.just(0)),
    # the family across regions: a payment from its quota
    st.tuples(st.just("quota"), st.just(0), amount, st.integers(0, 6)),
)
# What happens around the institution's calls.
world_step = st.one_of(
    st.tuples(st.just("fund"), payer, st.integers(1, 30_000), st.just(0)),
    st.tuples(st.just("time"), st.integers(1, 80), st.just(0), st.just(0)),
    # the holder of a family (len(SHAPES): the far one) shows the institution a voucher
    st.tuples(st.just("show"), st.integers(0, len(SHAPES)), st.just(0), st.just(0)),
    # money into the quota of the family across regions
    st.tuples(st.just("top_up"), st.just(0), st.integers(1, 15_000), st.just(0)),
)
step = st.one_of(op_step, world_step)
# In a batch also what the engine refuses before any look-up: an ID number that
# does not parse, a payment id that is no UUID.
batch_op = st.one_of(
    op_step,
    st.tuples(st.just("malformed"), payer, amount, st.just(0)),
    st.tuples(st.just("no_uuid"), st.just(0), st.just(0), st.just(0)),
)
# A settlement run: settles and voids only (decided as a set by the batch function),
# the same payment now and then twice.
resolve_op = st.one_of(
    st.tuples(st.just("settle"), st.integers(0, 3), amount, st.just(0)),
    st.tuples(st.just("settle"), st.integers(0, 1), amount, st.just(0)),
    st.tuples(st.just("void"), st.integers(0, 4), st.just(0), st.just(0)),
    st.tuples(st.just("no_uuid"), st.just(0), st.just(0), st.just(0)),
)
# Authorizations only (decided as a set by the batch function): references reused,
# families across regions and on a quota, unknown and malformed ID numbers.
authorize_op = st.one_of(
    st.tuples(st.just("authorize"), payer, amount, st.integers(0, 6)),
    st.tuples(st.just("authorize"), payer, amount, st.just(0)),
    st.tuples(st.just("cross"), st.integers(0, len(SHAPES) - 1), amount, st.just(0)),
    st.tuples(st.just("unknown"), payer, amount, st.just(0)),
    st.tuples(st.just("far"), st.just(0), amount, st.just(0)),
    st.tuples(st.just("quota"), st.just(0), amount, st.integers(0, 6)),
    st.tuples(st.just("malformed"), payer, amount, st.just(0)),
)
batch_step = st.one_of(
    world_step,
    st.lists(batch_op, min_size=1, max_size=8),
    st.lists(resolve_op, min_size=1, max_size=6),
    st.lists(authorize_op, min_size=1, max_size=10),
)


@dataclass
class World:
    families: list[Family]
    payments: list[uuid.UUID]
    far: Family
    quota: Family  # holder here, member in FAR: mutual aid through a quota


def _top_up(rt: Runtime, fam: Family, amount: int) -> str | None:
    """Money into the family's quota (as the holder would, with a face check); the
    refusal's code, if any."""
    face = FaceVerification(method="face", face_token=simulated_face_token(fam.holder_id))
    try:
        with rt.db.unit_of_work() as s:
            quota.top_up(s, rt, person_principal(fam.holder_id), fam.link_id, amount, face)
    except DomainError as exc:
        return exc.code
    return None


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
    n = next(seq)
    far = make_family(
        rt, seq=n % 400 + 1, born=date(1950, 1, 1) + timedelta(days=n), region=FAR, area="440106"
    )
    fund(rt, far.holder_id, 30_000, region=FAR)
    n = next(seq)
    across = make_family(
        rt,
        seq=n % 400 + 1,
        born=date(1950, 1, 1) + timedelta(days=n),
        member_region=FAR,
        member_area="440106",
    )
    fund(rt, across.holder_id, 30_000)
    assert _top_up(rt, across, 12_000) is None
    return World(fams, [], far, across)


def _op(world: World, s: tuple[str, int, int, int], ref: str) -> payments.Op:
    kind, a, n, _ = s
    if kind == "no_uuid":
        return payments.Void("no-such-payment")
    if kind in ("settle", "void"):
        # The a-th most recent authorization, or (rarely) none at all.
        pid = world.payments[-1 - a] if a < len(world.payments) else uuid.UUID(int=a + 1)
        return payments.Settle(str(pid), n) if kind == "settle" else payments.Void(str(pid))
    if kind == "far":
        return payments.Authorize(world.far.holder_number, world.far.member_number, n, ref)
    if kind == "quota":
        return payments.Authorize(world.quota.holder_number, world.quota.member_number, n, ref)
    fam = world.families[a]
    if kind == "unknown":
        return payments.Authorize(fam.holder_number, UNKNOWN, n, ref)
    if kind == "malformed":
        return payments.Authorize(fam.holder_number, "11010519491231002", n, ref)
    member = world.families[(a + 1) % len(SHAPES)] if kind == "cross" else fam
    return payments.Authorize(fam.holder_number, member.member_number, n, ref)


def _show(rt: Runtime, world: World, a: int, institution: Principal) -> None:
    """The family's holder showed the institution the member's voucher (it redeemed it)."""
    fam, region = (world.far, FAR) if a == len(SHAPES) else (world.families[a], "150600")
    now = rt.clock.now()
    with rt.db.unit_of_work() as s:
        s.add(
            Voucher(
                person_id=fam.holder_id,
                id=uuid.uuid4(),
                subject_id=fam.member_id,
                link_id=fam.link_id,
                region_code=region,
                channel="app",
                created_at=now,
                expires_at=now + timedelta(seconds=60),
                claimed_by=institution.id,
                claimed_at=now,
            )
        )


def _probes(rt: Runtime, institution: Principal) -> list[tuple[Any, ...]]:
    """The institution's probe audit entries (which rows they name, not their ids)."""
    with rt.db.unit_of_work() as s:
        rows = s.execute(
            select(AuditEntry.action, AuditEntry.at, AuditEntry.details)
            .where(AuditEntry.actor_id == institution.id)
            .order_by(AuditEntry.seq)
        ).all()
    return [
        (
            action,
            at,
            d.get("code"),
            d.get("failures"),
            d.get("limit"),
            *(d.get(k) is None for k in ("holder_id", "member_id", "link_id")),
        )
        for action, at, d in rows
    ]


def _counter(rt: Runtime, institution: Principal) -> tuple[Any, ...] | None:
    with rt.db.unit_of_work() as s:
        row = s.get(LoginThrottle, f"probe:{institution.id}")
        if row is None:
            return None
        return (row.failures, row.window_started_at, row.locked_until, row.last_failure_at)


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
        outcome.retry_after,
    )


def _state(rt: Runtime, world: World) -> list[Any]:
    with rt.db.unit_of_work() as s:
        out: list[Any] = []
        for fam in [*world.families, world.far, world.quota]:
            # The personal account, then the quota if the family has one.
            acct = s.execute(
                select(LedgerAccount.kind, LedgerAccount.balance_fen, LedgerAccount.held_fen)
                .where(LedgerAccount.person_id == fam.holder_id)
                .order_by(LedgerAccount.kind)
            ).all()
            pays = s.execute(
                select(Payment.status, Payment.amount_fen, Payment.settled_fen)
                .where(Payment.holder_id == fam.holder_id)
                .order_by(Payment.created_at, Payment.amount_fen, Payment.status)
            ).all()
            out.append((tuple(tuple(a) for a in acct), sorted(tuple(p) for p in pays)))
        return out


@pytest.fixture
def fast(rt: Runtime) -> FastPath:
    path = FastPath.for_runtime(rt)
    if path is None:
        pytest.skip(
            "the payment fast path runs on PostgreSQL only (SQLite has no stored functions)"
        )
    return path


@pytest.fixture
def one_loop(fast: FastPath) -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for all of a test's examples: the fast path's pool, and the
    connections whose sessions have compiled its functions, last the whole test, as a
    serving process's do (a loop per example opened and compiled them again each time)."""
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.run_until_complete(fast.close())
        loop.close()


def _institutions(rt: Runtime, client: TestClient, clock: FrozenClock) -> list[Principal]:
    """Two institutions, one per world, each with a token (the SQL checks it) that
    outlives the example's clock: the ORM engine is not the one checking tokens."""
    out = []
    for _ in range(2):
        p = token_principal(rt, client)
        with rt.db.unit_of_work() as s:
            s.execute(
                update(AccessToken)
                .where(AccessToken.token_hash == p.token_hash)
                .values(expires_at=clock.now() + timedelta(days=365))
            )
        out.append(p)
    return out


def _start(
    rt: Runtime,
    client: TestClient,
    clock: FrozenClock,
    seq: itertools.count[int],
    refs: itertools.count[int],
    prefix: str,
) -> tuple[World, World, list[Principal], list[str]]:
    """An example's start: two worlds alike (the engine's and the fast path's), an
    institution for each, and the references a step may use again."""
    a, b = _world(rt, seq), _world(rt, seq)
    return a, b, _institutions(rt, client, clock), [f"{prefix}{next(refs)}" for _ in range(7)]


def _in_both(
    rt: Runtime,
    clock: FrozenClock,
    worlds: tuple[World, World],
    insts: list[Principal],
    s: tuple[str, int, int, int],
) -> None:
    """A step that is not an institution's call, in both worlds alike."""
    a, b = worlds
    kind = s[0]
    if kind == "time":
        clock.advance(timedelta(hours=s[1]))
    elif kind == "fund":
        fund(rt, a.families[s[1]].holder_id, s[2])
        fund(rt, b.families[s[1]].holder_id, s[2])
    elif kind == "top_up":
        assert _top_up(rt, a.quota, s[2]) == _top_up(rt, b.quota, s[2]), s
    else:
        assert kind == "show"
        _show(rt, a, s[1], insts[0])
        _show(rt, b, s[1], insts[1])


def _ref(s: tuple[str, int, int, int], refs: itertools.count[int], reused: list[str]) -> str:
    """Reference 0 is always new; 1..6 may repeat one used before."""
    return f"N{next(refs)}" if s[3] == 0 else reused[s[3]]


# Every sequence starts with a hold on each paying family, so settles and voids
# have something to act on.
OPENING = [("authorize", 0, 5_000, 0), ("authorize", 1, 8_000, 0)]
SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def test_fast_path_decides_as_the_engine(
    rt: Runtime,
    clock: FrozenClock,
    client: TestClient,
    fast: FastPath,
    one_loop: asyncio.AbstractEventLoop,
) -> None:
    rt.settings.authorize_failures_per_hour = PROBE_LIMIT
    seq = itertools.count(1)
    refs = itertools.count(1)

    @settings(SETTINGS, max_examples=examples(80))
    @given(steps=st.lists(step, min_size=1, max_size=24))
    def run(steps: list[tuple[str, int, int, int]]) -> None:
        a, b, insts, reused = _start(rt, client, clock, seq, refs, "D")
        orm_inst, fast_inst = insts

        async def go() -> None:
            for s in [*OPENING, *steps]:
                if s[0] in ("time", "fund", "top_up", "show"):
                    _in_both(rt, clock, (a, b), insts, s)
                    continue
                ref = _ref(s, refs, reused)
                op_a, op_b = _op(a, s, ref), _op(b, s, ref)
                with rt.db.unit_of_work() as session:
                    got_a = payments.execute(session, rt, orm_inst, [op_a])[0]
                got_b = await through_fast(fast, fast_inst, op_b)
                assert _seen(a, got_a, op_a) == _seen(b, got_b, op_b), (s, got_a, got_b)
                if not (got_a.ok and got_b.ok):  # a refusal may be audited
                    assert _probes(rt, orm_inst) == _probes(rt, fast_inst), s

        one_loop.run_until_complete(go())
        assert _state(rt, a) == _state(rt, b)
        assert _counter(rt, orm_inst) == _counter(rt, fast_inst)

    run()
    with rt.db.unit_of_work() as s:
        assert reconcile(s) == []


def test_fast_batches_decide_as_the_engine(
    rt: Runtime,
    clock: FrozenClock,
    client: TestClient,
    fast: FastPath,
    one_loop: asyncio.AbstractEventLoop,
) -> None:
    """The same, a few operations at a time: a batch of the engine
    (``payments.execute`` with the list) against one call of
    ``qinqing_payment_batch`` — each operation's outcome in order (a payment settled
    twice in one batch, a reference used twice, the probe limit reached half-way),
    the audit entries of the probes, and the state after. Batches of settles and
    voids only and of authorizations only, which the function decides as sets, come
    often."""
    # Lower than the single calls' limit: a few batches reach it, often half-way.
    rt.settings.authorize_failures_per_hour = 2
    seq = itertools.count(1)
    refs = itertools.count(1)

    def answer(outs: list[payments.Outcome]) -> tuple[int, Any]:
        return 200, outs

    @settings(SETTINGS, max_examples=examples(40))
    @given(steps=st.lists(batch_step, min_size=1, max_size=8))
    def run(steps: list[Any]) -> None:
        a, b, insts, reused = _start(rt, client, clock, seq, refs, "D")
        orm_inst, fast_inst = insts

        async def go() -> None:
            # The family without mutual aid has shown its voucher: its refusals
            # keep their real reason, the others' are probes.
            for s in [("show", 2, 0, 0), OPENING, *steps]:
                if isinstance(s, tuple):
                    _in_both(rt, clock, (a, b), insts, s)
                    continue
                refs_of = [_ref(o, refs, reused) for o in s]
                ops_a = [_op(a, o, r) for o, r in zip(s, refs_of, strict=True)]
                ops_b = [_op(b, o, r) for o, r in zip(s, refs_of, strict=True)]
                with rt.db.unit_of_work() as session:
                    got_a = payments.execute(session, rt, orm_inst, ops_a)
                reply = await fast_batch.run(fast, fast_inst, ops_b, None, answer)
                got_b = reply.body
                assert len(got_b) == len(ops_b)
                seen_a = [_seen(a, g, o) for g, o in zip(got_a, ops_a, strict=True)]
                seen_b = [_seen(b, g, o) for g, o in zip(got_b, ops_b, strict=True)]
                assert seen_a == seen_b, (s, got_a, got_b)
                assert _probes(rt, orm_inst) == _probes(rt, fast_inst), s
                # Holds released on the way (overdue ones) show in the state only.
                assert _state(rt, a) == _state(rt, b), s

        one_loop.run_until_complete(go())
        assert _state(rt, a) == _state(rt, b)
        assert _counter(rt, orm_inst) == _counter(rt, fast_inst)

    run()
    with rt.db.unit_of_work() as s:
        assert reconcile(s) == []


# Paying by a family e-voucher. A holder shows a voucher: of a family here
# (0..len(SHAPES)-1), of the family of another region (len(SHAPES)), or of the
# family across regions that pays from its quota (len(SHAPES) + 1); fresh, claimed
# by this institution, claimed by the other one, a person's own (no link), or
# about to expire.
FRESH, OURS, THEIRS, OWN, SHORT = range(5)
voucher_issue = st.tuples(
    st.just("issue"), st.integers(0, len(SHAPES) + 1), st.integers(0, 4), st.just(0)
)
# Pay with the a-th most recent voucher (a token nobody signed when there is none).
voucher_pay = st.tuples(st.just("pay"), st.integers(0, 3), amount, st.integers(0, 6))
voucher_step = st.one_of(
    voucher_issue,
    voucher_pay,
    voucher_pay,
    st.tuples(st.just("fund"), payer, st.integers(1, 30_000), st.just(0)),
    st.tuples(st.just("seconds"), st.integers(1, 90), st.just(0), st.just(0)),
)


def _issue(
    rt: Runtime, world: World, a: int, how: int, own: Principal, other: Principal
) -> tuple[str, tuple[uuid.UUID, uuid.UUID]]:
    """A voucher the family's holder shows, as ``vouchers.issue`` stores one; its
    token and its key."""
    fam = world.far if a == len(SHAPES) else world.quota if a > len(SHAPES) else world.families[a]
    now = rt.clock.now()
    token, token_hash = vouchers_tokens.new_token(rt.vault)
    vid = uuid.uuid4()
    claimed = {OURS: own.id, THEIRS: other.id}.get(how)
    with rt.db.unit_of_work() as s:
        s.add(
            Voucher(
                person_id=fam.holder_id,
                id=vid,
                subject_id=fam.holder_id if how == OWN else fam.member_id,
                link_id=None if how == OWN else fam.link_id,
                region_code=FAR if a == len(SHAPES) else "150600",
                channel="app",
                created_at=now,
                expires_at=now + timedelta(seconds=20 if how == SHORT else 300),
                claimed_by=claimed,
                claimed_at=now if claimed else None,
            )
        )
        s.add(
            VoucherToken(
                token_hash=token_hash,
                person_id=fam.holder_id,
                voucher_id=vid,
                expires_at=now + timedelta(seconds=300),
            )
        )
    return token, (fam.holder_id, vid)


def _voucher_state(
    rt: Runtime, keys: list[tuple[uuid.UUID, uuid.UUID]], own: Principal
) -> list[tuple[Any, ...]]:
    """Each voucher: used when, paid for or not, claimed by whom (this world's
    institution or another), since when."""
    with rt.db.unit_of_work() as s:
        out = []
        for holder, vid in keys:
            v = s.get(Voucher, (holder, vid))
            assert v is not None
            who = None if v.claimed_by is None else v.claimed_by == own.id
            out.append((v.used_at, v.payment_id is not None, who, v.claimed_at))
        return out


def test_fast_vouchers_decide_as_the_engine(
    rt: Runtime,
    clock: FrozenClock,
    client: TestClient,
    fast: FastPath,
    one_loop: asyncio.AbstractEventLoop,
) -> None:
    """Authorizations by family e-voucher: ``vouchers.execute`` (which judges the
    voucher, then hands the engine the holder and member it names) against
    ``qinqing_payment_authorize_voucher``. Vouchers used twice, claimed by the other
    institution, a person's own, expired, of another region, of a family without
    mutual aid or with a resident holder (real reasons: a voucher shown is no
    probe), paying from a quota; each outcome, each voucher's state and the
    balances after must match, and the probe counters stay untouched."""
    seq = itertools.count(1)
    refs = itertools.count(1)

    @settings(SETTINGS, max_examples=examples(40))
    @given(steps=st.lists(voucher_step, min_size=1, max_size=16))
    def run(steps: list[tuple[str, int, int, int]]) -> None:
        a, b, insts, reused = _start(rt, client, clock, seq, refs, "V")
        orm_inst, fast_inst = insts
        shown_a: list[str] = []
        shown_b: list[str] = []
        keys_a: list[tuple[uuid.UUID, uuid.UUID]] = []
        keys_b: list[tuple[uuid.UUID, uuid.UUID]] = []

        async def go() -> None:
            for s in [("issue", 0, FRESH, 0), *steps]:
                kind = s[0]
                if kind == "seconds":
                    clock.advance(timedelta(seconds=s[1]))
                elif kind == "fund":
                    _in_both(rt, clock, (a, b), insts, s)
                elif kind == "issue":
                    tok, key = _issue(rt, a, s[1], s[2], orm_inst, fast_inst)
                    shown_a.append(tok)
                    keys_a.append(key)
                    tok, key = _issue(rt, b, s[1], s[2], fast_inst, orm_inst)
                    shown_b.append(tok)
                    keys_b.append(key)
                else:
                    ref = _ref(s, refs, reused)
                    k = s[1]
                    tok_a = shown_a[-1 - k] if k < len(shown_a) else "not.a-token"
                    tok_b = shown_b[-1 - k] if k < len(shown_b) else "not.a-token"
                    op_a = vouchers.VoucherAuthorize(tok_a, s[2], ref)
                    op_b = vouchers.VoucherAuthorize(tok_b, s[2], ref)
                    with rt.db.unit_of_work() as session:
                        got_a = vouchers.execute(session, rt, orm_inst, [op_a])[0]
                    got_b = await through_fast(fast, fast_inst, op_b)
                    seen_a = (got_a.ok, got_a.code, got_a.status, got_a.amount_fen)
                    seen_b = (got_b.ok, got_b.code, got_b.status, got_b.amount_fen)
                    assert seen_a == seen_b, (s, got_a, got_b)
                    assert got_a.expires_at == got_b.expires_at, s
                    assert _voucher_state(rt, keys_a, orm_inst) == _voucher_state(
                        rt, keys_b, fast_inst
                    ), s

        one_loop.run_until_complete(go())
        assert _state(rt, a) == _state(rt, b)
        assert _counter(rt, orm_inst) is None and _counter(rt, fast_inst) is None

    run()
    with rt.db.unit_of_work() as s:
        assert reconcile(s) == []
