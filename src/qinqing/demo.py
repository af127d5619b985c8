"""Demo data for `qinqing serve --demo`: two regions, a few families, staff of each
role and one API client of each kind. Development mode only; loading twice is harmless.

The credentials are fixed and printed so a person trying the service can log in;
staff created here are flagged ``default_password`` and production refuses to
start while any such account exists (SPEC §7).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from qinqing.audit.service import Actor
from qinqing.auth import service as auth
from qinqing.auth.models import StaffUser
from qinqing.identity import ric
from qinqing.persons.service import find_by_id_number, new_person
from qinqing.runtime import Runtime

DEMO_ACTOR = Actor("operator", "demo-loader", "admin")
PERSON_PASSWORD = "Demo2026pass"
PAYMENT_PASSWORD = "135790"
STAFF_PASSWORD = "Demo-staff-2026"


@dataclass(frozen=True)
class DemoPerson:
    first17: str
    name: str
    region: str
    scheme: str
    status: str
    phone: str | None
    account: bool = False

    @property
    def id_number(self) -> str:
        return ric.with_check_digit(self.first17)


PEOPLE = [
    # 鄂尔多斯 — the 张 family: an employee holder, spouse, elderly parents, a child.
    DemoPerson("15060219850312003", "张伟", "150600", "employee", "active", "13800000001", True),
    DemoPerson("15060219870721004", "李娜", "150600", "employee", "active", "13800000002", True),
    # Issued under 伊克昭盟东胜市 (152701), a code abolished in 2001: still valid.
    DemoPerson("15270119520118001", "张建国", "150600", "resident", "active", "13800000003", True),
    DemoPerson("15270119540905002", "王秀英", "150600", "resident", "arrears", None),
    DemoPerson("15060220150601002", "张子涵", "150600", "resident", "active", None),
    # 广州 — the 陈 family (a manual-review region).
    DemoPerson("44010619800215001", "陈明", "440100", "employee", "active", "13900000001", True),
    DemoPerson("44010419820430002", "林芳", "440100", "flexible", "active", "13900000002", True),
    DemoPerson("44010619550101003", "陈国强", "440100", "resident", "suspended", None),
]

STAFF = [
    ("demo-clerk", "clerk", "150600"),
    ("demo-reviewer", "reviewer", "440100"),
    ("demo-clerk-gz", "clerk", "440100"),
    ("demo-admin", "admin", "150600"),
]

CLIENTS = [
    ("qq_demo_bank", "示例银行 Demo Bank", "bank", "150600", "DEMOBANK", "demo-bank-secret-2026"),
    (
        "qq_demo_hospital",
        "鄂尔多斯市中心医院 (demo)",
        "institution",
        "150600",
        None,
        "demo-hospital-secret-2026",
    ),
    (
        "qq_demo_collector",
        "鄂尔多斯市税务局 (demo)",
        "collector",
        "150600",
        None,
        "demo-collector-secret-2026",
    ),
]


def load(rt: Runtime) -> bool:
    """Create the demo data; False when it was already there."""
    now = rt.clock.now()
    with rt.db.unit_of_work() as session:
        if session.execute(select(StaffUser.id).where(StaffUser.username == "demo-clerk")).first():
            return False
        for p in PEOPLE:
            ident = ric.parse(p.id_number, date.today())
            if find_by_id_number(session, rt.vault, ident.number) is None:
                session.add(
                    new_person(
                        rt.vault,
                        ident=ident,
                        name=p.name,
                        region_code=p.region,
                        scheme=p.scheme,
                        status=p.status,
                        phone=p.phone,
                        now=now,
                    )
                )
        session.flush()
        for p in PEOPLE:
            if p.account and p.phone:
                auth.register(
                    session,
                    rt,
                    id_number=p.id_number,
                    name=p.name,
                    phone=p.phone,
                    password=PERSON_PASSWORD,
                )
        for username, role, region in STAFF:
            auth.add_staff(
                session,
                rt,
                username=username,
                role=role,
                region_code=region,
                password=STAFF_PASSWORD,
                actor=DEMO_ACTOR,
                default_password=True,
            )
        for cid, name, kind, region, bank, secret in CLIENTS:
            auth.add_client(
                session,
                rt,
                name=name,
                kind=kind,
                region_code=region,
                bank_code=bank,
                actor=DEMO_ACTOR,
                secret=secret,
                client_id=cid,
            )
        _set_payment_passwords(session, rt)
    return True


def _set_payment_passwords(session: object, rt: Runtime) -> None:
    from sqlalchemy.orm import Session

    from qinqing.auth.models import PersonAccount

    assert isinstance(session, Session)
    for acct in session.execute(select(PersonAccount)).scalars():
        acct.payment_password_hash = auth.passwords(rt).hash(PAYMENT_PASSWORD)


def logins() -> list[tuple[str, str, str, str]]:
    """(who, login, password, note) rows for the console."""
    rows = [
        (
            f"{p.name} ({p.region}, {p.scheme})",
            p.phone,
            PERSON_PASSWORD,
            f"payment password {PAYMENT_PASSWORD}",
        )
        for p in PEOPLE
        if p.account and p.phone
    ]
    rows += [(f"staff {role} ({region})", u, STAFF_PASSWORD, "") for u, role, region in STAFF]
    rows += [
        (f"client {kind} ({region})", cid, secret, "POST /api/v1/auth/token")
        for cid, _n, kind, region, _b, secret in CLIENTS
    ]
    return rows
