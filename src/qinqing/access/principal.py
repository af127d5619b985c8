"""Who is calling: a person, a staff member or an API client (a value; how a bearer
token becomes one is ``auth.tokens``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from qinqing.audit.actor import Actor

STAFF_CHANNEL = {"clerk": "counter", "reviewer": "review", "admin": "admin"}
CLIENT_SCOPES = {
    "bank": "bank-links family",
    "institution": "payments",
    "collector": "contributions",
}


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # person | staff | client
    id: str
    channel: str
    token_hash: str
    person_id: uuid.UUID | None = None
    role: str | None = None  # staff: clerk | reviewer | admin; client: its kind
    region_code: str | None = None
    scopes: frozenset[str] = frozenset()
    bank_code: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor(self.kind, self.id, self.channel)
