"""The database set-up: bound, funded families and the institution client that pays.

The rows are built in memory and written with bulk inserts, 5,000 at a time."""

from __future__ import annotations

import random
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bench.common.ids import first17
from qinqing.audit.actor import Actor
from qinqing.auth import service as auth
from qinqing.family.models import FamilyLink, FamilyLinkMember
from qinqing.family.views import pair_key
from qinqing.identity.ric import parse, with_check_digit
from qinqing.ledger.accounts import funding_code, personal_code
from qinqing.ledger.models import LedgerAccount, LedgerEntry, LedgerSystemAccount, LedgerTransfer
from qinqing.persons.models import Person, PersonIdNumber
from qinqing.persons.service import new_person

REGION = "150600"
BALANCE = 10**12  # fen: nobody runs out during the run
SECRET = "bench-institution-secret"


def seed(rt: Any, families: int, out: Path) -> str:
    """Bound, funded families and one institution client; writes holder,member lines."""
    now = rt.clock.now()
    rnd = random.Random(20261123)
    seen: set[str] = set()
    persons: list[dict[str, Any]] = []
    pairs: list[tuple[str, str]] = []
    today = now.date()

    def person(scheme: str) -> tuple[uuid.UUID, str, dict[str, Any]]:
        while True:
            first = first17(rnd, date(1950, 1, 1), 25_000)
            if first not in seen:
                seen.add(first)
                break
        number = with_check_digit(first)
        p = new_person(
            rt.vault,
            ident=parse(number, today),
            name="测试",
            region_code=REGION,
            scheme=scheme,
            status="active",
            phone=None,
            now=now,
        )
        p.id = uuid.uuid4()
        row = {c.key: getattr(p, c.key) for c in Person.__table__.columns}
        return p.id, number, row

    links, members, numbers, accounts, transfers, entries = [], [], [], [], [], []
    funding_id = uuid.uuid4()
    for _ in range(families):
        hid, hnum, hrow = person("employee")
        mid, mnum, mrow = person("resident")
        persons += [hrow, mrow]
        numbers += [
            {"id_number_index": r["id_number_index"], "person_id": r["id"]} for r in (hrow, mrow)
        ]
        pairs.append((hnum, mnum))
        lid = uuid.uuid4()
        members.append({"member_id": mid, "link_id": lid, "holder_id": hid})
        links.append(
            {
                "id": lid,
                "holder_id": hid,
                "member_id": mid,
                "pair_key": pair_key(hid, mid),
                "relation": "child",
                "mutual_aid": True,
                "mutual_aid_yearly_limit_fen": None,
                "status": "active",
                "region_code": REGION,
                "created_at": now,
                "created_by_kind": "person",
                "created_by_id": str(hid),
                "created_channel": "app",
                "consent_required": False,
                "activated_at": now,
                "updated_at": now,
            }
        )
        aid, tid = uuid.uuid4(), uuid.uuid4()
        accounts.append(
            {
                "id": aid,
                "code": personal_code(hid),
                "kind": "personal",
                "person_id": hid,
                "region_code": REGION,
                "balance_fen": BALANCE,
                "held_fen": 0,
                "allow_negative": False,
                "created_at": now,
            }
        )
        transfers.append(
            {
                "person_id": hid,
                "id": tid,
                "debit_account_id": funding_id,
                "credit_account_id": aid,
                "amount_fen": BALANCE,
                "kind": "contribution",
                "payment_id": None,
                "contribution_id": None,
                "created_at": now,
            }
        )
        entries += [
            {
                "person_id": hid,
                "id": uuid.uuid4(),
                "transfer_id": tid,
                "account_id": funding_id,
                "amount_fen": -BALANCE,
                "created_at": now,
            },
            {
                "person_id": hid,
                "id": uuid.uuid4(),
                "transfer_id": tid,
                "account_id": aid,
                "amount_fen": BALANCE,
                "created_at": now,
            },
        ]
    funding = {
        "id": funding_id,
        "code": funding_code(REGION),
        "kind": "funding",
        "region_code": REGION,
        "balance_fen": -BALANCE * families,
        "allow_negative": True,
        "created_at": now,
    }
    with rt.db.unit_of_work() as s:
        for table, rows in (
            (Person, persons),
            (PersonIdNumber, numbers),
            (FamilyLink, links),
            (FamilyLinkMember, members),
            (LedgerSystemAccount, [funding]),
            (LedgerAccount, accounts),
            (LedgerTransfer, transfers),
            (LedgerEntry, entries),
        ):
            for i in range(0, len(rows), 5000):
                s.execute(insert(table), rows[i : i + 5000])
        client, _ = auth.add_client(
            s,
            rt,
            name="bench hospital",
            kind="institution",
            region_code=REGION,
            bank_code=None,
            actor=Actor("operator", "bench", "admin"),
            secret=SECRET,
        )
    out.write_text("".join(f"{h},{m}\n" for h, m in pairs))
    return client.id


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """The holder,member lines seed() wrote."""
    return [(h, m) for h, m in (ln.split(",") for ln in path.read_text().splitlines())]
