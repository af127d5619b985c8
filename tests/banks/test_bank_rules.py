"""Pure rules of the bank channel: account numbers and the webhook retry schedule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum import luhn

from qinqing.banks import rules
from qinqing.kit.errors import DomainError


def _code(raw: str) -> str:
    with pytest.raises(DomainError) as err:
        rules.normalize_account_number(raw)
    return err.value.code


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("6214830123452343", "6214830123452343"),
        ("6214 8301 2345 2343", "6214830123452343"),
        ("6214-8301-2345-2343", "6214830123452343"),
        ("6222021000123456781", "6222021000123456781"),  # 19 digits
        ("123456789012", "123456789012"),  # a 12-digit account: no check digit
        ("123456789012345", "123456789012345"),  # 15 digits: no check digit
    ],
)
def test_accepted_numbers(raw: str, number: str) -> None:
    assert rules.normalize_account_number(raw) == number


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "BANK_ACCOUNT_NUMBER_INVALID"),
        ("12345678901", "BANK_ACCOUNT_NUMBER_INVALID"),
        ("12345678901234567890", "BANK_ACCOUNT_NUMBER_INVALID"),
        ("62148301234523x3", "BANK_ACCOUNT_NUMBER_INVALID"),
        ("٦٢١٤٨٣٠١٢٣٤٥٢٣٤٣", "BANK_ACCOUNT_NUMBER_INVALID"),  # Arabic-Indic digits
        ("6214830123452344", "BANK_ACCOUNT_NUMBER_CHECK_DIGIT"),
    ],
)
def test_refused_numbers(raw: str, code: str) -> None:
    assert _code(raw) == code


@given(st.from_regex(r"[0-9]{15,18}", fullmatch=True))
def test_every_card_number_with_its_luhn_digit_is_accepted_and_a_wrong_one_refused(
    body: str,
) -> None:
    good = body + luhn.calc_check_digit(body)
    assert rules.normalize_account_number(good) == good
    bad = body + str((int(good[-1]) + 1) % 10)
    assert _code(bad) == "BANK_ACCOUNT_NUMBER_CHECK_DIGIT"


def test_masking_keeps_issuer_prefix_and_last_four() -> None:
    assert rules.mask_account("6214830123452345") == "6214********2345"
    assert rules.mask_account("123456789012") == "1234****9012"


def test_the_retry_schedule_grows_is_capped_and_jittered() -> None:
    lows = [rules.retry_delay(n, 0.0) for n in range(1, rules.MAX_ATTEMPTS)]
    highs = [rules.retry_delay(n, 0.999999) for n in range(1, rules.MAX_ATTEMPTS)]
    assert lows == sorted(lows) and lows[0] == timedelta(seconds=30)
    assert all(lo < hi <= rules.RETRY_CAP for lo, hi in zip(lows, highs, strict=True))
    assert rules.retry_delay(30, 0.5) <= rules.RETRY_CAP
    assert not rules.gives_up(rules.MAX_ATTEMPTS - 1) and rules.gives_up(rules.MAX_ATTEMPTS)
    assert rules.delivered(204) and not rules.delivered(301) and not rules.delivered(500)
