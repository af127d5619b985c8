"""How every table is placed on a Citus cluster (docs/scaling.md).

One map, read by ``qinqing db upgrade`` when ``QINQING_DISTRIBUTED=citus`` and
by the static schema check in the test suite, so the two cannot disagree:

* ``Distributed(column)``: hash-distributed by ``column``. Every table
  distributed by a person is in one co-location group (``persons``): a
  person's rows — and a holder's links, unbind requests, payments and their
  ledger rows — live on the same shard, so one person's transaction is one
  shard's transaction. Look-up tables for global uniqueness are distributed by
  their own key (``colocate=None``).
* ``REFERENCE``: small, read everywhere, copied to every node (regions, staff,
  clients, system ledger accounts).
* ``LOCAL``: kept on the coordinator only (the audit chain, one global
  sequence; Alembic's version row).

The rule the check enforces: the distribution column is in every primary key,
unique key and foreign key of a distributed table, and a foreign key either
joins two co-located tables on that column or points at a reference table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Distributed:
    column: str
    # The co-location group; None for a look-up table distributed by its own key.
    colocate: str | None = "persons"


@dataclass(frozen=True, slots=True)
class Placement:
    kind: str  # "reference" | "local"


REFERENCE: Final = Placement("reference")
LOCAL: Final = Placement("local")

TABLES: Final[dict[str, Distributed | Placement]] = {
    # Reference tables.
    "regions": REFERENCE,
    "api_clients": REFERENCE,
    "staff_users": REFERENCE,
    "bank_webhook_endpoints": REFERENCE,
    "month_closings": REFERENCE,
    "ledger_system_accounts": REFERENCE,
    "vault_keys": REFERENCE,
    # Coordinator only.
    "audit_log": LOCAL,
    "audit_head": LOCAL,
    "alembic_version": LOCAL,
    # Person-scoped, co-located by the owning person.
    "persons": Distributed("id"),
    "person_accounts": Distributed("person_id"),
    "notifications": Distributed("person_id"),
    "contributions": Distributed("person_id"),
    "ledger_accounts": Distributed("person_id"),
    "ledger_transfers": Distributed("person_id"),
    "ledger_entries": Distributed("person_id"),
    "registration_codes": Distributed("person_id"),
    "one_time_codes": Distributed("person_id"),
    "id_document_failures": Distributed("person_id"),
    "bank_links": Distributed("person_id"),
    "bank_webhook_events": Distributed("person_id"),
    "vouchers": Distributed("person_id"),
    "person_guardians": Distributed("person_id"),
    # Family-scoped, co-located by the holder (the person who pays).
    "family_links": Distributed("holder_id"),
    "unbind_requests": Distributed("holder_id"),
    "payments": Distributed("holder_id"),
    "link_proofs": Distributed("holder_id"),
    "resident_contributions": Distributed("holder_id"),
    # The links seen from the member's side: co-located with the member.
    "family_link_members": Distributed("member_id"),
    # A member's paid resident cover years (once per member and year, whoever pays).
    "resident_cover_years": Distributed("member_id"),
    # Look-up tables for global uniqueness, each distributed by its own key.
    "person_id_numbers": Distributed("id_number_index", colocate=None),
    "account_logins": Distributed("login_index", colocate=None),
    "payment_references": Distributed("reference", colocate=None),
    "payment_keys": Distributed("payment_id", colocate=None),
    "bank_account_index": Distributed("account_index", colocate=None),
    "voucher_tokens": Distributed("token_hash", colocate=None),
    "access_tokens": Distributed("token_hash", colocate=None),
    "login_throttle": Distributed("key", colocate=None),
    "idempotency_keys": Distributed("key", colocate=None),
}


def distributed_tables() -> dict[str, Distributed]:
    return {name: p for name, p in TABLES.items() if isinstance(p, Distributed)}


def reference_tables() -> list[str]:
    return [name for name, p in TABLES.items() if p is REFERENCE]
