"""Outages answer 503, fast (issue "Operable in production", part 7): while the
database cannot be reached every request that needs it answers 503 with
``Retry-After`` (problem+json for the API, a short page for a browser), logged as a
warning without a traceback; when it is back the service recovers by itself.

The outage is a TCP proxy in front of PostgreSQL that the test stops and starts
(the suite's own server keeps serving the other tests meanwhile): what the
service sees is exactly a database that went away — refused connections, and
pooled connections cut."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from qinqing.entrypoints.app import create_app
from qinqing.entrypoints.bootstrap import build_runtime
from qinqing.payments.fast import FastPath
from qinqing.runtime import Runtime
from support.client import AppClient
from support.family import API, new_person
from support.ledger import authorize_body, fund, institution_headers, make_family


class Proxy:
    """Forwards 127.0.0.1:<port> to the real server until stopped; stopping refuses new
    connections and cuts the open ones, like a server that went down."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            # shutdown first: it wakes the thread blocked in accept(); close alone would not.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@pytest.fixture(params=[False, True], ids=["alone", "group-commit"])
def group_commit(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def proxied(rt: Runtime, request: pytest.FixtureRequest) -> Iterator[tuple[Runtime, Proxy]]:
    url = rt.settings.database_url or ""
    if not url.startswith("postgresql"):
        pytest.skip("a database server that goes away is a PostgreSQL matter (SQLite is a file)")
    parts = urlsplit(url)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxy.start()
    netloc = (
        f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else f"127.0.0.1:{proxy.port}"
    )
    through = urlunsplit(parts._replace(netloc=netloc))
    update: dict[str, Any] = {"database_url": through}
    if "group_commit" in request.fixturenames:
        update["group_commit"] = request.getfixturevalue("group_commit")
    runtime = build_runtime(rt.settings.model_copy(update=update), clock=rt.clock, migrate=False)
    try:
        yield runtime, proxy
    finally:
        proxy.stop()
        runtime.db.dispose()


def test_while_the_database_is_away_every_answer_is_503(
    proxied: tuple[Runtime, Proxy], caplog: pytest.LogCaptureFixture
) -> None:
    rt, proxy = proxied
    with AppClient(create_app(rt), raise_server_exceptions=False) as client:
        person = new_person(rt, client=client)
        assert client.get(f"{API}/me", headers=person.headers).status_code == 200
        proxy.stop()
        caplog.clear()
        caplog.set_level(logging.WARNING)
        for method, path, kwargs in (
            ("GET", f"{API}/me", {"headers": person.headers}),
            ("GET", f"{API}/me/family", {"headers": person.headers}),
            ("POST", f"{API}/auth/login", {"json": {"login": person.phone, "password": "x"}}),
            ("GET", f"{API}/me/notifications", {"headers": person.headers}),
        ):
            r = client.request(method, path, **kwargs)
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert r.json()["code"] == "DATABASE_UNAVAILABLE" and r.headers["retry-after"]
        # The web app's session is the same opaque token, in its cookie.
        token = person.headers["Authorization"].removeprefix("Bearer ")
        client.cookies.set("qq_session", token)
        page = client.get("/me", headers={"Accept": "text/html"})
        client.cookies.clear()
        assert page.status_code == 503 and "12333" in page.text
        assert client.get("/readyz").status_code == 503
        # What needs no database (the public calculator, from the policies) still works.
        quote = f"{API}/regions/150600/contribution-quote?base_fen=500000"
        assert client.get(quote).status_code == 200
        assert client.get("/healthz").status_code == 200  # the process itself is fine
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
        assert any("database unavailable" in r.getMessage() for r in caplog.records)
        proxy.start()
        # Back: the pool's cut connections are replaced on the first request.
        assert client.get(f"{API}/me", headers=person.headers).status_code == 200


def test_fast_path_payments_answer_503_at_once_and_recover(
    proxied: tuple[Runtime, Proxy],
    group_commit: bool,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An institution's payments on the PostgreSQL fast path (its own async pool, the
    ASGI lane and the route): while the database is away, 503 DATABASE_UNAVAILABLE
    with Retry-After within about a second, not after the pool's 30 s and not a 500;
    back within about a second of the database."""
    rt, proxy = proxied
    fam = make_family(rt)
    fund(rt, fam.holder_id, 10_000)
    fast_calls: list[str] = []
    original = FastPath._call

    async def counting(self: FastPath, *args: Any, **kwargs: Any) -> Any:
        fast_calls.append(args[1].split("(")[0])
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(FastPath, "_call", counting)
    with AppClient(create_app(rt), raise_server_exceptions=False) as client:
        fast: FastPath | None = client.app.state.fast_payments  # type: ignore[attr-defined]
        if fast is None:
            pytest.skip("no fast path on this database (Citus)")
        assert fast.group_commit is group_commit
        inst = institution_headers(rt, client)

        def authorize(ref: str, **headers: str) -> Any:
            return client.post(
                f"{API}/payments/authorize",
                json=authorize_body(fam, 100, ref),
                headers={**inst, **headers},
            )

        held = authorize("B1")  # the route; the principal is cached from now on
        assert held.status_code == 201, held.text
        assert authorize("B2").status_code == 201  # the lane
        assert len(fast_calls) == 2
        payment = held.json()["payment_id"]

        proxy.stop()
        caplog.clear()
        caplog.set_level(logging.WARNING)
        tries: list[tuple[str, Any]] = [
            ("authorize (lane)", lambda: authorize("D1")),
            ("keyed authorize (lane)", lambda: authorize("D2", **{"Idempotency-Key": "k-d2"})),
            (
                "settle (lane)",
                lambda: client.post(
                    f"{API}/payments/{payment}/settle", json={"amount_fen": 100}, headers=inst
                ),
            ),
            ("void (lane)", lambda: client.post(f"{API}/payments/{payment}/void", headers=inst)),
        ]
        for what, call in tries:
            started = time.monotonic()
            r = call()
            took = time.monotonic() - started
            assert r.status_code == 503, (what, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["code"] == "DATABASE_UNAVAILABLE", (what, r.text)
            assert r.headers["retry-after"]
            assert took < 2.0, (what, took)
        assert len(fast_calls) >= 6  # every one went to the fast path (a cut one twice)
        # A token not cached goes through the route (the ORM reads the token): 503 too.
        fast.principals = type(fast.principals)()
        r = authorize("D3")
        assert r.status_code == 503 and r.json()["code"] == "DATABASE_UNAVAILABLE", r.text
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
        assert any("database unavailable" in r.getMessage() for r in caplog.records)

        proxy.start()
        back = time.monotonic()
        while True:
            r = authorize(f"U{time.monotonic()}")
            if r.status_code == 201:
                break
            assert r.status_code == 503, r.text
            assert time.monotonic() - back < 3.0, "the fast path did not come back"
        r = authorize("U-lane")  # the principal is cached again: the lane
        assert r.status_code == 201, r.text
        recovered = time.monotonic() - back
        assert recovered < 2.5, recovered
        assert fast_calls[-1] == "SELECT * FROM qinqing_payment_authorize"
        # Nothing of the refused calls was applied: two holds of 100 and the two new ones.
        done = client.post(
            f"{API}/payments/{payment}/settle", json={"amount_fen": 100}, headers=inst
        )
        assert done.status_code == 200 and done.json()["status"] == "settled", done.text
