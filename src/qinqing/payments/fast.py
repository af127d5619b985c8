"""The single-payment fast path on PostgreSQL: async, one round trip per operation.

An institution's authorize, settle and void are the service's busiest calls.
On PostgreSQL (not on SQLite; on a Citus coordinator too, where each of the
function's statements names one owner and runs on one shard) each runs as one
call of a server-side function from
``fast_path.sql``, on an async connection pool with prepared statements, in
the event loop: no thread-pool hop, no ORM statement building, no pre-ping,
no BEGIN round trip (autocommit: the function's statement is the
transaction). With an ``Idempotency-Key`` it is two round trips: the function
reserves the key in a transaction, and the sealed answer is written with the
commit.

The function decides exactly as :func:`qinqing.payments.service.execute`
would for one operation (see the SQL file's header and the differential test
that holds the two to each other), institution probes included: a refusal about
the persons is told MUTUAL_AID_UNAVAILABLE and counted in the function's
transaction, and its audit entry (the real reason) is written right after, in a
transaction of its own, since the audit chain's key never reaches the database
(``payments.probes``). Everything that is not the common case —
a token not seen in the last seconds, a voucher, an ID number that does not
parse — goes to the ordinary path, so its answers are the ordinary ones.

The caller's principal is cached for ``PRINCIPAL_TTL_SECONDS``. The cache only
saves rebuilding it: the function reads the token row at every call, so a
logout, a revoked token or a disabled client is refused at once.

With ``QINQING_GROUP_COMMIT`` on, calls without a key that arrive together
share one transaction and one round trip (see "group commit" below).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import namedtuple_row
from psycopg.types.json import Json
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.http.idempotency import caller_of, open_answer, request_hash, seal_answer
from qinqing.identity import ric
from qinqing.kit import metrics
from qinqing.kit.clock import as_utc
from qinqing.kit.db import CONNECT_TIMEOUT_S, RetryLater
from qinqing.kit.errors import DomainError
from qinqing.payments import probes, rules
from qinqing.payments.service import STATUS_OF, Authorize, Outcome, Settle, Void
from qinqing.persons.service import ID_KIND
from qinqing.runtime import Runtime

log = logging.getLogger("qinqing.payments")

PRINCIPAL_TTL_SECONDS = 30.0
_MAX_PRINCIPALS = 10_000
POOL_SIZE = 8
MAX_GROUP = 32
# While the database is away a payment must be answered 503 at once, not after the
# pool's default 30 s: a request waits at most POOL_WAIT_S for a connection (the
# calls take about a millisecond each, so a second's wait for one of POOL_SIZE
# connections is never a queue), and the pool gives up reconnecting in the
# background after RECONNECT_S rather than backing off for minutes — the next
# request starts a fresh attempt, so the pool is back within about a second of
# the database.
POOL_WAIT_S = 1.0
RECONNECT_S = 1.0

# The regions' hold expiry is the same at every call: written into the statement
# as constants (see FastPath.__init__) rather than sent and parsed as two array
# parameters each time (4 % of the lane's CPU).
_AUTHORIZE = sql.SQL(
    "SELECT * FROM qinqing_payment_authorize("
    "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, {regions}::text[], {hours}::int[], "
    "%s, %s, %s, %s, %s, %s, %s)"
)
_RESOLVE = "SELECT * FROM qinqing_payment_resolve(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
_BY_VOUCHER = sql.SQL(
    "SELECT * FROM qinqing_payment_authorize_voucher("
    "%s, %s, %s, %s, %s, %s, %s, %s, %s, {regions}::text[], {hours}::int[], %s, %s, %s, %s)"
)
COMPLETE = (
    "UPDATE idempotency_keys SET status_code = %s, response = %s WHERE caller = %s AND key = %s"
)
_RELEASE = "DELETE FROM idempotency_keys WHERE caller = %s AND key = %s"


class Disconnected(Exception):
    """The server dropped the connection: :func:`qinqing.kit.db.conflict_of` reads
    ``connection_invalidated`` and the request is run again on a fresh one."""

    connection_invalidated = True


@dataclass(frozen=True, slots=True)
class Reply:
    """What the route answers: status, JSON body, and whether it is a replay."""

    status: int
    body: Any
    replayed: bool


# The route's answer to a successful outcome: status and JSON-able body.
Answer = Callable[[Outcome], tuple[int, Any]]


@dataclass(frozen=True, slots=True)
class Keyed:
    """An Idempotency-Key and what it guards, as the ordinary path computes them."""

    caller: str
    key: str
    operation: str
    request_hash: str


@dataclass
class _Queue:
    """Calls waiting for the next group, and whether a group is being sent."""

    waiting: list[tuple[str, tuple[Any, ...], asyncio.Future[Any]]] = field(default_factory=list)
    flushing: bool = False
    task: asyncio.Task[None] | None = None


class PrincipalCache:
    """Principals of recently seen institution tokens, by token digest."""

    def __init__(self, ttl: float = PRINCIPAL_TTL_SECONDS) -> None:
        self.ttl = ttl
        self._items: dict[str, tuple[float, Principal]] = {}

    def get(self, digest: str) -> Principal | None:
        item = self._items.get(digest)
        if item is None:
            return None
        if item[0] < time.monotonic():
            del self._items[digest]
            return None
        return item[1]

    def put(self, principal: Principal) -> None:
        if len(self._items) >= _MAX_PRINCIPALS:
            self._items.clear()  # rare: many institutions' tokens within one TTL
        self._items[principal.token_hash] = (time.monotonic() + self.ttl, principal)

    def drop(self, digest: str) -> None:
        self._items.pop(digest, None)


def conninfo_of(url: str) -> str:
    """libpq connection string of a SQLAlchemy PostgreSQL URL. Built from its parts:
    the URL's own text writes a space in ``options`` as ``+``, which libpq keeps, so
    ``options=-csearch_path=a -cx=y`` would have set the search path to ``a+-cx=y``."""
    u = make_url(url)
    query = {k: v if isinstance(v, str) else v[-1] for k, v in u.query.items()}
    return make_conninfo(
        "",
        host=u.host,
        port=u.port,
        user=u.username,
        password=u.password,
        dbname=u.database,
        **query,
    )


class FastPath:
    """One per app: the principal cache and an async pool per event loop."""

    def __init__(self, rt: Runtime, conninfo: str, pool_size: int = POOL_SIZE) -> None:
        self.rt = rt
        self.conninfo = conninfo
        self.pool_size = pool_size
        self.principals = PrincipalCache()
        # Each region's hold expiry, as the functions take it (two arrays).
        self.regions = rt.policies.codes()
        self.hours = [rt.policies.policy(c).hold_expiry_hours for c in self.regions]
        self._authorize = _AUTHORIZE.format(
            regions=_constant(self.regions), hours=_constant(self.hours)
        ).as_string(None)
        self._by_voucher = _BY_VOUCHER.format(
            regions=_constant(self.regions), hours=_constant(self.hours)
        ).as_string(None)
        # A pool belongs to the event loop that opened it (a server has one loop;
        # a test client may start several, one after another).
        self._pools: dict[asyncio.AbstractEventLoop, asyncio.Task[AsyncConnectionPool]] = {}
        self.group_commit = rt.settings.group_commit
        self._queues: dict[asyncio.AbstractEventLoop, _Queue] = {}
        # Sizes of the groups sent (group commit): what an operator or a test looks at.
        self.group_sizes: deque[int] = deque(maxlen=1000)
        # Connections out of the pool at work, on every loop's pool.
        self._in_use = 0

    @classmethod
    def for_runtime(cls, rt: Runtime) -> FastPath | None:
        """The fast path when the database can run it, else None (the ordinary path)."""
        url = rt.db.url
        if not rt.settings.payment_fast_path or not url.startswith("postgresql"):
            return None
        if not _installed(rt):
            return None
        # A Citus coordinator runs each call's statements as shard-pruned queries; a
        # batch's locks go one person at a time there (qinqing_lock_groups).
        return cls(rt, conninfo_of(url))

    async def _pool(self) -> AsyncConnectionPool:
        loop = asyncio.get_running_loop()
        opening = self._pools.get(loop)
        if opening is None:
            for old in [lp for lp in self._pools if lp.is_closed()]:
                del self._pools[old]  # its loop is gone; its sockets close with it
            # One opening per loop, even when the first requests arrive together.
            opening = self._pools[loop] = loop.create_task(self._open_pool())
        return await opening

    async def _open_pool(self) -> AsyncConnectionPool:
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "prepare_threshold": 0,
            "row_factory": namedtuple_row,
        }
        if "connect_timeout" not in self.conninfo:
            kwargs["connect_timeout"] = CONNECT_TIMEOUT_S
        pool = AsyncConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=self.pool_size,
            open=False,
            timeout=POOL_WAIT_S,
            reconnect_timeout=RECONNECT_S,
            kwargs=kwargs,
        )
        await pool.open()
        return pool

    async def close(self) -> None:
        """Close the pool of the running loop (the app's shutdown)."""
        opening = self._pools.pop(asyncio.get_running_loop(), None)
        if opening is not None:
            await (await opening).close()

    # --- the operations ---------------------------------------------------------

    def keyed(
        self, principal: Principal, key: str | None, method: str, path: str, body: Any
    ) -> Keyed | None:
        if key is None:
            return None
        return Keyed(
            caller_of(principal),
            key,
            f"{method.upper()} {path}",
            request_hash(self.rt.vault, method, path, body),
        )

    def seal(self, keyed: Keyed, body: Any) -> dict[str, object]:
        """The stored form of an answer under its key (``http.idempotency``)."""
        return seal_answer(self.rt.vault, keyed.caller, keyed.key, body)

    def open(self, keyed: Keyed, stored: dict[str, object]) -> Any:
        """A stored answer to replay."""
        return open_answer(self.rt.vault, keyed.caller, keyed.key, stored)

    def indexes(self, op: Authorize) -> tuple[str, str] | None:
        """The two blind indexes, or None when a number does not parse (the ordinary
        path then gives its own answer)."""
        today = self.rt.clock.now().date()
        try:
            h = ric.parse(op.holder_id_number, today).number
            m = ric.parse(op.member_id_number, today).number
        except DomainError:
            return None
        return self.rt.vault.index(ID_KIND, h), self.rt.vault.index(ID_KIND, m)

    async def authorize(
        self,
        principal: Principal,
        op: Authorize,
        ix: tuple[str, str],
        keyed: Keyed | None,
        answer: Answer,
    ) -> Reply:
        now = self.rt.clock.now()
        params = (
            *caller_params(principal, now),
            rules.local_year(now),
            ix[0],
            ix[1],
            op.amount_fen,
            op.reference,
            uuid.uuid4(),
            probes.key(principal.id),
            self.rt.settings.authorize_failures_per_hour,
            probes.shown_since(self.rt, now),
            *key_params(keyed),
        )
        return await self._counted(
            "authorize", self._call(principal, self._authorize, params, keyed, answer, now)
        )

    async def authorize_by_voucher(
        self,
        principal: Principal,
        token_hash: str | None,
        amount_fen: int,
        reference: str,
        keyed: Keyed | None,
        answer: Answer,
        voucher_refusals: Mapping[str, int],
    ) -> Reply:
        """An authorization by a family e-voucher (``qinqing_payment_authorize_voucher``):
        ``token_hash`` is the token's look-up hash (None: a token we did not sign).
        The voucher's own refusals answer with ``voucher_refusals``' statuses and, as
        on the engine's path, are not payments the metrics count."""
        now = self.rt.clock.now()
        params = (
            *caller_params(principal, now),
            rules.local_year(now),
            token_hash,
            amount_fen,
            reference,
            uuid.uuid4(),
            *key_params(keyed),
        )
        call = self._call(principal, self._by_voucher, params, keyed, answer, now, voucher_refusals)
        return await self._counted("authorize", call, uncounted=voucher_refusals.keys())

    async def resolve(
        self, principal: Principal, op: Settle | Void, keyed: Keyed | None, answer: Answer
    ) -> Reply:
        try:
            pid = uuid.UUID(op.payment_id)
        except ValueError:
            raise DomainError("PAYMENT_NOT_FOUND", 404) from None
        now = self.rt.clock.now()
        params = (
            *caller_params(principal, now),
            pid,
            op.amount_fen if isinstance(op, Settle) else None,
            *key_params(keyed),
        )
        return await self._counted(
            "settle" if isinstance(op, Settle) else "void",
            self._call(principal, _RESOLVE, params, keyed, answer, now),
        )

    @staticmethod
    async def _counted(
        operation: str, call: Awaitable[Reply], uncounted: Collection[str] = ()
    ) -> Reply:
        """``qinqing_payments_total`` as the engine counts it: each decision the function
        committed, done or refused by its code; a replay, an unknown token or a refusal
        in ``uncounted`` (a voucher's own) is none."""
        try:
            reply = await call
        except DomainError as exc:
            if exc.commit and exc.code not in uncounted:
                metrics.payment(operation, exc.code)
            raise
        if not reply.replayed:
            metrics.payment(operation, None)
        return reply

    async def _call(
        self,
        principal: Principal,
        sql: str,
        params: tuple[Any, ...],
        keyed: Keyed | None,
        answer: Answer,
        now: datetime,
        statuses: Mapping[str, int] = STATUS_OF,
    ) -> Reply:
        if keyed is None:
            if self.group_commit:
                row = await self._grouped(sql, params)
            else:
                row = await self._alone(sql, params)
            await self._audit_probe(principal, row, now)
            return self._reply(principal, row, None, answer, statuses)
        # BEGIN and the call in one round trip; the answer (or the key's release) and
        # COMMIT in the second.
        async with self.connection() as conn, conn.pipeline(), conn.transaction():
            row = await (await conn.execute(sql, params)).fetchone()
            try:
                reply = self._reply(principal, row, keyed, answer, statuses)
            except DomainError as exc:
                if exc.commit:  # a refusal: the key is given back
                    await conn.execute(_RELEASE, (keyed.caller, keyed.key))
                refusal = exc
            else:
                if not reply.replayed:
                    sealed = self.seal(keyed, reply.body)
                    await conn.execute(
                        COMPLETE, (reply.status, Json(sealed), keyed.caller, keyed.key)
                    )
                return reply
        # Committed: the probe the function counted is audited.
        await self._audit_probe(principal, row, now)
        raise refusal

    async def _audit_probe(self, principal: Principal, row: Any, now: datetime) -> None:
        """A refusal the function told as MUTUAL_AID_UNAVAILABLE (and counted) gets its
        audit entry with the real reason."""
        detail: str | None = getattr(row, "detail", None)
        if row is None or row.code != rules.UNAVAILABLE or detail is None:
            return
        probe = probes.Probe(detail, row.probe_holder, row.probe_member, row.probe_link)
        await self.audit_probes(principal, [probe], row.probe_failures, now)

    async def audit_probes(
        self, principal: Principal, found: list[probes.Probe], failures: int, now: datetime
    ) -> None:
        """Audit entries of the probes a function counted (``failures``: the window's
        count after the last), in a transaction of their own: the audit chain's MAC
        key never reaches the database."""

        def record(session: Session) -> None:
            probes.audit_probes(session, self.rt, principal, found, failures, now)

        await asyncio.to_thread(self.rt.db.run, record, what="payment probe audit")

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection; one the server dropped surfaces as
        :class:`Disconnected`, so the request is run again on a fresh one.

        No connection within POOL_WAIT_S: when none of the pool's connections is
        out at work, the database cannot be reached (``PoolTimeout``, which
        ``kit.db.unavailable_of`` reads: 503 ``DATABASE_UNAVAILABLE``); when some
        are, it is there but slow, and the answer is 503 ``RETRY_LATER``."""
        pool = await self._pool()
        try:
            with metrics.pool_wait():
                conn = await pool.getconn()
        except PoolTimeout:
            if self._in_use:
                raise RetryLater("pool_busy") from None
            raise
        self._in_use += 1
        metrics.pool_checked_out(1)
        try:
            # As pool.connection() does it (the transaction ended on the way out),
            # with the wait and the use counted.
            async with conn:
                try:
                    yield conn
                except psycopg.OperationalError as exc:
                    if conn.broken:
                        raise Disconnected() from exc
                    raise
        finally:
            self._in_use -= 1
            metrics.pool_checked_out(-1)
            await pool.putconn(conn)

    async def _alone(self, sql: str, params: tuple[Any, ...]) -> Any:
        """One call in autocommit: one round trip, its own transaction."""
        async with self.connection() as conn:
            return await (await conn.execute(sql, params)).fetchone()

    # --- group commit (QINQING_GROUP_COMMIT) ------------------------------------
    #
    # Calls that arrive while a group is at the database wait for the next one;
    # a group is one transaction sent in one round trip (BEGIN, the calls, COMMIT
    # pipelined), so it pays one commit and one round trip for all of them. The
    # calls run in arrival order and each sees the ones before it, exactly as if
    # they had run one after another. A group that fails as a whole (a deadlock
    # with another group, a dropped connection) is not retried as a group: each
    # of its calls then runs alone, and answers for itself — unless no connection
    # came at all (an outage), which every call of the group is told at once.

    async def _grouped(self, sql: str, params: tuple[Any, ...]) -> Any:
        loop = asyncio.get_running_loop()
        queue = self._queues.setdefault(loop, _Queue())
        done: asyncio.Future[Any] = loop.create_future()
        queue.waiting.append((sql, params, done))
        if not queue.flushing:
            queue.flushing = True
            queue.task = loop.create_task(self._flush(queue))
        return await done

    async def _flush(self, queue: _Queue) -> None:
        try:
            while queue.waiting:
                group = queue.waiting[:MAX_GROUP]
                del queue.waiting[:MAX_GROUP]
                self.group_sizes.append(len(group))
                try:
                    rows = await self._run_group([(q, p) for q, p, _ in group])
                except Exception as exc:
                    if len(group) == 1 or isinstance(exc, PoolTimeout | RetryLater):
                        # It ran alone already, or no connection came: running each
                        # alone would only wait again (an outage answers at once).
                        for _, _, done in group:
                            _settle(done, exc)
                        continue
                    # Each call now answers for itself.
                    for q, p, done in group:
                        try:
                            row = await self._alone(q, p)
                        except Exception as exc:
                            _settle(done, exc)
                        else:
                            _settle(done, row)
                    continue
                for (_, _, done), row in zip(group, rows, strict=True):
                    _settle(done, row)
        finally:
            queue.flushing = False

    async def _run_group(self, calls: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        if len(calls) == 1:
            return [await self._alone(*calls[0])]
        async with self.connection() as conn:
            async with conn.pipeline(), conn.transaction():
                cursors = [await conn.execute(q, p) for q, p in calls]
            return [await c.fetchone() for c in cursors]

    def _reply(
        self,
        principal: Principal,
        row: Any,
        keyed: Keyed | None,
        answer: Answer,
        statuses: Mapping[str, int] = STATUS_OF,
    ) -> Reply:
        """The route's answer to the function's row; a refusal is raised (its HTTP
        status from ``statuses``, else the payments' own)."""
        code: str | None = row.code
        if code is None:
            status, body = answer(
                Outcome(
                    True,
                    None,
                    row.payment_id,
                    row.status,
                    row.amount_fen,
                    row.settled_fen,
                    row.released_fen,
                    as_utc(row.expires_at),
                )
            )
            return Reply(status, body, False)
        if code == "REPLAY":
            assert keyed is not None
            return Reply(row.replay_status, self.open(keyed, row.replay_response), True)
        if code == "UNAUTHENTICATED":
            self.principals.drop(principal.token_hash)
            raise DomainError("UNAUTHENTICATED", 401)
        if code == "IDEMPOTENCY_MISMATCH":
            raise DomainError(code, 409)
        if code == rules.THROTTLED:
            raise DomainError(code, STATUS_OF[code], commit=True, retry_after=row.retry_after)
        # A refusal commits what the function released on the way (overdue holds).
        raise DomainError(code, statuses.get(code) or STATUS_OF.get(code, 409), commit=True)


def _constant(values: list[Any]) -> sql.SQL:
    """``values`` as a quoted array literal inside a statement that also has ``%s``
    parameters (a ``%`` in it doubled, so it is not read as one)."""
    return sql.SQL(sql.Literal(values).as_string(None).replace("%", "%%"))


def _settle(done: asyncio.Future[Any], outcome: Any) -> None:
    """Hand a call its row (or its error), unless its request has gone away."""
    if done.done():
        return
    if isinstance(outcome, BaseException):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)


# The entry points the fast path calls; all of them, or it stays off.
_ENTRY_POINTS = (
    "qinqing_payment_authorize",
    "qinqing_payment_authorize_voucher",
    "qinqing_payment_resolve",
    "qinqing_payment_batch",
)


def _installed(rt: Runtime) -> bool:
    """Whether this database has the functions (a schema not migrated to the code's
    head may lack some: its payments then take the ORM path rather than fail)."""
    with rt.db.engine.connect() as conn:
        found = conn.exec_driver_sql(
            "SELECT count(DISTINCT proname) FROM pg_proc"
            " WHERE pg_function_is_visible(oid) AND proname = ANY(%(names)s)",
            {"names": list(_ENTRY_POINTS)},
        ).scalar_one()
    if found < len(_ENTRY_POINTS):
        log.warning("payment fast path off: its functions are not installed (qinqing db upgrade)")
    return bool(found == len(_ENTRY_POINTS))


def caller_params(principal: Principal, now: datetime) -> tuple[Any, ...]:
    """How every function of the fast path is told its caller and the time: the
    token's hash (checked at each call), the client, its region, now."""
    return (principal.token_hash, principal.id, principal.region_code, now)


def key_params(keyed: Keyed | None) -> tuple[str | None, ...]:
    if keyed is None:
        return (None, None, None, None)
    return (keyed.caller, keyed.key, keyed.operation, keyed.request_hash)
