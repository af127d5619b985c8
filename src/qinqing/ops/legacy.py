"""The first start with keyed storage of a database made before keys were checked:
key its audit chain and seal the API answers it stored in clear."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from qinqing.audit.models import AuditHead
from qinqing.audit.service import ChainBroken, key_legacy_chain
from qinqing.http.idempotency import seal_legacy_answers
from qinqing.identity.vault import Vault

log = logging.getLogger("qinqing.keys")


def key_legacy_storage(session: Session, vault: Vault) -> None:
    """At every start, after the key check: nothing to do unless the audit head has
    no MAC yet (a new database, or one made before the chain was keyed)."""
    head = session.get(AuditHead, 1)
    if head is None or head.mac is not None:
        return
    try:
        with session.begin_nested():
            key_legacy_chain(session, vault)
    except ChainBroken as exc:
        # Keying a chain that is already broken would launder it; stopping the
        # whole service for it would stop payments. Leave it unkeyed, so that
        # `audit verify` fails, and say so loudly.
        log.critical("%s: the unkeyed audit chain was altered; left for `audit verify`", exc)
    seal_legacy_answers(session, vault)
