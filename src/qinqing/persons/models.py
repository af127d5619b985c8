from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from qinqing.db import Base, UTCDateTime, new_id


class Scheme(StrEnum):
    employee = "employee"  # 职工
    resident = "resident"  # 居民
    flexible = "flexible"  # 灵活就业


class PersonStatus(StrEnum):
    active = "active"  # 正常参保
    arrears = "arrears"  # 欠费
    suspended = "suspended"  # 暂停/封停
    terminated = "terminated"  # 终止


class Person(Base):
    """An insured person (参保人). ID number and phone live only in the vault columns."""

    __tablename__ = "persons"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    # Keyed blind index (HMAC) for look-up; AES-GCM ciphertext for display.
    id_number_index: Mapped[str] = mapped_column(String(64), unique=True)
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
