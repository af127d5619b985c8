"""Test helpers for 共济额度: a funded holder in 鄂尔多斯 (150600) with a member insured
in 广州 (440100), beyond the national default scope (the region): a quota link."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from qinqing.ledger.accounts import quota_code
from qinqing.ledger.models import LedgerAccount
from qinqing.runtime import Runtime
from support.family import PAYMENT_PASSWORD, MadeLink
from support.resident import API, resident_family

MEMBER_REGION = "440100"


def quota_family(
    rt: Runtime, client: TestClient, *, funds_fen: int = 100_000, **kw: Any
) -> MadeLink:
    """An active mutual-aid link whose member is insured in another province."""
    made = resident_family(
        rt, client, funds_fen=funds_fen, member_region=kw.pop("member_region", MEMBER_REGION), **kw
    )
    assert made.link["via_quota"] is True, made.link
    return made


def top_up(
    client: TestClient,
    made: MadeLink,
    amount_fen: int,
    *,
    password: str | None = PAYMENT_PASSWORD,
    headers: dict[str, str] | None = None,
    key: str | None = None,
) -> Any:
    body: dict[str, Any] = {"amount_fen": amount_fen}
    if password is not None:
        body["verification"] = {"method": "payment_password", "payment_password": password}
    h = dict(headers if headers is not None else made.holder_headers)
    if key is not None:
        h["Idempotency-Key"] = key
    return client.post(f"{API}/family/links/{made.link_id}/quota", headers=h, json=body)


def quota_balance(rt: Runtime, made: MadeLink) -> tuple[int, int]:
    """(balance_fen, held_fen) of the link's quota as stored; (0, 0) before any."""
    with rt.db.unit_of_work() as s:
        row = s.execute(
            select(LedgerAccount.balance_fen, LedgerAccount.held_fen).where(
                LedgerAccount.code == quota_code(uuid.UUID(made.link_id))
            )
        ).one_or_none()
    return (int(row[0]), int(row[1])) if row else (0, 0)
