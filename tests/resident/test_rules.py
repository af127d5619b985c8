"""The pure rules of 共济缴费: cover year, window, late payment and waiting period."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qinqing.regions.policy import LatePayment, ResidentPolicy
from qinqing.resident.rules import Refusal, Terms, payable_years, terms, window_for


def policy(
    window: str = "09-01/12-31", late: str = "waiting_period", days: int = 90
) -> ResidentPolicy:
    return ResidentPolicy(
        annual_contribution_fen=40000,
        enrollment_window=window,
        late_payment=LatePayment(late),
        waiting_period_days=days,
    )


def test_the_window_for_a_cover_year_lies_in_the_year_before() -> None:
    w = window_for(policy(), 2027)
    assert (w.opens_on, w.closes_on) == (date(2026, 9, 1), date(2026, 12, 31))


def test_a_window_ending_on_29_february_ends_on_the_28th_in_a_common_year() -> None:
    assert window_for(policy("01-15/02-29"), 2027).closes_on == date(2026, 2, 28)
    assert window_for(policy("01-15/02-29"), 2025).closes_on == date(2024, 2, 29)


@pytest.mark.parametrize(
    ("today", "year", "expected"),
    [
        # In the window: cover from 1 January of C.
        (date(2026, 9, 1), 2027, Terms(2027, 40000, date(2027, 1, 1), late=False)),
        (date(2026, 12, 31), 2027, Terms(2027, 40000, date(2027, 1, 1), late=False)),
        # After it, in C: the payment date plus the waiting period.
        (date(2027, 1, 1), 2027, Terms(2027, 40000, date(2027, 4, 1), late=True)),
        (date(2027, 3, 1), 2027, Terms(2027, 40000, date(2027, 5, 30), late=True)),
        # The waiting period would end after C: nothing left to buy.
        (
            date(2027, 10, 3),
            2027,
            Refusal(
                "ENROLLMENT_CLOSED",
                409,
                {"year": 2027, "closed_on": "2026-12-31", "cover_would_start": "2028-01-01"},
            ),
        ),
        # Before the window opens.
        (
            date(2026, 8, 31),
            2027,
            Refusal("ENROLLMENT_NOT_OPEN", 409, {"year": 2027, "opens_on": "2026-09-01"}),
        ),
        # Too far ahead or behind.
        (
            date(2026, 11, 23),
            2028,
            Refusal("RESIDENT_YEAR_INVALID", 422, {"earliest": 2026, "latest": 2027}),
        ),
        (
            date(2026, 11, 23),
            2025,
            Refusal("RESIDENT_YEAR_INVALID", 422, {"earliest": 2026, "latest": 2027}),
        ),
    ],
)
def test_terms(today: date, year: int, expected: Terms | Refusal) -> None:
    assert terms(policy(), year, today) == expected


def test_a_region_that_refuses_late_payment_closes_after_the_window() -> None:
    found = terms(policy(late="refused"), 2027, date(2027, 1, 2))
    assert isinstance(found, Refusal) and found.code == "ENROLLMENT_CLOSED"
    assert terms(policy(late="refused"), 2027, date(2026, 12, 31)) == Terms(
        2027, 40000, date(2027, 1, 1), late=False
    )


def test_late_in_the_year_before_c_cover_still_starts_no_earlier_than_1_january() -> None:
    # The window closed on 30 November; paid on 10 December with no waiting period.
    assert terms(policy("09-01/11-30", days=0), 2027, date(2026, 12, 10)) == Terms(
        2027, 40000, date(2027, 1, 1), late=True
    )


windows = st.sampled_from(["09-01/12-31", "10-01/11-30", "01-01/12-31", "12-31/12-31"])
days = st.dates(min_value=date(2001, 1, 1), max_value=date(2199, 1, 1))


@given(
    window=windows,
    late=st.sampled_from(["refused", "waiting_period"]),
    waiting=st.integers(0, 366),
    today=days,
    offset=st.integers(-3, 3),
)
def test_properties(window: str, late: str, waiting: int, today: date, offset: int) -> None:
    p = policy(window, late, waiting)
    year = today.year + offset
    found = terms(p, year, today)
    w = window_for(p, year)
    if isinstance(found, Refusal):
        assert found.code in {
            "RESIDENT_YEAR_INVALID",
            "ENROLLMENT_NOT_OPEN",
            "ENROLLMENT_CLOSED",
        }
        if year not in payable_years(today):
            assert found.code == "RESIDENT_YEAR_INVALID"
        return
    # Accepted only for this year or the next, never before the window opens.
    assert year in payable_years(today)
    assert today >= w.opens_on
    assert found.amount_fen == p.annual_contribution_fen
    # Cover lies within the cover year, and never before the payment.
    assert date(year, 1, 1) <= found.cover_starts_on <= date(year, 12, 31)
    assert found.cover_starts_on >= min(today, date(year, 1, 1))
    if today <= w.closes_on:
        assert not found.late and found.cover_starts_on == date(year, 1, 1)
    else:
        # After the window only a waiting-period region takes it, and then the
        # waiting period runs from the payment date.
        assert found.late and p.late_payment is LatePayment.waiting_period
        assert found.cover_starts_on == max(date(year, 1, 1), today + timedelta(days=waiting))
