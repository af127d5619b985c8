"""A voucher token, its random part and the ID numbers it stands for never reach
the database in clear or the logs, through the whole issue → redeem → pay flow."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from qinqing.runtime import Runtime
from qinqing.schema.models import Base
from support.dumps import database_text
from support.vouchers import API, issue, pay, redeem, scene, token_for


def test_no_token_or_id_number_in_the_database_or_logs(
    rt: Runtime, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sc = scene(rt, client, relation="father")
    seen: list[str] = []
    token = token_for(client, sc)
    seen.append(token)
    assert redeem(client, sc.inst, token).status_code == 200
    r = pay(client, sc.inst, token, 1_000, "PRIV-1", headers={"Idempotency-Key": "priv-1"})
    assert r.status_code == 201
    # Refusals too: used, forged, and a self voucher.
    assert pay(client, sc.inst, token, 1_000, "PRIV-2").status_code == 409
    self_token = issue(client, sc.made.holder_headers).json()["token"]
    seen.append(self_token)
    assert pay(client, sc.inst, self_token, 1, "PRIV-3").status_code == 409
    batch_token = token_for(client, sc)
    seen.append(batch_token)
    ops = [{"op": "authorize", "voucher_token": batch_token, "amount_fen": 1, "reference": "B"}]
    assert (
        client.post(
            f"{API}/payments/batch",
            json={"operations": ops},
            headers={**sc.inst, "Idempotency-Key": "priv-batch"},
        ).status_code
        == 200
    )

    dump, _ = database_text(rt)
    assert "voucher_tokens" in {t.name for t in Base.metadata.sorted_tables}
    for t in seen:
        random_part, mac = t.split(".")
        for secret in (t, random_part, mac):
            assert secret not in dump
            assert secret not in caplog.text
    for number in (sc.made.holder.id_number, sc.made.member.id_number):
        assert number not in dump and number not in caplog.text
