"""Demo data for `qinqing serve --demo`: two regions, a few families, staff of each
role and one API client of each kind. Development mode only; loading twice is harmless.

The credentials are fixed and printed so a person trying the service can log in;
staff created here are flagged ``default_password`` and production refuses to
start while any such account exists (docs/guide.md §7).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.access.principal import CLIENT_SCOPES, Principal
from qinqing.audit.actor import Actor
from qinqing.auth import service as auth
from qinqing.auth.models import ApiClient, PersonAccount, StaffUser
from qinqing.auth.verification import PaymentPasswordVerification
from qinqing.banks import service as banks
from qinqing.banks.endpoints import set_endpoint
from qinqing.banks.models import BankLink, WebhookEndpoint
from qinqing.config import Env, Settings
from qinqing.contributions.rules import current_period, previous_period
from qinqing.contributions.service import post_contribution
from qinqing.family import service as family
from qinqing.family.models import FamilyLink, LinkStatus
from qinqing.family.views import pair_key
from qinqing.identity import ric
from qinqing.kit.clock import china_date
from qinqing.kit.db import insert_ignore
from qinqing.kit.errors import DomainError
from qinqing.payments import service as payments
from qinqing.persons.models import Person, PersonGuardian
from qinqing.persons.service import ID_KIND, find_by_id_number, new_person
from qinqing.quota import service as quota
from qinqing.resident import service as resident
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
    # A minor's registered guardians (first 17 digits of their ID numbers), as the
    # registry's household register names them.
    guardians: tuple[str, ...] = ()

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
    DemoPerson(
        "15060220150601002",
        "张子涵",
        "150600",
        "resident",
        "active",
        None,
        guardians=("15060219850312003", "15060219870721004"),
    ),
    # 广州 — the 陈 family (a manual-review region).
    DemoPerson("44010619800215001", "陈明", "440100", "employee", "active", "13900000001", True),
    DemoPerson("44010419820430002", "林芳", "440100", "flexible", "active", "13900000002", True),
    DemoPerson("44010619550101003", "陈国强", "440100", "resident", "suspended", None),
    # 李娜's mother, insured in 广州 under the resident scheme: another province than her
    # daughter's 鄂尔多斯, so their mutual aid goes through a 共济额度 (quota).
    DemoPerson("44010619580312024", "黄桂兰", "440100", "resident", "active", None),
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
    with rt.db.unit_of_work() as session:
        if session.execute(select(StaffUser.id).where(StaffUser.username == "demo-clerk")).first():
            # Persons and staff are there; add any person and family link a newer demo
            # knows of.
            _load_people(session, rt)
            _load_guardians(session, rt)
            return (_load_family(session, rt) + _load_banks(session, rt)) > 0
        _load_people(session, rt)
        _load_guardians(session, rt)
        for p in PEOPLE:
            if p.account and p.phone:
                auth.open_account(
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
        _load_family(session, rt)
        _load_money(session, rt)
        _load_banks(session, rt)
    return True


def _load_people(session: Session, rt: Runtime) -> None:
    """The demo persons not yet in the registry (as ``persons import`` would add them)."""
    now = rt.clock.now()
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


# (holder, member, relation, mutual aid, active): adults' consent is recorded by the
# loader as if given at the counter; a young child is bound directly as the rules say.
FAMILY = [
    ("15060219850312003", "15060219870721004", "spouse", True, True),
    ("15060219850312003", "15270119520118001", "father", True, True),
    ("15060219850312003", "15270119540905002", "mother", False, True),
    ("15060219850312003", "15060220150601002", "child", True, True),
    ("44010619800215001", "44010419820430002", "spouse", True, True),
    ("44010619800215001", "44010619550101003", "father", False, False),
    ("15060219870721004", "44010619580312024", "mother", True, True),
]


def _load_guardians(session: Session, rt: Runtime) -> None:
    """The demo minors' registered guardians (what `persons import` takes from the
    registry's ``guardians`` column)."""
    now = rt.clock.now()
    for p in PEOPLE:
        if not p.guardians:
            continue
        minor = find_by_id_number(session, rt.vault, p.id_number)
        assert minor is not None
        for first17 in p.guardians:
            insert_ignore(
                session,
                PersonGuardian,
                {
                    "person_id": minor.id,
                    "guardian_index": rt.vault.index(ID_KIND, ric.with_check_digit(first17)),
                    "created_at": now,
                },
            )


def _load_family(session: Session, rt: Runtime) -> int:
    """Bind the demo families through the family service (same rules, audit and
    notices). A pair that was ever linked is left alone, so a link unbound while
    trying the demo is not brought back. Returns how many links were created."""

    def person(first17: str) -> Person:
        found = find_by_id_number(session, rt.vault, ric.with_check_digit(first17))
        assert found is not None
        return found

    created = 0
    for holder_first17, member_first17, relation, mutual_aid, active in FAMILY:
        holder, member = person(holder_first17), person(member_first17)
        key = pair_key(holder.id, member.id)
        if session.execute(select(FamilyLink.id).where(FamilyLink.pair_key == key)).first():
            continue
        link = family.bind_persons(
            session,
            rt,
            actor=DEMO_ACTOR,
            holder_id=holder.id,
            member_id=member.id,
            relation=relation,
            mutual_aid=mutual_aid,
        )
        if active and link.status == LinkStatus.pending_consent:
            family.activate(
                session, rt, link, holder, member, actor=DEMO_ACTOR, verification_method="demo"
            )
        created += 1
    return created


# Ordos employees whose personal accounts the demo funds (three months' contributions).
FUNDED = ("15060219850312003", "15060219870721004")
DEMO_HOLD_FEN = 12_800


def _load_money(session: Session, rt: Runtime) -> None:
    """Three months of contributions for the Ordos employees, through the collector,
    and one open hospital hold on 张伟's account for 李娜's bill — so the unbind
    check of that link shows UNSETTLED_PAYMENTS, as a real family might see it."""

    collector = Principal(
        "client",
        "qq_demo_collector",
        "collector",
        token_hash="-",
        region_code="150600",
        scopes=frozenset({"contributions"}),
    )
    hospital = Principal(
        "client",
        "qq_demo_hospital",
        "institution",
        token_hash="-",
        region_code="150600",
        scopes=frozenset({"payments"}),
    )
    period = current_period(rt.clock.now())
    for _ in range(3):
        period = previous_period(period)
        for first17 in FUNDED:
            post_contribution(
                session,
                rt,
                collector,
                id_number=ric.with_check_digit(first17),
                period=period,
                base_fen=800_000,
            )
    holder, member = (ric.with_check_digit(f) for f in FUNDED)
    payments.authorize(
        session, rt, hospital, payments.Authorize(holder, member, DEMO_HOLD_FEN, "DEMO-BILL-0001")
    )
    _load_quota(session, rt)


DEMO_QUOTA_FEN = 45_000


def _load_quota(session: Session, rt: Runtime) -> None:
    """李娜 sets 450 元 aside for her mother 黄桂兰 in 广州 (共济额度) and, while the
    enrollment window is open, pays her next year's resident insurance from it."""
    lina = find_by_id_number(session, rt.vault, ric.with_check_digit(QUOTA_HOLDER))
    assert lina is not None
    link = session.execute(
        select(FamilyLink).where(
            FamilyLink.holder_id == lina.id,
            FamilyLink.via_quota.is_(True),
            FamilyLink.status == LinkStatus.active.value,
        )
    ).scalar_one_or_none()
    if link is None:
        return
    me = Principal("person", str(lina.id), "app", "-", person_id=lina.id)
    password = PaymentPasswordVerification(
        method="payment_password", payment_password=PAYMENT_PASSWORD
    )
    quota.top_up(session, rt, me, link.id, DEMO_QUOTA_FEN, password)
    year = china_date(rt.clock.now()).year + 1
    try:
        with session.begin_nested():
            resident.pay(session, rt, me, link.id, year, password)
    except DomainError:
        pass  # outside the enrollment window: the quota stays whole


QUOTA_HOLDER = "15060219870721004"


# The demo bank's webhooks go to a receiver on this machine (docs/banks.md has one);
# nothing is sent until `qinqing worker` (or `qinqing webhooks deliver`) runs.
DEMO_BANK_ID = "qq_demo_bank"
DEMO_WEBHOOK_URL = "http://127.0.0.1:8099/webhooks"
DEMO_WEBHOOK_SECRET = "whsec_cWlucWluZy1kZW1vLXdlYmhvb2stc2VjcmV0LTIwMjY="
# 张伟 has linked this (fictitious, Luhn-valid) card with the demo bank.
DEMO_CUSTOMER = "15060219850312003"
DEMO_ACCOUNT = "6214830123452343"


def _load_banks(session: Session, rt: Runtime) -> int:
    """The demo bank's webhook endpoint and its one customer (张伟, a bank link the bank
    started and confirmed with the code sent to 张伟), made through the bank services;
    a link ended while trying the demo stays ended."""

    client = session.get(ApiClient, DEMO_BANK_ID)
    if client is None:
        return 0
    created = 0
    if session.get(WebhookEndpoint, DEMO_BANK_ID) is None:
        set_endpoint(
            session, rt, client, DEMO_WEBHOOK_URL, actor=DEMO_ACTOR, secret=DEMO_WEBHOOK_SECRET
        )
        created += 1
    customer = find_by_id_number(session, rt.vault, ric.with_check_digit(DEMO_CUSTOMER))
    assert customer is not None
    ever = session.execute(
        select(BankLink.id).where(
            BankLink.person_id == customer.id, BankLink.bank_code == client.bank_code
        )
    ).first()
    if ever is None:
        bank = Principal(
            "client",
            client.id,
            "bank",
            token_hash="-",
            region_code=client.region_code,
            scopes=frozenset(CLIENT_SCOPES["bank"].split()),
            bank_code=client.bank_code,
            role="bank",
        )
        # Both sides confirm: the bank starts the link, 张伟 gets a one-time code on
        # the registry phone, and the bank's app forwards it.
        started = banks.create_link(
            session,
            rt,
            bank,
            account_number=DEMO_ACCOUNT,
            id_number=ric.with_check_digit(DEMO_CUSTOMER),
            name=customer.name,
        )
        if started.message is not None:
            banks.confirm_link(session, rt, bank, started.link.id, sms_code=started.message.code)
        else:  # no registry phone: 张伟 confirms in the app
            person = Principal("person", str(customer.id), "app", "-", person_id=customer.id)
            banks.confirm_link(session, rt, person, started.link.id)
        created += 1
    return created


def _set_payment_passwords(session: Session, rt: Runtime) -> None:

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
    rows.append(
        (
            f"webhook secret of {DEMO_BANK_ID}",
            DEMO_WEBHOOK_URL,
            DEMO_WEBHOOK_SECRET,
            "see docs/banks.md",
        )
    )
    return rows


def login_records() -> list[dict[str, str]]:
    """The logins as records (``serve --demo --json``): kind, who, login, secret, note."""
    records = []
    for who, login, secret, note in logins():
        kind = "person"
        if who.startswith(("staff ", "client ")):
            kind, who = who.split(" ", 1)
        elif who.startswith("webhook "):
            kind = "webhook"
        records.append({"kind": kind, "who": who, "login": login, "secret": secret, "note": note})
    return records


def logins_text(*, created: bool) -> str:
    """One login per line, login and secret first and never broken, so a line can be
    copied from an 80-column terminal or a log file as it is."""
    records = login_records()
    login_width = max(len(r["login"]) for r in records)
    secret_width = max(len(r["secret"]) for r in records)
    lines = ["Demo logins" + ("" if created else " (already loaded)") + ":"]
    lines += [
        f"  {r['kind']:<6}  {r['login']:<{login_width}}  {r['secret']:<{secret_width}}  "
        + r["who"]
        + (f"; {r['note']}" if r["note"] else "")
        for r in records
    ]
    lines.append("ID numbers and phones are fictitious demo data. Logins as JSON: --json.")
    return "\n".join(lines) + "\n"


class ResetRefused(Exception):
    """``serve --demo --reset`` would delete data that is not the embedded demo's."""


# What the service writes into QINQING_DATA_DIR. A reset removes these files only,
# never the directory as a whole: the variable might name a folder with other things.
DATA_FILES = ("qinqing.sqlite3", "qinqing.sqlite3-wal", "qinqing.sqlite3-shm", "secret.key")
DATA_GLOBS = ("qinqing.sqlite3-journal", "simulated-*.jsonl")


def reset(settings: Settings) -> list[Path]:
    """Delete the embedded demo's database and vault key so the next start begins
    afresh; refused for any other database and outside development mode."""
    if settings.database_url:
        raise ResetRefused(
            "--reset only wipes the embedded SQLite database in QINQING_DATA_DIR; "
            "QINQING_DATABASE_URL is set, so drop or recreate that database yourself"
        )
    if settings.effective_env is not Env.development:
        raise ResetRefused(
            f"--reset is for development mode only (QINQING_ENV is {settings.effective_env})"
        )
    removed = []
    candidates = [settings.data_dir / name for name in DATA_FILES]
    for pattern in DATA_GLOBS:
        candidates += sorted(settings.data_dir.glob(pattern))
    for path in candidates:
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(path)
    return removed
