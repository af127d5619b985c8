"""Binding rules (docs/guide.md §3.2): pure decisions over plain values, no I/O.

``refusals`` is the single source of "may this holder bind this member?". It is
two halves, in ``ORDER``: :func:`request_refusals` needs only the request, the
holder and what the holder typed (the member's ID number gives a birth date
and a sex), so the service decides it *before* looking the member up — a
probe with a request that cannot be granted learns nothing about the registry;
:func:`member_refusals` needs the member found in the registry. The service
raises the first refusal of each half in turn, and decides both again at
consent and at proof. :func:`initial_status` says what a granted binding
starts as (``pending_consent``, ``pending_proof`` or ``active``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from qinqing.kit.clock import china_date
from qinqing.kit.errors import DomainError
from qinqing.regions.policy import CrossRegion, MutualAidScope, Policy

# China Standard Time has no daylight saving: ages are counted on the Beijing date.

# A reviewer's comment on a decision, at most this long: on a guardianship proof
# (family.proofs) and on an unbind request (unbind.review), by the API and the pages.
REVIEW_COMMENT_MAX = 500

# Relations a holder may bind at most once at a time (docs/guide.md §3).
SINGLE_RELATIONS = frozenset({"spouse", "father", "mother"})
# Relations whose member must be of a given sex (from the ID number).
RELATION_SEX = {"father": "M", "mother": "F"}
# Relations whose member is of an older (+1) or a younger (-1) generation.
RELATION_GENERATION = {"father": 1, "mother": 1, "grandparent": 1, "child": -1, "grandchild": -1}

# Relations a member under the consent age may be bound with: the binder is of an
# older generation (a parent, a grandparent) or an adult sibling — a guardian.
MINOR_RELATIONS = frozenset({"child", "grandchild", "sibling"})

# code -> HTTP status; the order is the order refusals are reported in. The request's
# own refusals come first: they are decided before the member is looked up.
REQUEST_ORDER: dict[str, int] = {
    "SELF_LINK": 422,
    "RELATION_NOT_ADMITTED": 422,
    "MUTUAL_AID_RELATION_NOT_ADMITTED": 422,
    "YEARLY_LIMIT_INVALID": 422,
    "HOLDER_NOT_ACTIVE": 409,
    "RELATION_IMPLAUSIBLE": 409,
    "MINOR_NEEDS_PARENT": 409,
    "RELATION_ALREADY_BOUND": 409,
    "MEMBER_LIMIT_REACHED": 409,
    "MUTUAL_AID_NEEDS_EMPLOYEE_HOLDER": 409,
}
MEMBER_ORDER: dict[str, int] = {
    "DUPLICATE_LINK": 409,
    "MEMBER_BIND_LIMIT_REACHED": 409,
    "MEMBER_NOT_INSURED": 409,
    "MUTUAL_AID_OUT_OF_SCOPE": 409,
    "ONE_DIRECTION": 409,
}
ORDER: dict[str, int] = {**REQUEST_ORDER, **MEMBER_ORDER}


@dataclass(frozen=True, slots=True)
class PartyFacts:
    """What the rules need to know about the holder or the member."""

    id: uuid.UUID
    status: str  # active | arrears | suspended | terminated
    scheme: str  # employee | resident | flexible
    region_code: str
    birth_date: date
    sex: str  # M | F


@dataclass(frozen=True, slots=True)
class OpenLink:
    """An open (pending, active or unbinding) link of either party."""

    holder_id: uuid.UUID
    member_id: uuid.UUID
    relation: str
    mutual_aid: bool


@dataclass(frozen=True, slots=True)
class BindRequest:
    relation: str
    mutual_aid: bool
    yearly_limit_fen: int | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> int:
        return ORDER[self.code]


def today_in_china(now: datetime) -> date:
    """The calendar date in China for an instant (see ``qinqing.kit.clock.china_date``)."""
    return china_date(now)


def age_on(birth_date: date, today: date) -> int:
    """Full years of age on ``today`` (a 29 February birthday falls on 1 March)."""
    years = today.year - birth_date.year
    if (today.month, today.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def needs_consent(member: PartyFacts, policy: Policy, today: date) -> bool:
    """A member of ``consent_age`` or older consents with their own verification."""
    return age_on(member.birth_date, today) >= policy.consent_age


def in_scope(holder_region: str, member_region: str, scope: MutualAidScope) -> bool:
    """Whether a member's region is within the holder's policy's mutual-aid scope."""
    if scope is MutualAidScope.nation:
        return True
    if scope is MutualAidScope.province:
        return holder_region[:2] == member_region[:2]
    return holder_region == member_region


def via_quota(holder_region: str, member_region: str, policy: Policy) -> bool:
    """Whether a mutual-aid link between these regions works only through a 共济额度:
    beyond the holder's policy's scope, where that policy has started cross-region
    mutual aid (``cross_region = "quota"``, the 2026 national notice)."""
    return (
        not in_scope(holder_region, member_region, policy.mutual_aid_scope)
        and policy.cross_region is CrossRegion.quota
    )


def _plausible(holder: PartyFacts, member: PartyFacts | Typed, relation: str) -> bool:
    sex = RELATION_SEX.get(relation)
    if sex is not None and member.sex != sex:
        return False
    generation = RELATION_GENERATION.get(relation, 0)
    if generation > 0:
        return member.birth_date < holder.birth_date
    if generation < 0:
        return member.birth_date > holder.birth_date
    return True


@dataclass(frozen=True, slots=True)
class Typed:
    """What the holder typed about the member, before anyone is looked up: the ID
    number's birth date and sex, and whether it is the holder's own number."""

    birth_date: date
    sex: str
    is_holder: bool


def typed_from(member: PartyFacts, holder: PartyFacts) -> Typed:
    return Typed(member.birth_date, member.sex, member.id == holder.id)


def request_refusals(
    *,
    holder: PartyFacts,
    typed: Typed,
    request: BindRequest,
    policy: Policy,
    open_links: Iterable[OpenLink],
    today: date,
) -> list[Refusal]:
    """Every reason the request cannot be granted whoever the member is, in ``ORDER``.

    ``policy`` is the holder's region's policy; ``open_links`` the holder's open
    links (others are ignored), without the link being decided when re-checked.
    """
    as_holder = [link for link in open_links if link.holder_id == holder.id]
    out: list[Refusal] = []
    relation = request.relation
    if typed.is_holder:
        out.append(Refusal("SELF_LINK"))
    if not policy.admits(relation):
        out.append(Refusal("RELATION_NOT_ADMITTED", {"relation": relation}))
    elif request.mutual_aid and not policy.mutual_aid_admits(relation):
        out.append(Refusal("MUTUAL_AID_RELATION_NOT_ADMITTED", {"relation": relation}))
    limit = request.yearly_limit_fen
    cap = policy.mutual_aid_yearly_limit_max_fen
    if limit is not None:
        if not request.mutual_aid:
            out.append(_limit_invalid("without_mutual_aid", cap))
        elif limit < 1:
            out.append(_limit_invalid("not_positive", cap))
        elif cap > 0 and limit > cap:
            out.append(_limit_invalid("above_max", cap))
    if holder.status != "active":
        out.append(Refusal("HOLDER_NOT_ACTIVE", {"holder_status": holder.status}))
    if not typed.is_holder and not _plausible(holder, typed, relation):
        out.append(Refusal("RELATION_IMPLAUSIBLE", {"relation": relation}))
    if age_on(typed.birth_date, today) < policy.consent_age and relation not in MINOR_RELATIONS:
        out.append(Refusal("MINOR_NEEDS_PARENT", {"consent_age": policy.consent_age}))
    if relation in SINGLE_RELATIONS and any(link.relation == relation for link in as_holder):
        out.append(Refusal("RELATION_ALREADY_BOUND", {"relation": relation}))
    if len(as_holder) >= policy.max_members:
        out.append(Refusal("MEMBER_LIMIT_REACHED", {"max_members": policy.max_members}))
    if request.mutual_aid and holder.scheme != "employee":
        out.append(Refusal("MUTUAL_AID_NEEDS_EMPLOYEE_HOLDER"))
    return out


def member_refusals(
    *,
    holder: PartyFacts,
    member: PartyFacts,
    request: BindRequest,
    policy: Policy,
    open_links: Iterable[OpenLink],
    member_binds_this_month: int,
) -> list[Refusal]:
    """Every reason that depends on the member found in the registry, in ``ORDER``.

    ``open_links`` are the open links of either party; ``member_binds_this_month``
    the links to the member requested this calendar month (``None``-free count),
    not counting the link being decided when re-checked.
    """
    links = [
        link for link in open_links if {link.holder_id, link.member_id} & {holder.id, member.id}
    ]
    out: list[Refusal] = []
    if any({link.holder_id, link.member_id} == {holder.id, member.id} for link in links):
        out.append(Refusal("DUPLICATE_LINK"))
    if member_binds_this_month >= policy.member_binds_per_month:
        out.append(
            Refusal("MEMBER_BIND_LIMIT_REACHED", {"per_month": policy.member_binds_per_month})
        )
    # A person the registry reports deceased is bound by no one; a terminated one
    # may still be bound, but not for mutual aid.
    if member.status == "deceased" or (request.mutual_aid and member.status == "terminated"):
        out.append(Refusal("MEMBER_NOT_INSURED"))
    if request.mutual_aid:
        if not in_scope(
            holder.region_code, member.region_code, policy.mutual_aid_scope
        ) and not via_quota(holder.region_code, member.region_code, policy):
            out.append(Refusal("MUTUAL_AID_OUT_OF_SCOPE", {"scope": policy.mutual_aid_scope.value}))
        if policy.one_direction and _crosses_direction(holder.id, member.id, links):
            out.append(Refusal("ONE_DIRECTION"))
    return out


def refusals(
    *,
    holder: PartyFacts,
    member: PartyFacts,
    request: BindRequest,
    policy: Policy,
    open_links: Iterable[OpenLink],
    today: date,
    member_binds_this_month: int = 0,
) -> list[Refusal]:
    """Every reason the holder may not bind the member, in ``ORDER``; empty = allowed."""
    links = list(open_links)
    found = request_refusals(
        holder=holder,
        typed=typed_from(member, holder),
        request=request,
        policy=policy,
        open_links=links,
        today=today,
    ) + member_refusals(
        holder=holder,
        member=member,
        request=request,
        policy=policy,
        open_links=links,
        member_binds_this_month=member_binds_this_month,
    )
    found.sort(key=lambda r: list(ORDER).index(r.code))
    return found


def initial_status(
    member_birth_date: date,
    policy: Policy,
    today: date,
    *,
    holder_is_guardian: bool,
    consent_given: bool = False,
) -> str:
    """What a granted binding starts as (docs/guide.md §3.2).

    A member of ``consent_age`` or older consents with their own verification
    (``pending_consent``, or ``active`` when they consented in the same act, at
    the counter). A younger member is ``active`` at once only when the holder is
    among their registered guardians; anyone else must prove guardianship
    (``pending_proof``: a document at the counter, or an upload a reviewer
    approves).
    """
    if age_on(member_birth_date, today) >= policy.consent_age:
        return "active" if consent_given else "pending_consent"
    return "active" if holder_is_guardian else "pending_proof"


def _limit_invalid(reason: str, cap: int) -> Refusal:
    return Refusal("YEARLY_LIMIT_INVALID", {"reason": reason, "max_fen": cap})


def _crosses_direction(
    holder_id: uuid.UUID, member_id: uuid.UUID, links: Sequence[OpenLink]
) -> bool:
    """Whether the holder already receives mutual aid or the member already gives it."""
    return any(
        link.mutual_aid and (link.member_id == holder_id or link.holder_id == member_id)
        for link in links
    )


def as_error(found: Sequence[Refusal]) -> DomainError:
    """The first refusal as the error to raise; every code found rides along."""
    first = found[0]
    return DomainError(
        first.code, first.status, extra={"refusals": [r.code for r in found]}, **first.params
    )


def check(found: Sequence[Refusal]) -> None:
    """Raise the first refusal (``as_error``), if any."""
    if found:
        raise as_error(found)
