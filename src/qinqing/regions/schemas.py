"""Response models of the regions API (docs/guide.md §5)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from qinqing.regions.policy import Policy


class RegionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str = Field(description="GB/T 2260 administrative division code (统筹区)")
    name: str
    province_code: str = Field(description="The first two digits of the code")


class PolicyOut(BaseModel):
    region: RegionOut
    policy: Policy = Field(description="The effective policy after inheritance and overrides")
    sources: dict[str, str] = Field(
        description="For each dotted policy key, the file that set its effective value"
    )
