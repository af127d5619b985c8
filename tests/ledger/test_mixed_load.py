"""Mixed load through the real API: contributions, authorizations, settles, voids,
batches, bindings with consent and unbinds of the same holders at the same time — with hold expiry and
a month closing run by the operator meanwhile — never answer 5xx, never
deadlock, and leave a ledger that reconciles.

The writers share rows on purpose: a contribution locks the holder it credits
and their personal account, a payment that account and the link, an unbind the
link and the holder. With the old lock order (contributions took the person
``FOR UPDATE``, which a payment's foreign-key check ``FOR KEY SHARE`` waits for)
this load deadlocked within seconds on PostgreSQL and answered 500.

Bounded: a fixed number of requests per thread, no timing assertions. On SQLite
writers are serialized, so the same load must simply all succeed or be refused
cleanly.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

from fastapi.testclient import TestClient

from qinqing.accounting.reconcile import reconcile
from qinqing.contributions.service import close_month
from qinqing.kit.errors import DomainError
from qinqing.payments.service import expire_holds
from qinqing.runtime import Runtime
from support.accounts import OPERATOR, add_client, id_number
from support.ledger import API, fund, institution_headers
from support.unbind import make_link, party, pin_verification

HOLDERS = 4
THREADS = 8
REQUESTS_PER_THREAD = 24
PERIODS = [f"2025-{m:02d}" for m in range(1, 13)] + [f"2026-{m:02d}" for m in range(1, 12)]


@dataclass
class Load:
    holders: list[tuple[str, dict[str, str]]]  # ID number, the holder's own token
    pairs: list[tuple[str, str]]  # (holder ID number, member ID number) with mutual aid
    unbindable: list[tuple[str, dict[str, str]]]  # (link id, the holder's token)
    # (the holder's token, a father to bind with mutual aid, the father's token)
    to_bind: list[tuple[dict[str, str], str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    periods: dict[str, list[str]] = field(default_factory=dict)
    open_payments: list[str] = field(default_factory=list)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


def _setup(rt: Runtime, client: TestClient) -> Load:
    holders: list[tuple[str, dict[str, str]]] = []
    pairs: list[tuple[str, str]] = []
    unbindable: list[tuple[str, dict[str, str]]] = []
    to_bind: list[tuple[dict[str, str], str, dict[str, str]]] = []
    long_ago = rt.clock.now() - timedelta(days=400)
    for h in range(HOLDERS):
        seq = 100 + h * 10
        holder, h_headers = party(
            rt, client, name="王建国", phone=f"1380013{seq:04d}", seq=seq, scheme="employee"
        )
        fund(rt, holder.id, 5_000_000)
        holder_number = id_number(seq=seq)
        holders.append((holder_number, h_headers))
        for k in (1, 2):
            member, _ = party(
                rt,
                client,
                name="李秀英",
                phone=f"1390013{seq + k:04d}",
                seq=seq + k,
                scheme="resident",
                pin=None,
            )
            link = make_link(
                rt, holder, member, relation="child" if k == 1 else "mother", activated_at=long_ago
            )
            if k == 1:
                pairs.append((holder_number, id_number(seq=seq + k)))
            else:
                # Paid from, and unbound, while everything else runs.
                pairs.append((holder_number, id_number(seq=seq + k)))
                unbindable.append((str(link.id), h_headers))
        # Bound (and consented to) during the load.
        father_number = id_number(born=date(1950, 3, 1), seq=seq + 5, sex="M")
        _, f_headers = party(
            rt,
            client,
            name="王德福",
            phone=f"1370013{seq + 5:04d}",
            seq=seq + 5,
            number=father_number,
            scheme="resident",
        )
        to_bind.append((h_headers, father_number, f_headers))
    load = Load(holders, pairs, unbindable, to_bind=to_bind)
    load.periods = {number: list(PERIODS) for number, _ in holders}
    return load


def _run_load(rt: Runtime, client: TestClient) -> Load:
    load = _setup(rt, client)
    institution = institution_headers(rt, client)
    cid, secret = add_client(rt, "collector", "150600")
    r = client.post(
        f"{API}/auth/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
    )
    collector = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def record(kind: str, status: int, text: str) -> None:
        with load.lock:
            load.statuses[(kind, status)] += 1
            if status >= 500:
                load.errors.append(f"{kind} {status} {text[:300]}")

    def contribute(rnd: random.Random) -> None:
        number, _ = rnd.choice(load.holders)
        with load.lock:
            if not load.periods[number]:
                return
            period = load.periods[number].pop()
        r = client.post(
            f"{API}/contributions",
            json={"id_number": number, "period": period, "base_fen": 600_000},
            headers=collector,
        )
        record("contribution", r.status_code, r.text)

    def authorize(rnd: random.Random, i: int) -> None:
        holder, member = rnd.choice(load.pairs)
        r = client.post(
            f"{API}/payments/authorize",
            json={
                "holder_id_number": holder,
                "member_id_number": member,
                "amount_fen": rnd.randint(100, 5_000),
                "reference": f"LOAD-{i}-{rnd.random()}",
            },
            headers=institution,
        )
        record("authorize", r.status_code, r.text)
        if r.status_code == 201:
            with load.lock:
                load.open_payments.append(r.json()["payment_id"])

    def resolve(rnd: random.Random) -> None:
        with load.lock:
            if not load.open_payments:
                return
            pid = load.open_payments.pop(rnd.randrange(len(load.open_payments)))
        if rnd.random() < 0.7:
            r = client.post(
                f"{API}/payments/{pid}/settle", json={"amount_fen": 50}, headers=institution
            )
            record("settle", r.status_code, r.text)
        else:
            r = client.post(f"{API}/payments/{pid}/void", headers=institution)
            record("void", r.status_code, r.text)

    def batch(rnd: random.Random, i: int) -> None:
        ops: list[dict[str, object]] = [
            {
                "op": "authorize",
                "holder_id_number": holder,
                "member_id_number": member,
                "amount_fen": rnd.randint(100, 2_000),
                "reference": f"BATCH-{i}-{k}-{rnd.random()}",
            }
            for k, (holder, member) in enumerate(rnd.sample(load.pairs, 3))
        ]
        with load.lock:
            if load.open_payments:
                pid = load.open_payments.pop(rnd.randrange(len(load.open_payments)))
                ops.append({"op": "settle", "payment_id": pid, "amount_fen": 10})
        r = client.post(f"{API}/payments/batch", json={"operations": ops}, headers=institution)
        record("batch", r.status_code, r.text)

    def operator_job(n: int) -> None:
        # The CLI's jobs, mid-load: expiring holds (as if run past the hold expiry,
        # so every open hold goes) and closing a month that contributions are
        # being posted for.
        if n == 0:
            later = rt.clock.now() + timedelta(hours=73)
            expired = rt.db.run(lambda s: expire_holds(s, later))
            record("expire", 200 if expired >= 0 else 500, "")
        else:
            try:
                rt.db.run(lambda s: close_month(s, rt, "2026-10", OPERATOR))
                record("close-month", 200, "")
            except DomainError as exc:  # the other thread closed it first
                record("close-month", exc.status, exc.code)

    def bind_and_consent(rnd: random.Random) -> None:
        with load.lock:
            if not load.to_bind:
                return
            holder, father, f_headers = load.to_bind.pop(rnd.randrange(len(load.to_bind)))
        body = {
            "member_id_number": father,
            "member_name": "王德福",
            "relation": "father",
            "mutual_aid": True,
        }
        r = client.post(f"{API}/me/family", json=body, headers=holder)
        record("bind", r.status_code, r.text)
        if r.status_code == 201:
            r = client.post(
                f"{API}/family/links/{r.json()['id']}/consent",
                json={"verification": pin_verification()},
                headers=f_headers,
            )
            record("consent", r.status_code, r.text)

    def unbind(rnd: random.Random) -> None:
        link_id, headers = rnd.choice(load.unbindable)
        r = client.post(
            f"{API}/family/links/{link_id}/unbind",
            json={"verification": pin_verification(), "reason": "load"},
            headers=headers,
        )
        record("unbind", r.status_code, r.text)

    def worker(n: int) -> None:
        rnd = random.Random(n)
        # Weights: contributions and payments dominate, as in production.
        kinds = (
            ["contribute"] * 2 + ["authorize"] * 2 + ["resolve"] * 2 + ["unbind", "batch", "bind"]
        )
        barrier.wait()
        try:
            for i in range(REQUESTS_PER_THREAD):
                if n in (0, 1, 2) and i == REQUESTS_PER_THREAD // 2:
                    operator_job(n)
                kind = rnd.choice(kinds)
                if kind == "contribute":
                    contribute(rnd)
                elif kind == "authorize":
                    authorize(rnd, n * 1000 + i)
                elif kind == "resolve":
                    resolve(rnd)
                elif kind == "batch":
                    batch(rnd, n * 1000 + i)
                elif kind == "bind":
                    bind_and_consent(rnd)
                else:
                    unbind(rnd)
        except BaseException as exc:  # a failed request must fail the test, not vanish
            with load.lock:
                load.errors.append(repr(exc))

    barrier = threading.Barrier(THREADS)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads), "the load did not finish"
    return load


def test_mixed_load_never_answers_5xx_and_reconciles(rt: Runtime, client: TestClient) -> None:
    load = _run_load(rt, client)
    assert load.errors == []
    assert all(status < 500 for _, status in load.statuses), load.statuses
    # The load really ran every kind of write, and most of it succeeded.
    succeeded = {kind for (kind, status), n in load.statuses.items() if status in (200, 201)}
    kinds = {"contribution", "authorize", "settle", "batch", "expire", "bind", "consent"}
    assert kinds <= succeeded, load.statuses
    assert load.statuses[("close-month", 200)] == 1, load.statuses
    # No transaction had to be retried for a deadlock: the lock order prevents them.
    assert rt.db.conflicts["40P01"] == 0, dict(rt.db.conflicts)
    with rt.db.unit_of_work() as s:
        assert reconcile(s) == []
