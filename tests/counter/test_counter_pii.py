"""After a day at the counter — look-ups, a mismatch, an unbind, a binding, all with
Idempotency-Key — no table and no log line holds an ID number or phone in clear."""

from __future__ import annotations

import logging
from datetime import date

import pytest
from fastapi.testclient import TestClient

from qinqing.runtime import Runtime
from support.accounts import add_person, id_number
from support.counter import (
    bind_body,
    clerk,
    counter_bind,
    counter_family,
    counter_unbind,
    lookup,
    receipt_url,
    unbind_body,
)
from support.dumps import database_text


def test_counter_flows_leave_no_plaintext_pii(
    rt: Runtime, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fam = counter_family(rt)
    _, new_holder = add_person(
        rt, name="赵强", number=id_number(born=date(1970, 1, 1), seq=3, sex="M"), phone=None
    )
    _, new_member = add_person(
        rt, name="钱芳", number=id_number(born=date(1972, 2, 2), seq=3), phone=None
    )
    desk = clerk(rt, client, "eeds-clerk")
    unknown = id_number(seq=66)

    assert lookup(client, desk, fam.holder_number).status_code == 200
    assert lookup(client, desk, unknown).status_code == 404
    wrong = unbind_body(fam.link_id, fam.member_number)
    assert counter_unbind(client, desk, wrong, key="pii-1").status_code == 409
    r = counter_unbind(client, desk, unbind_body(fam.link_id, fam.holder_number), key="pii-1")
    assert r.status_code == 200, r.text
    receipt = client.get(receipt_url(r.json()["request"]["id"]), headers=desk)
    assert receipt.status_code == 200
    body = bind_body(new_holder, "赵强", new_member, "钱芳", member_type="medical_card")
    assert counter_bind(client, desk, body, key="pii-2").status_code == 201

    dump, _ = database_text(rt)
    for secret in (
        fam.holder_number,
        fam.member_number,
        fam.holder_phone,
        new_holder,
        new_member,
        unknown,
    ):
        assert secret not in dump, secret
        assert secret not in caplog.text, secret
        assert secret.encode() not in receipt.content
