"""The generic Idempotency-Key layer (qinqing.http.idempotency), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import func, select

from qinqing.access.principal import Principal
from qinqing.http import idempotency
from qinqing.http.idempotency_models import IdempotencyKey
from qinqing.kit.clock import FrozenClock
from qinqing.kit.errors import DomainError
from qinqing.runtime import Runtime

CALLER = Principal("person", "acct-1", "app", "t", None)
OTHER = Principal("client", "bank-1", "bank", "t", None)


def call(
    rt: Runtime,
    handler: Any,
    *,
    key: str | None = "k",
    body: Any = None,
    who: Principal = CALLER,
    path: str = "/api/v1/things/1/do",
) -> tuple[int, Any, str | None]:
    with rt.db.unit_of_work() as s:
        response = idempotency.run_idempotent(
            s,
            vault=rt.vault,
            principal=who,
            key=key,
            method="POST",
            path=path,
            body=body if body is not None else {"a": 1},
            now=rt.clock.now(),
            handler=handler,
        )
    return (
        response.status_code,
        json.loads(bytes(response.body)),
        response.headers.get("Idempotent-Replayed"),
    )


def stored_keys(rt: Runtime) -> int:
    with rt.db.unit_of_work() as s:
        return int(s.execute(select(func.count()).select_from(IdempotencyKey)).scalar_one())


def test_first_answer_is_replayed_and_a_different_body_refused(rt: Runtime) -> None:
    runs: list[int] = []

    def handler() -> tuple[int, Any]:
        runs.append(1)
        return 201, {"n": len(runs)}

    assert call(rt, handler) == (201, {"n": 1}, None)
    assert call(rt, handler) == (201, {"n": 1}, "true")
    assert len(runs) == 1
    with pytest.raises(DomainError) as err:
        call(rt, handler, body={"a": 2})
    assert err.value.code == "IDEMPOTENCY_MISMATCH"
    assert err.value.status == 409
    with pytest.raises(DomainError):
        call(rt, handler, path="/api/v1/things/2/do")
    # Another caller's same key is its own request; no key: no memory at all.
    assert call(rt, handler, who=OTHER) == (201, {"n": 2}, None)
    assert call(rt, handler, key=None) == (201, {"n": 3}, None)
    assert call(rt, handler, key=None) == (201, {"n": 4}, None)
    assert stored_keys(rt) == 2


def test_body_is_compared_canonically(rt: Runtime) -> None:
    def handler() -> tuple[int, Any]:
        return 200, {"ok": True}

    call(rt, handler, body={"a": 1, "b": [1, 2]})
    assert call(rt, handler, body={"b": [1, 2], "a": 1})[2] == "true"


def test_a_refusal_is_not_stored_and_a_retry_is_evaluated_again(rt: Runtime) -> None:
    attempts: list[int] = []

    def handler() -> tuple[int, Any]:
        attempts.append(1)
        if len(attempts) == 1:
            raise DomainError("SOMETHING_BLOCKS", 409)
        return 200, {"done": True}

    with pytest.raises(DomainError):
        call(rt, handler)
    assert stored_keys(rt) == 0
    assert call(rt, handler) == (200, {"done": True}, None)
    assert call(rt, handler) == (200, {"done": True}, "true")


def test_a_refusal_that_commits_releases_the_key(rt: Runtime) -> None:
    def handler() -> tuple[int, Any]:
        raise DomainError("COUNTED_FAILURE", 403, commit=True)

    with pytest.raises(DomainError):
        call(rt, handler)
    assert stored_keys(rt) == 0


def test_concurrent_duplicates_run_once_and_replay(rt: Runtime) -> None:
    runs: list[int] = []
    start = threading.Barrier(4)

    def handler() -> tuple[int, Any]:
        runs.append(1)
        time.sleep(0.3)  # hold the reservation while the duplicates arrive
        return 200, {"run": len(runs)}

    def one(_: int) -> tuple[int, Any, str | None]:
        start.wait()
        return call(rt, handler, key="dup")

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, range(4)))
    assert len(runs) == 1
    assert {(status, json.dumps(body)) for status, body, _ in results} == {(200, '{"run": 1}')}
    assert sorted(replayed or "" for _, _, replayed in results) == ["", "true", "true", "true"]


def test_purge_removes_old_keys(rt: Runtime, clock: FrozenClock) -> None:
    call(rt, lambda: (200, {}), key="old")
    clock.advance(timedelta(hours=25))
    call(rt, lambda: (200, {}), key="new")
    with rt.db.unit_of_work() as s:
        purged = idempotency.purge_idempotency_keys(s, rt.clock.now())
    assert purged == 1
    with rt.db.unit_of_work() as s:
        assert s.execute(select(IdempotencyKey.key)).scalars().all() == ["new"]


def test_stored_answers_are_sealed_and_bound_to_their_row(rt: Runtime) -> None:
    """A replayable answer may hold a full ID number (a staff view): never in clear."""
    secret = "150602198001010023"
    first = call(rt, lambda: (201, {"id_number": secret}), key="pii")
    with rt.db.unit_of_work() as s:
        row = s.execute(select(IdempotencyKey)).scalar_one()
        assert secret not in json.dumps(row.response) and set(row.response) == {"sealed"}
    assert call(rt, lambda: (500, {}), key="pii") == (201, {"id_number": secret}, "true")
    assert first[1] == {"id_number": secret}
    with rt.db.unit_of_work() as s:
        # Moved to another caller's row, the sealed answer does not open.
        row = s.execute(select(IdempotencyKey)).scalar_one()
        with pytest.raises(InvalidTag):
            idempotency.open_answer(rt.vault, "client:bank-1", row.key, row.response)


@pytest.mark.parametrize("raw", ["", "x" * 129, "ünïcode", "line\nbreak", "\x7f"])
def test_invalid_keys(raw: str) -> None:
    with pytest.raises(DomainError) as err:
        idempotency.check_key(raw)
    assert err.value.code == "IDEMPOTENCY_KEY_INVALID"
    assert err.value.status == 422


def test_valid_keys() -> None:
    assert idempotency.check_key(None) is None
    assert idempotency.check_key("a") == "a"
    assert idempotency.check_key("~" * 128) == "~" * 128
    assert idempotency.check_key("order 42/retry:1") == "order 42/retry:1"


def test_the_request_hash_is_keyed(rt: Runtime) -> None:
    body = {"verification": {"method": "payment_password", "payment_password": "135790"}}
    digest = idempotency.request_hash(rt.vault, "post", "/p", body)
    assert len(digest) == 64
    assert digest == idempotency.request_hash(rt.vault, "POST", "/p", dict(body))
    plain = idempotency.canonical_json(body)
    import hashlib

    assert digest != hashlib.sha256(f"POST\n/p\n{plain}".encode()).hexdigest()
