"""``GET /regions`` and ``GET /regions/{code}/policy`` on a minimal app."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from qinqing.kit.errors import DomainError
from qinqing.regions.api import router
from qinqing.regions.loading import load_policies
from support.client import AppClient


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    app.state.policies = load_policies(None)

    @app.exception_handler(DomainError)
    async def _domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse(
            {"code": exc.code, "status": exc.status},
            status_code=exc.status,
            media_type="application/problem+json",
        )

    app.include_router(router, prefix="/api/v1")
    return AppClient(app)


def test_list_regions(client: TestClient) -> None:
    response = client.get("/api/v1/regions")
    assert response.status_code == 200
    assert response.json() == [
        {"code": "110000", "name": "北京市", "province_code": "11"},
        {"code": "150600", "name": "鄂尔多斯市", "province_code": "15"},
        {"code": "440100", "name": "广州市", "province_code": "44"},
        {"code": "500000", "name": "重庆市", "province_code": "50"},
    ]


def test_region_policy(client: TestClient) -> None:
    response = client.get("/api/v1/regions/150600/policy")
    assert response.status_code == 200
    body = response.json()
    assert body["region"] == {"code": "150600", "name": "鄂尔多斯市", "province_code": "15"}
    policy = body["policy"]
    assert policy["contribution"]["base_floor"] == 338500
    assert policy["contribution"]["base_ceiling"] == 1692300
    assert policy["contribution"]["personal"]["medical"] == 20
    assert policy["relations"] == [
        "spouse",
        "father",
        "mother",
        "child",
        "sibling",
        "grandparent",
        "grandchild",
    ]
    assert policy["unbind_review"] == "none"
    assert body["sources"]["contribution.base_floor"] == "qinqing/regions/policies/150600.toml"
    assert body["sources"]["max_members"] == "qinqing/regions/policies/national.toml"


def test_guangzhou_policy(client: TestClient) -> None:
    policy = client.get("/api/v1/regions/440100/policy").json()["policy"]
    assert policy["unbind_review"] == "manual"
    assert policy["mutual_aid_scope"] == "province"
    assert "sibling" in policy["relations"]


@pytest.mark.parametrize("code", ["999999", "12345", "abcdef", "1506001", "national"])
def test_unknown_or_malformed_code_is_404(client: TestClient, code: str) -> None:
    response = client.get(f"/api/v1/regions/{code}/policy")
    assert response.status_code == 404
    assert response.json()["code"] == "REGION_NOT_FOUND"


def test_openapi_describes_the_policy(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/api/v1/regions/{code}/policy"]["get"]
    assert "404" in operation["responses"]
    schemas = spec["components"]["schemas"]
    assert {"PolicyOut", "Policy", "ContributionPolicy", "RegionOut"} <= set(schemas)
    assert schemas["Policy"]["additionalProperties"] is False
