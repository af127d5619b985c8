"""Test helpers for e-vouchers: a funded family whose holder can show vouchers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi.testclient import TestClient

from qinqing.runtime import Runtime
from support.family import MadeLink, make_active_link
from support.ledger import fund, institution_headers

API = "/api/v1"
FUNDS_FEN = 100_000
T = TypeVar("T")


@dataclass
class Scene:
    made: MadeLink
    inst: dict[str, str]

    @property
    def link_id(self) -> str:
        return self.made.link_id


def scene(rt: Runtime, client: TestClient, *, funds_fen: int = FUNDS_FEN, **link: Any) -> Scene:
    """An active mutual-aid link (holder and member with app logins), the holder's
    account funded, and an institution of the same region."""
    # Long-lived client tokens, so tests may move the clock well past a voucher's life.
    rt.settings.client_token_ttl_seconds = 30 * 24 * 3600
    rt.settings.access_token_ttl_seconds = 30 * 24 * 3600
    made = make_active_link(rt, client, **link)
    if funds_fen:
        fund(rt, made.holder_id, funds_fen, region=link.get("region", "150600"))
    return Scene(made, institution_headers(rt, client, link.get("region", "150600")))


def issue(client: TestClient, headers: dict[str, str], link_id: str | None = None) -> Any:
    """POST /vouchers; returns the response."""
    body = {} if link_id is None else {"link_id": link_id}
    return client.post(f"{API}/vouchers", json=body, headers=headers)


def token_for(client: TestClient, s: Scene) -> str:
    r = issue(client, s.made.holder_headers, s.link_id)
    assert r.status_code == 201, r.text
    token: str = r.json()["token"]
    return token


def redeem(client: TestClient, inst: dict[str, str], token: str) -> Any:
    return client.post(f"{API}/vouchers/redeem", json={"token": token}, headers=inst)


def pay(
    client: TestClient,
    inst: dict[str, str],
    token: str,
    amount_fen: int,
    reference: str,
    headers: dict[str, str] | None = None,
) -> Any:
    return client.post(
        f"{API}/payments/authorize",
        json={"voucher_token": token, "amount_fen": amount_fen, "reference": reference},
        headers={**inst, **(headers or {})},
    )
