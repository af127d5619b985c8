"""Payment batches on PostgreSQL in one server-side call.

``POST /payments/batch`` (up to a thousand operations) on the fast path is one
call of ``qinqing_payment_batch`` (``fast_path.sql``): the operations travel as
arrays, the function takes the batch's links and accounts in the global lock
order and then decides each operation in order exactly as its single call
would, in one transaction. What the engine would refuse before any look-up —
an amount that is not positive, an ID number that does not parse, a payment id
that is no UUID — is decided here, as the engine decides it
(:func:`qinqing.payments.engine.numbers_of`), and passed along as known. A batch
with a family e-voucher in it is the engine's (the route sends it there).

With an Idempotency-Key the call and the sealed answer share one transaction
(two round trips); the refusals told MUTUAL_AID_UNAVAILABLE are audited after
the commit, as a single call's are.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg.types.json import Json

from qinqing.access.principal import Principal
from qinqing.kit import metrics
from qinqing.kit.clock import as_utc
from qinqing.kit.errors import DomainError
from qinqing.payments import probes, rules
from qinqing.payments.engine import numbers_of
from qinqing.payments.fast import COMPLETE, FastPath, Keyed, Reply, caller_params, key_params
from qinqing.payments.ops import Authorize, Op, Outcome, Settle, Void
from qinqing.persons.service import ID_KIND

_BATCH = (
    "SELECT * FROM qinqing_payment_batch("
    "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)

# The body of a batch's answer, from its outcomes in order.
BatchAnswer = Callable[[list[Outcome]], tuple[int, Any]]


@dataclass(slots=True)
class _Arrays:
    """The batch as the function takes it: element i is operation i."""

    kind: list[str] = field(default_factory=list)
    refused: list[str | None] = field(default_factory=list)
    holder_ix: list[str | None] = field(default_factory=list)
    member_ix: list[str | None] = field(default_factory=list)
    amount: list[int | None] = field(default_factory=list)
    reference: list[str | None] = field(default_factory=list)
    id: list[uuid.UUID | None] = field(default_factory=list)

    def add(
        self,
        kind: str,
        *,
        refused: str | None = None,
        ix: tuple[str, str] | None = None,
        amount: int | None = None,
        reference: str | None = None,
        id: uuid.UUID | None = None,
    ) -> None:
        self.kind.append(kind)
        self.refused.append(refused)
        self.holder_ix.append(ix[0] if ix else None)
        self.member_ix.append(ix[1] if ix else None)
        self.amount.append(amount)
        self.reference.append(reference)
        self.id.append(id)


def _arrays(fast: FastPath, ops: Sequence[Op]) -> _Arrays:
    """The operations as arrays."""
    today = fast.rt.clock.now().date()
    index: dict[str, str] = {}  # blind index by ID number: one HMAC per person

    def ix(number: str) -> str:
        if (found := index.get(number)) is None:
            found = index[number] = fast.rt.vault.index(ID_KIND, number)
        return found

    out = _Arrays()
    for op in ops:
        if isinstance(op, Authorize):
            try:
                h, m = numbers_of(op, today)
            except DomainError as exc:
                out.add("authorize", refused=exc.code)
                continue
            out.add(
                "authorize",
                ix=(ix(h), ix(m)),
                amount=op.amount_fen,
                reference=op.reference,
                id=uuid.uuid4(),
            )
            continue
        kind = "settle" if isinstance(op, Settle) else "void"
        try:
            pid = uuid.UUID(op.payment_id)
        except ValueError:
            out.add(kind, refused="PAYMENT_NOT_FOUND")
            continue
        out.add(kind, amount=op.amount_fen if isinstance(op, Settle) else None, id=pid)
    return out


def _outcome(row: Any) -> Outcome:
    if row.code is not None:
        return Outcome(ok=False, code=row.code, detail=row.detail, retry_after=row.retry_after)
    return Outcome(
        True,
        None,
        row.payment_id,
        row.status,
        row.amount_fen,
        row.settled_fen,
        row.released_fen,
        as_utc(row.expires_at),
    )


_OPERATION = {Authorize: "authorize", Settle: "settle", Void: "void"}


async def run(
    fast: FastPath,
    principal: Principal,
    ops: Sequence[Op],
    keyed: Keyed | None,
    answer: BatchAnswer,
) -> Reply:
    """The batch's answer from one call of the function."""
    arrays = _arrays(fast, ops)
    rt = fast.rt
    now = rt.clock.now()
    params = (
        *caller_params(principal, now),
        rules.local_year(now),
        arrays.kind,
        arrays.refused,
        arrays.holder_ix,
        arrays.member_ix,
        arrays.amount,
        arrays.reference,
        arrays.id,
        fast.regions,
        fast.hours,
        probes.key(principal.id),
        rt.settings.authorize_failures_per_hour,
        probes.shown_since(rt, now),
        *key_params(keyed),
    )
    async with fast.connection() as conn, conn.pipeline(), conn.transaction():
        rows = await (await conn.execute(_BATCH, params)).fetchall()
        reply = _reply(fast, principal, rows, keyed, answer)
        if keyed is not None and not reply.replayed:
            sealed = fast.seal(keyed, reply.body)
            await conn.execute(COMPLETE, (reply.status, Json(sealed), keyed.caller, keyed.key))
    if not reply.replayed:
        for op, row in zip(ops, rows, strict=True):
            metrics.payment(_OPERATION[type(op)], row.code)
        found = [
            probes.Probe(r.detail, r.probe_holder, r.probe_member, r.probe_link)
            for r in rows
            if r.code == rules.UNAVAILABLE and r.detail is not None
        ]
        if found:
            failures = max(r.probe_failures for r in rows if r.probe_failures is not None)
            await fast.audit_probes(principal, found, failures, now)
    return reply


def _reply(
    fast: FastPath, principal: Principal, rows: list[Any], keyed: Keyed | None, answer: BatchAnswer
) -> Reply:
    first = rows[0]
    if first.op is None:  # the caller was not admitted
        if first.code == "REPLAY":
            assert keyed is not None
            return Reply(first.replay_status, fast.open(keyed, first.replay_response), True)
        if first.code == "UNAUTHENTICATED":
            fast.principals.drop(principal.token_hash)
            raise DomainError("UNAUTHENTICATED", 401)
        raise DomainError(first.code, 409)  # IDEMPOTENCY_MISMATCH
    status, body = answer([_outcome(r) for r in rows])
    return Reply(status, body, False)
