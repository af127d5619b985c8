"""Region policies: TOML files, layered and explained (docs/guide.md §4).

Where a value comes from, lowest layer first:

1. the shipped ``policies/national.toml`` (every key, the national default);
2. the operator's ``national.toml`` in ``QINQING_POLICY_DIR``, key by key;
3. the region's parent (``inherits``: ``"national"``, the default, or another
   region code), itself resolved the same way;
4. the shipped ``policies/<code>.toml``, then the operator's ``<code>.toml``.

Each layer overrides the layers below it key by key; tables (also inline
tables such as ``contribution.personal``) are merged key by key, lists and
scalars are replaced whole. The result is validated after every layer, so an
error names the file that introduced it. Every value remembers the file that
set it, which is what ``explain`` shows.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    Strict,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy.orm import Session
from stdnum import numdb

from qinqing.kit.errors import DomainError
from qinqing.regions.models import Region

NATIONAL = "national"
SHIPPED_PACKAGE = "qinqing.regions"
SHIPPED_FOLDER = "policies"
_CODE = re.compile(r"\d{6}")


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


class Policy(BaseModel):
    """One region's effective policy. Every key is set by a file, none by code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    relations: tuple[Relation, ...] = Field(min_length=1)
    max_members: Count
    mutual_aid_relations: tuple[Relation, ...]
    mutual_aid_scope: MutualAidScope
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
    if not _CODE.fullmatch(code):
        return False
    return any("county" in props for _part, props in numdb.get("cn/loc").info(code))


# --- reading and merging --------------------------------------------------------------


@dataclass
class _Layer:
    """One file's content, split into its policy keys and its metadata."""

    source: str
    stem: str
    inherits: str | None
    region: dict[str, str]
    data: dict[str, Any]


@dataclass
class _Resolved:
    info: RegionInfo | None
    data: dict[str, Any]
    sources: dict[str, str]
    policy: Policy
    explained: list[ExplainedValue] = field(default_factory=list)


def _parse(source: str, stem: str, raw: bytes) -> _Layer:
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PolicyError(source, None, f"not UTF-8 text ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(source, None, f"not valid TOML: {exc}") from None

    inherits = doc.pop("inherits", None)
    region = doc.pop("region", None)
    if stem == NATIONAL:
        if inherits is not None:
            raise PolicyError(source, "inherits", "the national default inherits from nothing")
        if region is not None:
            raise PolicyError(source, "region", "the national default has no region table")
        return _Layer(source, stem, None, {}, doc)

    if inherits is not None and not isinstance(inherits, str):
        raise PolicyError(source, "inherits", "must be a string: 'national' or a region code")
    if inherits is not None and inherits != NATIONAL and not _CODE.fullmatch(inherits):
        raise PolicyError(
            source, "inherits", f"must be 'national' or a region code, not {inherits!r}"
        )
    if region is None:
        region = {}
    if not isinstance(region, dict):
        raise PolicyError(source, "region", "must be a table with code and name")
    for key, value in region.items():
        if key not in ("code", "name"):
            raise PolicyError(source, f"region.{key}", "unknown key")
        if not isinstance(value, str) or not value.strip():
            raise PolicyError(source, f"region.{key}", "must be a non-empty string")
    code = region.get("code")
    if code is not None:
        if code != stem:
            raise PolicyError(
                source, "region.code", f"{code!r} does not match the file name ({stem}.toml)"
            )
        if not is_known_region_code(code):
            raise PolicyError(
                source, "region.code", f"{code!r} is not a known GB/T 2260 region code"
            )
    return _Layer(source, stem, inherits, dict(region), doc)


def _check_stem(source: str, stem: str) -> None:
    if stem != NATIONAL and not _CODE.fullmatch(stem):
        raise PolicyError(
            source, None, "file name must be national.toml or a 6-digit region code + .toml"
        )


def _shipped_layers() -> Iterator[_Layer]:
    folder = resources.files(SHIPPED_PACKAGE).joinpath(SHIPPED_FOLDER)
    entries = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".toml")),
        key=lambda entry: entry.name,
    )
    for entry in entries:
        stem = entry.name.removesuffix(".toml")
        source = f"{SHIPPED_PACKAGE.replace('.', '/')}/{SHIPPED_FOLDER}/{entry.name}"
        _check_stem(source, stem)
        yield _parse(source, stem, entry.read_bytes())


def _operator_layers(directory: Path) -> Iterator[_Layer]:
    if not directory.is_dir():
        raise PolicyError(str(directory.absolute()), None, "policy directory does not exist")
    for path in sorted(directory.glob("*.toml")):
        source = str(path.absolute())
        _check_stem(source, path.stem)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise PolicyError(source, None, f"cannot be read ({exc.strerror})") from None
        yield _parse(source, path.stem, raw)


def _overlay(
    data: dict[str, Any], sources: dict[str, str], layer: dict[str, Any], source: str, prefix: str
) -> None:
    """Merge ``layer`` into ``data`` in place, key by key, noting each leaf's source."""
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        current = data.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            _overlay(current, sources, value, source, f"{dotted}.")
            continue
        for stale in [k for k in sources if k.startswith(f"{dotted}.")]:
            del sources[stale]
        if isinstance(value, dict):
            data[key] = {}
            sources.pop(dotted, None)
            _overlay(data[key], sources, value, source, f"{dotted}.")
        else:
            data[key] = value
            sources[dotted] = source


def _copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def _reason(error: Mapping[str, Any]) -> tuple[str, str | None]:
    """A policy key and a plain reason for one pydantic error."""
    loc: list[str] = []
    item: int | None = None
    dict_key = False
    for part in error["loc"]:
        if isinstance(part, int):
            item = part
        elif part == "[key]":
            dict_key = True
        else:
            loc.append(str(part))
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        reason = "unknown key"
    elif kind == "missing":
        reason = "missing key"
    elif dict_key:
        names = ", ".join(i.value for i in Insurance)
        reason = f"unknown insurance (expected one of: {names})"
    elif kind == "enum":
        reason = f"must be one of {error['ctx']['expected']}, not {value!r}"
    elif kind == "policy":
        reason = str(error["msg"])
    elif kind in ("dict_type", "model_type", "model_attributes_type"):
        reason = f"must be a table, not {type(value).__name__} {value!r}"
    elif kind in ("tuple_type", "list_type"):
        reason = f"must be a list, not {type(value).__name__} {value!r}"
    elif kind == "too_short":
        reason = f"must list at least {error['ctx']['min_length']} item(s)"
    else:
        message = str(error["msg"])
        reason = message.replace("Input should be", "must be", 1)
        if kind.endswith("_type") or kind.endswith("_parsing"):
            reason += f", not {type(value).__name__} {value!r}"
    if item is not None:
        reason = f"item {item}: {reason}"
    return reason, ".".join(loc) or None


def _validate(data: dict[str, Any], source: str) -> Policy:
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        reason, key = _reason(exc.errors()[0])
        raise PolicyError(source, key, reason) from None


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _flatten(inner, f"{prefix}{key}.")
        return
    yield prefix.removesuffix("."), value


class PolicyRegistry:
    """Every region's effective policy, resolved and validated once at load."""

    def __init__(self, national: _Resolved, regions: Mapping[str, _Resolved]) -> None:
        self._national = national
        self._regions = dict(sorted(regions.items()))

    def __contains__(self, code: object) -> bool:
        return code in self._regions

    def _get(self, code: str) -> _Resolved:
        resolved = self._regions.get(code)
        if resolved is None:
            raise DomainError("REGION_NOT_FOUND", 404)
        return resolved

    def codes(self) -> list[str]:
        """Every region code this registry has a policy for."""
        return list(self._regions)

    def regions(self) -> list[RegionInfo]:
        return [r.info for r in self._regions.values() if r.info is not None]

    def region(self, code: str) -> RegionInfo:
        info = self._get(code).info
        assert info is not None
        return info

    def policy(self, code: str) -> Policy:
        return self._get(code).policy

    def national(self) -> Policy:
        return self._national.policy

    def explain(self, code: str) -> list[ExplainedValue]:
        return list(self._get(code).explained)


def _explained(policy: Policy, sources: Mapping[str, str]) -> list[ExplainedValue]:
    return [
        ExplainedValue(key=key, value=value, source=sources.get(key, "(unknown)"))
        for key, value in _flatten(policy.model_dump(mode="json"))
    ]


class _Resolver:
    def __init__(self, national: _Resolved, layers: Mapping[str, list[_Layer]]) -> None:
        self.national = national
        self.layers = layers
        self.done: dict[str, _Resolved] = {}

    def parent_of(self, code: str) -> tuple[str, _Layer | None]:
        """The parent code and the layer that named it (the topmost that did)."""
        for layer in reversed(self.layers[code]):
            if layer.inherits is not None:
                return layer.inherits, layer
        return NATIONAL, None

    def resolve(self, code: str, chain: tuple[str, ...] = ()) -> _Resolved:
        if code in self.done:
            return self.done[code]
        parent_code, named_by = self.parent_of(code)
        if parent_code == NATIONAL:
            parent = self.national
        else:
            source = named_by.source if named_by else self.layers[code][-1].source
            if parent_code == code or parent_code in chain:
                cycle = " -> ".join((*chain, code, parent_code))
                raise PolicyError(source, "inherits", f"inheritance cycle: {cycle}")
            if parent_code not in self.layers:
                raise PolicyError(source, "inherits", f"unknown parent region {parent_code!r}")
            parent = self.resolve(parent_code, (*chain, code))

        data = _copy(parent.data)
        sources = dict(parent.sources)
        name: str | None = None
        policy = parent.policy
        for layer in self.layers[code]:
            if name is None and "name" not in layer.region:
                raise PolicyError(layer.source, "region.name", "missing key")
            if name is None and "code" not in layer.region:
                raise PolicyError(layer.source, "region.code", "missing key")
            name = layer.region.get("name", name)
            _overlay(data, sources, layer.data, layer.source, "")
            policy = _validate(data, layer.source)
        assert name is not None
        info = RegionInfo(code=code, name=name, province_code=code[:2])
        resolved = _Resolved(info, data, sources, policy, _explained(policy, sources))
        self.done[code] = resolved
        return resolved


def load_policies(operator_dir: Path | None) -> PolicyRegistry:
    """Read the shipped policies, layer the operator's directory over them, resolve all.

    Raises :class:`PolicyError` for the first file that cannot be used.
    """
    layers: dict[str, list[_Layer]] = {}
    for layer in _shipped_layers():
        layers.setdefault(layer.stem, []).append(layer)
    if operator_dir is not None:
        for layer in _operator_layers(operator_dir):
            layers.setdefault(layer.stem, []).append(layer)

    national_layers = layers.pop(NATIONAL, [])
    if not national_layers:
        source = f"{SHIPPED_PACKAGE.replace('.', '/')}/{SHIPPED_FOLDER}/national.toml"
        raise PolicyError(source, None, "the national default is missing")
    data: dict[str, Any] = {}
    sources: dict[str, str] = {}
    policy: Policy | None = None
    for layer in national_layers:
        _overlay(data, sources, layer.data, layer.source, "")
        policy = _validate(data, layer.source)
    assert policy is not None
    national = _Resolved(None, data, sources, policy, _explained(policy, sources))

    resolver = _Resolver(national, layers)
    regions = {code: resolver.resolve(code) for code in sorted(layers)}
    return PolicyRegistry(national, regions)


def sync_regions(session: Session, registry: PolicyRegistry) -> None:
    """Mirror the registry's regions into the ``regions`` reference table (upsert)."""
    for info in registry.regions():
        row = session.get(Region, info.code)
        if row is None:
            session.add(Region(code=info.code, name=info.name, province_code=info.province_code))
        else:
            row.name = info.name
            row.province_code = info.province_code
    session.flush()


__all__ = [
    "BlockingStatus",
    "ContributionPolicy",
    "ExplainedValue",
    "Insurance",
    "MutualAidScope",
    "Policy",
    "PolicyError",
    "PolicyRegistry",
    "RegionInfo",
    "Relation",
    "Rounding",
    "UnbindReview",
    "is_known_region_code",
    "load_policies",
    "sync_regions",
]
