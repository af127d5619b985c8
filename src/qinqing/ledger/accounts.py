"""Ledger accounts and the one way money moves: ``post_transfer``.

Every transfer has a person's 个人账户 on one side and, on the other, a system
account (an institution's or a region's funding account). The person's account
is locked (``lock_personal``, ascending person order) and its cached balance
changed in the transaction that posts; the system account is not touched
there — its entries are appended with the transfer on the person's shard and
``ledger.clearing`` adds them to its balance in batches, so no payment waits on
one hospital's hot row. Entries are never updated or deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from qinqing.kit.db import insert_ignore, new_id
from qinqing.kit.locking import locked
from qinqing.ledger.models import (
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerSystemAccount,
    LedgerTransfer,
)


def personal_code(person_id: uuid.UUID) -> str:
    return f"personal:{person_id}"


def institution_code(client_id: str) -> str:
    return f"institution:{client_id}"


def funding_code(region_code: str) -> str:
    return f"funding:{region_code}"


def resident_fund_code(region_code: str) -> str:
    return f"resident_fund:{region_code}"


def ensure_personal(
    session: Session, *, person_id: uuid.UUID, region_code: str, now: datetime
) -> None:
    """Create the person's 个人账户 if it does not exist (race-free on both databases)."""
    insert_ignore(
        session,
        LedgerAccount,
        {
            "person_id": person_id,
            "id": new_id(),
            "code": personal_code(person_id),
            "kind": AccountKind.personal.value,
            "region_code": region_code,
            "balance_fen": 0,
            "held_fen": 0,
            "allow_negative": False,
            "created_at": now,
        },
    )


def system_account(
    session: Session, *, code: str, kind: AccountKind, region_code: str, now: datetime
) -> uuid.UUID:
    """The id of an institution's or a region's account, created the first time.

    Nothing here locks or writes the row once it exists: payments and
    contributions only append entries naming it, and the clearing step
    (``ledger.clearing``) adds them to its balance in batches."""
    found = session.execute(
        select(LedgerSystemAccount.id).where(LedgerSystemAccount.code == code)
    ).scalar_one_or_none()
    if found is not None:
        return found
    insert_ignore(
        session,
        LedgerSystemAccount,
        {
            "id": new_id(),
            "code": code,
            "kind": kind.value,
            "region_code": region_code,
            "balance_fen": 0,
            "allow_negative": kind is AccountKind.funding,
            "created_at": now,
        },
    )
    return session.execute(
        select(LedgerSystemAccount.id).where(LedgerSystemAccount.code == code)
    ).scalar_one()


def lock_personal(
    session: Session, person_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, LedgerAccount]:
    """SELECT ... FOR NO KEY UPDATE the persons' personal accounts, in ascending person
    order (the global order; see docs/ledger.md "Lock order"). By the person's id, so on
    a distributed database each lock is on one shard; one statement per account
    there (``one_lock_per_row``), one for all of them otherwise."""
    wanted = sorted(set(person_ids), key=str)
    if not wanted:
        return {}
    personal = LedgerAccount.kind == AccountKind.personal.value
    rows = locked(
        session,
        select(LedgerAccount).order_by(LedgerAccount.person_id).with_for_update(key_share=True),
        LedgerAccount.person_id.in_(wanted) & personal,
        [(LedgerAccount.person_id == pid) & personal for pid in wanted],
    )
    return {row[0].person_id: row[0] for row in rows}


def quota_code(link_id: uuid.UUID) -> str:
    return f"quota:{link_id}"


def ensure_quota(
    session: Session, *, holder_id: uuid.UUID, link_id: uuid.UUID, region_code: str, now: datetime
) -> None:
    """Create a cross-region link's 共济额度 if it does not exist: an account of the
    holder's (on the holder's shard) that only this link's mutual aid draws on."""
    insert_ignore(
        session,
        LedgerAccount,
        {
            "person_id": holder_id,
            "id": new_id(),
            "code": quota_code(link_id),
            "kind": AccountKind.quota.value,
            "region_code": region_code,
            "balance_fen": 0,
            "held_fen": 0,
            "allow_negative": False,
            "created_at": now,
            "link_id": link_id,
        },
    )


def quota_of(session: Session, holder_id: uuid.UUID, link_id: uuid.UUID) -> LedgerAccount | None:
    """A link's quota as stored (no lock: for reads)."""
    return session.execute(
        select(LedgerAccount).where(
            LedgerAccount.person_id == holder_id,
            LedgerAccount.kind == AccountKind.quota.value,
            LedgerAccount.link_id == link_id,
        )
    ).scalar_one_or_none()


def lock_accounts(
    session: Session, person_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, LedgerAccount]:
    """SELECT ... FOR NO KEY UPDATE every account of the persons — the personal one
    and the quotas of their cross-region links — by account id, in ascending
    (person, account id) order: the global order (docs/ledger.md "Lock order"), of
    which ``lock_personal`` takes a subset."""
    wanted = sorted(set(person_ids), key=str)
    if not wanted:
        return {}
    rows = locked(
        session,
        select(LedgerAccount)
        .order_by(LedgerAccount.person_id, LedgerAccount.id)
        .with_for_update(key_share=True),
        LedgerAccount.person_id.in_(wanted),
        [LedgerAccount.person_id == pid for pid in wanted],
    )
    return {row[0].id: row[0] for row in rows}


def transfer_rows(
    *,
    person_id: uuid.UUID,
    debit_id: uuid.UUID,
    credit_id: uuid.UUID,
    amount_fen: int,
    kind: str,
    at: datetime,
    payment_id: uuid.UUID | None = None,
    contribution_id: uuid.UUID | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One transfer and its two entries (-amount, +amount) as rows: the double-entry
    shape every money movement takes, single or in bulk."""
    if amount_fen <= 0:
        raise ValueError("a transfer moves a positive amount")
    transfer_id = new_id()
    transfer = {
        "person_id": person_id,
        "id": transfer_id,
        "debit_account_id": debit_id,
        "credit_account_id": credit_id,
        "amount_fen": amount_fen,
        "kind": kind,
        "payment_id": payment_id,
        "contribution_id": contribution_id,
        "created_at": at,
    }
    entries = [
        {
            "person_id": person_id,
            "id": new_id(),
            "transfer_id": transfer_id,
            "account_id": account_id,
            "amount_fen": signed,
            "created_at": at,
        }
        for account_id, signed in ((debit_id, -amount_fen), (credit_id, amount_fen))
    ]
    return transfer, entries


def post_transfer(
    session: Session,
    *,
    person_id: uuid.UUID,
    debit_id: uuid.UUID,
    credit_id: uuid.UUID,
    amount_fen: int,
    kind: str,
    at: datetime,
    payment_id: uuid.UUID | None = None,
    contribution_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Append one transfer and its two entries on ``person_id``'s shard. The caller
    holds the lock on the person's account and changes its cached balance; the
    other side is a system account, brought up to date by the clearing step."""
    transfer, entries = transfer_rows(
        person_id=person_id,
        debit_id=debit_id,
        credit_id=credit_id,
        amount_fen=amount_fen,
        kind=kind,
        at=at,
        payment_id=payment_id,
        contribution_id=contribution_id,
    )
    # Core inserts in FK order (the ORM would not order unrelated mappers).
    session.execute(insert(LedgerTransfer).values(**transfer))
    session.execute(insert(LedgerEntry), entries)
    transfer_id: uuid.UUID = transfer["id"]
    return transfer_id
