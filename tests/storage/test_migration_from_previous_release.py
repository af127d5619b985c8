"""A database made by the previous release migrates to the distributable schema
with its data intact: the demo families, three months of contributions, a
settled payment and an open hold, a person's session, on SQLite and PostgreSQL.

The previous release's own code builds that database (its source is taken from
git at the commit before the keys were reshaped), so the test does not depend
on anyone's memory of the old tables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from sqlalchemy import func, select

from qinqing.access.principal import Principal
from qinqing.accounting.reconcile import reconcile
from qinqing.auth.models import AccountLogin, PersonAccount
from qinqing.config import Env, Settings
from qinqing.entrypoints import demo
from qinqing.entrypoints.app import create_app
from qinqing.entrypoints.bootstrap import build_runtime
from qinqing.family.models import FamilyLink, FamilyLinkMember
from qinqing.identity import ric
from qinqing.ledger.models import LedgerAccount, LedgerSystemAccount
from qinqing.payments import service as payments
from qinqing.payments.models import Payment, PaymentKey, PaymentReference
from qinqing.persons.models import Person, PersonIdNumber
from support.client import AppClient
from support.databases import PG_URL, TEST_KEY, private_schema, with_options

# The last commit of the release before the schema was made distributable.
PREVIOUS_RELEASE = "d18cae724e8c6536c951ebd44b4ce086601600ad"
REPO = Path(__file__).resolve().parents[2]

# Run by the previous release's code: demo data, a settled payment, a login.
DRIVER = """
import json, sys
from sqlalchemy import select
from qinqing import demo
from qinqing.auth import service as auth
from qinqing.auth.principal import Principal
from qinqing.payments import service as payments
from qinqing.payments.models import Payment
from qinqing.runtime import build_runtime

rt = build_runtime()
demo.load(rt)
hospital = Principal("client", "qq_demo_hospital", "institution", token_hash="-",
                     region_code="150600", scopes=frozenset({"payments"}))
from qinqing.identity import ric
h, m = (ric.with_check_digit(f) for f in demo.FUNDED)
with rt.db.unit_of_work() as s:
    paid = payments.authorize(s, rt, hospital, payments.Authorize(h, m, 5_000, "OLD-BILL-2"))
with rt.db.unit_of_work() as s:
    payments.settle(s, rt, hospital, payments.Settle(str(paid.payment_id), 4_000))
phone = demo.logins()[0][1]
token = auth.login(rt, login=phone, password=demo.PERSON_PASSWORD, source="127.0.0.1")
print(json.dumps({"token": token.access_token, "payment_id": str(paid.payment_id)}))
"""


def _old_source(tmp: Path) -> Path:
    archive = subprocess.run(  # noqa: S603 - git on our own repository
        ["git", "-C", str(REPO), "archive", PREVIOUS_RELEASE, "src"],  # noqa: S607 - git on PATH
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(tmp, filter="data")
    return tmp / "src"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.sqlite3'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL case: set QINQING_TEST_DATABASE_URL to run it")
    with private_schema(PG_URL, f"qq_old_{uuid.uuid4().hex[:12]}") as schema:
        yield with_options(PG_URL, search_path=schema)


def test_previous_release_database_migrates_with_its_data(
    old_database: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "PYTHONPATH": str(_old_source(tmp_path / "old")),
        "QINQING_DATABASE_URL": old_database,
        "QINQING_DATA_DIR": str(data_dir),
        "QINQING_ENV": "development",
        "QINQING_SECRET_KEY": TEST_KEY,
        "QINQING_ARGON2_TIME_COST": "1",
        "QINQING_ARGON2_MEMORY_KIB": "1024",
        "QINQING_ARGON2_PARALLELISM": "1",
    }
    made = subprocess.run(  # noqa: S603 - our interpreter, our release's code
        [sys.executable, "-c", DRIVER], env=env, capture_output=True, text=True, timeout=300
    )
    assert made.returncode == 0, made.stderr[-3000:]
    old = json.loads(made.stdout.strip().splitlines()[-1])

    settings = Settings(
        database_url=old_database,
        data_dir=data_dir,
        env=Env.development,
        secret_key=TEST_KEY,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
    )
    rt = build_runtime(settings)  # migrates
    try:
        with rt.db.unit_of_work() as s:
            # Every look-up row was written from the old unique columns.
            def count(model: object) -> int:
                return int(s.execute(select(func.count()).select_from(model)).scalar_one())  # type: ignore[call-overload]

            assert count(PersonIdNumber) == count(Person) > 0
            assert count(AccountLogin) == count(PersonAccount) > 0
            assert count(FamilyLinkMember) == count(FamilyLink) > 0
            assert count(PaymentKey) == count(PaymentReference) == count(Payment) == 2
            # The institution's and the region's accounts moved to their own table;
            # what they had received counts as cleared.
            codes = set(s.execute(select(LedgerSystemAccount.code)).scalars())
            assert {"institution:qq_demo_hospital", "funding:150600"} <= codes
            assert all(
                c.startswith("personal:") for c in s.execute(select(LedgerAccount.code)).scalars()
            )
            institution = s.execute(
                select(LedgerSystemAccount.balance_fen).where(
                    LedgerSystemAccount.code == "institution:qq_demo_hospital"
                )
            ).scalar_one()
            assert institution == 4_000
            assert reconcile(s) == []

        with AppClient(create_app(rt), raise_server_exceptions=False) as client:
            # The session made before the upgrade still works, and shows the same money.
            me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {old['token']}"})
            assert me.status_code == 200, me.text
        # An institution's old references stay taken.
        hospital = Principal(
            "client",
            "qq_demo_hospital",
            "institution",
            token_hash="-",
            region_code="150600",
            scopes=frozenset({"payments"}),
        )
        h, m = (ric.with_check_digit(f) for f in demo.FUNDED)
        with rt.db.unit_of_work() as s:
            again = payments.execute(s, rt, hospital, [payments.Authorize(h, m, 100, "OLD-BILL-2")])
        assert again[0].code == "PAYMENT_REFERENCE_EXISTS"
        # And the settled payment can be found by its id alone (its key row).
        with rt.db.unit_of_work() as s:
            void = payments.execute(s, rt, hospital, [payments.Void(old["payment_id"])])
        assert void[0].code == "PAYMENT_ALREADY_RESOLVED"
    finally:
        rt.db.dispose()
