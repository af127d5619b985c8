"""Hypothesis properties of the pure unbind rules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from qinqing.kit.clock import CHINA_TZ
from qinqing.regions.loading import load_policies
from qinqing.regions.policy import BlockingStatus, Policy
from qinqing.unbind import rules
from qinqing.unbind.rules import (
    HoldsSummary,
    InitiatorFacts,
    LinkFacts,
    VerificationOutcome,
    blockers,
)

HOLDER = uuid.UUID(int=1)
MEMBER = uuid.UUID(int=2)
STRANGER = uuid.UUID(int=3)
BASE = load_policies(None).policy("150600")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

link_statuses = st.sampled_from(["pending_consent", "active", "unbinding", "ended"])
insurance = st.sampled_from(["active", "arrears", "suspended", "terminated"])
moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)
)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    statuses = draw(st.lists(st.sampled_from(list(BlockingStatus)), unique=True))
    return BASE.model_copy(
        update={
            "unbind_blocking_statuses": tuple(statuses),
            "unbind_cooling_off_days": draw(st.integers(0, 60)),
        }
    )


@st.composite
def links(draw: st.DrawFn) -> LinkFacts:
    status = draw(link_statuses)
    activated = None if status == "pending_consent" else draw(moments)
    return LinkFacts(status, HOLDER, MEMBER, activated)


@st.composite
def initiators(draw: st.DrawFn) -> InitiatorFacts:
    locked = draw(st.none() | moments)
    return InitiatorFacts(
        person_id=draw(st.sampled_from([HOLDER, MEMBER, STRANGER, None])),
        insurance_status=draw(insurance),
        payment_password_locked_until=locked,
        face_available=draw(st.booleans()),
        id_document_available=draw(st.booleans()),
    )


holds = st.builds(HoldsSummary, st.integers(0, 5), st.integers(0, 10_000_000))
outcomes = st.none() | st.builds(
    VerificationOutcome, st.sampled_from([None, *rules.VERIFICATION_CODES]), st.just({})
)


@given(links(), initiators(), holds, policies(), moments, outcomes)
def test_eligible_exactly_when_no_blocker(
    link: LinkFacts,
    initiator: InitiatorFacts,
    held: HoldsSummary,
    policy: Policy,
    now: datetime,
    outcome: VerificationOutcome | None,
) -> None:
    found = blockers(link, initiator, held, policy, now, outcome)
    assert rules.eligible(found) == (found == [])
    codes = [b.code for b in found]
    # No code twice, and always in the documented order.
    assert len(codes) == len(set(codes))
    assert codes == sorted(codes, key=rules.CODES.index)


@given(links(), initiators(), holds, policies(), moments, outcomes)
def test_each_blocker_exactly_when_its_condition_holds(
    link: LinkFacts,
    initiator: InitiatorFacts,
    held: HoldsSummary,
    policy: Policy,
    now: datetime,
    outcome: VerificationOutcome | None,
) -> None:
    """An independent statement of SPEC §3, condition by condition."""
    codes = {b.code for b in blockers(link, initiator, held, policy, now, outcome)}
    is_party = initiator.person_id in (HOLDER, MEMBER)
    expected: set[str] = set()
    if link.status != "active":
        expected.add("LINK_NOT_ACTIVE")
    if not is_party:
        expected.add("NOT_A_PARTY")
    if is_party and initiator.insurance_status in policy.unbind_blocking_statuses:
        expected.add(rules.STATUS_BLOCKERS[initiator.insurance_status])
    if held.count > 0:
        expected.add("UNSETTLED_PAYMENTS")
    if link.activated_at is not None and policy.unbind_cooling_off_days > 0:
        first_day = link.activated_at.astimezone(CHINA_TZ).date() + timedelta(
            days=policy.unbind_cooling_off_days
        )
        if now.astimezone(CHINA_TZ).date() < first_day:
            expected.add("COOLING_OFF")
    if is_party and outcome is not None and outcome.code is not None:
        expected.add(outcome.code)
    if is_party and outcome is None:
        lock = initiator.payment_password_locked_until
        other_way = initiator.face_available or initiator.id_document_available
        if lock is not None and lock > now and not other_way:
            expected.add("VERIFICATION_LOCKED")
    assert codes == expected


@given(links(), initiators(), holds, policies(), moments)
def test_a_good_verification_never_adds_a_blocker_to_the_check(
    link: LinkFacts,
    initiator: InitiatorFacts,
    held: HoldsSummary,
    policy: Policy,
    now: datetime,
) -> None:
    """Submitting with a correct verification is refused only for what the check showed
    (the check may add VERIFICATION_LOCKED, which a correct verification rules out)."""
    checked = {b.code for b in blockers(link, initiator, held, policy, now)}
    submitted = {b.code for b in blockers(link, initiator, held, policy, now, rules.VERIFIED)}
    assert submitted == checked - {"VERIFICATION_LOCKED"}


@given(moments, st.integers(1, 400))
def test_cooling_off_ends_on_the_day_it_names(activated: datetime, days: int) -> None:
    link = LinkFacts("active", HOLDER, MEMBER, activated)
    policy = BASE.model_copy(update={"unbind_cooling_off_days": days})
    ok = InitiatorFacts(HOLDER, "active")
    found = blockers(link, ok, HoldsSummary(0, 0), policy, activated)
    assert [b.code for b in found] == ["COOLING_OFF"]
    until = datetime.fromisoformat(str(found[0].params["until"])).replace(tzinfo=CHINA_TZ)
    assert blockers(link, ok, HoldsSummary(0, 0), policy, until) == []
    assert blockers(link, ok, HoldsSummary(0, 0), policy, until - timedelta(seconds=1)) != []
    assert until - activated >= timedelta(days=days - 1)
