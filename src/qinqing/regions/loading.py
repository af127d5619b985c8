"""Loading the region policies: TOML files, layered and explained (docs/guide.md §4).

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

import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import (
    ValidationError,
)

from qinqing.regions.policy import (
    NATIONAL,
    REGION_CODE,
    ExplainedValue,
    Insurance,
    Policy,
    PolicyError,
    RegionInfo,
    is_known_region_code,
)
from qinqing.regions.registry import PolicyRegistry, Resolved

SHIPPED_PACKAGE = "qinqing.regions"
SHIPPED_FOLDER = "policies"


@dataclass
class _Layer:
    """One file's content, split into its policy keys and its metadata."""

    source: str
    stem: str
    inherits: str | None
    region: dict[str, str]
    data: dict[str, Any]


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
    if inherits is not None and inherits != NATIONAL and not REGION_CODE.fullmatch(inherits):
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
    if stem != NATIONAL and not REGION_CODE.fullmatch(stem):
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


def _explained(policy: Policy, sources: Mapping[str, str]) -> list[ExplainedValue]:
    return [
        ExplainedValue(key=key, value=value, source=sources.get(key, "(unknown)"))
        for key, value in _flatten(policy.model_dump(mode="json"))
    ]


class _Resolver:
    def __init__(self, national: Resolved, layers: Mapping[str, list[_Layer]]) -> None:
        self.national = national
        self.layers = layers
        self.done: dict[str, Resolved] = {}

    def parent_of(self, code: str) -> tuple[str, _Layer | None]:
        """The parent code and the layer that named it (the topmost that did)."""
        for layer in reversed(self.layers[code]):
            if layer.inherits is not None:
                return layer.inherits, layer
        return NATIONAL, None

    def resolve(self, code: str, chain: tuple[str, ...] = ()) -> Resolved:
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
        resolved = Resolved(info, data, sources, policy, _explained(policy, sources))
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
    national = Resolved(None, data, sources, policy, _explained(policy, sources))

    resolver = _Resolver(national, layers)
    regions = {code: resolver.resolve(code) for code in sorted(layers)}
    return PolicyRegistry(national, regions)
