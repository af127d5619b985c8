"""Registering a minor's guardians as the registry import would (``person_guardians``)."""

from __future__ import annotations

from qinqing.kit.db import insert_ignore
from qinqing.persons.models import PersonGuardian
from qinqing.persons.service import ID_KIND, find_by_id_number
from qinqing.runtime import Runtime


def register_guardians(rt: Runtime, child_id_number: str, *guardian_id_numbers: str) -> None:
    """The household register names these persons as the child's guardians."""
    with rt.db.unit_of_work() as s:
        child = find_by_id_number(s, rt.vault, child_id_number)
        assert child is not None
        for number in guardian_id_numbers:
            insert_ignore(
                s,
                PersonGuardian,
                {
                    "person_id": child.id,
                    "guardian_index": rt.vault.index(ID_KIND, number),
                    "created_at": rt.clock.now(),
                },
            )
