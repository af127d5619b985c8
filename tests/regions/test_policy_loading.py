"""Policy files: shipped regions, inheritance, operator overrides, refusals (SPEC §4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from qinqing.kit.db import Base, Database
from qinqing.kit.errors import DomainError
from qinqing.regions.loading import load_policies
from qinqing.regions.models import Region
from qinqing.regions.policy import (
    ContributionPolicy,
    MutualAidScope,
    Policy,
    PolicyError,
    Rounding,
    UnbindReview,
    is_known_region_code,
)
from qinqing.regions.registry import PolicyRegistry
from qinqing.regions.service import sync_regions

SHIPPED = "qinqing/regions/policies/"
NATIONAL = SHIPPED + "national.toml"


def sources(registry: PolicyRegistry, code: str) -> dict[str, str]:
    return {item.key: item.source for item in registry.explain(code)}


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def shipped() -> PolicyRegistry:
    return load_policies(None)


# --- the shipped files -------------------------------------------------------------------


def test_the_four_shipped_regions_load(shipped: PolicyRegistry) -> None:
    assert [(r.code, r.name, r.province_code) for r in shipped.regions()] == [
        ("110000", "北京市", "11"),
        ("150600", "鄂尔多斯市", "15"),
        ("440100", "广州市", "44"),
        ("500000", "重庆市", "50"),
    ]


def test_ordos_contribution_base(shipped: PolicyRegistry) -> None:
    contribution = shipped.policy("150600").contribution
    assert contribution.base_floor == 338500
    assert contribution.base_ceiling == 1692300
    assert contribution.employer["medical"] == 80
    assert contribution.personal["medical"] == 20
    assert contribution.personal_account_share["medical"] == 1000


def test_guangzhou_reviews_unbinds_and_admits_close_relatives(shipped: PolicyRegistry) -> None:
    policy = shipped.policy("440100")
    assert policy.unbind_review is UnbindReview.manual
    assert policy.mutual_aid_scope is MutualAidScope.province
    assert policy.admits("sibling") and policy.admits("grandparent")
    assert policy.admits("grandchild")


CLOSE_RELATIVES = ("spouse", "father", "mother", "child", "sibling", "grandparent", "grandchild")


def test_close_relatives_everywhere_since_2024(shipped: PolicyRegistry) -> None:
    """国办发〔2024〕38号: every province admits the seven close relatives, for links and
    for mutual aid; every shipped region inherits that."""
    for code in shipped.codes():
        assert shipped.policy(code).relations == CLOSE_RELATIVES, code
        assert shipped.policy(code).mutual_aid_relations == CLOSE_RELATIVES, code


def test_national_default_has_the_spec_values(shipped: PolicyRegistry) -> None:
    national = shipped.national()
    assert national.max_members == 5
    assert national.mutual_aid_relations == CLOSE_RELATIVES
    assert national.relations == CLOSE_RELATIVES
    assert national.member_binds_per_month == 2
    assert national.bind_lookups_per_day == 10
    assert national.mutual_aid_scope == "region"
    assert national.one_direction is False
    assert national.consent_age == 16
    assert national.unbind_review == "none"
    assert national.unbind_blocking_statuses == ("arrears", "suspended", "terminated")
    assert national.unbind_cooling_off_days == 0
    assert national.hold_expiry_hours == 72
    assert national.mutual_aid_yearly_limit_max_fen == 0
    c = national.contribution
    assert (c.base_floor, c.base_ceiling, c.rounding) == (0, 0, Rounding.fen_half_up)
    assert c.personal == {"pension": 80, "medical": 20, "unemployment": 5}
    assert c.employer == {"pension": 160, "medical": 70, "unemployment": 5, "injury": 4}
    assert c.personal_account_share == {"medical": 1000}


def test_region_value_and_national_default_with_their_sources(shipped: PolicyRegistry) -> None:
    chongqing = shipped.policy("500000")
    assert chongqing.unbind_cooling_off_days == 30
    assert chongqing.hold_expiry_hours == 72  # inherited
    # Nested tables merge key by key: employer medical from the region, the rest national.
    assert chongqing.contribution.employer["medical"] == 85
    assert chongqing.contribution.employer["pension"] == 160
    src = sources(shipped, "500000")
    assert src["unbind_cooling_off_days"] == SHIPPED + "500000.toml"
    assert src["hold_expiry_hours"] == NATIONAL
    assert src["contribution.employer.medical"] == SHIPPED + "500000.toml"
    assert src["contribution.employer.pension"] == NATIONAL
    assert src["contribution.personal.medical"] == NATIONAL


def test_explain_covers_every_key_in_order(shipped: PolicyRegistry) -> None:
    keys = [item.key for item in shipped.explain("150600")]
    assert keys[0] == "relations"
    assert "contribution.personal.medical" in keys
    assert "contribution.rounding" in keys
    assert len(keys) == len(set(keys))
    values = {item.key: item.value for item in shipped.explain("150600")}
    assert values["contribution.base_floor"] == 338500
    assert values["relations"] == list(CLOSE_RELATIVES)
    assert "member_binds_per_month" in keys and "bind_lookups_per_day" in keys


def test_unknown_region_is_a_domain_error(shipped: PolicyRegistry) -> None:
    for call in (shipped.region, shipped.policy, shipped.explain):
        with pytest.raises(DomainError) as caught:
            call("999999")
        assert (caught.value.code, caught.value.status) == ("REGION_NOT_FOUND", 404)


def test_policy_is_cached_and_frozen(shipped: PolicyRegistry) -> None:
    assert shipped.policy("150600") is shipped.policy("150600")
    with pytest.raises(ValueError, match="frozen"):
        shipped.policy("150600").max_members = 9  # type: ignore[misc]


def test_known_region_codes() -> None:
    assert is_known_region_code("150600")
    assert is_known_region_code("110000")
    assert is_known_region_code("150602")
    assert not is_known_region_code("999999")
    assert not is_known_region_code("15060")
    assert not is_known_region_code("15060a")


# --- the operator's directory ------------------------------------------------------------


def test_operator_override_of_one_key_keeps_the_others(tmp_path: Path) -> None:
    path = write(tmp_path, "150600.toml", "unbind_cooling_off_days = 7\n")
    registry = load_policies(tmp_path)
    policy = registry.policy("150600")
    assert policy.unbind_cooling_off_days == 7
    assert policy.contribution.base_floor == 338500
    assert policy.contribution.base_ceiling == 1692300
    assert registry.region("150600").name == "鄂尔多斯市"
    src = sources(registry, "150600")
    assert src["unbind_cooling_off_days"] == str(path.absolute())
    assert src["contribution.base_floor"] == SHIPPED + "150600.toml"
    assert src["max_members"] == NATIONAL
    # Other regions are untouched.
    assert registry.policy("500000").unbind_cooling_off_days == 30


def test_operator_override_of_one_nested_key(tmp_path: Path) -> None:
    path = write(tmp_path, "440100.toml", "[contribution.employer]\nmedical = 60\n")
    registry = load_policies(tmp_path)
    employer = registry.policy("440100").contribution.employer
    assert employer["medical"] == 60
    assert employer["maternity"] == 8
    src = sources(registry, "440100")
    assert src["contribution.employer.medical"] == str(path.absolute())
    assert src["contribution.employer.maternity"] == SHIPPED + "440100.toml"


def test_operator_national_override_reaches_every_region(tmp_path: Path) -> None:
    path = write(tmp_path, "national.toml", "max_members = 3\nhold_expiry_hours = 24\n")
    registry = load_policies(tmp_path)
    assert registry.national().max_members == 3
    assert registry.policy("150600").max_members == 3
    assert registry.policy("440100").hold_expiry_hours == 24
    assert sources(registry, "110000")["max_members"] == str(path.absolute())
    # A region's own value still wins over the national one.
    assert registry.policy("500000").unbind_cooling_off_days == 30


def test_operator_file_adds_a_region(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "120000.toml",
        '[region]\ncode = "120000"\nname = "天津市"\n\n[contribution]\nbase_floor = 400000\n',
    )
    registry = load_policies(tmp_path)
    assert registry.region("120000").name == "天津市"
    assert registry.region("120000").province_code == "12"
    policy = registry.policy("120000")
    assert policy.contribution.base_floor == 400000
    assert policy.max_members == 5
    src = sources(registry, "120000")
    assert src["contribution.base_floor"] == str(path.absolute())
    assert src["max_members"] == NATIONAL
    assert "120000" in [r.code for r in registry.regions()]


def test_a_region_inherits_another_region(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "150602.toml",
        'inherits = "150600"\nmax_members = 4\n\n[region]\ncode = "150602"\nname = "东胜区"\n',
    )
    registry = load_policies(tmp_path)
    policy = registry.policy("150602")
    assert policy.max_members == 4
    assert policy.contribution.base_floor == 338500  # from the parent region
    assert policy.hold_expiry_hours == 72  # from the parent's parent
    src = sources(registry, "150602")
    assert src["max_members"] == str(path.absolute())
    assert src["contribution.base_floor"] == SHIPPED + "150600.toml"
    assert src["hold_expiry_hours"] == NATIONAL


def test_a_child_region_sees_the_operators_parent_override(tmp_path: Path) -> None:
    write(tmp_path, "150600.toml", "[contribution]\nbase_floor = 350000\n")
    write(
        tmp_path,
        "150602.toml",
        'inherits = "150600"\n[region]\ncode = "150602"\nname = "东胜区"\n',
    )
    assert load_policies(tmp_path).policy("150602").contribution.base_floor == 350000


def test_operator_dir_ignores_other_files(tmp_path: Path) -> None:
    write(tmp_path, "README.md", "not a policy")
    assert len(load_policies(tmp_path).regions()) == 4


# --- refusals: file, key and reason ------------------------------------------------------


def refused(directory: Path, name: str, text: str) -> PolicyError:
    path = write(directory, name, text)
    with pytest.raises(PolicyError) as caught:
        load_policies(directory)
    assert caught.value.file == str(path.absolute())
    assert str(caught.value).startswith(f"policy file {path.absolute()}")
    return caught.value


def test_toml_syntax_error(tmp_path: Path) -> None:
    error = refused(tmp_path, "150600.toml", "max_members = 5\nconsent_age == 16\n")
    assert error.key is None
    assert "line 2" in error.reason


def test_unknown_key(tmp_path: Path) -> None:
    error = refused(tmp_path, "150600.toml", "max_memberz = 5\n")
    assert (error.key, error.reason) == ("max_memberz", "unknown key")
    assert str(error) == (
        f"policy file {tmp_path.absolute() / '150600.toml'}: key 'max_memberz': unknown key"
    )


def test_unknown_nested_key(tmp_path: Path) -> None:
    error = refused(tmp_path, "national.toml", "[contribution]\nbase_flor = 1\n")
    assert (error.key, error.reason) == ("contribution.base_flor", "unknown key")


def test_unknown_insurance(tmp_path: Path) -> None:
    error = refused(tmp_path, "150600.toml", "[contribution.personal]\nhousing = 12\n")
    assert error.key == "contribution.personal.housing"
    assert "unknown insurance" in error.reason


def test_bad_enum_value(tmp_path: Path) -> None:
    error = refused(tmp_path, "440100.toml", 'mutual_aid_scope = "planet"\n')
    assert error.key == "mutual_aid_scope"
    assert "'region', 'province' or 'nation'" in error.reason
    assert "'planet'" in error.reason


def test_bad_relation_in_a_list(tmp_path: Path) -> None:
    error = refused(tmp_path, "440100.toml", 'relations = ["spouse", "cousin"]\n')
    assert error.key == "relations"
    assert error.reason.startswith("item 1: ")


def test_wrong_type(tmp_path: Path) -> None:
    error = refused(tmp_path, "150600.toml", 'max_members = "5"\n')
    assert error.key == "max_members"
    assert "integer" in error.reason


def test_negative_count(tmp_path: Path) -> None:
    error = refused(tmp_path, "150600.toml", "unbind_cooling_off_days = -1\n")
    assert error.key == "unbind_cooling_off_days"


def test_rate_above_1000_per_mille(tmp_path: Path) -> None:
    error = refused(tmp_path, "150600.toml", "[contribution.employer]\nmedical = 1001\n")
    assert error.key == "contribution.employer.medical"


def test_ceiling_below_floor(tmp_path: Path) -> None:
    error = refused(tmp_path, "150600.toml", "[contribution]\nbase_ceiling = 300000\n")
    assert error.key == "contribution.base_ceiling"
    assert error.reason == "must be 0 or at least base_floor (338500)"
    assert str(error) == (
        f"policy file {tmp_path.absolute() / '150600.toml'}: key 'contribution.base_ceiling': "
        "must be 0 or at least base_floor (338500)"
    )


def test_mutual_aid_relation_outside_relations(tmp_path: Path) -> None:
    narrowed = 'relations = ["spouse", "child"]\nmutual_aid_relations = ["spouse", "sibling"]\n'
    error = refused(tmp_path, "150600.toml", narrowed)
    assert error.key == "mutual_aid_relations"
    assert "sibling" in error.reason


def test_duplicate_relation(tmp_path: Path) -> None:
    error = refused(tmp_path, "150600.toml", 'relations = ["spouse", "spouse", "child"]\n')
    assert error.key == "relations"
    assert "twice" in error.reason


def test_code_does_not_match_the_file_name(tmp_path: Path) -> None:
    error = refused(tmp_path, "150600.toml", '[region]\ncode = "150602"\nname = "东胜区"\n')
    assert error.key == "region.code"
    assert "150600.toml" in error.reason


def test_unknown_gbt2260_code(tmp_path: Path) -> None:
    error = refused(tmp_path, "999999.toml", '[region]\ncode = "999999"\nname = "Nowhere"\n')
    assert error.key == "region.code"
    assert "GB/T 2260" in error.reason


def test_bad_file_name(tmp_path: Path) -> None:
    error = refused(tmp_path, "ordos.toml", "max_members = 5\n")
    assert error.key is None


def test_new_region_needs_a_region_table(tmp_path: Path) -> None:
    error = refused(tmp_path, "120000.toml", "max_members = 5\n")
    assert error.key == "region.name"


def test_inheritance_cycle(tmp_path: Path) -> None:
    write(tmp_path, "150600.toml", 'inherits = "440100"\n')
    # One region inheriting another is fine ...
    assert load_policies(tmp_path).policy("150600").unbind_review == "manual"
    # ... until the other inherits it back.
    write(tmp_path, "440100.toml", 'inherits = "150600"\n')
    with pytest.raises(PolicyError) as caught:
        load_policies(tmp_path)
    assert caught.value.key == "inherits"
    assert caught.value.reason == "inheritance cycle: 150600 -> 440100 -> 150600"
    assert caught.value.file == str((tmp_path / "440100.toml").absolute())


def test_self_inheritance_is_a_cycle(tmp_path: Path) -> None:
    error = refused(tmp_path, "500000.toml", 'inherits = "500000"\n')
    assert error.key == "inherits"
    assert "cycle" in error.reason


def test_unknown_parent(tmp_path: Path) -> None:
    error = refused(tmp_path, "500000.toml", 'inherits = "120000"\n')
    assert error.key == "inherits"
    assert "120000" in error.reason


def test_national_cannot_inherit(tmp_path: Path) -> None:
    error = refused(tmp_path, "national.toml", 'inherits = "150600"\n')
    assert error.key == "inherits"


def test_missing_operator_dir(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="does not exist"):
        load_policies(tmp_path / "nope")


# --- contribution helpers ----------------------------------------------------------------


def contribution(rounding: str, floor: int = 100, ceiling: int = 1000) -> ContributionPolicy:
    return ContributionPolicy.model_validate(
        {
            "base_floor": floor,
            "base_ceiling": ceiling,
            "personal": {"medical": 20},
            "employer": {"medical": 70},
            "personal_account_share": {"medical": 1000},
            "rounding": rounding,
        }
    )


def test_clamp() -> None:
    c = contribution("fen_half_up")
    assert [c.clamp(b) for b in (0, 100, 500, 1000, 5000)] == [100, 100, 500, 1000, 1000]
    assert contribution("fen_half_up", ceiling=0).clamp(10**9) == 10**9


@pytest.mark.parametrize(
    ("rounding", "amount", "per_mille", "expected"),
    [
        ("fen_half_up", 25, 20, 1),  # 0.5 -> 1
        ("fen_half_up", 24, 20, 0),  # 0.48 -> 0
        ("fen_down", 99, 20, 1),  # 1.98 -> 1
        ("fen_half_even", 25, 20, 0),  # 0.5 -> 0
        ("fen_half_even", 75, 20, 2),  # 1.5 -> 2
        ("fen_half_even", 76, 20, 2),  # 1.52 -> 2
        ("fen_half_up", 338500, 20, 6770),
    ],
)
def test_per_mille_rounding(rounding: str, amount: int, per_mille: int, expected: int) -> None:
    assert contribution(rounding).per_mille_of(amount, per_mille) == expected


def test_policy_json_round_trip(shipped: PolicyRegistry) -> None:
    policy = shipped.policy("440100")
    assert Policy.model_validate(policy.model_dump(mode="json")) == policy


# --- the regions table -------------------------------------------------------------------


def test_sync_regions_inserts_and_updates(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'q.sqlite3'}")
    Base.metadata.create_all(database.engine, tables=[Region.__table__])  # type: ignore[list-item]
    with database.unit_of_work() as session:
        session.add(Region(code="150600", name="old name", province_code="15"))
    with database.unit_of_work() as session:
        sync_regions(session, load_policies(None))
    with database.unit_of_work() as session:
        sync_regions(session, load_policies(None))  # idempotent
    with database.unit_of_work() as session:
        rows = session.scalars(select(Region).order_by(Region.code)).all()
        assert [(r.code, r.name, r.province_code) for r in rows] == [
            ("110000", "北京市", "11"),
            ("150600", "鄂尔多斯市", "15"),
            ("440100", "广州市", "44"),
            ("500000", "重庆市", "50"),
        ]
    database.dispose()


def test_resident_contribution_and_cross_region_defaults(shipped: PolicyRegistry) -> None:
    """共济缴费 and 共济额度 (the 2026 notice): the national default pays a relative's
    resident insurance in the autumn window and goes across regions by a quota."""
    national = shipped.national()
    assert national.cross_region == "quota"
    r = national.resident
    assert r.annual_contribution_fen == 40000
    assert r.window() == ((9, 1), (12, 31))
    assert (r.late_payment, r.waiting_period_days) == ("waiting_period", 90)


@pytest.mark.parametrize(
    "window", ["9-1/12-31", "09-01", "13-01/12-31", "09-31/12-31", "12-31/09-01", "09-01/12-32"]
)
def test_an_enrollment_window_that_is_not_one_is_refused(tmp_path: Path, window: str) -> None:
    error = refused(tmp_path, "150600.toml", f'[resident]\nenrollment_window = "{window}"\n')
    assert error.key == "resident.enrollment_window"
