"""Regions and their effective policies, open to anyone (docs/guide.md §5)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request

from qinqing.kit.errors import DomainError
from qinqing.regions.registry import PolicyRegistry
from qinqing.regions.schemas import PolicyOut, RegionOut

router = APIRouter(tags=["regions"])

_CODE = re.compile(r"\d{6}")
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {
        "description": "Unknown region (code REGION_NOT_FOUND)",
        "content": {
            "application/problem+json": {
                "schema": {
                    "type": "object",
                    "properties": {"code": {"type": "string"}, "status": {"type": "integer"}},
                    "required": ["code"],
                }
            }
        },
    }
}


def get_policies(request: Request) -> PolicyRegistry:
    """The registry the app loaded at start-up (``app.state.policies``)."""
    registry: PolicyRegistry = request.app.state.policies
    return registry


@router.get("/regions", response_model=list[RegionOut], summary="List regions (统筹区)")
def list_regions(request: Request) -> list[RegionOut]:
    return [RegionOut.model_validate(info) for info in get_policies(request).regions()]


@router.get(
    "/regions/{code}/policy",
    response_model=PolicyOut,
    summary="The effective policy of a region and where each value came from",
    responses=_NOT_FOUND,
)
def region_policy(code: str, request: Request) -> PolicyOut:
    registry = get_policies(request)
    if not _CODE.fullmatch(code) or code not in registry:
        raise DomainError("REGION_NOT_FOUND", 404)
    return PolicyOut(
        region=RegionOut.model_validate(registry.region(code)),
        policy=registry.policy(code),
        sources={item.key: item.source for item in registry.explain(code)},
    )
