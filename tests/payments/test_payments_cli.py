"""`qinqing payments expire`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from typer.testing import CliRunner

from qinqing.access.principal import Principal
from qinqing.entrypoints.cli import app
from qinqing.kit.clock import FrozenClock
from qinqing.payments import service as payments
from qinqing.runtime import Runtime
from support.accounts import add_client
from support.ledger import fund, make_family


def _env(rt: Runtime) -> dict[str, str]:
    return {
        "QINQING_DATABASE_URL": rt.settings.database_url or "",
        "QINQING_SECRET_KEY": rt.settings.secret_key or "",
        "QINQING_ENV": "test",
    }


def test_expire_command(rt: Runtime, clock: FrozenClock) -> None:
    # The CLI runs on the real clock: place the hold well in the past.
    clock.set(datetime(2026, 1, 1, 9, 0, tzinfo=UTC))
    fam = make_family(rt)
    fund(rt, fam.holder_id, 5_000)
    cid, _ = add_client(rt, "institution")
    inst = Principal(
        "client",
        cid,
        "institution",
        token_hash="-",
        region_code="150600",
        scopes=frozenset({"payments"}),
    )
    with rt.db.unit_of_work() as s:
        assert payments.execute(
            s, rt, inst, [payments.Authorize(fam.holder_number, fam.member_number, 4_000, "E1")]
        )[0].ok
    r = CliRunner().invoke(app, ["payments", "expire", "--json"], env=_env(rt))
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"expired": 1}
    r = CliRunner().invoke(app, ["payments", "expire", "--json"], env=_env(rt))
    assert json.loads(r.stdout) == {"expired": 0}
