"""Pure voucher rules, the token format and the QR code, without a database."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import segno
from hypothesis import given
from hypothesis import strategies as st

from qinqing.identity.vault import Vault, generate_key, parse_key
from qinqing.vouchers import qr, rules, tokens

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
VAULT = Vault(parse_key(generate_key()))


# --- issuing rate limit -----------------------------------------------------------


def test_under_the_limit_issues_at_once() -> None:
    recent = [NOW - timedelta(seconds=s) for s in range(rules.ISSUE_LIMIT - 1)]
    assert rules.issue_wait_seconds(recent, NOW) == 0


def test_at_the_limit_waits_until_the_oldest_leaves_the_window() -> None:
    recent = [NOW - timedelta(seconds=5 + s) for s in range(rules.ISSUE_LIMIT)]
    oldest_age = 5 + rules.ISSUE_LIMIT - 1
    assert rules.issue_wait_seconds(recent, NOW) == 60 - oldest_age


def test_issues_older_than_the_window_do_not_count() -> None:
    recent = [NOW - timedelta(seconds=60)] * (rules.ISSUE_LIMIT * 3)
    assert rules.issue_wait_seconds(recent, NOW) == 0


def test_the_wait_is_never_zero_when_limited() -> None:
    recent = [NOW - timedelta(seconds=59, milliseconds=999)] * rules.ISSUE_LIMIT
    assert rules.issue_wait_seconds(recent, NOW) == 1


@given(
    st.lists(
        st.integers(min_value=0, max_value=120_000), min_size=0, max_size=3 * rules.ISSUE_LIMIT
    )
)
def test_retry_after_is_exactly_when_the_next_voucher_may_be_issued(ages_ms: list[int]) -> None:
    recent = [NOW - timedelta(milliseconds=a) for a in ages_ms]
    wait = rules.issue_wait_seconds(recent, NOW)
    if wait:
        later = NOW + timedelta(seconds=wait)
        assert rules.issue_wait_seconds(recent, later) == 0
        assert rules.issue_wait_seconds(recent, later - timedelta(seconds=1)) > 0
    else:
        assert sum(a < 60_000 for a in ages_ms) < rules.ISSUE_LIMIT


# --- using a voucher -------------------------------------------------------------


def facts(**kw: object) -> rules.UseFacts:
    base: dict[str, object] = {
        "found": True,
        "family": True,
        "link_active": True,
        "caller_region": "150600",
        "regions": frozenset({"150600"}),
        "caller_id": "inst-a",
        "claimed_by": None,
        "used": False,
        "expires_at": NOW + timedelta(seconds=30),
    }
    base.update(kw)
    return rules.UseFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({}, None),
        ({"claimed_by": "inst-a"}, None),
        ({"found": False}, "VOUCHER_INVALID"),
        ({"link_active": False}, "VOUCHER_INVALID"),
        ({"family": False, "link_active": False}, None),
        ({"caller_region": "440100"}, "REGION_MISMATCH"),
        ({"regions": frozenset({"440100", "150600"})}, None),
        ({"used": True}, "VOUCHER_USED"),
        ({"claimed_by": "inst-b"}, "VOUCHER_USED"),
        ({"expires_at": NOW}, "VOUCHER_EXPIRED"),
        # Each answer reveals no more than the one before it.
        ({"caller_region": "440100", "used": True, "expires_at": NOW}, "REGION_MISMATCH"),
        ({"used": True, "expires_at": NOW}, "VOUCHER_USED"),
        ({"link_active": False, "caller_region": "440100"}, "VOUCHER_INVALID"),
    ],
)
def test_use_refusal(kw: dict[str, object], code: str | None) -> None:
    assert rules.use_refusal(facts(**kw), NOW) == code


def test_only_a_family_voucher_pays() -> None:
    assert rules.pay_refusal(facts(), NOW) is None
    assert rules.pay_refusal(facts(family=False), NOW) == "VOUCHER_NOT_FAMILY"
    assert rules.pay_refusal(facts(family=False, used=True), NOW) == "VOUCHER_USED"


def state(**kw: object) -> rules.MutualAidState:
    base: dict[str, object] = {
        "mutual_aid": True,
        "holder_status": "active",
        "holder_scheme": "employee",
        "available_fen": 80_000,
        "yearly_limit_fen": None,
        "used_this_year_fen": 0,
    }
    base.update(kw)
    return rules.mutual_aid_state(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "blocked", "payable"),
    [
        ({}, None, 80_000),
        ({"yearly_limit_fen": 50_000, "used_this_year_fen": 20_000}, None, 30_000),
        ({"yearly_limit_fen": 200_000, "used_this_year_fen": 20_000}, None, 80_000),
        ({"yearly_limit_fen": 50_000, "used_this_year_fen": 50_000}, "YEARLY_LIMIT_EXCEEDED", 0),
        ({"available_fen": 0}, "INSUFFICIENT_BALANCE", 0),
        ({"mutual_aid": False}, "NO_MUTUAL_AID_LINK", 0),
        ({"holder_scheme": "resident"}, "HOLDER_NOT_EMPLOYEE", 0),
        ({"holder_status": "arrears"}, "PAYER_NOT_ACTIVE", 0),
    ],
)
def test_mutual_aid_state(kw: dict[str, object], blocked: str | None, payable: int) -> None:
    assert state(**kw) == rules.MutualAidState(blocked, payable)


def test_first_uses() -> None:
    assert rules.first_uses(["a", None, "b", "a", None, "b"]) == [
        True,
        False,
        True,
        False,
        False,
        False,
    ]


# --- tokens ----------------------------------------------------------------------


def test_a_token_is_random_signed_and_verifies_to_its_stored_hash() -> None:
    token, stored = tokens.new_token(VAULT)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{22}", token)
    assert tokens.verify(VAULT, token) == stored
    assert token not in stored and token.split(".")[0] not in stored
    assert tokens.new_token(VAULT)[0] != token


def test_another_key_a_changed_mac_or_a_changed_id_do_not_verify() -> None:
    token, _ = tokens.new_token(VAULT)
    rand, mac = token.split(".")
    other = Vault(parse_key(generate_key()))
    assert tokens.verify(other, token) is None
    swap = {"A": "B"}
    for bad in (
        f"{rand}.{swap.get(mac[0], 'A')}{mac[1:]}",
        f"{swap.get(rand[0], 'A')}{rand[1:]}.{mac}",
        f"{rand}.{mac}.",
        f"{rand}{mac}",
        "",
        f"{rand}.{mac[:-1]}+",
    ):
        assert tokens.verify(VAULT, bad) is None, bad


def test_only_the_canonical_base64_spelling_verifies() -> None:
    token, _ = tokens.new_token(VAULT)
    rand, mac = token.split(".")
    # The last character of 16 bytes in base64 carries 4 unused bits.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = alphabet[alphabet.index(mac[-1]) ^ 1]
    assert tokens.verify(VAULT, f"{rand}.{mac[:-1]}{twin}") is None


# --- the QR code -----------------------------------------------------------------


def _dark_modules(svg: str) -> set[tuple[int, int]]:
    """Read segno's path back: "M x y" moves, "m dx dy" moves, "h n" draws n modules."""
    d = re.search(r' d="([^"]+)"', svg)
    assert d is not None
    dark: set[tuple[int, int]] = set()
    x = y = 0.0
    for cmd, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", d.group(1)):
        if cmd == "M":
            x, y = float(a), float(b)
        elif cmd == "m":
            x, y = x + float(a), y + float(b)
        else:
            for i in range(int(a)):
                dark.add((int(x) + i, int(y)))
            x += float(a)
    return dark


def test_the_qr_code_holds_exactly_the_token_at_a_scannable_size() -> None:
    token, _ = tokens.new_token(VAULT)
    svg = qr.svg(token)
    width = int(re.search(r'width="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    assert width >= 200  # pixels: a phone screen shows it large enough for a scanner
    assert f'viewBox="0 0 {width} {width}"' in svg
    code = segno.make(token, error="m", micro=False)
    expected = {
        (x + qr.BORDER, y + qr.BORDER)
        for y, row in enumerate(code.matrix)
        for x, v in enumerate(row)
        if v
    }
    assert _dark_modules(svg) == expected
    assert code.mode == "byte" and not code.is_micro
