"""Voucher use cases: issue (a person), redeem (an institution), and pay by
voucher through the one payment engine.

Paying locks the vouchers named (``FOR UPDATE``, sorted by owner and id) before
the engine takes its own locks, so the global order becomes vouchers → family
links → ledger accounts → payments. Nothing else locks a voucher, so this adds
no cycle. A concurrent second use of one voucher waits on that row lock and then
finds it used; a refused payment rolls back and leaves the voucher unused.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.accounting.statements import balance_of
from qinqing.audit import service as audit
from qinqing.family.access import load_usable_link, parse_id
from qinqing.family.models import FamilyLink, LinkStatus
from qinqing.identity.masking import mask_id_number, mask_name
from qinqing.kit.errors import DomainError
from qinqing.kit.locking import locked
from qinqing.payments import service as payments
from qinqing.payments.bulk import pairs_in
from qinqing.payments.statements import link_payments
from qinqing.persons.models import Person
from qinqing.persons.service import id_number_of
from qinqing.quota.service import available as quota_available
from qinqing.runtime import Runtime
from qinqing.vouchers import qr, rules, tokens
from qinqing.vouchers.models import Voucher, VoucherToken

STATUS_OF = {
    "VOUCHER_INVALID": 404,
    "REGION_MISMATCH": 403,
    "VOUCHER_USED": 409,
    "VOUCHER_EXPIRED": 409,
    "VOUCHER_NOT_FAMILY": 409,
}


# --- issue ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Issued:
    voucher_id: uuid.UUID
    token: str
    expires_at: datetime
    qr_svg: str


def issue(session: Session, rt: Runtime, principal: Principal, link_id: str | None) -> Issued:
    """A voucher for the caller, or (``link_id``) for the member of an active link the
    caller holds. Another person's link, or an unknown one, is the same 404."""
    assert principal.person_id is not None
    me = principal.person_id
    now = rt.clock.now()
    person = session.get(Person, me)
    assert person is not None
    link: FamilyLink | None = None
    if link_id is not None:
        # A party's link, or the 404 an unknown id gets.
        link = load_usable_link(session, rt, principal, parse_id(link_id))
        if link.holder_id != me:
            raise DomainError("VOUCHER_HOLDER_ONLY", 403)
        if link.status != LinkStatus.active.value:
            raise DomainError("VOUCHER_LINK_NOT_ACTIVE", 409, link_status=link.status)
    recent = session.execute(
        select(Voucher.created_at).where(
            Voucher.person_id == me, Voucher.created_at > now - rules.ISSUE_WINDOW
        )
    ).scalars()
    if wait := rules.issue_wait_seconds(list(recent), now):
        raise DomainError("VOUCHER_RATE_LIMITED", 429, retry_after=wait)

    region = link.region_code if link is not None else person.region_code
    ttl = rt.policies.policy(region).voucher_ttl_seconds
    token, token_hash = tokens.new_token(rt.vault)
    voucher = Voucher(
        person_id=me,
        id=uuid.uuid4(),
        subject_id=link.member_id if link is not None else me,
        link_id=link.id if link is not None else None,
        region_code=region,
        channel=principal.channel,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl),
    )
    session.add(voucher)
    session.add(
        VoucherToken(
            token_hash=token_hash,
            person_id=me,
            voucher_id=voucher.id,
            expires_at=voucher.expires_at,
        )
    )
    session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="voucher.issued",
        subject_kind="voucher",
        subject_id=voucher.id,
        at=now,
        details={
            "link_id": str(link.id) if link is not None else None,
            "expires_at": voucher.expires_at.isoformat(),
        },
    )
    return Issued(voucher.id, token, voucher.expires_at, qr.svg(token))


# --- finding and judging a token ------------------------------------------------


@dataclass(slots=True)
class _Found:
    voucher: Voucher
    shower: Person
    subject: Person
    link: FamilyLink | None


def _find(session: Session, hashes: list[str]) -> dict[str, _Found]:
    """The vouchers of these token hashes, row-locked in (owner, id) order, with the
    persons and links they name."""
    if not hashes:
        return {}
    keys = {
        row.token_hash: (row.person_id, row.voucher_id)
        for row in session.execute(
            select(VoucherToken).where(VoucherToken.token_hash.in_(hashes))
        ).scalars()
    }
    if not keys:
        return {}
    wanted = sorted(set(keys.values()), key=str)
    rows = locked(
        session,
        select(Voucher)
        .order_by(Voucher.person_id, Voucher.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True),
        pairs_in(session, Voucher.person_id, Voucher.id, wanted),
        [(Voucher.person_id == owner) & (Voucher.id == vid) for owner, vid in wanted],
    )
    held = {(row[0].person_id, row[0].id): row[0] for row in rows}
    person_ids = {v.person_id for v in held.values()} | {v.subject_id for v in held.values()}
    persons = {
        p.id: p for p in session.execute(select(Person).where(Person.id.in_(person_ids))).scalars()
    }
    # A family voucher's link is its shower's (the holder's), on the same shard.
    link_keys = sorted(
        {(v.person_id, v.link_id) for v in held.values() if v.link_id is not None}, key=str
    )
    links = (
        {
            lk.id: lk
            for lk in session.execute(
                select(FamilyLink).where(
                    pairs_in(session, FamilyLink.holder_id, FamilyLink.id, link_keys)
                )
            ).scalars()
        }
        if link_keys
        else {}
    )
    out = {}
    for token_hash, key in keys.items():
        if (v := held.get(key)) is not None:
            link = links.get(v.link_id) if v.link_id is not None else None
            out[token_hash] = _Found(v, persons[v.person_id], persons[v.subject_id], link)
    return out


def _facts(found: _Found | None, principal: Principal) -> rules.UseFacts:
    if found is None:
        return rules.UseFacts(found=False)
    v = found.voucher
    return rules.UseFacts(
        found=True,
        family=v.link_id is not None,
        link_active=found.link is not None and found.link.status == LinkStatus.active.value,
        caller_region=principal.region_code,
        regions=frozenset({found.shower.region_code, found.subject.region_code}),
        caller_id=principal.id,
        claimed_by=v.claimed_by,
        used=v.used_at is not None,
        expires_at=v.expires_at,
    )


def _refuse(code: str) -> DomainError:
    return DomainError(code, STATUS_OF.get(code, 409))


# --- redeem ---------------------------------------------------------------------


def redeem(session: Session, rt: Runtime, principal: Principal, token: str) -> dict[str, Any]:
    """Who the voucher names and, for a family voucher, what the holder's account can
    pay for them. Does not consume it (paying does); the first institution to redeem
    it claims it, so no other institution can use it."""
    now = rt.clock.now()
    token_hash = tokens.verify(rt.vault, token)
    found = _find(session, [token_hash]).get(token_hash) if token_hash else None
    if code := rules.use_refusal(_facts(found, principal), now):
        raise _refuse(code)
    assert found is not None
    v = found.voucher
    if v.claimed_by is None:
        v.claimed_by, v.claimed_at = principal.id, now
        session.flush()
    subject = found.subject
    view: dict[str, Any] = {
        "kind": "family" if found.link is not None else "self",
        "expires_at": v.expires_at,
        "person": {
            "name": subject.name,
            "id_number": mask_id_number(id_number_of(rt.vault, subject)),
            "status": subject.status,
            "scheme": subject.scheme,
            "region_code": subject.region_code,
        },
        "mutual_aid": None,
    }
    if found.link is not None:
        link, holder = found.link, found.shower
        used = link_payments(session, link, now).used_fen if link.mutual_aid else 0
        # A cross-region link pays only from its 共济额度, never the holder's balance.
        available = (
            quota_available(session, link, now)
            if link.via_quota
            else balance_of(session, holder, now).available_fen
        )
        state = rules.mutual_aid_state(
            mutual_aid=link.mutual_aid,
            holder_status=holder.status,
            holder_scheme=holder.scheme,
            available_fen=available,
            yearly_limit_fen=link.mutual_aid_yearly_limit_fen,
            used_this_year_fen=used,
            via_quota=link.via_quota,
        )
        view["mutual_aid"] = {
            "link_id": str(link.id),
            "relation": link.relation,
            "holder_name": mask_name(holder.name),
            "enabled": link.mutual_aid,
            "via_quota": link.via_quota,
            "yearly_limit_fen": link.mutual_aid_yearly_limit_fen,
            "used_this_year_fen": used,
            "payable_fen": state.payable_fen,
            "blocked_by": state.blocked_by,
        }
    return view


# --- pay by voucher ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VoucherAuthorize:
    """An authorization that names the member and holder by a voucher token."""

    voucher_token: str
    amount_fen: int
    reference: str


def token_hash(rt: Runtime, token: str) -> str | None:
    """The look-up hash of a token this service signed, else None (for the payment
    fast path, which finds and judges the voucher in SQL)."""
    return tokens.verify(rt.vault, token)


def execute(
    session: Session,
    rt: Runtime,
    principal: Principal,
    ops: list[payments.Op | VoucherAuthorize],
) -> list[payments.Outcome]:
    """:func:`qinqing.payments.service.execute`, where an authorization may name its
    persons by voucher. Each voucher that pays is marked used in the same transaction
    as its hold; a refused operation leaves its voucher as it was."""
    plain = [op for op in ops if not isinstance(op, VoucherAuthorize)]
    if len(plain) == len(ops):
        return payments.execute(session, rt, principal, plain)
    if len(ops) > payments.MAX_BATCH:
        raise DomainError("BATCH_TOO_LARGE", 422, max_operations=payments.MAX_BATCH)
    now = rt.clock.now()
    hashes: list[str | None] = [
        tokens.verify(rt.vault, op.voucher_token) if isinstance(op, VoucherAuthorize) else None
        for op in ops
    ]
    found = _find(session, sorted({h for h in hashes if h}))
    first = rules.first_uses(hashes)
    refused: dict[int, str] = {}
    engine_ops: list[payments.Op] = []
    engine_index: list[int] = []
    for i, op in enumerate(ops):
        if isinstance(op, VoucherAuthorize):
            h = hashes[i]
            f = found.get(h) if h else None
            code = rules.pay_refusal(_facts(f, principal), now)
            if code is None and not first[i]:
                code = "VOUCHER_USED"
            if code is not None:
                refused[i] = code
                continue
            assert f is not None
            op = payments.Authorize(
                id_number_of(rt.vault, f.shower),
                id_number_of(rt.vault, f.subject),
                op.amount_fen,
                op.reference,
                by_voucher=True,
            )
        engine_ops.append(op)
        engine_index.append(i)
    results = payments.execute(session, rt, principal, engine_ops) if engine_ops else []
    out = [payments.Outcome(ok=False, code=refused.get(i)) for i in range(len(ops))]
    for i, res in zip(engine_index, results, strict=True):
        out[i] = res
        h = hashes[i]
        if h and res.ok:
            v = found[h].voucher
            consumed = session.execute(
                update(Voucher)
                .where(
                    Voucher.person_id == v.person_id, Voucher.id == v.id, Voucher.used_at.is_(None)
                )
                .values(
                    used_at=now,
                    payment_id=res.payment_id,
                    claimed_by=principal.id,
                    claimed_at=v.claimed_at or now,
                )
            )
            # We hold the row lock, so this cannot miss; if it ever did, nothing commits.
            if getattr(consumed, "rowcount", 1) != 1:
                raise _refuse("VOUCHER_USED")
    return out


def authorize(
    session: Session, rt: Runtime, principal: Principal, op: VoucherAuthorize
) -> payments.Outcome:
    res = execute(session, rt, principal, [op])[0]
    if not res.ok and res.code in STATUS_OF:
        raise DomainError(res.code, STATUS_OF[res.code], commit=True)
    return res.raise_if_refused(commit=True)


def shown_to(
    session: Session,
    client_id: str,
    pairs: Collection[tuple[uuid.UUID, uuid.UUID]],
    since: datetime,
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """Of these (holder, member) pairs, those for which the institution ``client_id``
    claimed (redeemed or paid with) a family voucher shown since ``since``
    (``Runtime.shown_vouchers``: the payments tell it their real refusals). One
    read by the vouchers' owner, the holder; ``fast_path.sql`` repeats it."""
    if not pairs:
        return set()
    wanted = sorted(set(pairs), key=str)
    rows = session.execute(
        select(Voucher.person_id, Voucher.subject_id)
        .where(
            pairs_in(session, Voucher.person_id, Voucher.subject_id, wanted),
            Voucher.link_id.is_not(None),
            Voucher.claimed_by == client_id,
            Voucher.created_at > since,
        )
        .distinct()
    )
    return {(row.person_id, row.subject_id) for row in rows}


def purge_tokens(session: Session, before: datetime, *, limit: int = 5000) -> int:
    """Drop the token look-ups of vouchers that expired before ``before``; how many.

    The voucher rows stay as the record; an old token then answers
    VOUCHER_INVALID instead of VOUCHER_EXPIRED. For the background worker (a day
    after expiry is plenty); at most ``limit`` per call, to bound a transaction.
    Each look-up row carries its voucher's expiry, so the purge reads the small
    look-up table alone (no join to the vouchers' shards, no scan of the
    ever-growing voucher record).
    """
    stmt = (
        select(VoucherToken.token_hash)
        .where(VoucherToken.expires_at < before)
        .order_by(VoucherToken.token_hash)
        .limit(limit)
    )
    doomed = list(session.execute(stmt).scalars())
    if doomed:
        session.execute(delete(VoucherToken).where(VoucherToken.token_hash.in_(doomed)))
    return len(doomed)
