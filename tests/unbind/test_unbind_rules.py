"""Table tests of the pure unbind rules: every blocker alone, and in combination."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from qinqing.kit import i18n
from qinqing.regions.loading import load_policies
from qinqing.regions.policy import Policy
from qinqing.unbind import rules
from qinqing.unbind.rules import (
    Blocker,
    HoldsSummary,
    InitiatorFacts,
    LinkFacts,
    VerificationOutcome,
    blockers,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 17:00 in Beijing
HOLDER = uuid.UUID(int=1)
MEMBER = uuid.UUID(int=2)
STRANGER = uuid.UUID(int=3)
POLICIES = load_policies(None)
DEFAULT = POLICIES.policy("150600")


def policy(**changes: Any) -> Policy:
    return DEFAULT.model_copy(update=changes)


LINK = LinkFacts("active", HOLDER, MEMBER, NOW - timedelta(days=400))
HOLDER_OK = InitiatorFacts(HOLDER, "active")
NO_HOLDS = HoldsSummary(0, 0)


def codes(found: list[Blocker]) -> list[str]:
    return [b.code for b in found]


def test_an_active_link_and_a_normal_party_is_eligible() -> None:
    assert blockers(LINK, HOLDER_OK, NO_HOLDS, DEFAULT, NOW) == []
    member = InitiatorFacts(MEMBER, "active")
    assert blockers(LINK, member, NO_HOLDS, DEFAULT, NOW, rules.VERIFIED) == []


@pytest.mark.parametrize("status", ["pending_consent", "unbinding", "ended"])
def test_link_not_active(status: str) -> None:
    found = blockers(replace(LINK, status=status), HOLDER_OK, NO_HOLDS, DEFAULT, NOW)
    assert found == [Blocker("LINK_NOT_ACTIVE", {"status": status})]


@pytest.mark.parametrize("person_id", [STRANGER, None])
def test_not_a_party(person_id: uuid.UUID | None) -> None:
    found = blockers(LINK, InitiatorFacts(person_id, "active"), NO_HOLDS, DEFAULT, NOW)
    assert codes(found) == ["NOT_A_PARTY"]


def test_a_stranger_shows_nothing_about_themselves() -> None:
    stranger = InitiatorFacts(STRANGER, "arrears", payment_password_locked_until=NOW + timedelta(1))
    failed = VerificationOutcome("VERIFICATION_FAILED", {"remaining_attempts": 2})
    assert codes(blockers(LINK, stranger, NO_HOLDS, DEFAULT, NOW)) == ["NOT_A_PARTY"]
    assert codes(blockers(LINK, stranger, NO_HOLDS, DEFAULT, NOW, failed)) == ["NOT_A_PARTY"]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("arrears", "ACCOUNT_IN_ARREARS"),
        ("suspended", "ACCOUNT_SUSPENDED"),
        ("terminated", "ACCOUNT_TERMINATED"),
    ],
)
def test_account_status_blocks_where_the_policy_lists_it(status: str, code: str) -> None:
    initiator = InitiatorFacts(MEMBER, status)
    assert blockers(LINK, initiator, NO_HOLDS, DEFAULT, NOW) == [Blocker(code, {"status": status})]
    unlisted = policy(unbind_blocking_statuses=())
    assert blockers(LINK, initiator, NO_HOLDS, unlisted, NOW) == []


def test_beijing_does_not_block_arrears_but_suspension() -> None:
    beijing = POLICIES.policy("110000")
    assert blockers(LINK, InitiatorFacts(HOLDER, "arrears"), NO_HOLDS, beijing, NOW) == []
    assert codes(blockers(LINK, InitiatorFacts(HOLDER, "suspended"), NO_HOLDS, beijing, NOW)) == [
        "ACCOUNT_SUSPENDED"
    ]


def test_unsettled_payments() -> None:
    found = blockers(LINK, HOLDER_OK, HoldsSummary(2, 23050), DEFAULT, NOW)
    assert found == [Blocker("UNSETTLED_PAYMENTS", {"count": 2, "total_fen": 23050})]


def test_cooling_off_counts_calendar_days_in_beijing() -> None:
    chongqing = POLICIES.policy("500000")
    assert chongqing.unbind_cooling_off_days == 30
    # Activated 2026-11-23 17:00 Beijing time: unbinding possible from 2026-12-23.
    fresh = replace(LINK, activated_at=NOW)
    found = blockers(fresh, HOLDER_OK, NO_HOLDS, chongqing, NOW)
    assert found == [Blocker("COOLING_OFF", {"until": "2026-12-23", "days": 30})]
    # 2026-12-22 23:59 Beijing: still cooling off.
    last_minute = datetime(2026, 12, 22, 15, 59, tzinfo=UTC)
    assert codes(blockers(fresh, HOLDER_OK, NO_HOLDS, chongqing, last_minute)) == ["COOLING_OFF"]
    # 2026-12-23 00:00 Beijing: free.
    first_minute = datetime(2026, 12, 22, 16, 0, tzinfo=UTC)
    assert blockers(fresh, HOLDER_OK, NO_HOLDS, chongqing, first_minute) == []
    # No cooling-off in the default policy.
    assert blockers(fresh, HOLDER_OK, NO_HOLDS, DEFAULT, NOW) == []


def test_cooling_off_ignores_links_never_activated() -> None:
    pending = replace(LINK, status="pending_consent", activated_at=None)
    found = blockers(pending, HOLDER_OK, NO_HOLDS, policy(unbind_cooling_off_days=30), NOW)
    assert codes(found) == ["LINK_NOT_ACTIVE"]


@pytest.mark.parametrize(
    ("code", "params"),
    [
        ("VERIFICATION_REQUIRED", {}),
        ("VERIFICATION_FAILED", {"remaining_attempts": 3}),
        ("VERIFICATION_LOCKED", {"locked_until": "2026-11-23T12:00:00+00:00"}),
        ("FACE_UNAVAILABLE", {}),
        ("PAYMENT_PASSWORD_NOT_SET", {}),
    ],
)
def test_verification_outcome_becomes_a_blocker(code: str, params: dict[str, Any]) -> None:
    outcome = VerificationOutcome(code, params)
    assert blockers(LINK, HOLDER_OK, NO_HOLDS, DEFAULT, NOW, outcome) == [Blocker(code, params)]


def test_check_reports_a_locked_password_only_without_another_way() -> None:
    until = NOW + timedelta(hours=2)
    locked = InitiatorFacts(HOLDER, "active", payment_password_locked_until=until)
    assert blockers(LINK, locked, NO_HOLDS, DEFAULT, NOW) == [
        Blocker("VERIFICATION_LOCKED", {"locked_until": until.isoformat()})
    ]
    with_face = replace(locked, face_available=True)
    assert blockers(LINK, with_face, NO_HOLDS, DEFAULT, NOW) == []
    at_counter = replace(locked, id_document_available=True)
    assert blockers(LINK, at_counter, NO_HOLDS, DEFAULT, NOW) == []
    expired = replace(locked, payment_password_locked_until=NOW)
    assert blockers(LINK, expired, NO_HOLDS, DEFAULT, NOW) == []
    # On submission the actual outcome decides, not the stored lock.
    assert blockers(LINK, locked, NO_HOLDS, DEFAULT, NOW, rules.VERIFIED) == []


def test_every_blocker_at_once_in_the_fixed_order() -> None:
    link = LinkFacts("unbinding", HOLDER, MEMBER, NOW - timedelta(days=1))
    initiator = InitiatorFacts(MEMBER, "terminated")
    outcome = VerificationOutcome("VERIFICATION_FAILED", {"remaining_attempts": 4})
    found = blockers(
        link, initiator, HoldsSummary(1, 100), policy(unbind_cooling_off_days=7), NOW, outcome
    )
    assert codes(found) == [
        "LINK_NOT_ACTIVE",
        "ACCOUNT_TERMINATED",
        "UNSETTLED_PAYMENTS",
        "COOLING_OFF",
        "VERIFICATION_FAILED",
    ]
    stranger = blockers(
        replace(link, status="ended"),
        InitiatorFacts(None, "active"),
        HoldsSummary(1, 100),
        policy(unbind_cooling_off_days=7),
        NOW,
    )
    assert codes(stranger) == [
        "LINK_NOT_ACTIVE",
        "NOT_A_PARTY",
        "UNSETTLED_PAYMENTS",
        "COOLING_OFF",
    ]


PAIRS = [
    ("LINK_NOT_ACTIVE", "ACCOUNT_IN_ARREARS"),
    ("ACCOUNT_SUSPENDED", "UNSETTLED_PAYMENTS"),
    ("UNSETTLED_PAYMENTS", "COOLING_OFF"),
    ("COOLING_OFF", "VERIFICATION_REQUIRED"),
    ("LINK_NOT_ACTIVE", "VERIFICATION_LOCKED"),
]


@pytest.mark.parametrize("pair", PAIRS)
def test_pairs_of_blockers(pair: tuple[str, str]) -> None:
    link, initiator, holds, pol = LINK, HOLDER_OK, NO_HOLDS, DEFAULT
    outcome: VerificationOutcome | None = None
    for code in pair:
        if code == "LINK_NOT_ACTIVE":
            link = replace(link, status="ended")
        elif code == "ACCOUNT_IN_ARREARS":
            initiator = replace(initiator, insurance_status="arrears")
        elif code == "ACCOUNT_SUSPENDED":
            initiator = replace(initiator, insurance_status="suspended")
        elif code == "UNSETTLED_PAYMENTS":
            holds = HoldsSummary(3, 999)
        elif code == "COOLING_OFF":
            link = replace(link, activated_at=NOW)
            pol = policy(unbind_cooling_off_days=10)
        elif code == "VERIFICATION_REQUIRED":
            outcome = VerificationOutcome("VERIFICATION_REQUIRED")
        elif code == "VERIFICATION_LOCKED":
            initiator = replace(initiator, payment_password_locked_until=NOW + timedelta(hours=1))
    assert codes(blockers(link, initiator, holds, pol, NOW, outcome)) == list(pair)


# --- rendering ------------------------------------------------------------------------------


def test_every_code_has_a_message_and_a_hint_in_both_languages() -> None:
    for locale in i18n.SUPPORTED:
        catalog = i18n.catalog(locale)
        for code in (*rules.CODES, "UNBIND_REFUSED", "REQUEST_NOT_PENDING", "COMMENT_REQUIRED"):
            assert catalog[code]["message"], (locale, code)
            assert catalog[code].get("hint"), (locale, code)


def test_rendering_in_chinese_for_an_elderly_reader() -> None:
    held = rules.render(Blocker("UNSETTLED_PAYMENTS", {"count": 2, "total_fen": 23050}), "zh-CN")
    assert held["message"] == "您有 2 笔共 230.50 元的医疗费用尚未结算。"
    assert held["params"] == {"count": 2, "total_fen": 23050}
    cooling = rules.render(Blocker("COOLING_OFF", {"until": "2026-12-23", "days": 30}), "zh-CN")
    assert "2026年12月23日" in (cooling["hint"] or "")
    arrears = rules.render(Blocker("ACCOUNT_IN_ARREARS", {"status": "arrears"}), "zh-CN")
    assert "补缴欠费" in (arrears["hint"] or "")
    locked = rules.render(
        Blocker("VERIFICATION_LOCKED", {"locked_until": "2026-11-23T12:00:00+00:00"}), "zh-CN"
    )
    assert "2026年11月23日 20:00" in (locked["hint"] or "")


def test_rendering_in_english_and_status_variants() -> None:
    cooling = rules.render(Blocker("COOLING_OFF", {"until": "2026-12-23", "days": 30}), "en")
    assert cooling["hint"] == "You can unbind it from December 23, 2026."
    review = rules.render(Blocker("LINK_NOT_ACTIVE", {"status": "unbinding"}), "en")
    assert "being reviewed" in review["message"]
    ended = rules.render(Blocker("LINK_NOT_ACTIVE", {"status": "ended"}), "zh-CN")
    assert ended["message"] == "这条亲情关系已经解除了。"
    assert ended["code"] == "LINK_NOT_ACTIVE"


def test_yuan() -> None:
    assert rules.yuan(0) == "0.00"
    assert rules.yuan(5) == "0.05"
    assert rules.yuan(23050) == "230.50"
    assert rules.yuan(123456789) == "1,234,567.89"
