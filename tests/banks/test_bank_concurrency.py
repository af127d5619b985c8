"""Races on PostgreSQL: one account linked twice at the same moment, and several
webhook workers draining one outbox. (SQLite serializes writers.)"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from qinqing.access.principal import CLIENT_SCOPES, Principal
from qinqing.banks import service
from qinqing.banks.delivery import deliver_webhooks
from qinqing.kit.clock import FrozenClock
from qinqing.kit.errors import DomainError
from qinqing.runtime import Runtime
from support.banks import add_bank, card_number, link_customer, person_principal, receiver
from support.family import new_person


def _postgres_only(rt: Runtime) -> None:
    if rt.db.is_sqlite:
        pytest.skip("SQLite serializes writers; row-lock races are a PostgreSQL matter")


def test_one_account_linked_twice_at_once_gives_one_link(rt: Runtime, client: TestClient) -> None:
    _postgres_only(rt)
    bank, _ = add_bank(rt, client, "BANKA")
    people = [new_person(rt, name=f"客户{i}", account=False) for i in range(2)]
    principal = Principal(
        "client",
        bank.client_id,
        "bank",
        "-",
        region_code="150600",
        scopes=frozenset(CLIENT_SCOPES["bank"].split()),
        bank_code="BANKA",
        role="bank",
    )
    account = card_number(1)
    # Two pending links of one account may exist (a claim does not block the owner);
    # only one of them becomes active, even when both are confirmed at once.
    pending = []
    for who in people:
        with rt.db.unit_of_work() as s:
            started = service.create_link(
                s, rt, principal, account_number=account, id_number=who.id_number, name=who.name
            )
            pending.append(started.link.id)
    gate = threading.Barrier(2)

    def attempt(i: int) -> str:
        gate.wait()
        try:
            with rt.db.unit_of_work() as s:
                service.confirm_link(s, rt, person_principal(people[i].id), pending[i])
            return "linked"
        except DomainError as exc:
            return exc.code

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(attempt, range(2)))
    assert outcomes == ["BANK_ACCOUNT_ALREADY_LINKED", "linked"]


def test_two_workers_deliver_every_event_exactly_once(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    _postgres_only(rt)
    clock.set(datetime.now(UTC))
    with receiver() as rec:
        bank, _ = add_bank(rt, client, "BANKA", webhook_url=rec.url)
        for i in range(12):
            p = new_person(rt, name=f"客户{i}", account=False)
            assert (
                link_customer(client, bank, p.id_number, p.name, card_number(10 + i)).status_code
                == 202
            )
        gate = threading.Barrier(2)

        def worker(_: int) -> int:
            gate.wait()
            return deliver_webhooks(rt, clock.now(), 100)

        with ThreadPoolExecutor(2) as pool:
            delivered = list(pool.map(worker, range(2)))
    ids = [h["webhook-id"] for h, _ in rec.received]
    assert sum(delivered) == 12
    assert len(ids) == 12 and len(set(ids)) == 12
