"""The causes of the deadlocks, one by one, on PostgreSQL (SQLite has no row locks:
``BEGIN IMMEDIATE`` serializes its writers).

A row lock that a writer takes must not make another writer's foreign-key check
wait: PostgreSQL checks a new row's foreign keys with ``FOR KEY SHARE`` on the
referenced row, which ``FOR UPDATE`` blocks and ``FOR NO KEY UPDATE`` does not.
Each test holds a lock as the service takes it and, in a second transaction
with a ``lock_timeout``, writes a row that references the locked one: before the
fix that second write waited (and, with the first one waiting back, deadlocked).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from qinqing.audit.actor import SYSTEM
from qinqing.contributions.service import close_month
from qinqing.family.models import FamilyLink
from qinqing.family.service import bind_persons, lock_persons
from qinqing.family.views import pair_key
from qinqing.kit.db import on_citus
from qinqing.notify.service import enqueue
from qinqing.persons.models import Person
from qinqing.persons.service import find_by_id_number
from qinqing.runtime import Runtime
from qinqing.unbind import service as unbind_service
from support.accounts import OPERATOR, add_person, by_id, id_number


@pytest.fixture(autouse=True)
def _postgres_only(rt: Runtime) -> None:
    if rt.db.is_sqlite:
        pytest.skip("row locks are a PostgreSQL matter (SQLite serializes writers)")


@contextmanager
def impatient(rt: Runtime) -> Iterator[Session]:
    """A transaction that fails (55P03) instead of waiting for a row lock."""
    with rt.db.unit_of_work() as s:
        s.execute(text("SET LOCAL lock_timeout = '2s'"))
        yield s


def link_row(rt: Runtime, holder: Person, member: Person) -> FamilyLink:
    now = rt.clock.now()
    return FamilyLink(
        holder_id=holder.id,
        member_id=member.id,
        pair_key=pair_key(holder.id, member.id),
        relation="child",
        mutual_aid=False,
        status="active",
        region_code=holder.region_code,
        created_at=now,
        created_by_kind="person",
        created_by_id=str(holder.id),
        created_channel="app",
        consent_required=False,
        activated_at=now,
        updated_at=now,
    )


def notice(s: Session, person_id: uuid.UUID, rt: Runtime) -> None:
    enqueue(s, person_id=person_id, kind="test", at=rt.clock.now())
    s.flush()


@pytest.mark.parametrize("who", ["contribution", "binding", "unbind"])
def test_a_locked_person_does_not_block_foreign_keys_to_it(rt: Runtime, who: str) -> None:
    person, number = add_person(rt)
    locks: dict[str, Callable[[Session], object]] = {
        # post_contribution's person lock
        "contribution": lambda s: find_by_id_number(s, rt.vault, number, lock=True),
        # bind_persons' and consent's
        "binding": lambda s: lock_persons(s, [person.id]),
        # the unbind submission's
        "unbind": lambda s: unbind_service._lock_person(s, person.id),
    }
    with rt.db.unit_of_work() as holder_tx:
        locks[who](holder_tx)
        # A payment's INSERT INTO payments/notifications checks persons FOR KEY SHARE.
        with impatient(rt) as s:
            notice(s, person.id, rt)


def test_closing_a_month_does_not_block_foreign_keys_to_regions(rt: Runtime) -> None:
    holder, _ = add_person(rt, seq=1)
    member, _ = add_person(rt, seq=2)
    rt.clock.set(datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    with rt.db.unit_of_work() as closing:
        close_month(closing, rt, "2026-11", OPERATOR)  # holds every region row
        with impatient(rt) as s:
            # A new link (like a new person, account or request) references its region.
            s.add(link_row(rt, holder, member))
            s.flush()


def test_closing_a_month_while_a_binding_holds_its_persons(rt: Runtime) -> None:
    """The old order deadlocked here: the closing held the regions FOR UPDATE and
    waited for a person the binding held; the binding's new link then waited for
    its region. Now the binding's insert passes, it commits, the closing goes on."""
    if on_citus(rt.db):
        pytest.skip(
            "on Citus the closing waits in the workers' backends, which the coordinator's "
            "pg_blocking_pids does not show"
        )
    holder, _ = add_person(rt, seq=1)
    member, _ = add_person(rt, number=id_number(born=date(2012, 5, 1), seq=2))
    rt.clock.set(datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    outcome: list[object] = []
    pid: list[int] = []

    def closing() -> None:
        try:
            with rt.db.unit_of_work() as s:
                pid.append(int(s.execute(text("SELECT pg_backend_pid()")).scalar_one()))
                outcome.append(close_month(s, rt, "2026-11", OPERATOR))
        except BaseException as exc:
            outcome.append(exc)

    with rt.db.unit_of_work() as binding:
        lock_persons(binding, [holder.id, member.id])
        worker = threading.Thread(target=closing)
        worker.start()
        wait_until_blocked(rt, pid)
        link = bind_persons(
            binding,
            rt,
            actor=SYSTEM,
            holder_id=holder.id,
            member_id=member.id,
            relation="child",
            mutual_aid=False,
        )
    worker.join(60)
    assert not worker.is_alive()
    assert not isinstance(outcome[0], BaseException), outcome
    with rt.db.unit_of_work() as s:
        # A young child bound by someone who is no registered guardian waits for proof.
        assert by_id(s, FamilyLink, link.id).status == "pending_proof"
        # The closing saw both persons once the binding had committed.
        assert {s.get_one(Person, p.id).status for p in (holder, member)} == {"arrears"}


def wait_until_blocked(rt: Runtime, pid: list[int]) -> None:
    """Until the closing's backend waits for a lock (bounded; not a timing assertion)."""
    for _ in range(600):
        if pid:
            with rt.db.engine.connect() as conn:
                blocked = conn.execute(
                    text("SELECT cardinality(pg_blocking_pids(:p)) > 0"), {"p": pid[0]}
                ).scalar_one()
            if blocked:
                return
        threading.Event().wait(0.05)
    raise AssertionError("the closing never waited for the binding's persons")
