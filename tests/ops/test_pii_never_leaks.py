"""ID numbers and phones never appear in plaintext in the database, the logs, URLs or
error texts (SPEC §3, §7)."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from qinqing.models import Base
from qinqing.runtime import Runtime
from support import PASSWORD, add_person, login, sms_lines

API = "/api/v1"


def _dump(rt: Runtime) -> str:
    out = []
    with rt.db.unit_of_work() as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)).all():
                out.append(repr(tuple(row)))
    return "\n".join(out)


def test_api_flows_leave_no_plaintext_pii(
    rt: Runtime, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _, number = add_person(rt, name="赵敏", phone="13512345678")
    app_phone = "13687654321"
    r = client.post(f"{API}/auth/register/sms-code", json={"id_number": number, "name": "赵敏"})
    assert r.status_code == 202 and "13512345678" not in r.text
    code = sms_lines(rt)[-1]["code"]
    r = client.post(
        f"{API}/auth/register",
        json={
            "id_number": number,
            "name": "赵敏",
            "phone": app_phone,
            "password": PASSWORD,
            "sms_code": code,
        },
    )
    assert r.status_code == 201
    # Some failures too: their texts must not echo the input either.
    bad = client.post(
        f"{API}/auth/register",
        json={
            "id_number": number,
            "name": "别人",
            "phone": app_phone,
            "password": PASSWORD,
            "sms_code": code,
        },
    )
    assert number not in bad.text and app_phone not in bad.text
    client.post(f"{API}/auth/login", json={"login": app_phone, "password": "WrongPass9"})
    headers = login(client, app_phone)
    me = client.get(f"{API}/me", headers=headers)
    assert number not in me.text and app_phone not in me.text and "13512345678" not in me.text

    dump = _dump(rt)
    for secret in (number, "13512345678", app_phone):
        assert secret not in dump
        assert secret not in caplog.text
    assert PASSWORD not in dump and PASSWORD not in caplog.text
    assert headers["Authorization"].split()[1] not in dump


def test_log_filter_redacts_what_slips_through(caplog: pytest.LogCaptureFixture) -> None:
    from qinqing.logging_setup import RedactingFilter

    logger = logging.getLogger("qinqing.test.redaction")
    handler_filter = RedactingFilter()
    logger.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.INFO, logger="qinqing.test.redaction"):
            logger.info(
                "person %s phone %s token Bearer abc.def", "15060219800101002X", "13800138000"
            )
    finally:
        logger.removeFilter(handler_filter)
    assert "15060219800101002X" not in caplog.text
    assert "13800138000" not in caplog.text
    assert "abc.def" not in caplog.text
    assert "[id-number]" in caplog.text and "[phone]" in caplog.text
