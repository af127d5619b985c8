"""Table tests of ``family.rules.refusals``: every rule alone, then combinations."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qinqing.family import rules
from qinqing.family.rules import BindRequest, OpenLink, PartyFacts
from qinqing.kit.errors import DomainError
from qinqing.regions.loading import load_policies
from qinqing.regions.policy import CrossRegion, MutualAidScope, Policy

TODAY = date(2026, 11, 23)
NATIONAL = load_policies(None).national()
H = uuid.UUID(int=1)
M = uuid.UUID(int=2)


def policy(**changes: Any) -> Policy:
    return NATIONAL.model_copy(update=changes)


# A region that has not started cross-region mutual aid (共济额度): beyond the scope,
# mutual aid is refused.
NO_QUOTA = policy(cross_region=CrossRegion.none)


def holder(**changes: Any) -> PartyFacts:
    base = PartyFacts(H, "active", "employee", "150600", date(1985, 1, 1), "M")
    return replace(base, **changes)


def member(**changes: Any) -> PartyFacts:
    base = PartyFacts(M, "active", "employee", "150600", date(1986, 5, 5), "F")
    return replace(base, **changes)


def link(
    holder_id: uuid.UUID, member_id: uuid.UUID, relation: str = "child", aid: bool = False
) -> OpenLink:
    return OpenLink(holder_id, member_id, relation, aid)


def others(n: int, relation: str = "child", aid: bool = False) -> list[OpenLink]:
    return [link(H, uuid.UUID(int=100 + i), relation, aid) for i in range(n)]


def codes(
    *,
    h: PartyFacts | None = None,
    m: PartyFacts | None = None,
    relation: str = "spouse",
    aid: bool = False,
    limit: int | None = None,
    pol: Policy | None = None,
    links: list[OpenLink] | None = None,
    today: date = TODAY,
    binds: int = 0,
) -> list[str]:
    return [
        r.code
        for r in rules.refusals(
            holder=h or holder(),
            member=m or member(),
            request=BindRequest(relation, aid, limit),
            policy=pol or NATIONAL,
            open_links=links or [],
            today=today,
            member_binds_this_month=binds,
        )
    ]


# The four relations a region may narrow the list to (the national default admits all
# seven close relatives since 国办发〔2024〕38号).
FOUR = ("spouse", "father", "mother", "child")


def test_a_plain_binding_is_allowed() -> None:
    assert codes() == []
    assert codes(aid=True, limit=100_00) == []


# --- each rule alone -------------------------------------------------------------

SINGLE_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("self link", {"m": member(id=H, birth_date=date(1985, 1, 1), sex="M")}, "SELF_LINK"),
    (
        "sibling not admitted where a region narrows the list",
        {
            "relation": "sibling",
            "m": member(sex="M"),
            "pol": policy(relations=FOUR, mutual_aid_relations=FOUR),
        },
        "RELATION_NOT_ADMITTED",
    ),
    (
        "mutual aid not for sibling here",
        {"relation": "sibling", "aid": True, "pol": policy(mutual_aid_relations=FOUR)},
        "MUTUAL_AID_RELATION_NOT_ADMITTED",
    ),
    ("limit without mutual aid", {"limit": 100}, "YEARLY_LIMIT_INVALID"),
    ("limit of zero", {"aid": True, "limit": 0}, "YEARLY_LIMIT_INVALID"),
    ("negative limit", {"aid": True, "limit": -5}, "YEARLY_LIMIT_INVALID"),
    (
        "limit above the region's cap",
        {"aid": True, "limit": 100_01, "pol": policy(mutual_aid_yearly_limit_max_fen=100_00)},
        "YEARLY_LIMIT_INVALID",
    ),
    ("holder in arrears", {"h": holder(status="arrears")}, "HOLDER_NOT_ACTIVE"),
    ("holder suspended", {"h": holder(status="suspended")}, "HOLDER_NOT_ACTIVE"),
    ("holder terminated", {"h": holder(status="terminated")}, "HOLDER_NOT_ACTIVE"),
    (
        "a father who is a woman",
        {"relation": "father", "m": member(birth_date=date(1960, 1, 1))},
        "RELATION_IMPLAUSIBLE",
    ),
    ("a mother younger than the holder", {"relation": "mother"}, "RELATION_IMPLAUSIBLE"),
    (
        "a child older than the holder",
        {"relation": "child", "m": member(birth_date=date(1980, 1, 1))},
        "RELATION_IMPLAUSIBLE",
    ),
    (
        "a minor bound as a spouse",
        {"m": member(birth_date=date(2012, 1, 1))},
        "MINOR_NEEDS_PARENT",
    ),
    ("an open link with the member", {"links": [link(H, M, "child")]}, "DUPLICATE_LINK"),
    ("the member's new holders this month", {"binds": 2}, "MEMBER_BIND_LIMIT_REACHED"),
    (
        "the member's new holders, a region's lower allowance",
        {"binds": 1, "pol": policy(member_binds_per_month=1)},
        "MEMBER_BIND_LIMIT_REACHED",
    ),
    ("an open link the other way", {"links": [link(M, H, "spouse")]}, "DUPLICATE_LINK"),
    (
        "a second spouse",
        {"links": [link(H, uuid.UUID(int=9), "spouse")]},
        "RELATION_ALREADY_BOUND",
    ),
    (
        "a second father",
        {
            "relation": "father",
            "m": member(sex="M", birth_date=date(1958, 1, 1)),
            "links": [link(H, uuid.UUID(int=9), "father")],
        },
        "RELATION_ALREADY_BOUND",
    ),
    (
        "a second mother",
        {
            "relation": "mother",
            "m": member(birth_date=date(1958, 1, 1)),
            "links": [link(H, uuid.UUID(int=9), "mother")],
        },
        "RELATION_ALREADY_BOUND",
    ),
    ("max members reached", {"links": others(5)}, "MEMBER_LIMIT_REACHED"),
    (
        "max members lowered",
        {"links": others(2), "pol": policy(max_members=2)},
        "MEMBER_LIMIT_REACHED",
    ),
    (
        "resident holder with mutual aid",
        {"aid": True, "h": holder(scheme="resident")},
        "MUTUAL_AID_NEEDS_EMPLOYEE_HOLDER",
    ),
    (
        "flexible holder with mutual aid",
        {"aid": True, "h": holder(scheme="flexible")},
        "MUTUAL_AID_NEEDS_EMPLOYEE_HOLDER",
    ),
    (
        "terminated member with mutual aid",
        {"aid": True, "m": member(status="terminated")},
        "MEMBER_NOT_INSURED",
    ),
    (
        "deceased member, even without mutual aid",
        {"aid": False, "m": member(status="deceased")},
        "MEMBER_NOT_INSURED",
    ),
    (
        "deceased holder",
        {"h": holder(status="deceased")},
        "HOLDER_NOT_ACTIVE",
    ),
    (
        "member in another region",
        {"aid": True, "m": member(region_code="150200"), "pol": NO_QUOTA},
        "MUTUAL_AID_OUT_OF_SCOPE",
    ),
    (
        "member in another province",
        {
            "aid": True,
            "m": member(region_code="440100"),
            "pol": policy(mutual_aid_scope=MutualAidScope.province, cross_region=CrossRegion.none),
        },
        "MUTUAL_AID_OUT_OF_SCOPE",
    ),
    (
        "one direction: the holder receives mutual aid",
        {
            "aid": True,
            "pol": policy(one_direction=True),
            "links": [link(uuid.UUID(int=9), H, "child", True)],
        },
        "ONE_DIRECTION",
    ),
    (
        "one direction: the member gives mutual aid",
        {
            "aid": True,
            "pol": policy(one_direction=True),
            "links": [link(M, uuid.UUID(int=9), "child", True)],
        },
        "ONE_DIRECTION",
    ),
]


@pytest.mark.parametrize(("case", "kw", "code"), SINGLE_CASES, ids=[c[0] for c in SINGLE_CASES])
def test_each_rule_alone(case: str, kw: dict[str, Any], code: str) -> None:
    assert codes(**kw) == [code]


# --- what the rules let through --------------------------------------------------

ALLOWED_CASES: list[tuple[str, dict[str, Any]]] = [
    ("a member in arrears without mutual aid", {"m": member(status="arrears")}),
    ("a terminated member without mutual aid", {"m": member(status="terminated")}),
    ("a suspended member with mutual aid", {"aid": True, "m": member(status="suspended")}),
    ("a resident holder without mutual aid", {"h": holder(scheme="resident")}),
    ("a member of another region without mutual aid", {"m": member(region_code="440100")}),
    (
        "same province, province scope",
        {
            "aid": True,
            "m": member(region_code="150200"),
            "pol": policy(mutual_aid_scope=MutualAidScope.province),
        },
    ),
    (
        "another province, nation scope",
        {
            "aid": True,
            "m": member(region_code="440100"),
            "pol": policy(mutual_aid_scope=MutualAidScope.nation),
        },
    ),
    ("four others and this one", {"links": others(4)}),
    (
        "several children",
        {"relation": "child", "m": member(birth_date=date(2000, 1, 1)), "links": others(3)},
    ),
    ("an ended link is not an open link", {"links": []}),
    ("one new holder this month already", {"binds": 1}),
    ("close relatives everywhere: a sibling", {"relation": "sibling", "aid": True}),
    (
        "close relatives everywhere: a grandparent",
        {"relation": "grandparent", "aid": True, "m": member(birth_date=date(1930, 1, 1))},
    ),
    (
        "a young grandchild bound by a grandparent",
        {"relation": "grandchild", "m": member(birth_date=date(2016, 6, 1))},
    ),
    (
        "a young sibling bound by an adult sibling",
        {"relation": "sibling", "m": member(birth_date=date(2014, 6, 1))},
    ),
    (
        "a young child bound by a parent",
        {"relation": "child", "m": member(birth_date=date(2015, 6, 1))},
    ),
    (
        "a limit at the cap",
        {"aid": True, "limit": 100_00, "pol": policy(mutual_aid_yearly_limit_max_fen=100_00)},
    ),
    ("any limit without a cap", {"aid": True, "limit": 10**12}),
    (
        "one direction off: a chain of mutual aid",
        {"aid": True, "links": [link(uuid.UUID(int=9), H, "child", True)]},
    ),
    (
        "one direction on, the other link without mutual aid",
        {
            "aid": True,
            "pol": policy(one_direction=True),
            "links": [link(uuid.UUID(int=9), H, "child")],
        },
    ),
    (
        "one direction on, this link without mutual aid",
        {"pol": policy(one_direction=True), "links": [link(uuid.UUID(int=9), H, "child", True)]},
    ),
    (
        "one direction on, the holder already gives aid",
        {
            "aid": True,
            "pol": policy(one_direction=True),
            "links": [link(H, uuid.UUID(int=9), "child", True)],
        },
    ),
    (
        "links of strangers are ignored",
        {"links": [link(uuid.UUID(int=7), uuid.UUID(int=8), "spouse")] * 9},
    ),
    (
        "member in another province, through a quota (the national default)",
        {"aid": True, "m": member(region_code="440100")},
    ),
    (
        "close relatives where admitted",
        {
            "relation": "sibling",
            "aid": True,
            "m": member(sex="M"),
            "pol": policy(
                relations=(*NATIONAL.relations, "sibling"),
                mutual_aid_relations=(*NATIONAL.mutual_aid_relations, "sibling"),
            ),
        },
    ),
]


@pytest.mark.parametrize(("case", "kw"), ALLOWED_CASES, ids=[c[0] for c in ALLOWED_CASES])
def test_allowed(case: str, kw: dict[str, Any]) -> None:
    assert codes(**kw) == []


# --- combinations: every refusal, in the fixed order -----------------------------


def test_combinations_are_reported_in_order() -> None:
    found = codes(
        h=holder(status="arrears", scheme="resident"),
        m=member(status="terminated", region_code="440100"),
        aid=True,
        limit=0,
        pol=NO_QUOTA,
        links=[*others(4), link(H, uuid.UUID(int=9), "spouse"), link(M, H, "child")],
    )
    # The request's own refusals first (decided before the member is looked up), then
    # those that depend on the member found.
    assert found == [
        "YEARLY_LIMIT_INVALID",
        "HOLDER_NOT_ACTIVE",
        "RELATION_ALREADY_BOUND",
        "MEMBER_LIMIT_REACHED",
        "MUTUAL_AID_NEEDS_EMPLOYEE_HOLDER",
        "DUPLICATE_LINK",
        "MEMBER_NOT_INSURED",
        "MUTUAL_AID_OUT_OF_SCOPE",
    ]


def test_relation_not_admitted_hides_the_mutual_aid_relation_refusal() -> None:
    narrowed = policy(relations=FOUR, mutual_aid_relations=FOUR)
    old = member(birth_date=date(1930, 1, 1))
    assert codes(relation="grandparent", aid=True, m=old, pol=narrowed) == ["RELATION_NOT_ADMITTED"]


def test_minor_as_father_is_implausible_and_needs_a_parent() -> None:
    found = codes(relation="father", m=member(sex="M", birth_date=date(2014, 1, 1)))
    assert found == ["RELATION_IMPLAUSIBLE", "MINOR_NEEDS_PARENT"]


def test_self_link_comes_first() -> None:
    me = member(id=H, birth_date=date(1985, 1, 1), sex="M")
    assert codes(m=me, h=holder(status="arrears"))[:2] == ["SELF_LINK", "HOLDER_NOT_ACTIVE"]


def test_one_direction_with_scope_and_limit() -> None:
    found = codes(
        aid=True,
        m=member(region_code="150200"),
        pol=policy(one_direction=True, cross_region=CrossRegion.none),
        links=[link(M, uuid.UUID(int=9), "child", True), *others(5)],
    )
    assert found == ["MEMBER_LIMIT_REACHED", "MUTUAL_AID_OUT_OF_SCOPE", "ONE_DIRECTION"]


# --- ages, consent and the raised error ------------------------------------------


@pytest.mark.parametrize(
    ("born", "today", "age"),
    [
        (date(2010, 11, 23), date(2026, 11, 23), 16),
        (date(2010, 11, 24), date(2026, 11, 23), 15),
        (date(2008, 2, 29), date(2024, 2, 28), 15),
        (date(2008, 2, 29), date(2024, 2, 29), 16),
        (date(2008, 2, 29), date(2025, 3, 1), 17),
    ],
)
def test_age_on(born: date, today: date, age: int) -> None:
    assert rules.age_on(born, today) == age


def test_consent_from_consent_age_on_the_birthday() -> None:
    sixteen_today = member(birth_date=date(2010, 11, 23))
    fifteen = member(birth_date=date(2010, 11, 24))
    assert rules.needs_consent(sixteen_today, NATIONAL, TODAY)
    assert not rules.needs_consent(fifteen, NATIONAL, TODAY)
    # A 15-year-old: bound directly only as a child; a 16-year-old consents.
    assert codes(relation="child", m=fifteen) == []
    assert codes(relation="spouse", m=fifteen) == ["MINOR_NEEDS_PARENT"]
    assert codes(relation="spouse", m=sixteen_today) == []
    assert not rules.needs_consent(sixteen_today, policy(consent_age=18), TODAY)
    assert rules.needs_consent(member(birth_date=TODAY), policy(consent_age=0), TODAY)


def test_today_is_the_beijing_date() -> None:
    assert rules.today_in_china(datetime(2026, 11, 22, 16, 0, tzinfo=UTC)) == date(2026, 11, 23)
    assert rules.today_in_china(datetime(2026, 11, 22, 15, 59, tzinfo=UTC)) == date(2026, 11, 22)


def test_check_raises_the_first_with_all_codes() -> None:
    with pytest.raises(DomainError) as info:
        rules.check(
            rules.refusals(
                holder=holder(status="arrears"),
                member=member(),
                request=BindRequest("spouse", False, 5),
                policy=NATIONAL,
                open_links=[],
                today=TODAY,
            )
        )
    assert info.value.code == "YEARLY_LIMIT_INVALID"
    assert info.value.status == 422
    assert info.value.extra == {"refusals": ["YEARLY_LIMIT_INVALID", "HOLDER_NOT_ACTIVE"]}
    assert info.value.params == {"reason": "without_mutual_aid", "max_fen": 0}


def test_every_code_has_a_status_and_messages() -> None:
    from qinqing.kit import i18n

    for code, status in rules.ORDER.items():
        assert status in (409, 422)
        for locale in ("en", "zh-CN"):
            message, hint = i18n.text(code, locale, {})
            assert message != code and hint, (code, locale)


# --- a property: the order and the emptiness -------------------------------------

statuses = st.sampled_from(["active", "arrears", "suspended", "terminated"])
schemes = st.sampled_from(["employee", "resident", "flexible"])
regions = st.sampled_from(["150600", "150200", "440100"])
relations = st.sampled_from(["spouse", "father", "mother", "child", "sibling"])


@given(
    h_status=statuses,
    h_scheme=schemes,
    m_status=statuses,
    m_region=regions,
    relation=relations,
    aid=st.booleans(),
    limit=st.none() | st.integers(-10, 10),
    n_links=st.integers(0, 6),
    one_direction=st.booleans(),
)
def test_refusals_are_sorted_unique_and_explain_each_rule(
    h_status: str,
    h_scheme: str,
    m_status: str,
    m_region: str,
    relation: str,
    aid: bool,
    limit: int | None,
    n_links: int,
    one_direction: bool,
) -> None:
    found = codes(
        h=holder(status=h_status, scheme=h_scheme),
        m=member(status=m_status, region_code=m_region, sex="M", birth_date=date(1950, 1, 1)),
        relation=relation,
        aid=aid,
        limit=limit,
        links=others(n_links),
        pol=policy(one_direction=one_direction),
    )
    order = list(rules.ORDER)
    assert found == sorted(found, key=order.index)
    assert len(found) == len(set(found))
    assert ("HOLDER_NOT_ACTIVE" in found) == (h_status != "active")
    assert ("MEMBER_LIMIT_REACHED" in found) == (n_links >= 5)
    if not aid:
        assert not {"MEMBER_NOT_INSURED", "MUTUAL_AID_OUT_OF_SCOPE", "ONE_DIRECTION"} & set(found)


# --- what a granted binding starts as --------------------------------------------


@pytest.mark.parametrize(
    ("born", "guardian", "consented", "status"),
    [
        (date(1986, 5, 5), False, False, "pending_consent"),
        (date(1986, 5, 5), True, False, "pending_consent"),
        (date(1986, 5, 5), False, True, "active"),
        (date(2015, 6, 1), True, False, "active"),
        (date(2015, 6, 1), False, False, "pending_proof"),
        # Consent given at the counter proves nothing about a minor's guardianship.
        (date(2015, 6, 1), False, True, "pending_proof"),
        (date(2010, 11, 23), False, False, "pending_consent"),
        (date(2010, 11, 24), False, False, "pending_proof"),
    ],
)
def test_initial_status(born: date, guardian: bool, consented: bool, status: str) -> None:
    assert (
        rules.initial_status(
            born, NATIONAL, TODAY, holder_is_guardian=guardian, consent_given=consented
        )
        == status
    )


def test_the_request_is_decided_from_what_was_typed() -> None:
    """Before the look-up, the ID number's birth date and sex decide the request's own
    refusals; a member's registry state plays no part in them."""
    typed = rules.Typed(date(2015, 6, 1), "F", is_holder=False)
    found = rules.request_refusals(
        holder=holder(),
        typed=typed,
        request=BindRequest("spouse", True, None),
        policy=NATIONAL,
        open_links=[],
        today=TODAY,
    )
    assert [r.code for r in found] == ["MINOR_NEEDS_PARENT"]
    me = rules.Typed(date(1985, 1, 1), "M", is_holder=True)
    assert [
        r.code
        for r in rules.request_refusals(
            holder=holder(),
            typed=me,
            request=BindRequest("spouse", False, None),
            policy=NATIONAL,
            open_links=[],
            today=TODAY,
        )
    ] == ["SELF_LINK"]


@pytest.mark.parametrize(
    ("member_region", "scope", "cross_region", "expected"),
    [
        ("150600", MutualAidScope.region, CrossRegion.quota, False),  # same region
        ("150200", MutualAidScope.region, CrossRegion.quota, True),  # another city
        ("150200", MutualAidScope.province, CrossRegion.quota, False),  # same province
        ("440100", MutualAidScope.province, CrossRegion.quota, True),
        ("440100", MutualAidScope.nation, CrossRegion.quota, False),
        ("440100", MutualAidScope.region, CrossRegion.none, False),  # refused instead
    ],
)
def test_a_link_beyond_the_scope_goes_through_a_quota(
    member_region: str, scope: MutualAidScope, cross_region: CrossRegion, expected: bool
) -> None:
    pol = policy(mutual_aid_scope=scope, cross_region=cross_region)
    assert rules.via_quota("150600", member_region, pol) is expected
