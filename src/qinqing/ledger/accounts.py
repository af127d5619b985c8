"""Ledger accounts and the one way money moves: ``post_transfer``.

Callers lock the accounts a transfer touches (``lock_accounts``, always in
ascending id order so two transactions cannot deadlock) and then post; the
transfer, its two entries and both cached balances change in the same
transaction. Entries are never updated or deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from qinqing.db import insert_ignore, new_id
from qinqing.ledger.models import AccountKind, LedgerAccount, LedgerEntry, LedgerTransfer


def personal_code(person_id: uuid.UUID) -> str:
    return f"personal:{person_id}"


def institution_code(client_id: str) -> str:
    return f"institution:{client_id}"


def funding_code(region_code: str) -> str:
    return f"funding:{region_code}"


def ensure_account(
    session: Session,
    *,
    code: str,
    kind: AccountKind,
    region_code: str,
    now: datetime,
    person_id: uuid.UUID | None = None,
) -> None:
    """Create the account if it does not exist (race-free on both databases)."""
    insert_ignore(
        session,
        LedgerAccount,
        {
            "id": new_id(),
            "code": code,
            "kind": kind.value,
            "person_id": person_id,
            "region_code": region_code,
            "balance_fen": 0,
            "held_fen": 0,
            "allow_negative": kind is AccountKind.funding,
            "created_at": now,
        },
    )


def lock_accounts(session: Session, codes: Iterable[str]) -> dict[str, LedgerAccount]:
    """SELECT ... FOR NO KEY UPDATE the accounts by code, in ascending id order."""
    wanted = sorted(set(codes))
    rows = (
        session.execute(
            select(LedgerAccount)
            .where(LedgerAccount.code.in_(wanted))
            .order_by(LedgerAccount.id)
            .with_for_update(key_share=True)
        )
        .scalars()
        .all()
    )
    return {a.code: a for a in rows}


def transfer_rows(
    *,
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
    debit: LedgerAccount,
    credit: LedgerAccount,
    amount_fen: int,
    kind: str,
    at: datetime,
    payment_id: uuid.UUID | None = None,
    contribution_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Move ``amount_fen`` from ``debit`` to ``credit``; both must be locked by the caller."""
    transfer, entries = transfer_rows(
        debit_id=debit.id,
        credit_id=credit.id,
        amount_fen=amount_fen,
        kind=kind,
        at=at,
        payment_id=payment_id,
        contribution_id=contribution_id,
    )
    # Core inserts in FK order (the ORM would not order unrelated mappers).
    session.execute(insert(LedgerTransfer).values(**transfer))
    session.execute(insert(LedgerEntry), entries)
    debit.balance_fen -= amount_fen
    credit.balance_fen += amount_fen
    transfer_id: uuid.UUID = transfer["id"]
    return transfer_id
