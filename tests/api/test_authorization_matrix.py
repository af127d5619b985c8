"""Who may call what: every endpoint of the counter desk and of the bank channel, and
the family/unbind endpoints a bank uses, against every kind of caller, with the
expected status in each cell (one table, both databases).

To add an endpoint, append a :class:`Row`: its path (placeholders filled from what
``prepare`` returns, fresh for every cell, so a cell that changes state never
disturbs the next), how each actor calls it (``request``), and the expected
status per actor. ``(200, True)`` / ``(200, False)`` also says whether the answer
mentions the prepared object (``sees``), for listings. A row that changes
something names what (``state``): a refused cell must leave it as it was, an
allowed one must change it.

The counter desk: only a clerk of the person's region gets through; anyone not
logged in is 401; any other logged-in actor 403, whatever they name; a clerk of
another region gets the 404 an unknown person, link or request gets.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from qinqing.banks.models import BankLink
from qinqing.family.models import FamilyLink
from qinqing.runtime import Runtime
from support.accounts import STAFF_PASSWORD, add_client, add_staff, login
from support.banks import (
    API,
    Bank,
    add_bank,
    card_number,
    client_headers,
    link_customer,
    sms_codes,
)
from support.counter import bind_body, unbind_body
from support.family import PAYMENT_PASSWORD, Party, bind, new_person
from support.unbind import count_requests, load_link, make_link

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
        assert r.status_code == 202, r.text
        return str(r.json()["id"])

    def pending_bank_link(self) -> dict[str, str]:
        """A fresh association bank A started for the customer, not yet confirmed, and
        the one-time code the customer received for it."""
        r = link_customer(
            self.client,
            self.bank_a,
            self.customer.id_number,
            self.customer.name,
            self.card(),
            confirm=False,
        )
        assert r.status_code == 202, r.text
        [code] = [m["code"] for m in sms_codes(self.rt) if m["to"] == self.customer.phone][-1:]
        return {"bank_link": str(r.json()["id"]), "code": code}

    def app_started_link(self) -> dict[str, str]:
        """A fresh association the customer started in the app, waiting for bank A."""
        r = self.client.post(
            f"{API}/bank-links",
            headers=self.headers["person"],
            json={"account_number": self.card(), "bank_code": "BANKA"},
        )
        assert r.status_code == 202, r.text
        return {"bank_link": str(r.json()["id"])}


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
State = Callable[[World, dict[str, str]], object]


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    path: str
    expect: dict[str, Cell]
    prepare: Prepare = lambda w: {}
    request: Request = lambda w, actor, ctx: {}
    sees: str | None = None  # a key of the prepared values the answer should (not) mention
    state: State | None = None  # what the call changes, when allowed


def _bank_links(w: World, ctx: dict[str, str]) -> object:
    with w.rt.db.unit_of_work() as s:
        return s.execute(select(func.count()).select_from(BankLink)).scalar_one()


def _bank_link_status(w: World, ctx: dict[str, str]) -> object:
    with w.rt.db.unit_of_work() as s:
        return s.execute(
            select(BankLink.status).where(BankLink.id == uuid.UUID(ctx["bank_link"]))
        ).scalar_one()


def _family_link_and_requests(w: World, ctx: dict[str, str]) -> object:
    return load_link(w.rt, ctx["link"]).status, count_requests(w.rt)


def _family_links(w: World, ctx: dict[str, str]) -> object:
    with w.rt.db.unit_of_work() as s:
        return s.execute(select(func.count()).select_from(FamilyLink)).scalar_one()


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


# --- the counter desk ---------------------------------------------------------------


def _counter_lookup(w: World, actor: str, ctx: dict[str, str]) -> dict[str, Any]:
    return {"json": {"id_number": w.customer.id_number}}


def _counter_unbind(w: World, actor: str, ctx: dict[str, str]) -> dict[str, Any]:
    return {"json": unbind_body(ctx["link"], w.customer.id_number)}


def _two_to_bind(w: World) -> dict[str, str]:
    """Two persons without a link who came to the counter to bind (no app accounts)."""
    holder = new_person(w.rt, name="赵强", account=False)
    member = new_person(w.rt, name="钱芳", sex="F", born=date(1972, 2, 2), account=False)
    return {"holder": holder.id_number, "member": member.id_number}


def _counter_bind(w: World, actor: str, ctx: dict[str, str]) -> dict[str, Any]:
    return {"json": bind_body(ctx["holder"], "赵强", ctx["member"], "钱芳")}


def _unbound_at_the_counter(w: World) -> dict[str, str]:
    """A link the region's clerk unbound at the counter: the receipt to print."""
    link = w.family_link()
    r = w.client.post(
        f"{API}/counter/unbind",
        headers=w.headers["clerk"],
        json=unbind_body(link, w.customer.id_number),
    )
    assert r.status_code == 200, r.text
    return {"request": r.json()["request"]["id"]}


def _waiting_for_proof(w: World) -> dict[str, str]:
    """A young child of the region bound by someone who is no registered guardian."""
    holder = new_person(w.rt, name="孙强", client=w.client)
    child = new_person(w.rt, name="孙小雨", sex="F", born=date(2016, 6, 1), account=False)
    r = bind(w.client, holder.headers, child.id_number, child.name, "child")
    assert r.status_code == 201 and r.json()["status"] == "pending_proof", r.text
    return {"link": r.json()["id"]}


def _proof_body(w: World, actor: str, ctx: dict[str, str]) -> dict[str, Any]:
    return {
        "json": {
            "document": {"type": "birth_certificate", "number": "N440123456"},
            "form_number": "QQ-PROOF-0001",
        }
    }


def _link_status(w: World, ctx: dict[str, str]) -> object:
    return load_link(w.rt, ctx["link"]).status


def _proof_seen_at_the_counter(w: World) -> dict[str, str]:
    ctx = _waiting_for_proof(w)
    r = w.client.post(
        f"{API}/counter/links/{ctx['link']}/proof",
        headers=w.headers["clerk"],
        **_proof_body(w, "clerk", ctx),
    )
    assert r.status_code == 200, r.text
    return {"proof": r.json()["proof_id"]}


def _cells(*statuses: Cell) -> dict[str, Cell]:
    assert len(statuses) == len(ACTORS)
    return dict(zip(ACTORS, statuses, strict=True))


ROWS = [
    #                                   person other clerk clerkGZ review bankA bankB inst anon
    Row(
        "link an account",
        "POST",
        "/bank-links",
        _cells(202, 202, 403, 403, 403, 202, 202, 403, 401),
        request=_new_account,
        state=_bank_links,
    ),
    Row(
        "confirm a link a bank started (the person, in the app)",
        "POST",
        "/bank-links/{bank_link}/confirm",
        _cells(200, 404, 403, 403, 403, 422, 404, 403, 401),
        prepare=lambda w: w.pending_bank_link(),
        request=lambda w, actor, ctx: {"json": {}},
        state=_bank_link_status,
    ),
    Row(
        "confirm a link a bank started (the bank, with the person's code)",
        "POST",
        "/bank-links/{bank_link}/confirm",
        _cells(422, 404, 403, 403, 403, 200, 404, 403, 401),
        prepare=lambda w: w.pending_bank_link(),
        request=lambda w, actor, ctx: {"json": {"sms_code": ctx["code"]}},
        state=_bank_link_status,
    ),
    Row(
        "confirm a link the person started (the bank)",
        "POST",
        "/bank-links/{bank_link}/confirm",
        _cells(409, 404, 403, 403, 403, 200, 404, 403, 401),
        prepare=lambda w: w.app_started_link(),
        request=lambda w, actor, ctx: {"json": {}},
        state=_bank_link_status,
    ),
    Row(
        "the family behind a link not yet confirmed",
        "GET",
        "/bank-links/{bank_link}/family",
        _cells(403, 403, 403, 403, 403, 404, 404, 403, 401),
        prepare=lambda w: w.pending_bank_link(),
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
        state=_bank_link_status,
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
        state=_family_link_and_requests,
    ),
    Row(
        "one unbind request (made by bank A)",
        "GET",
        "/unbind-requests/{request}",
        _cells(200, 404, 200, 404, 200, 200, 404, 404, 401),
        prepare=_request_by_bank_a,
    ),
    # The counter desk.              person other clerk clerkGZ review bankA bankB inst anon
    Row(
        "counter: look a person up",
        "POST",
        "/counter/lookup",
        _cells(403, 403, 200, 404, 403, 403, 403, 403, 401),
        request=_counter_lookup,
    ),
    Row(
        "counter: unbind on a person's behalf",
        "POST",
        "/counter/unbind",
        _cells(403, 403, 200, 404, 403, 403, 403, 403, 401),
        prepare=lambda w: {"link": w.family_link()},
        request=_counter_unbind,
        state=_family_link_and_requests,
    ),
    Row(
        "counter: bind on two persons' behalf",
        "POST",
        "/counter/bind",
        _cells(403, 403, 201, 404, 403, 403, 403, 403, 401),
        prepare=_two_to_bind,
        request=_counter_bind,
        state=_family_links,
    ),
    Row(
        "counter: a minor's guardianship proof seen",
        "POST",
        "/counter/links/{link}/proof",
        _cells(403, 403, 200, 404, 403, 403, 403, 403, 401),
        prepare=_waiting_for_proof,
        request=_proof_body,
        state=_link_status,
    ),
    Row(
        "counter: the proof's receipt",
        "GET",
        "/counter/link-proofs/{proof}/receipt.pdf",
        _cells(403, 403, 200, 404, 403, 403, 403, 403, 401),
        prepare=_proof_seen_at_the_counter,
    ),
    Row(
        "counter: the unbind receipt",
        "GET",
        "/counter/unbind-requests/{request}/receipt.pdf",
        _cells(403, 403, 200, 404, 403, 403, 403, 403, 401),
        prepare=_unbound_at_the_counter,
    ),
]


def mismatches(world: World, row: Row) -> list[str]:
    """Every cell of ``row`` whose answer differs from its expectation, described."""
    wrong = []
    for actor in ACTORS:
        ctx = row.prepare(world)
        kwargs = row.request(world, actor, ctx)
        before = None if row.state is None else row.state(world, ctx)
        r = world.client.request(
            row.method, API + row.path.format(**ctx), headers=world.headers[actor], **kwargs
        )
        assert r.status_code != 500, r.text
        want = row.expect[actor]
        status, sees = want if isinstance(want, tuple) else (want, None)
        got_sees = None if sees is None else (row.sees is not None and ctx[row.sees] in r.text)
        if r.status_code != status or got_sees != sees:
            wrong.append(f"{actor}: expected {want}, got {r.status_code} {r.text[:160]}")
        if row.state is not None:
            after = row.state(world, ctx)
            if r.status_code >= 400 and after != before:
                wrong.append(
                    f"{actor}: refused with {r.status_code} but changed {before} -> {after}"
                )
            if r.status_code < 300 and after == before:
                wrong.append(f"{actor}: answered {r.status_code} but changed nothing ({after})")
    return wrong


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_authorization_matrix(rt: Runtime, client: TestClient, row: Row) -> None:
    wrong = mismatches(build_world(rt, client), row)
    assert not wrong, f"{row.method} {row.path}:\n" + "\n".join(wrong)


def test_a_wrong_expectation_is_reported(rt: Runtime, client: TestClient) -> None:
    """The matrix can fail: a row expecting the clerk of the region to be refused is
    reported for that cell, and only that one."""
    row = next(r for r in ROWS if r.path == "/counter/unbind")
    wrong_row = replace(row, expect={**row.expect, "clerk": 403})
    [only] = mismatches(build_world(rt, client), wrong_row)
    assert only.startswith("clerk: expected 403, got 200")


def test_every_counter_and_bank_endpoint_has_a_row(client: TestClient) -> None:
    """A new counter or bank endpoint without a row here fails until it gets one."""

    def shape(path: str) -> str:
        return re.sub(r"\{[^}]+\}", "{}", path)

    paths = client.get("/openapi.json").json()["paths"]
    served = {
        (method.upper(), shape(path))
        for path, operations in paths.items()
        if path.startswith((f"{API}/counter/", f"{API}/bank-links"))
        for method in operations
    }
    covered = {(row.method, shape(API + row.path)) for row in ROWS}
    assert len(served) == 11
    assert served <= covered, served - covered
