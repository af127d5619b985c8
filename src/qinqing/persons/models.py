from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Date, ForeignKey, LargeBinary, String, Uuid, event, insert
from sqlalchemy.orm import Mapped, mapped_column

from qinqing.kit.db import Base, UTCDateTime, new_id


class Scheme(StrEnum):
    employee = "employee"  # 职工
    resident = "resident"  # 居民
    flexible = "flexible"  # 灵活就业


class PersonStatus(StrEnum):
    active = "active"  # 正常参保
    arrears = "arrears"  # 欠费
    suspended = "suspended"  # 暂停/封停
    terminated = "terminated"  # 终止
    deceased = "deceased"  # 身故 (the registry says so; set by an import, never undone here)


# The statuses after which a person's insurance relation has ended: a holder's
# cross-region links end with it (``persons.events``, ``unbind.registry``).
ENDED_STATUSES = frozenset({PersonStatus.terminated.value, PersonStatus.deceased.value})


class Person(Base):
    """An insured person (参保人). ID number and phone live only in the vault columns."""

    __tablename__ = "persons"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    # Keyed blind index (HMAC) for look-up; AES-GCM ciphertext for display.
    # Unique through the look-up table ``person_id_numbers`` (scale-out rule).
    id_number_index: Mapped[str] = mapped_column(String(64))
    id_number_cipher: Mapped[bytes] = mapped_column(LargeBinary)
    name: Mapped[str] = mapped_column(String(64))
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), index=True)
    scheme: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1))  # "M" | "F", from the ID number
    phone_index: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_cipher: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PersonIdNumber(Base):
    """Look-up from an ID number's blind index to its person: where the ID number's
    global uniqueness lives (distributed by the index itself on Citus)."""

    __tablename__ = "person_id_numbers"

    id_number_index: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid)


@event.listens_for(Person, "after_insert")
def _index_id_number(_mapper: Any, connection: Connection, person: Person) -> None:
    """Every person inserted through the ORM gets its look-up row in the same flush
    (bulk imports write both themselves); a duplicate ID number fails here."""
    connection.execute(
        insert(PersonIdNumber).values(id_number_index=person.id_number_index, person_id=person.id)
    )


class PersonGuardian(Base):
    """A minor's registered guardian (监护人) from the household register (户籍), as the
    registry import's ``guardians`` column names them: kept as the blind index of the
    guardian's ID number, so a guardian need not be insured here to be known, and a
    database dump reveals no ID number. On the minor's shard."""

    __tablename__ = "person_guardians"

    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    guardian_index: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
