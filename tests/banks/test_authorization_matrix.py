"""Who may call what: every bank-links endpoint and the family/unbind endpoints a bank
uses, against every kind of caller, with the expected status in each cell (both databases).

To add an endpoint, append a :class:`Row`: its path (placeholders filled from what
``prepare`` returns, fresh for every cell, so a cell that changes state never
disturbs the next), how each actor calls it (``request``), and the expected
status per actor. ``(200, True)`` / ``(200, False)`` also says whether the answer
mentions the prepared object (``sees``), for listings.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient

from banks_support import API, Bank, add_bank, card_number, client_headers, link_customer
from family_support import PAYMENT_PASSWORD, Party, new_person
from qinqing.runtime import Runtime
from support import STAFF_PASSWORD, add_client, add_staff, login
from unbind_support import make_link

ACTORS = (
    "person",  # the customer: holder of the family links, linked with bank A
    "other_person",
    "clerk",  # a clerk of the customer's region
    "clerk_other_region",
    "reviewer",  # a reviewer of the customer's region
    "bank_a",  # the customer's bank
    "bank_b",  # a bank the customer does not bank with
    "institution",
    "anonymous",
)
PIN = {"method": "payment_password", "payment_password": PAYMENT_PASSWORD}
Cell = int | tuple[int, bool]


@dataclass
class World:
    rt: Runtime
    client: TestClient
    customer: Party
    bank_a: Bank
    bank_b: Bank
    headers: dict[str, dict[str, str]]
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(100))

    def card(self) -> str:
        return card_number(next(self._serial))

    def family_link(self) -> str:
        """A fresh active link: the customer holds it, a new person is the member."""
        from qinqing.persons.models import Person

        member = new_person(self.rt, name="成员", account=False)
        with self.rt.db.unit_of_work() as s:
            holder, mem = s.get(Person, self.customer.id), s.get(Person, member.id)
            assert holder is not None and mem is not None
            s.expunge_all()
        return str(make_link(self.rt, holder, mem, relation="child").id)

    def bank_link(self) -> str:
        """A fresh active association of the customer with bank A."""
        r = link_customer(
            self.client, self.bank_a, self.customer.id_number, self.customer.name, self.card()
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


def build_world(rt: Runtime, client: TestClient) -> World:
    customer = new_person(rt, name="客户甲", client=client)
    other = new_person(rt, name="路人乙", client=client)
    add_staff(rt, "m.clerk", "clerk", "150600")
    add_staff(rt, "m.clerk.gz", "clerk", "440100")
    add_staff(rt, "m.reviewer", "reviewer", "150600")
    bank_a, _ = add_bank(rt, client, "BANKA")
    bank_b, _ = add_bank(rt, client, "BANKB")
    institution = client_headers(client, *add_client(rt, "institution", "150600"))
    world = World(
        rt,
        client,
        customer,
        bank_a,
        bank_b,
        {
            "person": customer.headers,
            "other_person": other.headers,
            "clerk": login(client, "m.clerk", STAFF_PASSWORD),
            "clerk_other_region": login(client, "m.clerk.gz", STAFF_PASSWORD),
            "reviewer": login(client, "m.reviewer", STAFF_PASSWORD),
            "bank_a": bank_a.headers,
            "bank_b": bank_b.headers,
            "institution": institution,
            "anonymous": {},
        },
    )
    world.bank_link()  # the customer banks with A
    return world


Prepare = Callable[[World], dict[str, str]]
Request = Callable[[World, str, dict[str, str]], dict[str, Any]]


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    path: str
    expect: dict[str, Cell]
    prepare: Prepare = lambda w: {}
    request: Request = lambda w, actor, ctx: {}
    sees: str | None = None  # a key of the prepared values the answer should (not) mention


def _customer_side(w: World, actor: str, ctx: dict[str, str]) -> dict[str, Any]:
    """The unbind check: clerks and banks name the customer's side of the link."""
    if actor.startswith("clerk"):
        return {"params": {"on_behalf_of": "holder"}}
    if actor.startswith("bank"):
        return {"params": {"customer": "holder"}}
    return {}


def _unbind_body(w: World, actor: str, ctx: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {"verification": PIN}
    if actor.startswith("bank"):
        body["customer_id_number"] = w.customer.id_number
    return {"json": body}


def _new_account(w: World, actor: str, ctx: dict[str, str]) -> dict[str, Any]:
    if actor.startswith("bank"):
        body = {"id_number": w.customer.id_number, "name": w.customer.name}
    else:
        body = {"bank_code": "BANKA"}
    return {"json": {"account_number": w.card(), **body}}


def _request_by_bank_a(w: World) -> dict[str, str]:
    link = w.family_link()
    r = w.client.post(
        f"{API}/family/links/{link}/unbind",
        headers=w.bank_a.headers,
        json={"verification": PIN, "customer_id_number": w.customer.id_number},
    )
    assert r.status_code == 200, r.text
    return {"request": r.json()["request"]["id"]}


def _cells(*statuses: Cell) -> dict[str, Cell]:
    assert len(statuses) == len(ACTORS)
    return dict(zip(ACTORS, statuses, strict=True))


ROWS = [
    #                                   person other clerk clerkGZ review bankA bankB inst anon
    Row(
        "link an account",
        "POST",
        "/bank-links",
        _cells(201, 201, 403, 403, 403, 201, 201, 403, 401),
        request=_new_account,
    ),
    Row(
        "list associations",
        "GET",
        "/bank-links",
        _cells((200, True), (200, False), 403, 403, 403, (200, True), (200, False), 403, 401),
        prepare=lambda w: {"bank_link": w.bank_link()},
        sees="bank_link",
    ),
    Row(
        "unlink",
        "DELETE",
        "/bank-links/{bank_link}",
        _cells(200, 404, 403, 403, 403, 200, 404, 403, 401),
        prepare=lambda w: {"bank_link": w.bank_link()},
    ),
    Row(
        "the customer's family",
        "GET",
        "/bank-links/{bank_link}/family",
        _cells(403, 403, 403, 403, 403, 200, 404, 403, 401),
        prepare=lambda w: {"bank_link": w.bank_link()},
    ),
    Row(
        "unbind check",
        "GET",
        "/family/links/{link}/unbind-check",
        _cells(200, 404, 200, 404, 403, 200, 404, 403, 401),
        prepare=lambda w: {"link": w.family_link()},
        request=_customer_side,
    ),
    Row(
        "unbind",
        "POST",
        "/family/links/{link}/unbind",
        _cells(200, 404, 403, 403, 403, 200, 404, 403, 401),
        prepare=lambda w: {"link": w.family_link()},
        request=_unbind_body,
    ),
    Row(
        "one unbind request (made by bank A)",
        "GET",
        "/unbind-requests/{request}",
        _cells(200, 404, 200, 404, 200, 200, 404, 404, 401),
        prepare=_request_by_bank_a,
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_authorization_matrix(rt: Runtime, client: TestClient, row: Row) -> None:
    world = build_world(rt, client)
    wrong = []
    for actor in ACTORS:
        ctx = row.prepare(world)
        kwargs = row.request(world, actor, ctx)
        r = client.request(
            row.method, API + row.path.format(**ctx), headers=world.headers[actor], **kwargs
        )
        want = row.expect[actor]
        status, sees = want if isinstance(want, tuple) else (want, None)
        got_sees = None if sees is None else (row.sees is not None and ctx[row.sees] in r.text)
        if r.status_code != status or got_sees != sees:
            wrong.append(f"{actor}: expected {want}, got {r.status_code} {r.text[:160]}")
        assert r.status_code != 500, r.text
    assert not wrong, f"{row.method} {row.path}:\n" + "\n".join(wrong)
