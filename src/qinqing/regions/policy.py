"""Region policies (docs/guide.md §4): the keys, their types and checks (data, not
code). Loading the TOML layers is ``regions.loading``; the resolved set
``regions.registry``."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    Strict,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError
from stdnum import numdb

NATIONAL = "national"
REGION_CODE = re.compile(r"\d{6}")


class Relation(StrEnum):
    spouse = "spouse"
    father = "father"
    mother = "mother"
    child = "child"
    # 近亲属, where the region admits them.
    sibling = "sibling"
    grandparent = "grandparent"
    grandchild = "grandchild"


class MutualAidScope(StrEnum):
    region = "region"  # same 统筹区
    province = "province"
    nation = "nation"


class UnbindReview(StrEnum):
    none = "none"
    manual = "manual"


class BlockingStatus(StrEnum):
    """Insurance statuses (persons ``PersonStatus``) that may block an unbind."""

    arrears = "arrears"
    suspended = "suspended"
    terminated = "terminated"


class Insurance(StrEnum):
    pension = "pension"  # 养老
    medical = "medical"  # 医疗
    unemployment = "unemployment"  # 失业
    injury = "injury"  # 工伤
    maternity = "maternity"  # 生育


class Rounding(StrEnum):
    fen_half_up = "fen_half_up"
    fen_down = "fen_down"
    fen_half_even = "fen_half_even"


Count = Annotated[int, Strict(), Field(ge=0)]
Fen = Annotated[int, Strict(), Field(ge=0)]
PerMille = Annotated[int, Strict(), Field(ge=0, le=1000)]


def _custom(message: str, **ctx: Any) -> PydanticCustomError:
    return PydanticCustomError("policy", message, ctx)


def _insurance(name: str) -> str:
    if name not in Insurance.__members__:
        raise _custom("unknown insurance")
    return name


# Keys are plain strings for the callers (``rates["medical"]``), checked against Insurance.
InsuranceName = Annotated[
    str,
    AfterValidator(_insurance),
    WithJsonSchema({"type": "string", "enum": [i.value for i in Insurance]}),
]
Rates = dict[InsuranceName, PerMille]


_T = TypeVar("_T")


def _no_duplicates(values: tuple[_T, ...]) -> tuple[_T, ...]:
    seen: set[_T] = set()
    for value in values:
        if value in seen:
            raise _custom("'{value}' is listed twice", value=str(value))
        seen.add(value)
    return values


class ContributionPolicy(BaseModel):
    """Contribution base and rates. Rates are per-mille of the base, amounts fen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_floor: Fen
    # 0 = no upper clamp.
    base_ceiling: Fen
    personal: Rates
    employer: Rates
    # Per-mille of each personal amount credited to the personal account.
    personal_account_share: Rates
    rounding: Rounding

    @field_validator("base_ceiling")
    @classmethod
    def _ceiling_above_floor(cls, value: int, info: ValidationInfo) -> int:
        floor = info.data.get("base_floor")
        if value != 0 and floor is not None and value < floor:
            raise _custom("must be 0 or at least base_floor ({floor})", floor=floor)
        return value

    @field_validator("personal_account_share")
    @classmethod
    def _share_of_personal(cls, value: Rates, info: ValidationInfo) -> Rates:
        personal = info.data.get("personal")
        if personal is not None:
            for insurance in value:
                if insurance not in personal:
                    raise _custom(
                        "{insurance} has no personal rate to take a share of",
                        insurance=str(insurance),
                    )
        return value

    def clamp(self, base_fen: int) -> int:
        """The base clamped to the floor and (unless 0) the ceiling."""
        base = max(base_fen, self.base_floor)
        if self.base_ceiling:
            base = min(base, self.base_ceiling)
        return base

    def per_mille_of(self, amount_fen: int, per_mille: int) -> int:
        """``amount_fen × per_mille / 1000``, rounded to whole fen by ``rounding``."""
        if amount_fen < 0 or per_mille < 0:
            raise ValueError("amount and rate must not be negative")
        whole, rest = divmod(amount_fen * per_mille, 1000)
        if self.rounding is Rounding.fen_down:
            return whole
        if self.rounding is Rounding.fen_half_up:
            return whole + (1 if rest * 2 >= 1000 else 0)
        if rest * 2 > 1000 or (rest * 2 == 1000 and whole % 2 == 1):
            return whole + 1
        return whole


class CrossRegion(StrEnum):
    none = "none"  # mutual aid only within the scope
    quota = "quota"  # beyond it through a 共济额度 (the 2026 national notice)


class LatePayment(StrEnum):
    refused = "refused"
    waiting_period = "waiting_period"


_WINDOW = re.compile(r"(\d\d)-(\d\d)/(\d\d)-(\d\d)")


class ResidentPolicy(BaseModel):
    """城乡居民基本医疗保险: the yearly individual contribution and its enrollment window
    (集中参保期), for cover from 1 January of the year after the window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    annual_contribution_fen: Annotated[int, Strict(), Field(ge=1)]
    # "MM-DD/MM-DD" within one calendar year, e.g. "09-01/12-31".
    enrollment_window: str
    late_payment: LatePayment
    waiting_period_days: Annotated[int, Strict(), Field(ge=0, le=366)]

    @field_validator("enrollment_window")
    @classmethod
    def _window(cls, value: str) -> str:
        m = _WINDOW.fullmatch(value)
        if m is None:
            raise _custom("must be MM-DD/MM-DD, e.g. 09-01/12-31")
        start, end = (int(m[1]), int(m[2])), (int(m[3]), int(m[4]))
        for month, day in (start, end):
            if not 1 <= month <= 12 or not 1 <= day <= _DAYS_IN_MONTH[month - 1]:
                raise _custom("{value} is not a date of the year", value=value)
        if end < start:
            raise _custom("the window must end after it starts, within one year")
        return value

    def window(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """((month, day), (month, day)): the window's first and last days."""
        m = _WINDOW.fullmatch(self.enrollment_window)
        assert m is not None
        return (int(m[1]), int(m[2])), (int(m[3]), int(m[4]))


# Days in each month, a leap year's February (a window may end on 02-29).
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class Policy(BaseModel):
    """One region's effective policy. Every key is set by a file, none by code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    relations: tuple[Relation, ...] = Field(min_length=1)
    max_members: Count
    # New holders one member may get per calendar month; failed member look-ups per
    # holder per day (docs/family.md).
    member_binds_per_month: Annotated[int, Strict(), Field(ge=1)]
    bind_lookups_per_day: Annotated[int, Strict(), Field(ge=1)]
    mutual_aid_relations: tuple[Relation, ...]
    mutual_aid_scope: MutualAidScope
    # Beyond the scope: no mutual aid, or through a 共济额度 (a locked quota).
    cross_region: CrossRegion
    one_direction: Annotated[bool, Strict()]
    consent_age: Annotated[int, Strict(), Field(ge=0, le=18)]
    unbind_review: UnbindReview
    unbind_blocking_statuses: tuple[BlockingStatus, ...]
    unbind_cooling_off_days: Count
    hold_expiry_hours: Annotated[int, Strict(), Field(ge=1)]
    # 0 = a holder may set any yearly limit (or none).
    mutual_aid_yearly_limit_max_fen: Fen
    # How long a 医保电子凭证 token is valid after it is shown.
    voucher_ttl_seconds: Annotated[int, Strict(), Field(ge=10, le=3600)]
    contribution: ContributionPolicy
    resident: ResidentPolicy

    @field_validator("relations", "unbind_blocking_statuses")
    @classmethod
    def _unique(cls, value: tuple[StrEnum, ...]) -> tuple[StrEnum, ...]:
        return _no_duplicates(value)

    @field_validator("mutual_aid_relations")
    @classmethod
    def _mutual_aid_subset(
        cls, value: tuple[Relation, ...], info: ValidationInfo
    ) -> tuple[Relation, ...]:
        _no_duplicates(value)
        relations = info.data.get("relations")
        if relations is not None:
            for relation in value:
                if relation not in relations:
                    raise _custom(
                        "{relation} is not one of this region's relations",
                        relation=str(relation),
                    )
        return value

    def admits(self, relation: str) -> bool:
        return relation in self.relations

    def mutual_aid_admits(self, relation: str) -> bool:
        return relation in self.mutual_aid_relations


class RegionInfo(BaseModel):
    """A region (统筹区) as the files describe it."""

    model_config = ConfigDict(frozen=True)

    code: str
    name: str
    province_code: str


class ExplainedValue(BaseModel):
    """One effective value and the file that set it."""

    model_config = ConfigDict(frozen=True)

    key: str
    value: JsonValue
    source: str


class PolicyError(Exception):
    """A policy file that cannot be used: which file, which key, why."""

    def __init__(self, file: str, key: str | None, reason: str) -> None:
        self.file = file
        self.key = key
        self.reason = reason
        where = f"policy file {file}"
        if key is not None:
            where += f": key {key!r}"
        super().__init__(f"{where}: {reason}")


def is_known_region_code(code: str) -> bool:
    """A 6-digit GB/T 2260 code that python-stdnum's table knows (of any era)."""
    if not REGION_CODE.fullmatch(code):
        return False
    return any("county" in props for _part, props in numdb.get("cn/loc").info(code))
