"""Concurrent binds cannot exceed the limits: the persons rows are locked while
counting (PostgreSQL), and the partial unique indexes back that up (both databases)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from qinqing.access.principal import Principal
from qinqing.family import service
from qinqing.family.models import FamilyLink
from qinqing.kit.errors import DomainError
from qinqing.notify.models import Notification
from qinqing.runtime import Runtime
from support.family import Party, bind, new_person, principal_of


def race(rt: Runtime, attempts: list[Callable[[Any], object]]) -> list[str]:
    """Run each attempt in its own thread and unit of work, all released at once."""
    barrier = threading.Barrier(len(attempts))
    results: list[str] = []
    lock = threading.Lock()

    def run(attempt: Callable[[Any], object]) -> None:
        barrier.wait()
        try:
            with rt.db.unit_of_work() as s:
                attempt(s)
            outcome = "ok"
        except DomainError as exc:
            outcome = exc.code
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run, args=(a,)) for a in attempts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return sorted(results)


@pytest.fixture
def slow_counting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hold the decision open a moment so the racers really overlap."""
    original = service.open_links_of

    def slow(*args: Any, **kwargs: Any) -> Any:
        found = original(*args, **kwargs)
        time.sleep(0.3)
        return found

    monkeypatch.setattr(service, "open_links_of", slow)


def _bind(
    principal: Principal, rt: Runtime, member: Party, relation: str, aid: bool = False
) -> Callable[[Any], object]:
    def attempt(s: Any) -> object:
        return service.bind(
            s,
            rt,
            principal,
            member_id_number=member.id_number,
            member_name=member.name,
            relation=relation,
            mutual_aid=aid,
        )

    return attempt


def _pg_only(rt: Runtime) -> None:
    if rt.db.is_sqlite:
        pytest.skip("row-lock races are a PostgreSQL matter (SQLite serializes writers)")


def _open_links(rt: Runtime) -> int:
    with rt.db.unit_of_work() as s:
        return int(
            s.execute(
                select(func.count()).select_from(FamilyLink).where(FamilyLink.status != "ended")
            ).scalar_one()
        )


@pytest.mark.usefixtures("slow_counting")
def test_two_spouses_at_once(rt: Runtime, client: TestClient) -> None:
    _pg_only(rt)
    holder = new_person(rt, client=client)
    a = new_person(rt, born=date(1986, 1, 1), sex="F", account=False)
    b = new_person(rt, born=date(1987, 1, 1), sex="F", account=False)
    p = principal_of(rt, holder.id)
    results = race(rt, [_bind(p, rt, a, "spouse"), _bind(p, rt, b, "spouse")])
    assert results == ["RELATION_ALREADY_BOUND", "ok"]
    assert _open_links(rt) == 1


@pytest.mark.usefixtures("slow_counting")
def test_the_last_free_place_at_once(rt: Runtime, client: TestClient) -> None:
    _pg_only(rt)
    holder = new_person(rt, client=client)
    kids = [new_person(rt, born=date(2000, 1, 1 + i), sex="F", account=False) for i in range(6)]
    for kid in kids[:4]:
        assert bind(client, holder.headers, kid.id_number, kid.name, "child").status_code == 201
    p = principal_of(rt, holder.id)
    results = race(rt, [_bind(p, rt, kids[4], "child"), _bind(p, rt, kids[5], "child")])
    assert results == ["MEMBER_LIMIT_REACHED", "ok"]
    assert _open_links(rt) == 5


@pytest.mark.usefixtures("slow_counting")
def test_one_direction_across_two_holders_at_once(
    rt: Runtime, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A binds B with mutual aid while B binds C with mutual aid: the lock on B's
    row orders them, so B never ends up both receiving and giving aid."""
    _pg_only(rt)
    original = rt.policies.policy
    monkeypatch.setattr(
        rt.policies,
        "policy",
        lambda code: original(code).model_copy(update={"one_direction": True}),
    )
    a = new_person(rt, client=client)
    b = new_person(rt, born=date(1986, 1, 1), sex="F", client=client)
    c = new_person(rt, born=date(2015, 1, 1), sex="F", account=False)
    results = race(
        rt,
        [
            _bind(principal_of(rt, a.id), rt, b, "spouse", aid=True),
            _bind(principal_of(rt, b.id), rt, c, "child", aid=True),
        ],
    )
    assert results == ["ONE_DIRECTION", "ok"]


@pytest.mark.usefixtures("slow_counting")
def test_both_directions_at_once(rt: Runtime, client: TestClient) -> None:
    _pg_only(rt)
    a = new_person(rt, client=client)
    b = new_person(rt, born=date(1986, 1, 1), sex="F", client=client)
    results = race(
        rt,
        [
            _bind(principal_of(rt, a.id), rt, b, "spouse"),
            _bind(principal_of(rt, b.id), rt, a, "spouse"),
        ],
    )
    assert results == ["DUPLICATE_LINK", "ok"]
    assert _open_links(rt) == 1


def test_the_unique_indexes_back_up_the_rules(
    rt: Runtime, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were the rules to miss a link, the partial unique indexes still refuse it,
    with the same codes, and the refused bind leaves nothing behind."""
    holder = new_person(rt, client=client)
    a = new_person(rt, born=date(1986, 1, 1), sex="F", account=False)
    b = new_person(rt, born=date(1987, 1, 1), sex="F", account=False)
    assert bind(client, holder.headers, a.id_number, a.name, "spouse").status_code == 201
    monkeypatch.setattr(service, "open_links_of", lambda *args, **kwargs: [])
    with rt.db.unit_of_work() as s:
        notes = int(s.execute(select(func.count()).select_from(Notification)).scalar_one())

    r = bind(client, holder.headers, b.id_number, b.name, "spouse")
    assert r.status_code == 409 and r.json()["code"] == "RELATION_ALREADY_BOUND"
    r = bind(client, holder.headers, a.id_number, a.name, "child")
    assert r.status_code == 409 and r.json()["code"] == "DUPLICATE_LINK"
    assert _open_links(rt) == 1
    with rt.db.unit_of_work() as s:
        assert int(s.execute(select(func.count()).select_from(Notification)).scalar_one()) == notes
