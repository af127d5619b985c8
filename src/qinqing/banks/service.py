"""Bank association (医保关联银行账户): link, confirm, list, unlink, and a bank's
view of its customer's family links.

Both sides confirm. A person starts a link in the app, naming the bank, and the
link waits for that bank; a bank starts one for its customer, named by ID
number and name as registered, and the link waits for the person (a one-time
code to the registry phone, forwarded by the bank's app, or a confirmation in
the app). Only an ``active`` link makes the person the bank's customer
(``banks.access``). A bank client sees and changes only its own bank's links;
anything else answers 404 as an unknown id does. Services only flush.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from qinqing.access.principal import Principal
from qinqing.access.roles import is_bank_client
from qinqing.audit.service import record
from qinqing.auth import otp, throttle
from qinqing.auth.models import ApiClient
from qinqing.banks import rules
from qinqing.banks.models import Awaiting, BankAccountIndex, BankLink, BankLinkStatus
from qinqing.banks.outbox import bank_link_event
from qinqing.family.models import FamilyLink
from qinqing.family.service import family_of
from qinqing.identity import ric
from qinqing.identity.masking import mask_id_number
from qinqing.kit.errors import DomainError, forbidden, not_found
from qinqing.notify.service import enqueue
from qinqing.persons.models import Person
from qinqing.persons.service import ID_KIND, PHONE_KIND, find_in_constant_work, id_number_of
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


def bank_names(session: Session, codes: set[str]) -> dict[str, str]:
    """The partner banks' names by code (the name of a bank client carrying it)."""
    if not codes:
        return {}
    rows = session.execute(
        select(ApiClient.bank_code, ApiClient.name)
        .where(ApiClient.kind == "bank", ApiClient.bank_code.in_(sorted(codes)))
        .order_by(ApiClient.created_at)
    ).all()
    names: dict[str, str] = {}
    for code, name in rows:
        if code:
            names.setdefault(code, name)
    return names


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

CONFIRM_PURPOSE = "bank_link_confirm"
# Codes a bank may have sent to one ID number per hour (counted for every
# request, whether or not anyone has the number).
CODES_PER_HOUR = 10
CODES_PER_DAY = 20
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Started:
    """A new pending link and the confirmation message to send after the commit."""

    link: BankLink
    message: otp.Outgoing | None


def create_link(
    session: Session,
    rt: Runtime,
    principal: Principal,
    *,
    account_number: str,
    bank_code: str | None = None,
    id_number: str | None = None,
    name: str | None = None,
) -> Started:
    """Start a link; it is ``pending`` until the other side confirms it.

    A person names the bank (``bank_code``) and the link waits for that bank.
    A bank names its customer by ID number and name; the link waits for the
    person, who gets a one-time code on the registry phone (or confirms in the
    app). Whether or not the person exists, the name matches and the person is
    of the bank's region, the bank gets the same pending link after the same
    work: for nobody the link belongs to no person and can never be confirmed.
    409 BANK_ACCOUNT_ALREADY_LINKED only while the account is *active* anywhere.
    """
    _require(principal, LINKS_SCOPE)
    now = rt.clock.now()
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
        index = _free_index(session, rt, number)
        link = _new_link(
            rt, principal, principal.person_id, bank_code, number, index, Awaiting.bank, now
        )
        session.add(link)
        session.flush()
        _requested(session, principal, link, now, matched=True)
        return Started(link, None)

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
    index = _free_index(session, rt, number)
    # Per bank and ID number: one bank cannot use up another's allowance for a person.
    key = rt.vault.index("sms-id-number", f"{ident.number}\x00{bank_code}")
    wait = throttle.take(
        session, "banklink:" + key, per_window=CODES_PER_HOUR, window=HOUR, now=now
    ) or throttle.take(session, "banklinkday:" + key, per_window=CODES_PER_DAY, window=DAY, now=now)
    if wait:
        raise DomainError("SMS_CODE_THROTTLED", 429, retry_after=wait)
    # The person's row is read whether or not anyone has the number.
    person = find_in_constant_work(session, rt.vault, ident.number)
    matched = (
        person is not None
        and person.name == name.strip()
        and person.region_code == principal.region_code
    )
    person_id = person.id if person is not None and matched else uuid.uuid4()
    link = _new_link(rt, principal, person_id, bank_code, number, index, Awaiting.person, now)
    link.claimed_id_cipher = rt.vault.encrypt(ID_KIND, ident.number)
    session.add(link)
    session.flush()
    phone = (
        rt.vault.decrypt(PHONE_KIND, person.phone_cipher)
        if person is not None and matched and person.phone_cipher is not None
        else None
    )
    message = otp.issue(
        session,
        rt,
        purpose=CONFIRM_PURPOSE,
        person_id=person_id,
        subject=str(link.id),
        phone=phone,
        now=now,
        bank=bank_names(session, {bank_code}).get(bank_code, bank_code),
        last4=number[-4:],
    )
    _requested(session, principal, link, now, matched=matched, masked=rules.mask_account(number))
    return Started(link, message)


def _free_index(session: Session, rt: Runtime, number: str) -> str:
    """The account's blind index; 409 while an active link holds the account."""
    index = rt.vault.index(ACCOUNT_KIND, number)
    if session.get(BankAccountIndex, index) is not None:
        raise DomainError("BANK_ACCOUNT_ALREADY_LINKED", 409)
    return index


def _new_link(
    rt: Runtime,
    principal: Principal,
    person_id: uuid.UUID,
    bank_code: str,
    number: str,
    index: str,
    awaiting: Awaiting,
    now: datetime,
) -> BankLink:
    return BankLink(
        person_id=person_id,
        id=uuid.uuid4(),
        bank_code=bank_code,
        account_index=index,
        account_cipher=rt.vault.encrypt(ACCOUNT_KIND, number),
        status=BankLinkStatus.pending.value,
        awaiting=awaiting.value,
        created_at=now,
        created_by_kind=principal.kind,
        created_by_id=principal.id,
        created_channel=principal.channel,
    )


def _requested(
    session: Session,
    principal: Principal,
    link: BankLink,
    now: datetime,
    *,
    matched: bool,
    masked: str | None = None,
) -> None:
    """Audit every request; a person a bank named gets a notice to confirm or ignore."""
    record(
        session,
        actor=principal.actor,
        action="bank_link.requested",
        subject_kind=SUBJECT,
        subject_id=link.id,
        at=now,
        details={
            "bank_code": link.bank_code,
            "person_id": str(link.person_id) if matched else None,
            "awaiting": link.awaiting,
        },
    )
    if matched and link.awaiting == Awaiting.person:
        enqueue(
            session,
            person_id=link.person_id,
            kind="bank_link.pending",
            at=now,
            payload={
                "bank_link_id": str(link.id),
                "bank_code": link.bank_code,
                "account_number_masked": masked,
                "channel": principal.channel,
            },
        )
    session.flush()


def _announce(
    session: Session, rt: Runtime, principal: Principal, link: BankLink, kind: str, now: datetime
) -> None:
    """Audit, tell the person (a bank acting for them is worth a notice), and the bank."""
    masked = masked_account_of(rt, link)
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
            "account_number_masked": masked,
            "channel": principal.channel,
        },
    )
    bank_link_event(session, link, kind, masked, now)
    session.flush()


# --- confirm ------------------------------------------------------------------------


def confirm_link(
    session: Session,
    rt: Runtime,
    principal: Principal,
    link_id: str | uuid.UUID,
    *,
    sms_code: str | None = None,
) -> BankLink:
    """The other side confirms a pending link, which becomes ``active``.

    A link a bank started waits for the person: the person confirms in the app
    (no code), or the bank forwards the one-time code the person received
    (``sms_code``; wrong 422 ``SMS_CODE_INVALID``, then ``SMS_CODE_LOCKED`` after
    5 wrong tries, ``SMS_CODE_EXPIRED`` after 10 minutes). A link of nobody
    answers exactly as a real link with a wrong code. A link the person started
    waits for its bank, which confirms without a code. 409 BANK_LINK_NOT_PENDING
    for an active or ended link, BANK_LINK_AWAITS_BANK for the person on a link
    only the bank can confirm; BANK_ACCOUNT_ALREADY_LINKED when another link of
    the account became active first (that link stays pending; either side may
    unlink it).
    """
    _require(principal, LINKS_SCOPE)
    link = _locked(session, principal, link_id)
    if link.status != BankLinkStatus.pending:
        raise DomainError("BANK_LINK_NOT_PENDING", 409, link_status=link.status)
    now = rt.clock.now()
    if principal.kind == "person":
        if sms_code is not None:
            raise DomainError("PARAMETER_NOT_ALLOWED", 422, parameter="sms_code")
        if link.awaiting != Awaiting.person:
            raise DomainError("BANK_LINK_AWAITS_BANK", 409)
        _free_index(session, rt, account_number_of(rt, link))
    elif link.awaiting == Awaiting.person:
        if not sms_code:
            raise DomainError("SMS_CODE_REQUIRED", 422)
        _free_index(session, rt, account_number_of(rt, link))
        otp.check(
            session,
            rt,
            purpose=CONFIRM_PURPOSE,
            person_id=link.person_id,
            subject=str(link.id),
            code=sms_code,
            now=now,
        )
    else:
        if sms_code is not None:
            raise DomainError("PARAMETER_NOT_ALLOWED", 422, parameter="sms_code")
        _free_index(session, rt, account_number_of(rt, link))
    try:
        # The look-up row is the guard against two concurrent activations of one account.
        with session.begin_nested():
            session.add(
                BankAccountIndex(
                    account_index=link.account_index,
                    person_id=link.person_id,
                    bank_link_id=link.id,
                    created_at=now,
                )
            )
    except IntegrityError:
        raise DomainError("BANK_ACCOUNT_ALREADY_LINKED", 409) from None
    link.status = BankLinkStatus.active.value
    link.awaiting = None
    link.confirmed_at = now
    link.confirmed_by_kind = principal.kind
    link.confirmed_by_id = principal.id
    link.confirmed_channel = principal.channel
    session.flush()
    _announce(session, rt, principal, link, "bank_link.created", now)
    return link


def _locked(session: Session, principal: Principal, link_id: str | uuid.UUID) -> BankLink:
    """The link the caller may see, locked; 404 as an unknown id otherwise."""
    peek = _visible(session, principal, _parse_id(link_id))
    if peek is None:
        raise not_found(SUBJECT)
    return session.execute(
        select(BankLink)
        .where(BankLink.person_id == peek.person_id, BankLink.id == peek.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).scalar_one()


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
    """Unlink an active or pending link: it is ``ended`` and kept, with who ended it,
    when and through which channel. Ending an active link tells the person and the
    bank (``bank_link.ended``); a pending one was never the bank's to know of, so it
    is only audited."""
    _require(principal, LINKS_SCOPE)
    link = _locked(session, principal, link_id)
    if link.status == BankLinkStatus.ended:
        raise DomainError("BANK_LINK_ENDED", 409)
    was_active = link.status == BankLinkStatus.active
    now = rt.clock.now()
    link.status = BankLinkStatus.ended.value
    link.awaiting = None
    link.ended_at = now
    link.ended_by_kind = principal.kind
    link.ended_by_id = principal.id
    link.ended_channel = principal.channel
    if not was_active:
        session.flush()
        record(
            session,
            actor=principal.actor,
            action="bank_link.withdrawn",
            subject_kind=SUBJECT,
            subject_id=link.id,
            at=now,
            details={"bank_code": link.bank_code},
        )
        return link
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


def id_number_masked_of(session: Session, rt: Runtime, link: BankLink) -> str:
    """The ID number of the link's person, masked: the one the bank named for a link
    a bank started (a link of nobody has no person), else the registry's."""
    if link.claimed_id_cipher is not None:
        return mask_id_number(rt.vault.decrypt(ID_KIND, link.claimed_id_cipher))
    person = session.get(Person, link.person_id)
    assert person is not None
    return mask_id_number(id_number_of(rt.vault, person))
