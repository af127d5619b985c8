"""A person's sessions: the live tokens of their account, listed and ended.

A session is one access token (the app, WeChat, the web). The list shows when each
began, when it was last used (written by ``tokens.principal_from_token`` at most
every ``tokens.SEEN_EVERY``, so reading a page does not cost a write each time) and its channel; ``DELETE /me/sessions``
ends them all, the caller's own included — what a person does after losing a
phone. A login while another session of the account is live tells the person
(a notice), so someone else's login does not go unseen."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.audit.service import record
from qinqing.auth.events import NEW_LOGIN, AccountNotice
from qinqing.auth.models import AccessToken
from qinqing.auth.tokens import revoke_all
from qinqing.runtime import Runtime

# The public id of a session: a prefix of its token's digest (which no one can turn
# back into the token), so a session can be named without exposing anything.
PUBLIC_ID_LENGTH = 16


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    created_at: datetime
    last_seen_at: datetime | None
    channel: str
    current: bool


def _live(principal_id: str, now: datetime) -> list[object]:
    return [
        AccessToken.subject_kind == "person",
        AccessToken.subject_id == principal_id,
        AccessToken.revoked_at.is_(None),
        AccessToken.expires_at > now,
    ]


def list_sessions(session: Session, rt: Runtime, principal: Principal) -> list[SessionRow]:
    now = rt.clock.now()
    rows = session.execute(
        select(AccessToken)
        .where(*_live(principal.id, now))  # type: ignore[arg-type]
        .order_by(AccessToken.created_at.desc())
    ).scalars()
    return [
        SessionRow(
            t.token_hash[:PUBLIC_ID_LENGTH],
            t.created_at,
            t.last_seen_at,
            t.channel,
            t.token_hash == principal.token_hash,
        )
        for t in rows
    ]


def end_all(session: Session, rt: Runtime, principal: Principal) -> int:
    """End every live session of the caller's account, their own included."""
    now = rt.clock.now()
    count = revoke_all(session, "person", principal.id, now)
    record(
        session,
        actor=principal.actor,
        action="sessions.end_all",
        subject_kind="person",
        subject_id=principal.person_id,
        at=now,
        details={"ended": count},
    )
    return count


def end_others(session: Session, rt: Runtime, person_account_id: str, keep: str | None) -> int:
    """End every live session of the account but ``keep`` (a token digest), e.g. after
    the password changed."""
    return revoke_all(session, "person", person_account_id, rt.clock.now(), keep=keep)


def tell_of_new_login(
    session: Session,
    rt: Runtime,
    *,
    person_id: uuid.UUID,
    account_id: str,
    channel: str,
    new_token_hash: str,
) -> None:
    """A notice when another session of the account was live at this login."""
    now = rt.clock.now()
    others = session.execute(
        select(AccessToken.token_hash)
        .where(*_live(account_id, now), AccessToken.token_hash != new_token_hash)  # type: ignore[arg-type]
        .limit(1)
    ).first()
    if others is not None:
        rt.events.publish(session, AccountNotice(person_id, NEW_LOGIN, now, {"channel": channel}))
