"""Institution probes (security review): an institution may not use
``POST /payments/authorize`` with two bare ID numbers as an oracle of who is
linked to whom, who is an active employee, or whose balance or yearly limit is
short.

On both databases (on PostgreSQL through the fast path: the route when the
caller is cold, the ASGI lane when warm; the batch and vouchers on the engine):

- every refusal about the persons is one answer, ``409 MUTUAL_AID_UNAVAILABLE``,
  with the same body, and the audit log has the real reason (ids and codes only);
- an institution the holder showed the member's family e-voucher (redeemed or
  paid with, by this institution) is told the real reason, and is not counted;
- past ``authorize_failures_per_hour`` such refusals, the institution's bare-ID
  authorizations answer ``429 AUTHORIZE_RATE_LIMITED`` with ``Retry-After`` until
  its hour is over; a batch counts each refused operation and stops at the limit.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from qinqing.access.principal import Principal
from qinqing.accounting.reconcile import reconcile
from qinqing.audit import service as audit
from qinqing.audit.models import AuditEntry
from qinqing.auth.models import AccessToken, LoginThrottle
from qinqing.auth.tokens import principal_from_token, token_digest
from qinqing.kit.clock import FrozenClock
from qinqing.kit.errors import DomainError
from qinqing.payments import service as payments
from qinqing.payments.fast import FastPath
from qinqing.runtime import Runtime
from support.accounts import id_number
from support.ledger import API, Family, fund, institution_headers, make_family
from support.vouchers import Scene, pay, redeem, scene, token_for

UNKNOWN = id_number(area="150602", born=date(1975, 3, 3), seq=444)
PROBLEM_KEYS = {"type", "title", "status", "code", "detail"}
PROBE_DETAIL_KEYS = {"code", "answered", "holder_id", "member_id", "link_id", "failures"}


@pytest.fixture(autouse=True)
def _long_tokens(rt: Runtime) -> Iterator[None]:
    # Client tokens that outlive the hours these tests move the clock by.
    rt.settings.client_token_ttl_seconds = 30 * 24 * 3600
    rt.settings.access_token_ttl_seconds = 30 * 24 * 3600
    yield
    with rt.db.unit_of_work() as s:
        assert reconcile(s) == []
        assert audit.verify(s).ok


@pytest.fixture
def inst(rt: Runtime, client: TestClient) -> dict[str, str]:
    return institution_headers(rt, client)


def body(holder: str, member: str, amount: int, ref: str) -> dict[str, Any]:
    return {
        "holder_id_number": holder,
        "member_id_number": member,
        "amount_fen": amount,
        "reference": ref,
    }


def authorize(
    client: TestClient, headers: dict[str, str], holder: str, member: str, amount: int, ref: str
) -> Any:
    return client.post(
        f"{API}/payments/authorize", json=body(holder, member, amount, ref), headers=headers
    )


def client_id(rt: Runtime, headers: dict[str, str]) -> str:
    digest = token_digest(headers["Authorization"].removeprefix("Bearer "))
    with rt.db.read_only() as s:
        subject: str = s.execute(
            select(AccessToken.subject_id).where(AccessToken.token_hash == digest)
        ).scalar_one()
        return subject


def entries(rt: Runtime, cid: str, action: str = "payment.authorize_refused") -> list[AuditEntry]:
    with rt.db.unit_of_work() as s:  # (not expired on commit: read after it closes)
        return list(
            s.execute(
                select(AuditEntry)
                .where(AuditEntry.action == action, AuditEntry.actor_id == cid)
                .order_by(AuditEntry.seq)
            ).scalars()
        )


def counted(rt: Runtime, cid: str) -> int:
    with rt.db.read_only() as s:
        row = s.get(LoginThrottle, f"probe:{cid}")
        return 0 if row is None else row.failures


def fast_of(client: TestClient) -> FastPath | None:
    fast: FastPath | None = client.app.state.fast_payments  # type: ignore[attr-defined]
    return fast


def forget_principals(client: TestClient) -> None:
    """The next request is a cold one (the route, not the lane)."""
    fast = fast_of(client)
    if fast is not None:
        fast.principals = type(fast.principals)()


# --- one answer --------------------------------------------------------------------


def test_every_refusal_about_the_persons_is_one_answer_and_the_audit_has_the_reason(
    rt: Runtime, client: TestClient, inst: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    linked = make_family(rt, seq=1)
    fund(rt, linked.holder_id, 10_000)
    unlinked = make_family(rt, seq=2, mutual_aid=False)
    fund(rt, unlinked.holder_id, 10_000)
    limited = make_family(rt, seq=3, yearly_limit_fen=1_000)
    fund(rt, limited.holder_id, 10_000)
    arrears = make_family(rt, seq=4, holder_status="arrears")
    fund(rt, arrears.holder_id, 10_000)
    resident = make_family(rt, seq=5, holder_scheme="resident")
    elsewhere = make_family(rt, seq=6, region="440100", area="440106")
    fund(rt, elsewhere.holder_id, 10_000, region="440100")
    probes: list[tuple[str, str, int, str]] = [
        (linked.holder_number, linked.member_number, 50_000, "INSUFFICIENT_BALANCE"),
        (unlinked.holder_number, unlinked.member_number, 100, "NO_MUTUAL_AID_LINK"),
        (linked.holder_number, limited.member_number, 100, "NO_MUTUAL_AID_LINK"),
        (limited.holder_number, limited.member_number, 2_000, "YEARLY_LIMIT_EXCEEDED"),
        (arrears.holder_number, arrears.member_number, 100, "PAYER_NOT_ACTIVE"),
        (resident.holder_number, resident.member_number, 100, "HOLDER_NOT_EMPLOYEE"),
        (linked.holder_number, UNKNOWN, 100, "PERSON_NOT_FOUND"),
        (elsewhere.holder_number, elsewhere.member_number, 100, "PERSON_NOT_FOUND"),
    ]
    fast = fast_of(client)
    calls: list[str] = []
    if fast is not None:  # PostgreSQL: each single call is one function call
        original = FastPath._call

        async def spying(self: FastPath, *args: Any, **kwargs: Any) -> Any:
            calls.append(args[1].split("(")[0])
            return await original(self, *args, **kwargs)

        monkeypatch.setattr(FastPath, "_call", spying)

    answers = []
    forget_principals(client)
    for n, (h, m, amount, _) in enumerate(probes):
        if n == 4:
            forget_principals(client)  # a cold one again (the route; the rest the lane)
        headers = {**inst, "Idempotency-Key": f"probe-{n}"} if n % 3 == 0 else inst
        r = authorize(client, headers, h, m, amount, f"P-{n}")
        assert r.headers["content-type"].startswith("application/problem+json")
        answers.append((r.status_code, r.json()))
    assert answers[0][0] == 409 and answers[0][1]["code"] == "MUTUAL_AID_UNAVAILABLE"
    assert set(answers[0][1]) == PROBLEM_KEYS
    assert all(a == answers[0] for a in answers), answers
    if fast is not None:
        assert len(calls) == len(probes)

    # The same in a batch: one code, one message.
    r = client.post(
        f"{API}/payments/batch",
        json={
            "operations": [
                {"op": "authorize", **body(h, m, amount, f"B-{n}")}
                for n, (h, m, amount, _) in enumerate(probes)
            ]
        },
        headers=inst,
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert {(x["ok"], x["code"], x["message"]) for x in results} == {
        (False, "MUTUAL_AID_UNAVAILABLE", answers[0][1]["title"])
    }

    # The audit log has each real reason, ids and codes only.
    cid = client_id(rt, inst)
    found = entries(rt, cid)
    reasons = [p[3] for p in probes]
    assert [e.details["code"] for e in found] == reasons + reasons
    assert [e.details["failures"] for e in found] == list(range(1, 2 * len(probes) + 1))
    assert counted(rt, cid) == 2 * len(probes)
    for e in found:
        assert (e.channel, e.actor_kind, e.subject_kind, e.subject_id) == (
            "institution",
            "client",
            "api_client",
            cid,
        )
        assert set(e.details) == PROBE_DETAIL_KEYS
        assert e.details["answered"] == "MUTUAL_AID_UNAVAILABLE"
        text = json.dumps(e.details, ensure_ascii=False) + (e.reason or "")
        for fam in (linked, unlinked, limited, arrears, resident, elsewhere):
            assert fam.holder_number not in text and fam.member_number not in text
        assert UNKNOWN not in text and "张" not in text
    first = found[0].details
    assert (first["holder_id"], first["member_id"], first["link_id"]) == (
        str(linked.holder_id),
        str(linked.member_id),
        str(linked.link_id),
    )
    no_link = found[1].details
    assert no_link["link_id"] is None and no_link["holder_id"] == str(unlinked.holder_id)
    unknown = found[6].details
    assert unknown["holder_id"] == str(linked.holder_id) and unknown["member_id"] is None


def test_request_shaped_refusals_stay_and_are_not_counted(
    rt: Runtime, client: TestClient, inst: dict[str, str]
) -> None:
    fam = make_family(rt)
    fund(rt, fam.holder_id, 10_000)
    assert (
        authorize(client, inst, fam.holder_number, fam.member_number, 100, "R1").status_code == 201
    )
    # A reference used before: refused before anything about the persons, the same
    # for a linked pair and an unknown number.
    dup = authorize(client, inst, fam.holder_number, fam.member_number, 100, "R1")
    stranger = authorize(client, inst, fam.holder_number, UNKNOWN, 100, "R1")
    assert (dup.status_code, dup.json()) == (stranger.status_code, stranger.json())
    assert dup.json()["code"] == "PAYMENT_REFERENCE_EXISTS"
    # An ID number that does not parse.
    bad = authorize(client, inst, fam.holder_number[:-1] + "0", fam.member_number, 100, "R2")
    assert bad.json()["code"].startswith("ID_NUMBER_"), bad.text
    assert counted(rt, client_id(rt, inst)) == 0
    assert entries(rt, client_id(rt, inst)) == []


# --- a voucher shown ----------------------------------------------------------------


def _shown(rt: Runtime, client: TestClient, **link: Any) -> tuple[Scene, str, str]:
    s = scene(rt, client, funds_fen=10_000, **link)
    r = redeem(client, s.inst, token_for(client, s))  # the institution claims it
    assert r.status_code == 200, r.text
    return s, s.made.holder.id_number, s.made.member.id_number


def test_an_institution_shown_the_members_voucher_is_told_the_real_reason(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    s, h, m = _shown(rt, client, yearly_limit_fen=20_000)
    for cold in (True, False):
        if cold:
            forget_principals(client)
        r = authorize(client, s.inst, h, m, 15_000, f"S-{cold}")
        assert (r.status_code, r.json()["code"]) == (409, "INSUFFICIENT_BALANCE")
    r = authorize(client, s.inst, h, m, 25_000, "S-limit")
    assert (r.status_code, r.json()["code"]) == (409, "YEARLY_LIMIT_EXCEEDED")
    # Paying by the voucher itself: the holder shows it, the real reason too.
    r = pay(client, s.inst, token_for(client, s), 15_000, "S-token")
    assert (r.status_code, r.json()["code"]) == (409, "INSUFFICIENT_BALANCE")
    # In a batch as well.
    r = client.post(
        f"{API}/payments/batch",
        json={"operations": [{"op": "authorize", **body(h, m, 15_000, "S-batch")}]},
        headers=s.inst,
    )
    assert r.json()["results"][0]["code"] == "INSUFFICIENT_BALANCE"
    # Nothing of it is a probe.
    cid = client_id(rt, s.inst)
    assert counted(rt, cid) == 0 and entries(rt, cid) == []
    # The voucher speaks for its holder and member only, to its institution only.
    other_pair = authorize(client, s.inst, h, UNKNOWN, 100, "S-other")
    assert other_pair.json()["code"] == "MUTUAL_AID_UNAVAILABLE"
    other = institution_headers(rt, client)
    r = authorize(client, other, h, m, 15_000, "S-elsewhere")
    assert (r.status_code, r.json()["code"]) == (409, "MUTUAL_AID_UNAVAILABLE")
    # A success is a success either way.
    assert authorize(client, other, h, m, 1_000, "S-ok").status_code == 201
    # A day after it was shown, the voucher no longer speaks.
    clock.advance(timedelta(hours=rt.settings.authorize_voucher_hours, seconds=1))
    forget_principals(client)
    r = authorize(client, s.inst, h, m, 15_000, "S-later")
    assert (r.status_code, r.json()["code"]) == (409, "MUTUAL_AID_UNAVAILABLE")
    assert [e.details["code"] for e in entries(rt, cid)] == [
        "PERSON_NOT_FOUND",
        "INSUFFICIENT_BALANCE",
    ]


# --- the throttle -------------------------------------------------------------------


def test_past_the_limit_bare_authorizations_answer_429_until_the_hour_is_over(
    rt: Runtime, client: TestClient, clock: FrozenClock, inst: dict[str, str]
) -> None:
    rt.settings.authorize_failures_per_hour = 3
    good = make_family(rt, seq=1)
    fund(rt, good.holder_id, 100_000)
    plain = make_family(rt, seq=2, mutual_aid=False)
    held = authorize(client, inst, good.holder_number, good.member_number, 1_000, "T-0")
    assert held.status_code == 201
    for n in range(3):
        r = authorize(client, inst, plain.holder_number, plain.member_number, 100, f"T-{n + 1}")
        assert r.json()["code"] == "MUTUAL_AID_UNAVAILABLE"
    clock.advance(timedelta(minutes=10))
    for n, cold in enumerate((True, False)):
        if cold:
            forget_principals(client)
        # Even an authorization that would succeed.
        r = authorize(client, inst, good.holder_number, good.member_number, 100, f"T-x{n}")
        assert r.status_code == 429, r.text
        assert r.headers["Retry-After"] == "3000"  # the hour began with the first refusal
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "AUTHORIZE_RATE_LIMITED" and r.json()["retry_after"] == 3000
    keyed = {**inst, "Idempotency-Key": "after-the-hour"}
    r = authorize(client, keyed, good.holder_number, good.member_number, 100, "T-keyed")
    assert r.status_code == 429
    # Settling and voiding are not probes; another institution is not held back.
    pid = held.json()["payment_id"]
    assert client.post(f"{API}/payments/{pid}/void", headers=inst).status_code == 200
    other = institution_headers(rt, client)
    assert (
        authorize(client, other, good.holder_number, good.member_number, 100, "O").status_code
        == 201
    )
    cid = client_id(rt, inst)
    assert counted(rt, cid) == 3  # a 429 is not counted
    throttled = entries(rt, cid, "payment.authorize_throttled")
    assert [e.details for e in throttled] == [{"failures": 3, "limit": 3}]
    # The hour is over: answered again (the refused keyed request kept no key).
    clock.advance(timedelta(minutes=50))
    r = authorize(client, keyed, good.holder_number, good.member_number, 100, "T-keyed")
    assert r.status_code == 201, r.text
    r = authorize(client, inst, plain.holder_number, plain.member_number, 100, "T-5")
    assert r.json()["code"] == "MUTUAL_AID_UNAVAILABLE"
    assert counted(rt, cid) == 1  # a new window


def test_a_throttled_institution_still_pays_by_voucher(rt: Runtime, client: TestClient) -> None:
    rt.settings.authorize_failures_per_hour = 1
    s, h, m = _shown(rt, client)
    plain = make_family(rt, seq=7, mutual_aid=False)
    r = authorize(client, s.inst, plain.holder_number, plain.member_number, 100, "V-1")
    assert r.json()["code"] == "MUTUAL_AID_UNAVAILABLE"
    r = authorize(client, s.inst, h, m, 100, "V-2")
    assert r.status_code == 429 and r.json()["code"] == "AUTHORIZE_RATE_LIMITED"
    r = pay(client, s.inst, token_for(client, s), 100, "V-3")
    assert r.status_code == 201, r.text


def _batch(client: TestClient, inst: dict[str, str], ops: list[dict[str, Any]]) -> list[Any]:
    r = client.post(f"{API}/payments/batch", json={"operations": ops}, headers=inst)
    assert r.status_code == 200, r.text
    return list(r.json()["results"])


def test_a_batch_counts_each_failure_and_stops_at_the_limit(
    rt: Runtime, client: TestClient, inst: dict[str, str]
) -> None:
    rt.settings.authorize_failures_per_hour = 3
    good = make_family(rt, seq=1)
    fund(rt, good.holder_id, 100_000)
    plain = make_family(rt, seq=2, mutual_aid=False)

    def probe(ref: str) -> dict[str, Any]:
        return {"op": "authorize", **body(plain.holder_number, plain.member_number, 100, ref)}

    # Two refusals: within the hour's budget.
    two = _batch(client, inst, [probe("B-1"), probe("B-2")])
    assert [x["code"] for x in two] == ["MUTUAL_AID_UNAVAILABLE"] * 2
    cid = client_id(rt, inst)
    assert counted(rt, cid) == 2
    # More refusals than are left: the budget runs out within the batch.
    ok = {"op": "authorize", **body(good.holder_number, good.member_number, 100, "B-3")}
    missing = {"op": "void", "payment_id": "00000000-0000-4000-8000-000000000000"}
    res = _batch(client, inst, [ok, probe("B-4"), missing, probe("B-5"), probe("B-6")])
    assert [(x["code"], x["retry_after"]) for x in res] == [
        (None, None),
        ("MUTUAL_AID_UNAVAILABLE", None),
        ("PAYMENT_NOT_FOUND", None),
        ("AUTHORIZE_RATE_LIMITED", 3600),
        ("AUTHORIZE_RATE_LIMITED", 3600),
    ]
    assert counted(rt, cid) == 3
    assert [e.details["failures"] for e in entries(rt, cid)] == [1, 2, 3]
    assert len(entries(rt, cid, "payment.authorize_throttled")) == 1
    # Held back: the next single one too, and a batch's settle still goes through.
    r = authorize(client, inst, good.holder_number, good.member_number, 100, "B-7")
    assert r.status_code == 429
    pid = res[0]["payment_id"]
    settled = _batch(client, inst, [{"op": "settle", "payment_id": pid, "amount_fen": 100}])
    assert settled[0]["ok"] is True


def test_in_a_batch_a_shown_pair_keeps_its_reason_and_does_not_count(
    rt: Runtime, client: TestClient
) -> None:
    rt.settings.authorize_failures_per_hour = 2
    s, h, m = _shown(rt, client)
    plain = make_family(rt, seq=7, mutual_aid=False)
    ops = [{"op": "authorize", **body(h, m, 50_000, "C-0")}] + [
        {"op": "authorize", **body(plain.holder_number, plain.member_number, 100, f"C-{n}")}
        for n in (1, 2, 3)
    ]
    res = _batch(client, s.inst, ops)
    assert [x["code"] for x in res] == [
        "INSUFFICIENT_BALANCE",
        "MUTUAL_AID_UNAVAILABLE",
        "MUTUAL_AID_UNAVAILABLE",
        "AUTHORIZE_RATE_LIMITED",
    ]
    assert counted(rt, client_id(rt, s.inst)) == 2


# --- group commit (PostgreSQL) ------------------------------------------------------


@pytest.fixture
def grouped(rt: Runtime) -> FastPath:
    rt.settings.group_commit = True
    fast = FastPath.for_runtime(rt)
    if fast is None:
        pytest.skip(
            "group commit is the PostgreSQL fast path's "
            "(SQLite has no stored functions; a Citus coordinator keeps the engine)"
        )
    return fast


async def _through(fast: FastPath, p: Principal, op: payments.Authorize) -> tuple[Any, ...]:
    ix = fast.indexes(op)
    assert ix is not None
    try:
        await fast.authorize(p, op, ix, None, lambda o: (201, o))
    except DomainError as exc:
        return exc.code, exc.status, exc.params.get("retry_after")
    return ("ok", 201, None)


def test_group_commit_counts_each_refusal_in_arrival_order(
    rt: Runtime, client: TestClient, grouped: FastPath
) -> None:
    rt.settings.authorize_failures_per_hour = 4
    token = institution_headers(rt, client)["Authorization"].removeprefix("Bearer ")
    with rt.db.read_only() as s:
        p = principal_from_token(s, rt, token)
    fams: list[Family] = [make_family(rt, seq=n, mutual_aid=False) for n in (1, 2, 3)]
    ops = [
        payments.Authorize(f.holder_number, f.member_number, 100, f"G{n}-{i}")
        for i in range(2)
        for n, f in enumerate(fams)
    ]

    async def go() -> list[tuple[Any, ...]]:
        try:
            return list(await asyncio.gather(*(_through(grouped, p, op) for op in ops)))
        finally:
            await grouped.close()

    outcomes = Counter(asyncio.run(go()))
    assert outcomes == {
        ("MUTUAL_AID_UNAVAILABLE", 409, None): 4,
        ("AUTHORIZE_RATE_LIMITED", 429, 3600): 2,
    }
    assert max(grouped.group_sizes) > 1  # they really were grouped
    assert counted(rt, p.id) == 4
    assert sorted(e.details["failures"] for e in entries(rt, p.id)) == [1, 2, 3, 4]
    assert {e.details["code"] for e in entries(rt, p.id)} == {"NO_MUTUAL_AID_LINK"}
