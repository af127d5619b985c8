"""The clearing step: the system accounts' side of settled payments and of
contributions, posted in batches instead of by every payment.

A settlement appends both entries of its transfer at once (the payer's and the
institution's, on the payer's shard) but changes only the payer's cached
balance; an institution's ``balance_fen`` would otherwise be one row that every
payment of that hospital writes — a queue for all of them, and on a
distributed database a write to every node. Here the settled payments not yet
cleared are marked cleared and their amounts added to each institution's
balance in one transaction; contributions likewise for the regions' funding
accounts, and resident contributions (共济缴费) for the regions' resident-fund
accounts. ``balance_fen`` of a system account is therefore the sum of its
cleared entries, and ``ledger reconcile`` proves that, counting the rest as
pending. The holder's ``payment.settled`` notice is written here too. Run by
``qinqing worker`` and ``qinqing ledger clear``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from qinqing.contributions.models import Contribution
from qinqing.kit.db import new_id
from qinqing.ledger.accounts import funding_code, institution_code, resident_fund_code
from qinqing.ledger.models import LedgerSystemAccount
from qinqing.notify.models import Notification
from qinqing.payments.bulk import insert_rows
from qinqing.payments.models import Payment, PaymentStatus
from qinqing.resident.models import ResidentContribution


@dataclass(frozen=True, slots=True)
class Cleared:
    payments: int
    contributions: int
    resident_contributions: int
    # account code → fen added to its balance (negative for a funding account)
    posted: dict[str, int]


def clear(session: Session, now: datetime) -> Cleared:
    """Clear everything committed so far, in the caller's transaction.

    Marking and crediting happen together, so a payment is counted in its
    institution's balance exactly once: a second worker's UPDATE waits for the
    first one's row locks and then finds those rows cleared."""
    paid = session.execute(
        update(Payment)
        .where(Payment.status == PaymentStatus.settled.value, Payment.cleared_at.is_(None))
        .values(cleared_at=now)
        .returning(
            Payment.client_id,
            Payment.settled_fen,
            Payment.holder_id,
            Payment.id,
            Payment.member_id,
            Payment.resolved_at,
        )
        .execution_options(synchronize_session=False)
    ).all()
    funded = session.execute(
        update(Contribution)
        .where(Contribution.cleared_at.is_(None))
        .values(cleared_at=now)
        .returning(Contribution.region_code, Contribution.credited_fen)
        .execution_options(synchronize_session=False)
    ).all()
    remitted = session.execute(
        update(ResidentContribution)
        .where(ResidentContribution.cleared_at.is_(None))
        .values(cleared_at=now)
        .returning(ResidentContribution.region_code, ResidentContribution.amount_fen)
        .execution_options(synchronize_session=False)
    ).all()
    posted: dict[str, int] = defaultdict(int)
    for row in paid:
        posted[institution_code(row.client_id)] += int(row.settled_fen or 0)
    # The holder's notice of each settlement, derived here rather than written by
    # the settlement itself (one row less on the payment's path).
    insert_rows(
        session,
        Notification,
        [
            {
                "person_id": row.holder_id,
                "id": new_id(),
                "kind": "payment.settled",
                "payload": {
                    "payment_id": str(row.id),
                    "member_id": str(row.member_id),
                    "amount_fen": int(row.settled_fen or 0),
                },
                "created_at": row.resolved_at or now,
                "delivered_at": None,
                "attempts": 0,
            }
            for row in paid
        ],
    )
    for region_code, amount in funded:
        if amount:
            posted[funding_code(region_code)] -= int(amount)
    for region_code, amount in remitted:
        posted[resident_fund_code(region_code)] += int(amount)
    # One increment per account, in code order (a fixed order between workers).
    for code in sorted(posted):
        if posted[code]:
            session.execute(
                update(LedgerSystemAccount)
                .where(LedgerSystemAccount.code == code)
                .values(balance_fen=LedgerSystemAccount.balance_fen + posted[code])
            )
    return Cleared(len(paid), len(funded), len(remitted), {c: v for c, v in posted.items() if v})
