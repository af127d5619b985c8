"""Test helpers for family links (plain functions, no fixtures).

``make_active_link`` is the one to reach for when a test needs an active link:
it creates a holder and a member with app accounts and payment passwords
(``PAYMENT_PASSWORD``), binds over the API and, when the member is of consent
age, consents over the API. Persons get fresh ID numbers and phones from the
database's person count, so any number of links can be made in one test.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from qinqing.access.principal import Principal
from qinqing.auth.models import PersonAccount
from qinqing.family.rules import age_on
from qinqing.persons.models import Person
from qinqing.runtime import Runtime
from support.accounts import add_person, id_number, login, register
from support.guardians import register_guardians

API = "/api/v1"
PAYMENT_PASSWORD = "135790"
PERSON_PASSWORD = "Secret2026pw"

# A valid county-level area code inside each shipped region.
AREA = {"150600": "150602", "440100": "440106", "110000": "110101", "500000": "500103"}

# Birth date and sex that make a member plausible for each relation to a holder
# born 1985-01-01 (the default): parents older and of the right sex, children younger.
MEMBER_DEFAULTS: dict[str, tuple[date, str]] = {
    "spouse": (date(1986, 5, 5), "F"),
    "father": (date(1958, 3, 3), "M"),
    "mother": (date(1960, 4, 4), "F"),
    "child": (date(2008, 6, 6), "F"),  # 18 on the test clock (2026-11-23): consents
    "sibling": (date(1988, 7, 7), "M"),
    "grandparent": (date(1935, 8, 8), "M"),
    "grandchild": (date(2009, 9, 9), "F"),
}
HOLDER_BORN = date(1985, 1, 1)


@dataclass(frozen=True)
class Party:
    id: uuid.UUID
    id_number: str
    name: str
    phone: str
    headers: dict[str, str]


@dataclass(frozen=True)
class MadeLink:
    link_id: str
    holder: Party
    member: Party
    link: dict[str, Any]  # the LinkOut JSON after binding (and consent)

    @property
    def holder_id(self) -> uuid.UUID:
        return self.holder.id

    @property
    def member_id(self) -> uuid.UUID:
        return self.member.id

    @property
    def holder_headers(self) -> dict[str, str]:
        return self.holder.headers

    @property
    def member_headers(self) -> dict[str, str]:
        return self.member.headers


def _next_serial(rt: Runtime) -> int:
    with rt.db.unit_of_work() as s:
        return int(s.execute(select(func.count()).select_from(Person)).scalar_one()) + 1


def new_person(
    rt: Runtime,
    *,
    name: str = "测试人",
    region: str = "150600",
    scheme: str = "employee",
    status: str = "active",
    born: date = HOLDER_BORN,
    sex: str = "M",
    account: bool = True,
    payment_password: str | None = PAYMENT_PASSWORD,
    client: TestClient | None = None,
) -> Party:
    """A person with a fresh ID number and phone; with ``account`` (needs ``client``)
    also an app account, a login and a payment password. Without an account the
    headers are empty."""
    serial = _next_serial(rt)
    number = _free_id_number(rt, AREA[region], born, sex, serial)
    phone = f"137{serial:08d}"
    person, _ = add_person(
        rt, name=name, number=number, region=region, scheme=scheme, status=status, phone=phone
    )
    pid = person.id
    headers: dict[str, str] = {}
    if account:
        assert client is not None, "an account needs the test client"
        register(client, number, name, phone, PERSON_PASSWORD)
        headers = login(client, phone, PERSON_PASSWORD)
        if payment_password:
            r = client.put(
                f"{API}/me/payment-password",
                headers=headers,
                json={"password": PERSON_PASSWORD, "new_payment_password": payment_password},
            )
            assert r.status_code == 204, r.text
    return Party(pid, number, name, phone, headers)


def _free_id_number(rt: Runtime, area: str, born: date, sex: str, serial: int) -> str:
    """An ID number no person has yet, starting from order code ``serial``."""
    from qinqing.persons.service import find_by_id_number

    with rt.db.unit_of_work() as s:
        for n in range(serial, serial + 5000):
            number = id_number(area, born + timedelta(days=n // 500), n % 500, sex)
            if find_by_id_number(s, rt.vault, number) is None:
                return number
    raise AssertionError("no free ID number")  # pragma: no cover


def relogin(client: TestClient, party: Party) -> dict[str, str]:
    """Fresh auth headers for a party (after moving the clock past the token's life)."""
    return login(client, party.phone, PERSON_PASSWORD)


def principal_of(rt: Runtime, person_id: uuid.UUID) -> Principal:
    """The Principal a logged-in person would have, for calling services directly."""
    with rt.db.unit_of_work() as s:
        account = s.execute(
            select(PersonAccount).where(PersonAccount.person_id == person_id)
        ).scalar_one()
        return Principal("person", str(account.id), "app", "", person_id=person_id)


def set_status(rt: Runtime, person_id: uuid.UUID, status: str) -> None:
    """Change a person's insurance status directly (arrears, suspended, ...)."""
    with rt.db.unit_of_work() as s:
        s.execute(update(Person).where(Person.id == person_id).values(status=status))


def bind(
    client: TestClient,
    holder_headers: dict[str, str],
    member_number: str,
    member_name: str,
    relation: str = "spouse",
    *,
    mutual_aid: bool = False,
    yearly_limit_fen: int | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """POST /me/family; returns the httpx response."""
    body: dict[str, Any] = {
        "member_id_number": member_number,
        "member_name": member_name,
        "relation": relation,
        "mutual_aid": mutual_aid,
    }
    if yearly_limit_fen is not None:
        body["mutual_aid_yearly_limit_fen"] = yearly_limit_fen
    return client.post(f"{API}/me/family", headers={**holder_headers, **(headers or {})}, json=body)


def consent(
    client: TestClient,
    member_headers: dict[str, str],
    link_id: str,
    payment_password: str = PAYMENT_PASSWORD,
) -> Any:
    """POST /family/links/{id}/consent with a payment password; returns the response."""
    return client.post(
        f"{API}/family/links/{link_id}/consent",
        headers=member_headers,
        json={"verification": {"method": "payment_password", "payment_password": payment_password}},
    )


def make_active_link(
    rt: Runtime,
    client: TestClient,
    *,
    relation: str = "spouse",
    mutual_aid: bool = True,
    yearly_limit_fen: int | None = None,
    region: str = "150600",
    member_region: str | None = None,
    holder_scheme: str = "employee",
    member_scheme: str = "employee",
    member_born: date | None = None,
    member_sex: str | None = None,
    holder: Party | None = None,
    member: Party | None = None,
) -> MadeLink:
    """An active link between a new (or the given) holder and member, both with app
    accounts and payment password ``PAYMENT_PASSWORD``. Bound and consented over the
    API; a member under the consent age (pass ``member_born``) is bound directly by
    the holder as their registered guardian."""
    if holder is None:
        holder = new_person(
            rt, name="绑定人", region=region, scheme=holder_scheme, born=HOLDER_BORN, client=client
        )
    if member is None:
        born, sex = MEMBER_DEFAULTS[relation]
        member = new_person(
            rt,
            name="家庭成员",
            region=member_region or region,
            scheme=member_scheme,
            born=member_born or born,
            sex=member_sex or sex,
            client=client,
        )
    if member_born is not None and age_on(member_born, rt.clock.now().date()) < 16:
        register_guardians(rt, member.id_number, holder.id_number)
    r = bind(
        client,
        holder.headers,
        member.id_number,
        member.name,
        relation,
        mutual_aid=mutual_aid,
        yearly_limit_fen=yearly_limit_fen,
    )
    assert r.status_code == 201, r.text
    link = r.json()
    if link["status"] == "pending_consent":
        r = consent(client, member.headers, link["id"])
        assert r.status_code == 200, r.text
        link = r.json()
    assert link["status"] == "active", link
    return MadeLink(link["id"], holder, member, link)
