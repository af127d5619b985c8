"""Regions in the database: the ``regions`` reference table mirrors the policies."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.regions.models import Region
from qinqing.regions.registry import PolicyRegistry


def sync_regions(session: Session, registry: PolicyRegistry) -> None:
    """Mirror the registry's regions into the ``regions`` reference table (upsert).
    Runs at every start: the table is read in one statement, not a row at a time."""
    stored = {row.code: row for row in session.scalars(select(Region))}
    for info in registry.regions():
        row = stored.get(info.code)
        if row is None:
            session.add(Region(code=info.code, name=info.name, province_code=info.province_code))
        else:
            row.name = info.name
            row.province_code = info.province_code
    session.flush()
