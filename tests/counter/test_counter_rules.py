"""The counter's own pure decisions: documents, form numbers, the document lockout."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from qinqing.auth import rules as id_rules
from qinqing.counter import rules
from qinqing.kit.errors import DomainError
from support.accounts import id_number

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TODAY = date(2026, 11, 23)


@pytest.mark.parametrize("doc_type", id_rules.DOCUMENT_TYPES)
def test_both_documents_carry_the_id_number(doc_type: id_rules.DocumentType) -> None:
    number = id_number(seq=7)
    assert id_rules.document_number(doc_type, f" {number.lower()} ", TODAY) == number


def test_a_malformed_document_number_is_an_id_number_error() -> None:
    with pytest.raises(DomainError) as err:
        id_rules.document_number("medical_card", "12345", TODAY)
    assert err.value.code == "ID_NUMBER_LENGTH"


@pytest.mark.parametrize("value", ["QQ-2026-000123", "2026/1201/7", "A", "20261201000123", "x.y_z"])
def test_form_numbers_accepted(value: str) -> None:
    assert rules.check_form_number(f" {value} ") == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "format"),
        ("表001", "format"),
        ("QQ 001", "format"),
        ("-001", "format"),
        ("Q" * 33, "format"),
        (id_number(seq=3), "personal_data"),
        ("F" + id_number(seq=3), "personal_data"),
        ("13800138000", "personal_data"),
    ],
)
def test_form_numbers_refused(value: str, reason: str) -> None:
    with pytest.raises(DomainError) as err:
        rules.check_form_number(value)
    assert (err.value.code, err.value.status, err.value.params) == (
        "FORM_NUMBER_INVALID",
        422,
        {"reason": reason},
    )


def test_an_18_digit_serial_that_is_no_id_number_is_a_form_number() -> None:
    number = id_number(seq=3)
    wrong_check = number[:-1] + ("1" if number[-1] == "0" else "0")
    assert rules.check_form_number(wrong_check) == wrong_check


def test_the_lockout_counts_to_the_limit_then_locks_and_starts_again() -> None:
    state = id_rules.Lockout(0, None)
    for expected in (1, 2, 3, 4):
        state = id_rules.after_mismatch(state.failures, NOW, max_failures=5, lock_hours=3)
        assert state == id_rules.Lockout(expected, None)
        assert state.remaining(5) == 5 - expected
    state = id_rules.after_mismatch(state.failures, NOW, max_failures=5, lock_hours=3)
    assert state == id_rules.Lockout(0, NOW + timedelta(hours=3))
    assert id_rules.is_locked(state.locked_until, NOW + timedelta(hours=3) - timedelta(seconds=1))
    assert not id_rules.is_locked(state.locked_until, NOW + timedelta(hours=3))


def test_every_request_status_has_an_outcome_on_the_receipt() -> None:
    from qinqing.unbind.models import RequestStatus

    # Every unbind request's status, and the guardianship proof seen at the counter.
    assert {s.value for s in RequestStatus} | {"proof_accepted"} == set(rules.OUTCOME_LABELS)
    assert rules.outcome_label("completed") == "解除成功"
    assert rules.outcome_label("pending_review") == "审核中"


def test_every_relation_has_a_name_for_the_receipt_and_pages() -> None:
    from typing import get_args

    from qinqing.family.relations import RELATION_NAMES
    from qinqing.family.schemas import RelationName

    assert set(get_args(RelationName)) == set(RELATION_NAMES)
