"""The payment engine: a list of authorize / settle / void operations in one
transaction, with a fixed number of round trips whatever the list's length
(set-based reads, locks taken in one statement per table, bulk writes).

One phase per function, in this order, each reading what the ones before found:

1. :func:`_find_persons` — the persons named by authorizations (the ID-number
   look-up table, then their rows);
2. :func:`_used_references` — this institution's references already taken;
3. :func:`_lock_links` — the active mutual-aid links of the named pairs, ``FOR SHARE``;
4. :func:`_find_payments_to_resolve` — this institution's own payments to settle or void;
5. :func:`_lock_accounts` — the payers' accounts, ascending, ``FOR NO KEY UPDATE``;
6. :func:`_lock_payments` — the payments to resolve and the accounts' overdue holds;
7. :func:`_usage` — the yearly usage of the links with a limit (``formulas.yearly_usage``);
8. :func:`_probe_budget` — how many more bare-ID authorizations this institution may
   see refused this hour (``payments.probes``), and, when that may run out within
   this run, the pairs it was shown a voucher for;
9. :func:`_decide` — each operation in order against the in-memory state
   (``payments.rules``), overdue holds released first;
10. :func:`_shown` — which refused bare-ID authorizations were for a pair the
    institution was shown a voucher for (they keep their real refusal);
11. :func:`_flush` — every write in bulk;
12. :func:`_count_probes` — the refusals told MUTUAL_AID_UNAVAILABLE counted
    against the institution's hour and audited with their real reasons.

Locks follow the global order (``docs/ledger.md`` "Lock order"): links, accounts,
payments, the institution's probe counter, the audit head.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, Uuid, or_, select
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.family.models import FamilyLink, LinkStatus
from qinqing.identity import ric
from qinqing.kit import metrics
from qinqing.kit.errors import DomainError
from qinqing.kit.locking import locked
from qinqing.ledger.accounts import institution_code, system_account, transfer_rows
from qinqing.ledger.models import AccountKind, LedgerAccount, LedgerEntry, LedgerTransfer
from qinqing.payments import probes, rules
from qinqing.payments.bulk import any_of, insert_rows, pairs_in, update_by_key
from qinqing.payments.formulas import overdue_hold, yearly_usage
from qinqing.payments.models import Payment, PaymentKey, PaymentReference, PaymentStatus
from qinqing.payments.ops import MAX_BATCH, Authorize, Op, Outcome, Settle, Void, refused
from qinqing.persons.models import Person, PersonIdNumber
from qinqing.persons.service import ID_KIND
from qinqing.runtime import Runtime

PAY_KEY = {"holder_id": "uuid", "id": "uuid"}


@dataclass(slots=True)
class _Account:
    id: uuid.UUID
    person_id: uuid.UUID
    balance: int
    held: int
    dirty: bool = False


@dataclass(slots=True)
class _Pay:
    id: uuid.UUID
    account_id: uuid.UUID
    link_id: uuid.UUID
    holder_id: uuid.UUID
    member_id: uuid.UUID
    amount: int
    status: str
    expires_at: datetime
    settled: int | None = None
    dirty: bool = False


@dataclass(slots=True)
class _Writes:
    payments: list[dict[str, Any]] = field(default_factory=list)
    transfers: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _Run:
    """One execution's state: what the phases found, and each operation's outcome."""

    session: Session
    rt: Runtime
    principal: Principal
    ops: list[Op]
    now: datetime
    year: int
    out: list[Outcome | None]
    numbers: dict[int, tuple[str, str]] = field(default_factory=dict)
    persons: dict[str, Any] = field(default_factory=dict)
    used_refs: set[str] = field(default_factory=set)
    pairs: dict[int, tuple[Any, Any]] = field(default_factory=dict)
    links: dict[tuple[uuid.UUID, uuid.UUID], Any] = field(default_factory=dict)
    resolve_ids: dict[int, uuid.UUID] = field(default_factory=dict)
    holder_of: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    # The account each payment to resolve holds on (personal or a quota).
    account_of: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    accounts: dict[uuid.UUID, _Account] = field(default_factory=dict)
    by_person: dict[uuid.UUID, _Account] = field(default_factory=dict)
    # The 共济额度 of the locked holders' cross-region links, by link id.
    quota_of: dict[uuid.UUID, _Account] = field(default_factory=dict)
    institution_id: uuid.UUID | None = None
    pays: dict[uuid.UUID, _Pay] = field(default_factory=dict)
    usage: dict[uuid.UUID, int] = field(default_factory=dict)
    writes: _Writes = field(default_factory=_Writes)
    # Both persons found, visible to the institution or not (the voucher look-up).
    found: dict[int, tuple[Any, Any]] = field(default_factory=dict)
    # Bare-ID authorizations this institution may still see refused this hour (None:
    # none in this run), and when its window began.
    budget: int | None = None
    window_started: datetime | None = None
    # The pairs it was shown a voucher for, when known before deciding.
    shown: set[tuple[uuid.UUID, uuid.UUID]] | None = None
    # Refusals told UNAVAILABLE, by operation: counted and audited at the end.
    probed: dict[int, probes.Probe] = field(default_factory=dict)

    @property
    def me(self) -> str:
        return self.principal.id


def execute(session: Session, rt: Runtime, principal: Principal, ops: list[Op]) -> list[Outcome]:
    """Run ``ops`` in order in the caller's transaction; one outcome per operation.

    A refused operation changes nothing of its own; the others still apply.
    """
    if len(ops) > MAX_BATCH:
        raise DomainError("BATCH_TOO_LARGE", 422, max_operations=MAX_BATCH)
    now = rt.clock.now()
    run = _Run(session, rt, principal, ops, now, rules.local_year(now), [None] * len(ops))
    _find_persons(run)
    _used_references(run)
    _lock_links(run)
    _find_payments_to_resolve(run)
    _lock_accounts(run)
    _lock_payments(run)
    _usage(run)
    _probe_budget(run)
    _decide(run)
    _shown(run)
    _flush(run)
    _count_probes(run)
    outcomes = [o if o is not None else refused("PAYMENT_NOT_FOUND") for o in run.out]
    _count(session, ops, outcomes)
    return outcomes


def _count(session: Session, ops: list[Op], outcomes: list[Outcome]) -> None:
    """``qinqing_payments_total`` by operation and outcome, once the transaction commits."""
    decided = [
        (_OPERATION[type(op)], None if o.ok else o.code)
        for op, o in zip(ops, outcomes, strict=True)
    ]

    def count() -> None:
        for operation, outcome in decided:
            metrics.payment(operation, outcome)

    metrics.on_commit(session, count)


_OPERATION: dict[type, str] = {Authorize: "authorize", Settle: "settle", Void: "void"}


def _uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def numbers_of(op: Authorize, today: date) -> tuple[str, str]:
    """An authorization's two ID numbers, normalized, or its refusal before any look-up
    (raised): an amount that is not positive, then a number that does not parse."""
    if op.amount_fen <= 0:
        raise DomainError("AMOUNT_INVALID", 422)
    return (
        ric.parse(op.holder_id_number, today).number,
        ric.parse(op.member_id_number, today).number,
    )


def _find_persons(run: _Run) -> None:
    """1. Persons named by authorizations: the look-up table, then their rows."""
    today = run.now.date()
    for i, op in enumerate(run.ops):
        if isinstance(op, Authorize):
            try:
                run.numbers[i] = numbers_of(op, today)
            except DomainError as exc:
                run.out[i] = refused(exc.code)
    index = {run.rt.vault.index(ID_KIND, n): n for pair in run.numbers.values() for n in pair}
    if not index:
        return
    session = run.session
    person_of = dict(
        session.execute(
            select(PersonIdNumber.id_number_index, PersonIdNumber.person_id).where(
                any_of(session, PersonIdNumber.id_number_index, list(index), String())
            )
        ).all()
    )
    number_of = {pid: index[ix] for ix, pid in person_of.items()}
    if number_of:
        for prow in session.execute(
            select(Person.id, Person.region_code, Person.status, Person.scheme).where(
                any_of(session, Person.id, list(number_of), Uuid())
            )
        ):
            run.persons[number_of[prow.id]] = prow


def _used_references(run: _Run) -> None:
    """2. References already used by this institution (the look-up table)."""
    refs = {
        op.reference
        for i, op in enumerate(run.ops)
        if isinstance(op, Authorize) and i in run.numbers
    }
    if refs:
        run.used_refs = set(
            run.session.execute(
                select(PaymentReference.reference).where(
                    PaymentReference.client_id == run.me,
                    any_of(run.session, PaymentReference.reference, list(refs), String()),
                )
            ).scalars()
        )


def _lock_links(run: _Run) -> None:
    """3. Links between the named pairs, FOR SHARE (against concurrent unbinds)."""
    for i, (h, m) in run.numbers.items():
        holder, member = run.persons.get(h), run.persons.get(m)
        if holder is not None and member is not None:
            run.found[i] = (holder, member)
            # Neither party insured in the institution's region: nothing is locked,
            # and the answer is an unknown ID number's (``_authorize``).
            if run.principal.region_code in (holder.region_code, member.region_code):
                run.pairs[i] = (holder, member)
    if not run.pairs:
        return
    wanted = sorted({(h.id, m.id) for h, m in run.pairs.values()}, key=str)
    for lrow in locked(
        run.session,
        select(
            FamilyLink.id,
            FamilyLink.holder_id,
            FamilyLink.member_id,
            FamilyLink.region_code,
            FamilyLink.mutual_aid_yearly_limit_fen,
            FamilyLink.via_quota,
        )
        .where(
            FamilyLink.status == LinkStatus.active.value,
            FamilyLink.mutual_aid.is_(True),
        )
        .order_by(FamilyLink.holder_id, FamilyLink.id)
        .with_for_update(read=True),
        pairs_in(run.session, FamilyLink.holder_id, FamilyLink.member_id, wanted),
        [(FamilyLink.holder_id == h) & (FamilyLink.member_id == m) for h, m in wanted],
    ):
        run.links[(lrow.holder_id, lrow.member_id)] = lrow


def _find_payments_to_resolve(run: _Run) -> None:
    """4. Payments to resolve: only this institution's own, found through their key."""
    for i, op in enumerate(run.ops):
        if isinstance(op, Settle | Void):
            pid = _uuid(op.payment_id)
            if pid is None:
                run.out[i] = refused("PAYMENT_NOT_FOUND")
            else:
                run.resolve_ids[i] = pid
    if not run.resolve_ids:
        return
    run.holder_of = dict(
        run.session.execute(
            select(PaymentKey.payment_id, PaymentKey.holder_id).where(
                any_of(
                    run.session, PaymentKey.payment_id, list(set(run.resolve_ids.values())), Uuid()
                ),
                PaymentKey.client_id == run.me,
            )
        ).all()
    )
    for i, pid in run.resolve_ids.items():
        if pid not in run.holder_of:
            run.out[i] = refused("PAYMENT_NOT_FOUND")
    if run.holder_of:
        # The account a payment holds on never changes: read without a lock, so that
        # account can be locked before the payment (the global order).
        run.account_of = dict(
            run.session.execute(
                select(Payment.id, Payment.account_id).where(
                    pairs_in(
                        run.session,
                        Payment.holder_id,
                        Payment.id,
                        sorted({(h, pid) for pid, h in run.holder_of.items()}, key=str),
                    )
                )
            ).all()
        )


def _lock_accounts(run: _Run) -> None:
    """5. The payers' accounts — personal ones and the quotas of their cross-region
    links — locked in ascending (person, account) order. A holder without a personal
    account has nothing to pay with (INSUFFICIENT_BALANCE), a cross-region link
    without a quota neither (QUOTA_INSUFFICIENT). The
    institution's account is not touched: its side of a settlement is an entry
    appended here and added to its balance by the clearing step."""
    # Exactly the accounts the operations use, as the fast path locks them: an
    # authorization's payer account (a cross-region link's quota, else the holder's
    # personal account), and the account each payment to resolve holds on. In sets
    # (one statement for a batch of a thousand), each kind of account its own.
    personal: set[uuid.UUID] = set()
    quotas: set[tuple[uuid.UUID, uuid.UUID]] = set()
    for holder, member in run.pairs.values():
        lnk = run.links.get((holder.id, member.id))
        if lnk is not None and lnk.via_quota:
            quotas.add((holder.id, lnk.id))
        else:
            personal.add(holder.id)
    held_on = {
        (holder_id, run.account_of[pid])
        for pid, holder_id in run.holder_of.items()
        if pid in run.account_of
    }
    is_personal = LedgerAccount.kind == AccountKind.personal.value
    is_quota = LedgerAccount.kind == AccountKind.quota.value
    together: list[ColumnElement[bool]] = []
    if personal:
        together.append(
            any_of(run.session, LedgerAccount.person_id, sorted(personal, key=str), Uuid())
            & is_personal
        )
    if quotas:
        together.append(
            pairs_in(run.session, LedgerAccount.person_id, LedgerAccount.link_id, sorted(quotas))
            & is_quota
        )
    if held_on:
        together.append(
            pairs_in(run.session, LedgerAccount.person_id, LedgerAccount.id, sorted(held_on))
        )
    # Where locks go one owner at a time (Citus): one statement per holder, each in
    # account-id order — the global (person, account) order either way.
    by_holder: dict[uuid.UUID, list[ColumnElement[bool]]] = {}
    for h in personal:
        by_holder.setdefault(h, []).append((LedgerAccount.person_id == h) & is_personal)
    for h, link_id in quotas:
        by_holder.setdefault(h, []).append(
            (LedgerAccount.person_id == h) & (LedgerAccount.link_id == link_id) & is_quota
        )
    for h, account_id in held_on:
        by_holder.setdefault(h, []).append(
            (LedgerAccount.person_id == h) & (LedgerAccount.id == account_id)
        )
    rows = (
        locked(
            run.session,
            select(LedgerAccount)
            .order_by(LedgerAccount.person_id, LedgerAccount.id)
            .with_for_update(key_share=True),
            or_(*together),
            [or_(*by_holder[h]) for h in sorted(by_holder, key=str)],
        )
        if together
        else []
    )
    seen: set[uuid.UUID] = set()
    for (acct_row,) in rows:
        if acct_row.id in seen:
            continue
        seen.add(acct_row.id)
        acct = _Account(acct_row.id, acct_row.person_id, acct_row.balance_fen, acct_row.held_fen)
        run.accounts[acct.id] = acct
        if acct_row.kind == AccountKind.quota.value:
            assert acct_row.link_id is not None
            run.quota_of[acct_row.link_id] = acct
        else:
            run.by_person[acct.person_id] = acct
    if any(isinstance(run.ops[i], Settle) and run.out[i] is None for i in run.resolve_ids):
        run.institution_id = system_account(
            run.session,
            code=institution_code(run.me),
            kind=AccountKind.institution,
            region_code=run.principal.region_code or "",
            now=run.now,
        )


def _lock_payments(run: _Run) -> None:
    """6. Lock the payments to resolve and the overdue holds of the locked accounts
    (skipping those another transaction holds)."""
    # Only accounts that hold something can have an overdue hold to release, and only
    # the locked accounts' holds are released (the fast path does the same).
    holding_accounts = sorted(
        ((a.person_id, a.id) for a in run.accounts.values() if a.held > 0), key=str
    )
    holding = sorted({h for h, _ in holding_accounts}, key=str)
    to_lock = sorted({(h, pid) for pid, h in run.holder_of.items()}, key=str)
    if to_lock or holding:
        together: list[ColumnElement[bool]] = []
        one_by_one: list[ColumnElement[bool]] = [
            (Payment.holder_id == h) & (Payment.id == pid) for h, pid in to_lock
        ]
        if to_lock:
            together.append(pairs_in(run.session, Payment.holder_id, Payment.id, to_lock))
        if holding:
            overdue = overdue_hold(run.now)
            together.append(
                pairs_in(run.session, Payment.holder_id, Payment.account_id, holding_accounts)
                & overdue
            )
            one_by_one.extend(
                (Payment.holder_id == h) & (Payment.account_id == a) & overdue
                for h, a in holding_accounts
            )
        for payrow in locked(
            run.session,
            select(
                Payment.id,
                Payment.account_id,
                Payment.link_id,
                Payment.holder_id,
                Payment.member_id,
                Payment.amount_fen,
                Payment.status,
                Payment.expires_at,
                Payment.settled_fen,
            )
            .order_by(Payment.holder_id, Payment.id)
            .with_for_update(key_share=True, skip_locked=bool(holding)),
            or_(*together),
            one_by_one,
        ):
            if payrow.id not in run.pays:
                run.pays[payrow.id] = _Pay(
                    payrow.id,
                    payrow.account_id,
                    payrow.link_id,
                    payrow.holder_id,
                    payrow.member_id,
                    payrow.amount_fen,
                    payrow.status,
                    payrow.expires_at,
                    payrow.settled_fen,
                )
    # Skipped (locked elsewhere) payments we must resolve: the other transaction has them.
    for i, pid in run.resolve_ids.items():
        if run.out[i] is None and pid not in run.pays:
            run.out[i] = refused("PAYMENT_ALREADY_RESOLVED")


def _usage(run: _Run) -> None:
    """7. Yearly usage of the links that have a limit (settled payments and open holds)."""
    run.usage = yearly_usage(
        run.session,
        [
            (lnk.holder_id, lnk.id)
            for lnk in run.links.values()
            if lnk.mutual_aid_yearly_limit_fen is not None
        ],
        run.year,
        run.now,
    )


def _bare(op: Op) -> bool:
    return isinstance(op, Authorize) and not op.by_voucher


def _probe_budget(run: _Run) -> None:
    """8. How many more bare-ID authorizations the institution may see refused this
    hour (read without a lock). When this run could use it up, the pairs it was
    shown a voucher for are read now, so each refusal is known to count or not as
    it is decided; otherwise only the refused ones are looked up, afterwards."""
    bare = [i for i in run.numbers if _bare(run.ops[i])]
    if not bare:
        return
    failures, run.window_started = probes.window(run.session, run.me, run.now)
    run.budget = max(0, run.rt.settings.authorize_failures_per_hour - failures)
    if 0 < run.budget < len(bare):
        run.shown = run.rt.shown_vouchers(
            run.session,
            run.me,
            [(h.id, m.id) for i, (h, m) in run.found.items() if i in bare],
            probes.shown_since(run.rt, run.now),
        )


def _release(run: _Run, p: _Pay, status: str) -> None:
    """An open hold ends (settled, voided): its account and its link's usage let go."""
    held_acct = run.accounts[p.account_id]
    held_acct.held -= p.amount
    held_acct.dirty = True
    if p.link_id in run.usage:
        run.usage[p.link_id] -= p.amount
    p.status, p.dirty = status, True


def _expire(run: _Run, p: _Pay) -> None:
    """An overdue hold is released for good (it no longer counted toward the limit)."""
    held_acct = run.accounts[p.account_id]
    held_acct.held -= p.amount
    held_acct.dirty = True
    p.status, p.dirty = PaymentStatus.expired.value, True


def _decide(run: _Run) -> None:
    """8. Decide each operation in order against the in-memory state."""
    # Overdue holds are released first (they may be stale for unrelated operations).
    for p in run.pays.values():
        if p.status == PaymentStatus.authorized.value and p.expires_at <= run.now:
            _expire(run, p)
    batch_refs: set[str] = set()
    for i, op in enumerate(run.ops):
        if run.out[i] is not None:
            continue
        if isinstance(op, Authorize):
            run.out[i] = _authorize(run, i, op, batch_refs)
        elif isinstance(op, Settle):
            run.out[i] = _settle(run, run.pays[run.resolve_ids[i]], op)
        else:
            run.out[i] = _void(run, run.pays[run.resolve_ids[i]])


def _authorize(run: _Run, i: int, op: Authorize, batch_refs: set[str]) -> Outcome:
    # The request's own mistakes first: they say nothing about the persons.
    if op.reference in run.used_refs or op.reference in batch_refs:
        return refused("PAYMENT_REFERENCE_EXISTS")
    if _bare(op) and run.budget is not None and run.budget <= 0:
        assert run.window_started is not None
        return refused(rules.THROTTLED, retry_after=rules.probe_wait(run.window_started, run.now))
    if i not in run.pairs:
        # Unknown, or nobody insured in the institution's region: one answer.
        return _refusal(run, i, op, "PERSON_NOT_FOUND", None)
    holder, member = run.pairs[i]
    link = run.links.get((holder.id, member.id))
    # A party of another region is visible only through an active mutual-aid link
    # to the one in the region; without it, the answer is the unknown number's.
    both_here = holder.region_code == member.region_code == run.principal.region_code
    if link is None and not both_here:
        return _refusal(run, i, op, "PERSON_NOT_FOUND", None)
    via_quota = link is not None and bool(link.via_quota)
    payer_acct = (
        run.quota_of.get(link.id)
        if link is not None and via_quota
        else run.by_person.get(holder.id)
    )
    facts = rules.AuthorizeFacts(
        link_active_mutual_aid=link is not None,
        via_quota=via_quota,
        holder_status=holder.status,
        holder_scheme=holder.scheme,
        available_fen=payer_acct.balance - payer_acct.held if payer_acct else 0,
        amount_fen=op.amount_fen,
        yearly_limit_fen=link.mutual_aid_yearly_limit_fen if link else None,
        used_this_year_fen=run.usage.get(link.id, 0) if link else 0,
    )
    if code := rules.authorize_refusal(facts):
        return _refusal(run, i, op, code, link)
    assert link is not None and payer_acct is not None
    hours = run.rt.policies.policy(link.region_code).hold_expiry_hours
    pid = uuid.uuid4()
    expires = run.now + timedelta(hours=hours)
    run.writes.payments.append(
        {
            "id": pid,
            "client_id": run.me,
            "reference": op.reference,
            "link_id": link.id,
            "holder_id": holder.id,
            "member_id": member.id,
            "account_id": payer_acct.id,
            "amount_fen": op.amount_fen,
            "settled_fen": None,
            "status": PaymentStatus.authorized.value,
            "year": run.year,
            "created_at": run.now,
            "expires_at": expires,
            "resolved_at": None,
        }
    )
    payer_acct.held += op.amount_fen
    payer_acct.dirty = True
    if link.id in run.usage:
        run.usage[link.id] += op.amount_fen
    batch_refs.add(op.reference)
    return Outcome(True, None, pid, PaymentStatus.authorized.value, op.amount_fen, None, 0, expires)


def _refusal(run: _Run, i: int, op: Authorize, code: str, link: Any) -> Outcome:
    """A refused authorization as the institution is told it: a refusal about the
    persons, by bare ID numbers, is UNAVAILABLE unless the institution was shown a
    voucher for the pair (decided here when known, else by :func:`_shown`)."""
    if not rules.collapses(code, shown=op.by_voucher):
        return refused(code)
    pair = run.found.get(i)
    if run.shown is not None:
        if pair is not None and (pair[0].id, pair[1].id) in run.shown:
            return refused(code)
        assert run.budget is not None
        run.budget -= 1
    holder, member = (run.persons.get(n) for n in run.numbers[i])
    run.probed[i] = probes.Probe(
        code,
        holder.id if holder is not None else None,
        member.id if member is not None else None,
        link.id if link is not None else None,
    )
    return refused(rules.UNAVAILABLE, detail=code)


def _settle(run: _Run, p: _Pay, op: Settle) -> Outcome:
    code = rules.settle_refusal(p.status, p.amount, op.amount_fen)
    if code:
        return refused(code)
    payer = run.accounts[p.account_id]
    assert run.institution_id is not None
    _release(run, p, PaymentStatus.settled.value)
    p.settled = op.amount_fen
    if p.link_id in run.usage:
        run.usage[p.link_id] += op.amount_fen
    _post(run, payer, run.institution_id, op.amount_fen, p.id)
    return Outcome(
        True, None, p.id, p.status, p.amount, p.settled, p.amount - op.amount_fen, p.expires_at
    )


def _void(run: _Run, p: _Pay) -> Outcome:
    code = rules.void_refusal(p.status)
    if code:
        return refused(code)
    _release(run, p, PaymentStatus.voided.value)
    return Outcome(True, None, p.id, p.status, p.amount, None, p.amount, p.expires_at)


def _post(
    run: _Run, payer: _Account, institution_id: uuid.UUID, amount: int, payment_id: uuid.UUID
) -> None:
    transfer, entries = transfer_rows(
        person_id=payer.person_id,
        debit_id=payer.id,
        credit_id=institution_id,
        amount_fen=amount,
        kind="payment",
        at=run.now,
        payment_id=payment_id,
    )
    run.writes.transfers.append(transfer)
    run.writes.entries.extend(entries)
    payer.balance -= amount
    payer.dirty = True


def _shown(run: _Run) -> None:
    """10. Refusals told UNAVAILABLE before the vouchers were looked up: those for a
    pair the institution was shown a voucher for get their real code back."""
    if run.shown is not None or not run.probed:
        return
    pairs = {
        i: (p.holder_id, p.member_id)
        for i, p in run.probed.items()
        if p.holder_id is not None and p.member_id is not None
    }
    if not pairs:
        return
    shown = run.rt.shown_vouchers(
        run.session, run.me, list(pairs.values()), probes.shown_since(run.rt, run.now)
    )
    for i, pair in pairs.items():
        if pair in shown:
            run.out[i] = refused(run.probed.pop(i).code)


def _flush(run: _Run) -> None:
    """11. Write everything in bulk."""
    session, writes = run.session, run.writes
    # The look-up rows first: a reference taken meanwhile fails here, before the rest.
    insert_rows(
        session,
        PaymentReference,
        [
            {
                "client_id": w["client_id"],
                "reference": w["reference"],
                "holder_id": w["holder_id"],
                "payment_id": w["id"],
            }
            for w in writes.payments
        ],
    )
    insert_rows(
        session,
        PaymentKey,
        [
            {"payment_id": w["id"], "holder_id": w["holder_id"], "client_id": w["client_id"]}
            for w in writes.payments
        ],
    )
    insert_rows(session, Payment, writes.payments)
    update_by_key(
        session,
        Payment,
        [
            {
                "holder_id": p.holder_id,
                "id": p.id,
                "status": p.status,
                "settled_fen": p.settled,
                "resolved_at": run.now,
            }
            for p in run.pays.values()
            if p.dirty
        ],
        PAY_KEY,
        {"status": "text", "settled_fen": "bigint", "resolved_at": "timestamptz"},
    )
    insert_rows(session, LedgerTransfer, writes.transfers)
    insert_rows(session, LedgerEntry, writes.entries)
    update_by_key(
        session,
        LedgerAccount,
        [
            {"person_id": a.person_id, "id": a.id, "balance_fen": a.balance, "held_fen": a.held}
            for a in run.accounts.values()
            if a.dirty
        ],
        {"person_id": "uuid", "id": "uuid"},
        {"balance_fen": "bigint", "held_fen": "bigint"},
    )


def _count_probes(run: _Run) -> None:
    """12. Count the refusals told UNAVAILABLE against the institution's hour (its
    counter locked after the payments), and audit each with its real reason."""
    if not run.probed:
        return
    found = [run.probed[i] for i in sorted(run.probed)]
    failures = probes.count(run.session, run.rt, run.me, len(found), run.now)
    probes.audit_probes(run.session, run.rt, run.principal, found, failures, run.now)
