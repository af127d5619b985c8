"""Purpose-scoped one-time codes (auth/otp.py), on both databases: a code works once,
only for its purpose and subject, for 10 minutes and 5 wrong tries; a decoy for
nobody answers exactly as a real code typed wrongly."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from qinqing.auth import otp
from qinqing.auth.models import OneTimeCode
from qinqing.kit.clock import FrozenClock
from qinqing.kit.errors import DomainError
from qinqing.runtime import Runtime
from support.family import new_person

PURPOSE = "bank_link_confirm"
FIELDS = {"bank": "示例银行", "last4": "2343"}


def _issue(rt: Runtime, person_id: uuid.UUID, subject: str, phone: str | None) -> str | None:
    with rt.db.unit_of_work() as s:
        out = otp.issue(
            s,
            rt,
            purpose=PURPOSE,
            person_id=person_id,
            subject=subject,
            phone=phone,
            now=rt.clock.now(),
            **FIELDS,
        )
    return out.code if out else None


def _check(rt: Runtime, person_id: uuid.UUID, subject: str, code: str) -> str:
    try:
        with rt.db.unit_of_work() as s:
            otp.check(
                s,
                rt,
                purpose=PURPOSE,
                person_id=person_id,
                subject=subject,
                code=code,
                now=rt.clock.now(),
            )
    except DomainError as exc:
        return exc.code
    return "ok"


def test_a_code_works_once_for_its_subject_only(rt: Runtime) -> None:
    p = new_person(rt, account=False)
    code = _issue(rt, p.id, "link-a", p.phone)
    assert code is not None and len(code) == 6 and code.isdigit()
    assert _check(rt, p.id, "link-b", code) == "SMS_CODE_INVALID"  # another subject
    assert _check(rt, p.id, "link-a", code) == "ok"
    assert _check(rt, p.id, "link-a", code) == "SMS_CODE_USED"
    with rt.db.unit_of_work() as s:
        [row] = s.query(OneTimeCode).all()
        assert code not in row.code_hash and row.used_at is not None


def test_a_new_code_replaces_the_old_one(rt: Runtime) -> None:
    p = new_person(rt, account=False)
    first = _issue(rt, p.id, "s", p.phone)
    second = _issue(rt, p.id, "s", p.phone)
    assert first is not None and second is not None
    if first != second:
        assert _check(rt, p.id, "s", first) == "SMS_CODE_INVALID"
    assert _check(rt, p.id, "s", second) == "ok"


@pytest.mark.parametrize("who", ["real", "decoy"])
def test_wrong_locked_and_expired_read_the_same_for_a_decoy(
    rt: Runtime, clock: FrozenClock, who: str
) -> None:
    p = new_person(rt, account=False)
    person_id = p.id if who == "real" else uuid.uuid4()
    code = _issue(rt, person_id, "s", p.phone if who == "real" else None)
    assert (code is None) == (who == "decoy")
    guess = "000000" if code != "000000" else "111111"
    seen = [_check(rt, person_id, "s", guess) for _ in range(6)]
    assert seen == ["SMS_CODE_INVALID"] * 5 + ["SMS_CODE_LOCKED"]
    if code is not None:
        assert _check(rt, person_id, "s", code) == "SMS_CODE_LOCKED"
    # A fresh code, left too long.
    code = _issue(rt, person_id, "s", p.phone if who == "real" else None)
    clock.advance(otp.TTL + timedelta(seconds=1))
    assert _check(rt, person_id, "s", code or guess) == "SMS_CODE_EXPIRED"


def test_the_message_names_the_bank_and_last_digits(rt: Runtime) -> None:
    p = new_person(rt, account=False)
    with rt.db.unit_of_work() as s:
        out = otp.issue(
            s,
            rt,
            purpose=PURPOSE,
            person_id=p.id,
            subject="s",
            phone=p.phone,
            now=rt.clock.now(),
            **FIELDS,
        )
    assert out is not None and out.to == p.phone
    assert out.code in out.text and "示例银行" in out.text and "2343" in out.text
    assert "10分钟" in out.text


def test_expired_codes_are_purged_after_a_day(rt: Runtime, clock: FrozenClock) -> None:
    p = new_person(rt, account=False)
    _issue(rt, p.id, "s", p.phone)
    clock.advance(otp.TTL + timedelta(hours=23))
    with rt.db.unit_of_work() as s:
        assert otp.purge(s, clock.now()) == 0
    clock.advance(timedelta(hours=1, seconds=1))
    with rt.db.unit_of_work() as s:
        assert otp.purge(s, clock.now()) == 1
