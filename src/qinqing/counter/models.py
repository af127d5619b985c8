from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from qinqing.kit.db import Base, UTCDateTime


class IdDocumentFailures(Base):
    """Consecutive ID documents at the counter that did not match this person.

    The counter's own verification counter, kept like the payment password's
    (same limits, counted in the database so neither a retry nor a restart
    resets it) but apart from it: a clerk's typing error must not lock the
    person's payment password in the app, and many people who come to the
    counter have no app account at all. Keyed by the person (one row each).
    """

    __tablename__ = "id_document_failures"

    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("persons.id"), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
