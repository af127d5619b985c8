"""Masking of personal information in responses (SPEC §3)."""

from __future__ import annotations

import pytest

from qinqing.identity.masking import mask_account_number, mask_id_number, mask_name, mask_phone


def test_id_number_keeps_area_code_and_last_four() -> None:
    assert mask_id_number("150602198001010023") == "150602********0023"
    assert mask_id_number("15060219800101002X") == "150602********002X"


def test_masked_id_number_hides_the_birth_date() -> None:
    masked = mask_id_number("150602198001010023")
    assert "19800101" not in masked
    assert len(masked) == 18


@pytest.mark.parametrize("short", ["", "1", "123456789"])
def test_short_id_numbers_are_masked_whole(short: str) -> None:
    assert mask_id_number(short) == "*" * len(short)


def test_phone_keeps_prefix_and_last_four() -> None:
    assert mask_phone("13800138000") == "138****8000"


@pytest.mark.parametrize("short", ["", "123", "123456"])
def test_short_phones_are_masked_whole(short: str) -> None:
    assert mask_phone(short) == "*" * len(short)


def test_account_number_keeps_issuer_prefix_and_last_four() -> None:
    assert mask_account_number("6222021234567890123") == "6222" + "*" * 11 + "0123"
    assert mask_account_number("6214830123452345") == "6214********2345"
    assert mask_account_number("123") == "123"


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三丰", "张**"),
        ("李四", "李*"),
        ("王", "王"),
        ("", ""),
        ("阿依古丽·买买提", "阿" + "*" * 7),
    ],
)
def test_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked
