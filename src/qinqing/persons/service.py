"""Insured persons: look-up by ID number through the vault, creation, display."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.identity.masking import mask_id_number, mask_phone
from qinqing.identity.ric import IdNumber
from qinqing.identity.vault import Vault
from qinqing.persons.models import Person, PersonGuardian, PersonIdNumber

ID_KIND = "id_number"
PHONE_KIND = "phone"


def get_person(session: Session, person_id: uuid.UUID | None) -> Person | None:
    """A person by id (on their own shard), or None."""
    return None if person_id is None else session.get(Person, person_id)


def guardians_of(session: Session, person_id: uuid.UUID) -> set[str]:
    """The blind indexes of a person's registered guardians' ID numbers (the registry's
    ``guardians`` column; empty for an adult or a minor without any on record)."""
    return set(
        session.execute(
            select(PersonGuardian.guardian_index).where(PersonGuardian.person_id == person_id)
        ).scalars()
    )


def persons_by_index(session: Session, indexes: set[str]) -> dict[str, uuid.UUID]:
    """ID-number blind index -> person id, for the indexes that name an insured person."""
    if not indexes:
        return {}
    return dict(
        session.execute(
            select(PersonIdNumber.id_number_index, PersonIdNumber.person_id).where(
                PersonIdNumber.id_number_index.in_(sorted(indexes))
            )
        ).all()
    )


def find_by_id_number(
    session: Session, vault: Vault, number: str, *, lock: bool = False
) -> Person | None:
    """The person with this ID number: the look-up table names the person, then the
    person's row is read (locked when asked) by its id, on its own shard."""
    person_id = session.execute(
        select(PersonIdNumber.person_id).where(
            PersonIdNumber.id_number_index == vault.index(ID_KIND, number)
        )
    ).scalar_one_or_none()
    if person_id is None:
        return None
    stmt = select(Person).where(Person.id == person_id)
    if lock:
        stmt = stmt.with_for_update(key_share=True)
    return session.execute(stmt).scalar_one_or_none()


def find_in_constant_work(session: Session, vault: Vault, number: str) -> Person | None:
    """As :func:`find_by_id_number`, doing the same work whether or not the number is
    known: the person's row is read either way (by a random id when nobody has the
    number), so an unknown number and a known one cost the same round trips."""
    person_id = session.execute(
        select(PersonIdNumber.person_id).where(
            PersonIdNumber.id_number_index == vault.index(ID_KIND, number)
        )
    ).scalar_one_or_none()
    return session.execute(
        select(Person).where(Person.id == (person_id or uuid.uuid4()))
    ).scalar_one_or_none()


def new_person(
    vault: Vault,
    *,
    ident: IdNumber,
    name: str,
    region_code: str,
    scheme: str,
    status: str,
    phone: str | None,
    now: datetime,
) -> Person:
    return Person(
        id_number_index=vault.index(ID_KIND, ident.number),
        id_number_cipher=vault.encrypt(ID_KIND, ident.number),
        name=name,
        region_code=region_code,
        scheme=scheme,
        status=status,
        birth_date=ident.birth_date,
        sex=ident.sex,
        phone_index=vault.index(PHONE_KIND, phone) if phone else None,
        phone_cipher=vault.encrypt(PHONE_KIND, phone) if phone else None,
        created_at=now,
        updated_at=now,
    )


def id_number_of(vault: Vault, person: Person) -> str:
    return vault.decrypt(ID_KIND, person.id_number_cipher)


def person_view(vault: Vault, person: Person, *, reveal: bool = False) -> dict[str, Any]:
    """A person as shown in responses: masked unless the caller is staff of the region."""
    number = id_number_of(vault, person)
    phone = vault.decrypt(PHONE_KIND, person.phone_cipher) if person.phone_cipher else None
    return {
        "id": str(person.id),
        "name": person.name,
        "id_number": number if reveal else mask_id_number(number),
        "phone": (phone if reveal else mask_phone(phone)) if phone else None,
        "sex": person.sex,
        "birth_date": person.birth_date.isoformat(),
        "region_code": person.region_code,
        "scheme": person.scheme,
        "status": person.status,
    }
