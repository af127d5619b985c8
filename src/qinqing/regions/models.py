from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from qinqing.kit.db import Base


class Region(Base):
    """统筹区. A reference table (replicated on Citus), synced from the policy files."""

    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    province_code: Mapped[str] = mapped_column(String(2), index=True)
