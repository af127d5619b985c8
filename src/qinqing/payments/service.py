"""Mutual-aid payments by designated institutions (docs/guide.md §1 journey 4, §3.4):
authorize (a hold) → settle (the same or a smaller amount) or void, each exactly
once; holds expire after the region policy's ``hold_expiry_hours``.

One engine, :func:`execute`, runs a list of operations in one transaction with
a fixed number of round trips whatever the list's length (set-based reads,
locks taken in one statement per table, bulk writes). The single-operation
routes are a list of one, so the batch and the single calls cannot disagree.

Locks are taken in the global order (``docs/ledger.md`` "Lock order") —
family links (``FOR SHARE``), then ledger accounts (``FOR NO KEY UPDATE``,
ascending id), then payment rows — so these transactions cannot deadlock one
another or the other writers, and an authorization's ``FOR SHARE`` on the link
conflicts with an unbind's ``FOR NO KEY UPDATE``: the two never both succeed.
Two authorizations on one account serialize on its row lock, so they
cannot overdraw it. The payments table and the ledger's entries are the
append-only record of every money movement, which keeps the global audit chain
off this hot path (docs/guide.md §7: the audit chain is a serialization point).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, Uuid, case, func, or_, select
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.family.models import FamilyLink, LinkStatus
from qinqing.identity import ric
from qinqing.kit.errors import DomainError
from qinqing.kit.locking import locked
from qinqing.ledger.accounts import institution_code, lock_personal, system_account, transfer_rows
from qinqing.ledger.models import AccountKind, LedgerAccount, LedgerEntry, LedgerTransfer
from qinqing.payments import rules
from qinqing.payments.bulk import any_of, insert_rows, pairs_in, update_by_key
from qinqing.payments.models import Payment, PaymentKey, PaymentReference, PaymentStatus
from qinqing.persons.models import Person, PersonIdNumber
from qinqing.persons.service import ID_KIND
from qinqing.runtime import Runtime

MAX_BATCH = 1000
STATUS_OF = {
    "AMOUNT_INVALID": 422,
    "NO_MUTUAL_AID_LINK": 409,
    "HOLDER_NOT_EMPLOYEE": 409,
    "PAYER_NOT_ACTIVE": 409,
    "YEARLY_LIMIT_EXCEEDED": 409,
    "INSUFFICIENT_BALANCE": 409,
    "PAYMENT_ALREADY_RESOLVED": 409,
    "PAYMENT_EXPIRED": 409,
    "SETTLE_EXCEEDS_HOLD": 422,
    "PERSON_NOT_FOUND": 404,
    "PAYMENT_NOT_FOUND": 404,
    "PAYMENT_REFERENCE_EXISTS": 409,
}


# --- operations and outcomes -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Authorize:
    holder_id_number: str
    member_id_number: str
    amount_fen: int
    reference: str


@dataclass(frozen=True, slots=True)
class Settle:
    payment_id: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class Void:
    payment_id: str


Op = Authorize | Settle | Void


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    code: str | None = None
    payment_id: uuid.UUID | None = None
    status: str | None = None
    amount_fen: int | None = None
    settled_fen: int | None = None
    released_fen: int = 0
    expires_at: datetime | None = None

    def raise_if_refused(self, *, commit: bool) -> Outcome:
        if not self.ok:
            assert self.code is not None
            # commit: a hold found overdue while refusing is released for good.
            raise DomainError(self.code, STATUS_OF.get(self.code, 409), commit=commit)
        return self


def _refused(code: str) -> Outcome:
    return Outcome(ok=False, code=code)


# --- in-memory state of one execution ----------------------------------------


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


def _uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def execute(session: Session, rt: Runtime, principal: Principal, ops: list[Op]) -> list[Outcome]:
    """Run ``ops`` in order in the caller's transaction; one outcome per operation.

    A refused operation changes nothing of its own; the others still apply.
    """
    if len(ops) > MAX_BATCH:
        raise DomainError("BATCH_TOO_LARGE", 422, max_operations=MAX_BATCH)
    now = rt.clock.now()
    today = now.date()
    year = rules.local_year(now)
    me = principal.id
    out: list[Outcome | None] = [None] * len(ops)

    # 1. Persons named by authorizations: the look-up table, then their rows.
    numbers: dict[int, tuple[str, str]] = {}
    for i, op in enumerate(ops):
        if isinstance(op, Authorize):
            if op.amount_fen <= 0:
                out[i] = _refused("AMOUNT_INVALID")
                continue
            try:
                h = ric.parse(op.holder_id_number, today).number
                m = ric.parse(op.member_id_number, today).number
            except DomainError as exc:
                out[i] = _refused(exc.code)
                continue
            numbers[i] = (h, m)
    index = {rt.vault.index(ID_KIND, n): n for pair in numbers.values() for n in pair}
    persons: dict[str, Any] = {}
    if index:
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
                persons[number_of[prow.id]] = prow

    # 2. References already used by this institution (the look-up table).
    refs = {op.reference for i, op in enumerate(ops) if isinstance(op, Authorize) and i in numbers}
    used_refs: set[str] = set()
    if refs:
        used_refs = set(
            session.execute(
                select(PaymentReference.reference).where(
                    PaymentReference.client_id == me,
                    any_of(session, PaymentReference.reference, list(refs), String()),
                )
            ).scalars()
        )

    # 3. Links between the named pairs, FOR SHARE (against concurrent unbinds).
    pairs: dict[int, tuple[Any, Any]] = {}
    for i, (h, m) in numbers.items():
        holder, member = persons.get(h), persons.get(m)
        # Neither party insured in the institution's region: the same answer as
        # an unknown ID number (no oracle of who is insured elsewhere).
        if (
            holder is None
            or member is None
            or principal.region_code not in (holder.region_code, member.region_code)
        ):
            out[i] = _refused("PERSON_NOT_FOUND")
        else:
            pairs[i] = (holder, member)
    links: dict[tuple[uuid.UUID, uuid.UUID], Any] = {}
    if pairs:
        wanted = sorted({(h.id, m.id) for h, m in pairs.values()}, key=str)
        for lrow in locked(
            session,
            select(
                FamilyLink.id,
                FamilyLink.holder_id,
                FamilyLink.member_id,
                FamilyLink.region_code,
                FamilyLink.mutual_aid_yearly_limit_fen,
            )
            .where(
                FamilyLink.status == LinkStatus.active.value,
                FamilyLink.mutual_aid.is_(True),
            )
            .order_by(FamilyLink.holder_id, FamilyLink.id)
            .with_for_update(read=True),
            pairs_in(session, FamilyLink.holder_id, FamilyLink.member_id, wanted),
            [(FamilyLink.holder_id == h) & (FamilyLink.member_id == m) for h, m in wanted],
        ):
            links[(lrow.holder_id, lrow.member_id)] = lrow

    # 4. Payments to resolve: only this institution's own, found through their key.
    resolve_ids: dict[int, uuid.UUID] = {}
    for i, op in enumerate(ops):
        if isinstance(op, Settle | Void):
            pid = _uuid(op.payment_id)
            if pid is None:
                out[i] = _refused("PAYMENT_NOT_FOUND")
            else:
                resolve_ids[i] = pid
    holder_of: dict[uuid.UUID, uuid.UUID] = {}
    if resolve_ids:
        holder_of = dict(
            session.execute(
                select(PaymentKey.payment_id, PaymentKey.holder_id).where(
                    any_of(session, PaymentKey.payment_id, list(set(resolve_ids.values())), Uuid()),
                    PaymentKey.client_id == me,
                )
            ).all()
        )
        for i, pid in resolve_ids.items():
            if pid not in holder_of:
                out[i] = _refused("PAYMENT_NOT_FOUND")

    # 5. The payers' accounts, locked in ascending person order. A holder without a
    #    personal account has nothing to pay with (INSUFFICIENT_BALANCE). The
    #    institution's account is not touched: its side of a settlement is an
    #    entry appended here and added to its balance by the clearing step.
    payers = {h.id for h, _ in pairs.values()} | set(holder_of.values())
    accounts: dict[uuid.UUID, _Account] = {}
    by_person: dict[uuid.UUID, _Account] = {}
    for acct_row in lock_personal(session, payers).values():
        acct = _Account(acct_row.id, acct_row.person_id, acct_row.balance_fen, acct_row.held_fen)
        accounts[acct.id] = acct
        by_person[acct.person_id] = acct
    need_institution = any(isinstance(ops[i], Settle) and out[i] is None for i in resolve_ids)
    institution_id = (
        system_account(
            session,
            code=institution_code(me),
            kind=AccountKind.institution,
            region_code=principal.region_code or "",
            now=now,
        )
        if need_institution
        else None
    )

    # 6. Lock the payments to resolve, then release overdue holds of the locked accounts.
    pays: dict[uuid.UUID, _Pay] = {}
    # Only accounts that hold something can have an overdue hold to release.
    holding = sorted((a.person_id for a in by_person.values() if a.held > 0), key=str)
    to_lock = sorted({(h, pid) for pid, h in holder_of.items()}, key=str)
    if to_lock or holding:
        together: list[ColumnElement[bool]] = []
        one_by_one: list[ColumnElement[bool]] = [
            (Payment.holder_id == h) & (Payment.id == pid) for h, pid in to_lock
        ]
        if to_lock:
            together.append(pairs_in(session, Payment.holder_id, Payment.id, to_lock))
        if holding:
            overdue = (Payment.status == PaymentStatus.authorized.value) & (
                Payment.expires_at <= now
            )
            together.append(any_of(session, Payment.holder_id, holding, Uuid()) & overdue)
            one_by_one.extend((Payment.holder_id == h) & overdue for h in holding)
        for payrow in locked(
            session,
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
            if payrow.id in pays:
                continue
            pays[payrow.id] = _Pay(
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
    for i, pid in resolve_ids.items():
        if out[i] is None and pid not in pays:
            out[i] = _refused("PAYMENT_ALREADY_RESOLVED")

    # 7. Yearly usage of the links that have a limit.
    usage: dict[uuid.UUID, int] = {}
    limited = [lnk.id for lnk in links.values() if lnk.mutual_aid_yearly_limit_fen is not None]
    limited_holders = sorted(
        {lnk.holder_id for lnk in links.values() if lnk.mutual_aid_yearly_limit_fen is not None},
        key=str,
    )
    if limited:
        usage = {lid: 0 for lid in limited}
        for lid, used in session.execute(
            select(
                Payment.link_id,
                func.coalesce(
                    func.sum(
                        case(
                            (Payment.status == PaymentStatus.settled.value, Payment.settled_fen),
                            else_=Payment.amount_fen,
                        )
                    ),
                    0,
                ),
            )
            .where(
                any_of(session, Payment.holder_id, limited_holders, Uuid()),
                any_of(session, Payment.link_id, limited, Uuid()),
                Payment.year == year,
                Payment.status.in_([PaymentStatus.authorized.value, PaymentStatus.settled.value]),
            )
            .group_by(Payment.link_id)
        ):
            usage[lid] = int(used)

    def release(p: _Pay, status: str) -> None:
        held_acct = accounts[p.account_id]
        held_acct.held -= p.amount
        held_acct.dirty = True
        if p.link_id in usage:
            usage[p.link_id] -= p.amount
        p.status, p.dirty = status, True

    # Overdue holds are released first (they may be stale for unrelated operations).
    for p in pays.values():
        if p.status == PaymentStatus.authorized.value and p.expires_at <= now:
            release(p, PaymentStatus.expired.value)

    # 8. Decide each operation in order against the in-memory state.
    writes = _Writes()
    batch_refs: set[str] = set()
    for i, op in enumerate(ops):
        if out[i] is not None:
            continue
        if isinstance(op, Authorize):
            holder, member = pairs[i]
            link = links.get((holder.id, member.id))
            # A party of another region is visible only through an active
            # mutual-aid link to the one in the region; without it, the answer is
            # the unknown number's, before anything else is looked at.
            both_here = holder.region_code == member.region_code == principal.region_code
            if link is None and not both_here:
                out[i] = _refused("PERSON_NOT_FOUND")
                continue
            if op.reference in used_refs or op.reference in batch_refs:
                out[i] = _refused("PAYMENT_REFERENCE_EXISTS")
                continue
            payer_acct = by_person.get(holder.id)
            facts = rules.AuthorizeFacts(
                link_active_mutual_aid=link is not None,
                holder_status=holder.status,
                holder_scheme=holder.scheme,
                available_fen=payer_acct.balance - payer_acct.held if payer_acct else 0,
                amount_fen=op.amount_fen,
                yearly_limit_fen=link.mutual_aid_yearly_limit_fen if link else None,
                used_this_year_fen=usage.get(link.id, 0) if link else 0,
            )
            if code := rules.authorize_refusal(facts):
                out[i] = _refused(code)
                continue
            assert link is not None and payer_acct is not None
            hours = rt.policies.policy(link.region_code).hold_expiry_hours
            pid = uuid.uuid4()
            expires = now + timedelta(hours=hours)
            writes.payments.append(
                {
                    "id": pid,
                    "client_id": me,
                    "reference": op.reference,
                    "link_id": link.id,
                    "holder_id": holder.id,
                    "member_id": member.id,
                    "account_id": payer_acct.id,
                    "amount_fen": op.amount_fen,
                    "settled_fen": None,
                    "status": PaymentStatus.authorized.value,
                    "year": year,
                    "created_at": now,
                    "expires_at": expires,
                    "resolved_at": None,
                }
            )
            payer_acct.held += op.amount_fen
            payer_acct.dirty = True
            if link.id in usage:
                usage[link.id] += op.amount_fen
            batch_refs.add(op.reference)
            out[i] = Outcome(
                True, None, pid, PaymentStatus.authorized.value, op.amount_fen, None, 0, expires
            )
            continue

        p = pays[resolve_ids[i]]
        if isinstance(op, Settle):
            code = rules.settle_refusal(p.status, p.amount, op.amount_fen)
            if code:
                out[i] = _refused(code)
                continue
            payer = accounts[p.account_id]
            assert institution_id is not None
            release(p, PaymentStatus.settled.value)
            p.settled = op.amount_fen
            if p.link_id in usage:
                usage[p.link_id] += op.amount_fen
            _post(writes, payer, institution_id, op.amount_fen, p.id, now)
            out[i] = Outcome(
                True,
                None,
                p.id,
                p.status,
                p.amount,
                p.settled,
                p.amount - op.amount_fen,
                p.expires_at,
            )
        else:
            code = rules.void_refusal(p.status)
            if code:
                out[i] = _refused(code)
                continue
            release(p, PaymentStatus.voided.value)
            out[i] = Outcome(True, None, p.id, p.status, p.amount, None, p.amount, p.expires_at)

    # 9. Write everything in bulk.
    _flush(session, writes, accounts, pays, now)
    return [o if o is not None else _refused("PAYMENT_NOT_FOUND") for o in out]


def _post(
    writes: _Writes,
    payer: _Account,
    institution_id: uuid.UUID,
    amount: int,
    payment_id: uuid.UUID,
    at: datetime,
) -> None:
    transfer, entries = transfer_rows(
        person_id=payer.person_id,
        debit_id=payer.id,
        credit_id=institution_id,
        amount_fen=amount,
        kind="payment",
        at=at,
        payment_id=payment_id,
    )
    writes.transfers.append(transfer)
    writes.entries.extend(entries)
    payer.balance -= amount
    payer.dirty = True


_PAY_KEY = {"holder_id": "uuid", "id": "uuid"}


def _flush(
    session: Session,
    writes: _Writes,
    accounts: dict[uuid.UUID, _Account],
    pays: dict[uuid.UUID, _Pay],
    now: datetime,
) -> None:
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
                "resolved_at": now,
            }
            for p in pays.values()
            if p.dirty
        ],
        _PAY_KEY,
        {"status": "text", "settled_fen": "bigint", "resolved_at": "timestamptz"},
    )
    insert_rows(session, LedgerTransfer, writes.transfers)
    insert_rows(session, LedgerEntry, writes.entries)
    update_by_key(
        session,
        LedgerAccount,
        [
            {"person_id": a.person_id, "id": a.id, "balance_fen": a.balance, "held_fen": a.held}
            for a in accounts.values()
            if a.dirty
        ],
        {"person_id": "uuid", "id": "uuid"},
        {"balance_fen": "bigint", "held_fen": "bigint"},
    )


# --- the single-operation calls ----------------------------------------------


def authorize(session: Session, rt: Runtime, principal: Principal, op: Authorize) -> Outcome:
    return execute(session, rt, principal, [op])[0].raise_if_refused(commit=True)


def settle(session: Session, rt: Runtime, principal: Principal, op: Settle) -> Outcome:
    return execute(session, rt, principal, [op])[0].raise_if_refused(commit=True)


def void(session: Session, rt: Runtime, principal: Principal, op: Void) -> Outcome:
    return execute(session, rt, principal, [op])[0].raise_if_refused(commit=True)


def expire_holds(session: Session, now: datetime, limit: int = 10_000) -> int:
    """`qinqing payments expire`: release overdue holds; how many were expired.

    The holders are found without a lock, then their accounts are locked before
    their payments (the global order); payments another transaction holds are
    left to it.
    """
    holders = sorted(
        session.execute(
            select(Payment.holder_id)
            .where(Payment.status == PaymentStatus.authorized.value, Payment.expires_at <= now)
            .distinct()
            .limit(limit)
        ).scalars(),
        key=str,
    )
    if not holders:
        return 0
    accounts = lock_personal(session, holders)
    due = (Payment.status == PaymentStatus.authorized.value) & (Payment.expires_at <= now)
    overdue = locked(
        session,
        select(Payment.holder_id, Payment.id, Payment.account_id, Payment.amount_fen)
        .order_by(Payment.holder_id, Payment.id)
        .with_for_update(key_share=True, skip_locked=True),
        Payment.holder_id.in_(holders) & due,
        [(Payment.holder_id == h) & due for h in holders],
    )
    if not overdue:
        return 0
    released: dict[uuid.UUID, int] = {}
    for row in overdue:
        released[row.holder_id] = released.get(row.holder_id, 0) + row.amount_fen
    update_by_key(
        session,
        Payment,
        [
            {
                "holder_id": row.holder_id,
                "id": row.id,
                "status": PaymentStatus.expired.value,
                "resolved_at": now,
            }
            for row in overdue
        ],
        _PAY_KEY,
        {"status": "text", "resolved_at": "timestamptz"},
    )
    for holder_id, amount in released.items():
        accounts[holder_id].held_fen -= amount
    return len(overdue)


def open_holds_for_link(session: Session, link: FamilyLink, now: datetime) -> tuple[int, int]:
    """(count, total_fen) of authorized, unexpired payments on a link: what the unbind
    check reports as UNSETTLED_PAYMENTS."""
    count, total = session.execute(
        select(func.count(Payment.id), func.coalesce(func.sum(Payment.amount_fen), 0)).where(
            Payment.holder_id == link.holder_id,
            Payment.link_id == link.id,
            Payment.status == PaymentStatus.authorized.value,
            Payment.expires_at > now,
        )
    ).one()
    return int(count), int(total)
