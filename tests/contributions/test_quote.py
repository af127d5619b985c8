"""The contribution quote (SPEC §3, §4 `[contribution]`): the public calculator and
the pure rule behind it. Expected figures are computed by hand, in the comments."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from qinqing.contributions.rules import quote
from qinqing.regions.policy import ContributionPolicy, Insurance, Rounding

API = "/api/v1"


def _lines(body: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {i["insurance"]: (i["personal_fen"], i["employer_fen"]) for i in body["insurances"]}


# 150600 鄂尔多斯市: floor 338500, ceiling 1692300; personal pension 80‰, medical 20‰,
# unemployment 5‰; employer pension 160‰, medical 80‰, unemployment 5‰, injury 4‰;
# the whole personal medical amount goes to the personal account; fen_half_up.


def test_ordos_below_the_floor(client: TestClient) -> None:
    r = client.get(f"{API}/regions/150600/contribution-quote", params={"base_fen": 200000})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["region"] == {"code": "150600", "name": "鄂尔多斯市"}
    assert body["base_fen"] == 200000
    assert body["clamped_base_fen"] == 338500 and body["clamped"] is True
    assert _lines(body) == {
        "pension": (27080, 54160),  # 338500 × 80‰ = 27080; × 160‰ = 54160
        "medical": (6770, 27080),  # 338500 × 20‰ = 6770; × 80‰ = 27080
        "unemployment": (1693, 1693),  # 338500 × 5‰ = 1692.5 → 1693 (half up)
        "injury": (0, 1354),  # 338500 × 4‰ = 1354
    }
    assert body["personal_total_fen"] == 35543  # 27080 + 6770 + 1693
    assert body["employer_total_fen"] == 84287  # 54160 + 27080 + 1693 + 1354
    assert body["total_fen"] == 119830  # 35543 + 84287
    assert body["personal_account_fen"] == 6770  # 1000‰ of the personal medical 6770
    assert body["rounding"] == "fen_half_up"


def test_ordos_inside_the_range(client: TestClient) -> None:
    body = client.get(
        f"{API}/regions/150600/contribution-quote", params={"base_fen": 500000}
    ).json()
    assert body["clamped_base_fen"] == 500000 and body["clamped"] is False
    assert _lines(body) == {
        "pension": (40000, 80000),  # 500000 × 80‰, × 160‰
        "medical": (10000, 40000),  # 500000 × 20‰, × 80‰
        "unemployment": (2500, 2500),  # 500000 × 5‰
        "injury": (0, 2000),  # 500000 × 4‰
    }
    assert body["personal_total_fen"] == 52500  # 40000 + 10000 + 2500
    assert body["employer_total_fen"] == 124500  # 80000 + 40000 + 2500 + 2000
    assert body["total_fen"] == 177000
    assert body["personal_account_fen"] == 10000


def test_ordos_above_the_ceiling(client: TestClient) -> None:
    body = client.get(
        f"{API}/regions/150600/contribution-quote", params={"base_fen": 2000000}
    ).json()
    assert body["clamped_base_fen"] == 1692300 and body["clamped"] is True
    assert _lines(body) == {
        "pension": (135384, 270768),  # 1692300 × 80‰ = 135384; × 160‰ = 270768
        "medical": (33846, 135384),  # 1692300 × 20‰ = 33846; × 80‰ = 135384
        "unemployment": (8462, 8462),  # 1692300 × 5‰ = 8461.5 → 8462
        "injury": (0, 6769),  # 1692300 × 4‰ = 6769.2 → 6769
    }
    assert body["personal_total_fen"] == 177692  # 135384 + 33846 + 8462
    assert body["employer_total_fen"] == 421383  # 270768 + 135384 + 8462 + 6769
    assert body["total_fen"] == 599075
    assert body["personal_account_fen"] == 33846


def test_ordos_exactly_at_the_bounds_is_not_clamped(client: TestClient) -> None:
    for base in (338500, 1692300):
        body = client.get(
            f"{API}/regions/150600/contribution-quote", params={"base_fen": base}
        ).json()
        assert body["clamped_base_fen"] == base and body["clamped"] is False


def test_rounding_half_up_on_an_odd_base(client: TestClient) -> None:
    body = client.get(
        f"{API}/regions/150600/contribution-quote", params={"base_fen": 500025}
    ).json()
    assert body["clamped_base_fen"] == 500025
    assert _lines(body) == {
        "pension": (40002, 80004),  # 500025 × 80‰ = 40002.0; × 160‰ = 80004.0
        "medical": (10001, 40002),  # 500025 × 20‰ = 10000.5 → 10001; × 80‰ = 40002.0
        "unemployment": (2500, 2500),  # 500025 × 5‰ = 2500.125 → 2500
        "injury": (0, 2000),  # 500025 × 4‰ = 2000.1 → 2000
    }
    assert body["personal_total_fen"] == 52503  # 40002 + 10001 + 2500
    assert body["employer_total_fen"] == 124506  # 80004 + 40002 + 2500 + 2000
    assert body["total_fen"] == 177009
    assert body["personal_account_fen"] == 10001


def test_another_region_uses_its_own_policy(client: TestClient) -> None:
    # 110000 北京市: floor 682100; employer medical 90‰ and maternity 8‰ over the
    # national default (personal pension 80, medical 20, unemployment 5; employer
    # pension 160, unemployment 5, injury 4).
    body = client.get(f"{API}/regions/110000/contribution-quote", params={"base_fen": 0}).json()
    assert body["clamped_base_fen"] == 682100
    lines = _lines(body)
    assert lines["medical"] == (13642, 61389)  # 682100 × 20‰ = 13642; × 90‰ = 61389
    assert lines["maternity"] == (0, 5457)  # 682100 × 8‰ = 5456.8 → 5457
    assert body["personal_account_fen"] == 13642


def test_unknown_region_is_404(client: TestClient) -> None:
    for code in ("999999", "150601", "abc"):
        r = client.get(f"{API}/regions/{code}/contribution-quote", params={"base_fen": 500000})
        assert r.status_code == 404, code
        assert r.json()["code"] == "REGION_NOT_FOUND"


@pytest.mark.parametrize(
    "params",
    [{}, {"base_fen": -1}, {"base_fen": 10**11 + 1}, {"base_fen": "1.5"}, {"base_fen": "x"}],
)
def test_base_must_be_an_integer_in_range(client: TestClient, params: dict[str, Any]) -> None:
    r = client.get(f"{API}/regions/150600/contribution-quote", params=params)
    assert r.status_code == 422
    assert r.json()["code"] == "VALIDATION_ERROR"


def test_the_largest_base_is_accepted(client: TestClient) -> None:
    r = client.get(f"{API}/regions/150600/contribution-quote", params={"base_fen": 10**11})
    assert r.status_code == 200 and r.json()["clamped_base_fen"] == 1692300


# --- the pure rule -------------------------------------------------------------------


def _policy(**overrides: Any) -> ContributionPolicy:
    values: dict[str, Any] = {
        "base_floor": 0,
        "base_ceiling": 0,
        "personal": {"medical": 20, "pension": 80},
        "employer": {"medical": 70},
        "personal_account_share": {"medical": 1000},
        "rounding": "fen_half_up",
    }
    values.update(overrides)
    return ContributionPolicy.model_validate(values)


def test_no_ceiling_means_no_upper_clamp() -> None:
    q = quote(_policy(base_floor=100000), 10**11)
    assert q.clamped_base_fen == 10**11
    assert q.personal_account_fen == 2000000000  # 10^11 × 20‰


@pytest.mark.parametrize(
    ("rounding", "base", "medical"),
    [
        # 20‰ of 500025 = 10000.5; of 500075 = 10001.5; of 500049 = 10000.98
        ("fen_half_up", 500025, 10001),
        ("fen_half_up", 500075, 10002),
        ("fen_down", 500025, 10000),
        ("fen_down", 500049, 10000),
        ("fen_half_even", 500025, 10000),
        ("fen_half_even", 500075, 10002),
        ("fen_half_even", 500049, 10001),
    ],
)
def test_rounding_modes(rounding: str, base: int, medical: int) -> None:
    q = quote(_policy(rounding=rounding), base)
    assert {line.insurance: line.personal_fen for line in q.lines}["medical"] == medical


def test_personal_account_share_of_the_medical_amount() -> None:
    # 30% (300‰) of the personal medical amount: 500000 × 20‰ = 10000 → 3000.
    q = quote(_policy(personal_account_share={"medical": 300}), 500000)
    assert q.personal_account_fen == 3000


def test_a_negative_base_is_refused() -> None:
    with pytest.raises(ValueError):
        quote(_policy(), -1)


_INSURANCES = [i.value for i in Insurance]
_RATES = st.dictionaries(st.sampled_from(_INSURANCES), st.integers(0, 1000), max_size=5)


@st.composite
def _policies(draw: st.DrawFn) -> ContributionPolicy:
    floor = draw(st.integers(0, 10**8))
    ceiling = draw(st.one_of(st.just(0), st.integers(floor, 10**9)))
    personal = draw(_RATES)
    share_keys = draw(st.lists(st.sampled_from(sorted(personal)), unique=True)) if personal else []
    share = {k: draw(st.integers(0, 1000)) for k in share_keys}
    return ContributionPolicy(
        base_floor=floor,
        base_ceiling=ceiling,
        personal=personal,
        employer=draw(_RATES),
        personal_account_share=share,
        rounding=draw(st.sampled_from(list(Rounding))),
    )


@given(policy=_policies(), base=st.integers(0, 10**11))
def test_quote_properties(policy: ContributionPolicy, base: int) -> None:
    q = quote(policy, base)
    assert q.base_fen == base
    assert q.clamped_base_fen >= policy.base_floor
    if policy.base_ceiling:
        assert q.clamped_base_fen <= policy.base_ceiling
    if policy.base_floor <= base and (not policy.base_ceiling or base <= policy.base_ceiling):
        assert q.clamped_base_fen == base
    assert q.personal_total_fen == sum(line.personal_fen for line in q.lines)
    assert q.employer_total_fen == sum(line.employer_fen for line in q.lines)
    assert q.total_fen == q.personal_total_fen + q.employer_total_fen
    amounts = [q.personal_total_fen, q.employer_total_fen, q.total_fen, q.personal_account_fen]
    amounts += [v for line in q.lines for v in (line.personal_fen, line.employer_fen)]
    assert all(type(v) is int and v >= 0 for v in amounts)
    # An amount is within one fen of the exact product, whatever the rounding.
    for line in q.lines:
        exact = q.clamped_base_fen * policy.personal.get(line.insurance, 0)
        assert abs(line.personal_fen * 1000 - exact) < 1000
    assert q.personal_account_fen <= q.personal_total_fen
    assert {line.insurance for line in q.lines} == set(policy.personal) | set(policy.employer)
