"""Bank association (医保关联银行账户): link, list, unlink, and a bank's view of
its customer's family links.

A person links their own account in the app, naming the bank; a bank client
links its customer, named by ID number and name as registered, always with its
own bank. A bank client sees and changes only its own bank's links; anything
else answers 404 as an unknown id does. Services only flush.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.access.roles import is_bank_client
from qinqing.audit.service import record
from qinqing.auth.models import ApiClient
from qinqing.banks import rules
from qinqing.banks.models import BankAccountIndex, BankLink, BankLinkStatus
from qinqing.banks.outbox import bank_link_event
from qinqing.family.models import FamilyLink
from qinqing.family.service import family_of
from qinqing.identity import ric
from qinqing.kit.errors import DomainError, forbidden, not_found
from qinqing.notify.service import enqueue
from qinqing.persons.models import Person
from qinqing.persons.service import find_by_id_number
from qinqing.runtime import Runtime

ACCOUNT_KIND = "bank_account"
LINKS_SCOPE = "bank-links"
FAMILY_SCOPE = "family"
SUBJECT = "bank_link"


def account_number_of(rt: Runtime, link: BankLink) -> str:
    return rt.vault.decrypt(ACCOUNT_KIND, link.account_cipher)


def masked_account_of(rt: Runtime, link: BankLink) -> str:
    return rules.mask_account(account_number_of(rt, link))


def _require(principal: Principal, scope: str) -> None:
    """Persons pass; a bank client needs ``scope``; staff and other clients are refused."""
    if principal.kind == "person":
        return
    if principal.kind == "client":
        if not is_bank_client(principal) or scope not in principal.scopes:
            raise DomainError("INSUFFICIENT_SCOPE", 403, scope=scope)
        return
    raise forbidden()


def _parse_id(raw: str | uuid.UUID) -> uuid.UUID:
    if isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise not_found(SUBJECT) from None


def _partner_bank(session: Session, code: str) -> bool:
    return (
        session.execute(
            select(ApiClient.id)
            .where(
                ApiClient.kind == "bank", ApiClient.bank_code == code, ApiClient.disabled.is_(False)
            )
            .limit(1)
        ).first()
        is not None
    )


# --- link --------------------------------------------------------------------------


def create_link(
    session: Session,
    rt: Runtime,
    principal: Principal,
    *,
    account_number: str,
    bank_code: str | None = None,
    id_number: str | None = None,
    name: str | None = None,
) -> BankLink:
    """Link a bank account; 409 BANK_ACCOUNT_ALREADY_LINKED while it is linked anywhere."""
    _require(principal, LINKS_SCOPE)
    now = rt.clock.now()
    person_id: uuid.UUID
    if principal.kind == "person":
        for parameter, value in (("id_number", id_number), ("name", name)):
            if value is not None:
                raise DomainError("PARAMETER_NOT_ALLOWED", 422, parameter=parameter)
        if not bank_code:
            raise DomainError("BANK_CODE_MISSING", 422)
        if not rules.valid_bank_code(bank_code):
            raise DomainError("BANK_CODE_INVALID", 422)
        number = rules.normalize_account_number(account_number)
        if not _partner_bank(session, bank_code):
            raise DomainError("BANK_NOT_PARTNER", 422)
        assert principal.person_id is not None
        person_id = principal.person_id
    else:
        assert principal.bank_code is not None
        if bank_code is not None and bank_code != principal.bank_code:
            raise DomainError("PARAMETER_NOT_ALLOWED", 422, parameter="bank_code")
        bank_code = principal.bank_code
        for parameter, value in (("id_number", id_number), ("name", name)):
            if not value:
                raise DomainError("CUSTOMER_REQUIRED", 422, parameter=parameter)
        assert id_number is not None and name is not None
        ident = ric.parse(id_number, now.date())
        number = rules.normalize_account_number(account_number, check_digit=False)
        person = find_by_id_number(session, rt.vault, ident.number)
        # One answer for "no such person", "the name differs" and "not of this region".
        if (
            person is None
            or person.name != name.strip()
            or person.region_code != principal.region_code
        ):
            raise DomainError("CUSTOMER_NOT_FOUND", 422)
        person_id = person.id

    index = rt.vault.index(ACCOUNT_KIND, number)
    if session.get(BankAccountIndex, index) is not None:
        raise DomainError("BANK_ACCOUNT_ALREADY_LINKED", 409)
    link = BankLink(
        person_id=person_id,
        id=uuid.uuid4(),
        bank_code=bank_code,
        account_index=index,
        account_cipher=rt.vault.encrypt(ACCOUNT_KIND, number),
        status=BankLinkStatus.active.value,
        created_at=now,
        created_by_kind=principal.kind,
        created_by_id=principal.id,
        created_channel=principal.channel,
    )
    try:
        # The look-up row is the guard against two concurrent links of one account.
        with session.begin_nested():
            session.add(
                BankAccountIndex(
                    account_index=index, person_id=person_id, bank_link_id=link.id, created_at=now
                )
            )
    except IntegrityError:
        raise DomainError("BANK_ACCOUNT_ALREADY_LINKED", 409) from None
    session.add(link)
    session.flush()
    _announce(session, rt, principal, link, "bank_link.created", now)
    return link


def _announce(
    session: Session, rt: Runtime, principal: Principal, link: BankLink, kind: str, now: datetime
) -> None:
    """Audit, tell the person (a bank acting for them is worth a notice), and the bank."""
    record(
        session,
        actor=principal.actor,
        action=kind,
        subject_kind=SUBJECT,
        subject_id=link.id,
        at=now,
        details={"bank_code": link.bank_code, "person_id": str(link.person_id)},
    )
    enqueue(
        session,
        person_id=link.person_id,
        kind=kind,
        at=now,
        payload={
            "bank_link_id": str(link.id),
            "bank_code": link.bank_code,
            "channel": principal.channel,
        },
    )
    bank_link_event(session, link, kind, masked_account_of(rt, link), now)
    session.flush()


# --- read ---------------------------------------------------------------------------


def _visible(session: Session, principal: Principal, link_id: uuid.UUID) -> BankLink | None:
    """The link if the caller may see it: the person's own, or a bank's own bank's."""
    stmt = select(BankLink).where(BankLink.id == link_id)
    if principal.kind == "person":
        stmt = stmt.where(BankLink.person_id == principal.person_id)
    else:
        stmt = stmt.where(BankLink.bank_code == principal.bank_code)
    return session.execute(stmt).scalar_one_or_none()


def list_links(
    session: Session,
    principal: Principal,
    *,
    status: BankLinkStatus | None = None,
    page: int = 1,
    page_size: int = 20,
) -> tuple[list[BankLink], int]:
    """A person's own links, or a bank's links, newest first: one page and the total."""
    _require(principal, LINKS_SCOPE)
    if principal.kind == "person":
        where = [BankLink.person_id == principal.person_id]
    else:
        where = [BankLink.bank_code == principal.bank_code]
    if status is not None:
        where.append(BankLink.status == status.value)
    total = session.execute(select(func.count()).select_from(BankLink).where(*where)).scalar_one()
    rows = session.execute(
        select(BankLink)
        .where(*where)
        .order_by(BankLink.created_at.desc(), BankLink.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).scalars()
    return list(rows), int(total)


# --- unlink -------------------------------------------------------------------------


def end_link(
    session: Session, rt: Runtime, principal: Principal, link_id: str | uuid.UUID
) -> BankLink:
    """Unlink: the link is ``ended`` and kept, with who ended it, when and through which channel."""
    _require(principal, LINKS_SCOPE)
    peek = _visible(session, principal, _parse_id(link_id))
    if peek is None:
        raise not_found(SUBJECT)
    link = session.execute(
        select(BankLink)
        .where(BankLink.person_id == peek.person_id, BankLink.id == peek.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).scalar_one()
    if link.status != BankLinkStatus.active:
        raise DomainError("BANK_LINK_ENDED", 409)
    now = rt.clock.now()
    link.status = BankLinkStatus.ended.value
    link.ended_at = now
    link.ended_by_kind = principal.kind
    link.ended_by_id = principal.id
    link.ended_channel = principal.channel
    # The account may be linked again (by whoever holds it) once unlinked.
    session.execute(
        delete(BankAccountIndex).where(
            BankAccountIndex.account_index == link.account_index,
            BankAccountIndex.bank_link_id == link.id,
        )
    )
    session.flush()
    _announce(session, rt, principal, link, "bank_link.ended", now)
    return link


# --- the bank's view of its customer's family ---------------------------------------


def customer_family(
    session: Session, rt: Runtime, principal: Principal, link_id: str | uuid.UUID
) -> dict[str, list[FamilyLink]]:
    """The family links of the customer behind an active bank link of the caller's bank."""
    if principal.kind != "client":
        raise forbidden()
    _require(principal, FAMILY_SCOPE)
    link = _visible(session, principal, _parse_id(link_id))
    if link is None or link.status != BankLinkStatus.active:
        raise not_found(SUBJECT)

    return family_of(session, rt, link.person_id)


def person_of(session: Session, link: BankLink) -> Person:
    person = session.get(Person, link.person_id)
    assert person is not None
    return person
