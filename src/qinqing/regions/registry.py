"""Every region's effective policy, resolved and validated once at load
(``regions.loading``), with the file each value came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qinqing.kit.errors import DomainError
from qinqing.regions.policy import ExplainedValue, Policy, RegionInfo


@dataclass
class Resolved:
    info: RegionInfo | None
    data: dict[str, Any]
    sources: dict[str, str]
    policy: Policy
    explained: list[ExplainedValue] = field(default_factory=list)


class PolicyRegistry:
    """Every region's effective policy, resolved and validated once at load."""

    def __init__(self, national: Resolved, regions: Mapping[str, Resolved]) -> None:
        self._national = national
        self._regions = dict(sorted(regions.items()))

    def __contains__(self, code: object) -> bool:
        return code in self._regions

    def _get(self, code: str) -> Resolved:
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
