"""A cross-region link's 共济额度 (quota): the holder fills it, both parties read it,
and it returns to the holder when the link ends (docs/family.md "Mutual aid across
regions").

Every decision is :mod:`qinqing.quota.rules` or a refusal named here. The money
moves as ledger transfers between two accounts of the holder's (the personal
account and the quota), so a top-up or a return is one shard's transaction.

Locks, in the global order of docs/ledger.md "Lock order": the request's
``Idempotency-Key`` row (the route), the link ``FOR SHARE`` (an unbind's ``FOR NO
KEY UPDATE`` waits for a top-up, and a top-up for an unbind), the holder's app
account (payment-password verification), every ledger account of the holder —
personal and quotas — ``FOR NO KEY UPDATE`` in (person, id) order (their overdue
holds are released first), then the audit head.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.audit.actor import SYSTEM
from qinqing.audit.service import record
from qinqing.auth.verification import FaceVerification, PaymentPasswordVerification, verify
from qinqing.family.access import load_usable_link, lock_link_shared
from qinqing.family.events import LINK_ENDED, FamilyEvent
from qinqing.family.models import FamilyLink
from qinqing.kit.errors import DomainError
from qinqing.ledger.accounts import ensure_quota, lock_accounts, post_transfer, quota_of
from qinqing.ledger.models import AccountKind, LedgerAccount, LedgerEntry, LedgerTransfer
from qinqing.notify.service import enqueue, tell_both
from qinqing.payments.formulas import held_at
from qinqing.payments.service import release_overdue
from qinqing.persons.models import Person
from qinqing.quota import rules
from qinqing.runtime import Runtime

AnyVerification = PaymentPasswordVerification | FaceVerification
SUBJECT = "family_link"
TOPPED_UP_HOLDER = "quota.topped_up"  # notice to the holder
TOPPED_UP_MEMBER = "quota.topped_up_for_you"  # notice to the member
RETURNED = "quota.returned"  # notice to the holder: the unused quota came back
STATUS = {
    "QUOTA_AMOUNT_INVALID": 422,
    "NO_MUTUAL_AID_LINK": 409,
    "QUOTA_NOT_CROSS_REGION": 409,
    "HOLDER_NOT_EMPLOYEE": 409,
    "PAYER_NOT_ACTIVE": 409,
}
ENTRIES_SHOWN = 200


@dataclass(frozen=True, slots=True)
class Entry:
    id: uuid.UUID
    kind: str
    amount_fen: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class QuotaView:
    link_id: uuid.UUID
    balance_fen: int
    held_fen: int
    available_fen: int
    entries: list[Entry]


def _split(
    accounts: dict[uuid.UUID, LedgerAccount], link_id: uuid.UUID
) -> tuple[LedgerAccount | None, LedgerAccount | None]:
    """(personal account, this link's quota) among a holder's locked accounts."""
    personal = quota = None
    for acct in accounts.values():
        if acct.kind == AccountKind.personal.value:
            personal = acct
        elif acct.kind == AccountKind.quota.value and acct.link_id == link_id:
            quota = acct
    return personal, quota


def lock_payer(
    session: Session, link: FamilyLink, now: datetime
) -> tuple[LedgerAccount | None, LedgerAccount | None]:
    """Lock the holder's accounts (overdue holds released) and return (personal, the
    link's quota): what a write that debits at once for this link (a resident
    contribution) pays from — the quota when ``link.via_quota``."""
    accounts = lock_accounts(session, [link.holder_id])
    release_overdue(session, accounts, now)
    return _split(accounts, link.id)


def top_up(
    session: Session,
    rt: Runtime,
    principal: Principal,
    link_id: str | uuid.UUID,
    amount_fen: int,
    verification: AnyVerification | None,
) -> QuotaView:
    """The holder moves ``amount_fen`` from the personal account into the link's quota.

    Refusals, in this order: 404 NOT_FOUND; 403 QUOTA_HOLDER_ONLY; 422
    QUOTA_AMOUNT_INVALID; 409 NO_MUTUAL_AID_LINK, QUOTA_NOT_CROSS_REGION,
    HOLDER_NOT_EMPLOYEE, PAYER_NOT_ACTIVE; the verification codes (a wrong payment
    password is counted and committed); 409 INSUFFICIENT_BALANCE.
    """
    now = rt.clock.now()
    link = load_usable_link(session, rt, principal, link_id)
    if principal.kind != "person" or link.holder_id != principal.person_id:
        raise DomainError("QUOTA_HOLDER_ONLY", 403)
    link = lock_link_shared(session, link)
    holder = session.get(Person, link.holder_id)
    assert holder is not None
    code = rules.top_up_refusal(
        rules.TopUpFacts(
            link_status=link.status,
            mutual_aid=link.mutual_aid,
            via_quota=link.via_quota,
            holder_scheme=holder.scheme,
            holder_status=holder.status,
            amount_fen=amount_fen,
        )
    )
    if code is not None:
        if code == "QUOTA_AMOUNT_INVALID":
            raise DomainError(
                code,
                STATUS[code],
                max_fen=rules.MAX_TOP_UP_FEN,
                max_yuan=f"{rules.MAX_TOP_UP_FEN // 100:,}",
            )
        raise DomainError(code, STATUS[code])
    verify(session, rt, holder.id, verification, now=now)
    ensure_quota(
        session, holder_id=holder.id, link_id=link.id, region_code=holder.region_code, now=now
    )
    personal, quota = lock_payer(session, link, now)
    assert quota is not None
    if personal is None or rules.available(personal.balance_fen, personal.held_fen) < amount_fen:
        raise DomainError("INSUFFICIENT_BALANCE", 409)
    post_transfer(
        session,
        person_id=holder.id,
        debit_id=personal.id,
        credit_id=quota.id,
        amount_fen=amount_fen,
        kind=rules.TOP_UP,
        at=now,
    )
    personal.balance_fen -= amount_fen
    quota.balance_fen += amount_fen
    tell_both(
        session,
        holder_id=holder.id,
        member_id=link.member_id,
        kinds=(TOPPED_UP_HOLDER, TOPPED_UP_MEMBER),
        at=now,
        payload={"link_id": str(link.id), "amount_fen": amount_fen, "quota_fen": quota.balance_fen},
    )
    record(
        session,
        actor=principal.actor,
        action="quota.topped_up",
        subject_kind=SUBJECT,
        subject_id=link.id,
        at=now,
        details={
            "amount_fen": amount_fen,
            "quota_fen": quota.balance_fen,
            "verification_method": verification.method if verification else "none",
        },
    )
    session.flush()
    return _view(session, link, quota, now)


def view(
    session: Session, rt: Runtime, principal: Principal, link_id: str | uuid.UUID
) -> QuotaView:
    """The quota of a cross-region link, for either party (and staff who may see the
    link): balance, holds, what is available and its movements, newest first. A
    link within the scope has none: 409 QUOTA_NOT_CROSS_REGION."""
    link = load_usable_link(session, rt, principal, link_id)
    if not link.via_quota:
        raise DomainError("QUOTA_NOT_CROSS_REGION", 409)
    return _view(session, link, quota_of(session, link.holder_id, link.id), rt.clock.now())


def _view(
    session: Session, link: FamilyLink, quota: LedgerAccount | None, now: datetime
) -> QuotaView:
    if quota is None:
        return QuotaView(link.id, 0, 0, 0, [])
    rows = session.execute(
        select(LedgerEntry.id, LedgerEntry.amount_fen, LedgerEntry.created_at, LedgerTransfer.kind)
        .join(
            LedgerTransfer,
            (LedgerTransfer.person_id == LedgerEntry.person_id)
            & (LedgerTransfer.id == LedgerEntry.transfer_id),
        )
        .where(LedgerEntry.person_id == link.holder_id, LedgerEntry.account_id == quota.id)
        .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
        .limit(ENTRIES_SHOWN)
    ).all()
    # Open holds only (a read writes nothing; an overdue hold is released at the next lock).
    held = held_at(session, link.holder_id, quota.id, now)
    return QuotaView(
        link_id=link.id,
        balance_fen=quota.balance_fen,
        held_fen=held,
        available_fen=rules.available(quota.balance_fen, held),
        entries=[
            Entry(r.id, rules.ENTRY_KIND.get(r.kind, r.kind), r.amount_fen, r.created_at)
            for r in rows
        ],
    )


def available(session: Session, link: FamilyLink, now: datetime) -> int:
    """What the link's quota can pay now (a read: overdue holds no longer count)."""
    quota = quota_of(session, link.holder_id, link.id)
    if quota is None:
        return 0
    return rules.available(quota.balance_fen, held_at(session, link.holder_id, quota.id, now))


def return_unused(session: Session, link: FamilyLink, at: datetime) -> int:
    """The unused quota of a link that ended goes back to the holder's personal
    account, in the transaction that ended it; how much. What open holds still keep
    (a link the registry ended while a bill was pending) stays for those payments
    and returns with :func:`sweep_ended` once they resolve."""
    if not link.via_quota or quota_of(session, link.holder_id, link.id) is None:
        return 0
    personal, quota = lock_payer(session, link, at)
    assert quota is not None and personal is not None
    amount = rules.available(quota.balance_fen, quota.held_fen)
    if amount <= 0:
        return 0
    post_transfer(
        session,
        person_id=link.holder_id,
        debit_id=quota.id,
        credit_id=personal.id,
        amount_fen=amount,
        kind=rules.REFUND,
        at=at,
    )
    quota.balance_fen -= amount
    personal.balance_fen += amount
    enqueue(
        session,
        person_id=link.holder_id,
        kind=RETURNED,
        at=at,
        payload={"link_id": str(link.id), "member_id": str(link.member_id), "amount_fen": amount},
    )
    record(
        session,
        actor=SYSTEM,
        action="quota.returned",
        subject_kind=SUBJECT,
        subject_id=link.id,
        at=at,
        details={"amount_fen": amount},
    )
    return amount


def on_family_event(session: Session, event: FamilyEvent) -> None:
    """Subscribed at startup: a link that ends returns its unused quota."""
    if event.type == LINK_ENDED:
        return_unused(session, event.link, event.at)


def sweep_ended(session: Session, now: datetime, limit: int = 1000) -> int:
    """Return what is left in the quotas of ended links once their last holds
    resolved (the worker's pass); how many quotas were emptied."""
    found = session.execute(
        select(FamilyLink)
        .join(
            LedgerAccount,
            (LedgerAccount.person_id == FamilyLink.holder_id)
            & (LedgerAccount.link_id == FamilyLink.id),
        )
        .where(
            LedgerAccount.kind == AccountKind.quota.value,
            LedgerAccount.balance_fen > 0,
            FamilyLink.status == "ended",
        )
        .order_by(FamilyLink.holder_id, FamilyLink.id)
        .limit(limit)
    ).scalars()
    emptied = 0
    for link in list(found):
        if return_unused(session, link, now):
            emptied += 1
    return emptied
