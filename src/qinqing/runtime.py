"""What a running Qinqing needs, built once per process by ``entrypoints.bootstrap``:
settings, database, vault, policies, clock, the domain events' subscribers,
whom a partner's API client acts for and which family e-vouchers an institution
was shown. Every service takes it; only the startup
wiring builds it."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import typer
from sqlalchemy.orm import Session

from qinqing.config import Settings
from qinqing.identity.vault import Vault
from qinqing.kit.clock import Clock, SystemClock
from qinqing.kit.db import Database
from qinqing.kit.events import EventBus
from qinqing.regions.registry import PolicyRegistry


class CustomerDirectory(Protocol):
    """Whether a partner (a bank, by its code) counts the person as its customer: a
    partner's API client acts only for its customers. The partner's package answers
    it (``banks.access``); the startup wiring plugs it in."""

    def __call__(
        self, session: Session, partner_code: str | None, person_id: uuid.UUID | None, /
    ) -> bool: ...


def no_customers(
    _session: Session, _partner_code: str | None, _person_id: uuid.UUID | None, /
) -> bool:
    return False


Pair = tuple[uuid.UUID, uuid.UUID]


class ShownVouchers(Protocol):
    """Of these (holder, member) pairs, those for which the institution ``client_id``
    claimed (redeemed or paid with) a family e-voucher shown since ``since``: the
    holder showed it the link, so it is told an authorization's real refusal. The
    vouchers package answers it (``vouchers.service.shown_to``); the startup wiring
    plugs it in."""

    def __call__(
        self, session: Session, client_id: str, pairs: Collection[Pair], since: datetime, /
    ) -> set[Pair]: ...


def none_shown(
    _session: Session, _client_id: str, _pairs: Collection[Pair], _since: datetime, /
) -> set[Pair]:
    return set()


@dataclass
class Runtime:
    settings: Settings
    db: Database
    vault: Vault
    policies: PolicyRegistry
    clock: Clock = field(default_factory=SystemClock)
    events: EventBus = field(default_factory=EventBus)
    customers: CustomerDirectory = no_customers
    shown_vouchers: ShownVouchers = none_shown


def cli_runtime(ctx: typer.Context, *, rotating_ok: bool = False) -> Runtime:
    """The runtime of a CLI command. The root command (``entrypoints.cli``) puts the
    startup wiring's opener in the context, so a domain's commands get a runtime
    without importing the wiring; the caller disposes of it."""
    opener = ctx.find_root().obj
    if not callable(opener):
        raise RuntimeError("a qinqing command runs under the root `qinqing` command")
    rt = opener(rotating_ok=rotating_ok)
    assert isinstance(rt, Runtime)
    return rt
