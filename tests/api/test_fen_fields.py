"""Every `*_fen` input is a strict, bounded integer: `true`, `"100"`, `100.0` and
`1e2` are refused with a 422 problem naming the field, and nothing changes."""

from __future__ import annotations

import json
import types
import typing
import uuid
from typing import Any, Union

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel, ValidationError, create_model
from pydantic.fields import FieldInfo
from sqlalchemy import func, select

from qinqing.contributions.models import Contribution
from qinqing.entrypoints.app import create_app
from qinqing.kit.fen import MAX_FEN
from qinqing.payments.models import Payment
from qinqing.runtime import Runtime
from support.accounts import add_client, id_number, person_with_account
from support.ledger import API, institution_headers, make_family

# JSON literals a careless client sends for 100 fen.
BAD_JSON = ["true", '"100"', "100.0", "1e2"]
# The same in Python, as the JSON decoder hands them to validation, and bounds.
BAD_BODY_VALUES: list[Any] = [True, False, "100", 100.0, 1e2, -1, MAX_FEN + 1, [100], {"v": 1}]
BAD_QUERY_VALUES = ["100.0", "1e2", "true", "+100", " 100", "1_000", "0x64", "-1", str(MAX_FEN + 1)]

# Every `*_fen` input of the API today; the walk below must find at least these.
KNOWN = {
    ("POST", "/api/v1/payments/authorize", "amount_fen"),
    ("POST", "/api/v1/payments/{payment_id}/settle", "amount_fen"),
    ("POST", "/api/v1/payments/batch", "operations[authorize].amount_fen"),
    ("POST", "/api/v1/payments/batch", "operations[settle].amount_fen"),
    ("POST", "/api/v1/contributions", "base_fen"),
    ("GET", "/api/v1/regions/{code}/contribution-quote", "base_fen"),
    ("POST", "/api/v1/me/family", "mutual_aid_yearly_limit_fen"),
    ("POST", "/api/v1/family/links/{link_id}/quota", "amount_fen"),
}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The request models inside an annotation (unions, lists, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType, list, tuple, set, frozenset):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def _fen_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, FieldInfo]]:
    out: list[tuple[str, FieldInfo]] = []
    for name, info in model.model_fields.items():
        if name.endswith("_fen"):
            out.append((prefix + name, info))
        for inner in _models_in(info.annotation):
            tag = getattr(inner.model_fields.get("op"), "annotation", None)
            kind = typing.get_args(tag)[0] if typing.get_origin(tag) is typing.Literal else ""
            out.extend(
                _fen_fields(inner, f"{prefix}{name}[{kind}]." if kind else f"{prefix}{name}.")
            )
    return out


def api_routes(routes: list[Any], prefix: str = "") -> list[tuple[str, APIRoute]]:
    """Every APIRoute with its full path, into included routers."""
    out: list[tuple[str, APIRoute]] = []
    for route in routes:
        if isinstance(route, APIRoute):
            out.append((prefix + route.path, route))
        elif hasattr(route, "original_router"):  # an include_router(...)
            inner = prefix + route.include_context.prefix
            out.extend(api_routes(route.original_router.routes, inner))
    return out


def fen_inputs(rt: Runtime) -> list[tuple[str, str, str, str, FieldInfo]]:
    """(method, path, field, "body"|"query", its FieldInfo) for every `*_fen` input."""
    found = []
    for path, route in api_routes(create_app(rt).routes):
        method = sorted(route.methods - {"HEAD"})[0]
        for param in route.dependant.query_params:
            if param.name.endswith("_fen"):
                found.append((method, path, param.name, "query", param.field_info))
        for body in route.dependant.body_params:
            for model in _models_in(body.field_info.annotation):
                for name, info in _fen_fields(model):
                    found.append((method, path, name, "body", info))
    return found


def _probe(info: FieldInfo) -> type[BaseModel]:
    return create_model("Probe", v=(info.annotation, info))


def test_every_fen_input_is_a_strict_bounded_integer(rt: Runtime) -> None:
    inputs = fen_inputs(rt)
    assert {(m, p, f) for m, p, f, _, _ in inputs} >= KNOWN
    for method, path, name, where, info in inputs:
        probe = _probe(info)
        good: Any = "100" if where == "query" else 100
        assert probe(v=good).v == 100, (method, path, name)  # type: ignore[attr-defined]
        for bad in BAD_QUERY_VALUES if where == "query" else BAD_BODY_VALUES:
            with pytest.raises(ValidationError):
                probe(v=bad)
                pytest.fail(f"{method} {path} {name} took {bad!r}")
        schema = probe.model_json_schema()["properties"]["v"]
        schema = next(s for s in schema.get("anyOf", [schema]) if s.get("type") == "integer")
        assert schema["minimum"] >= 0 and schema["maximum"] <= MAX_FEN, (path, name, schema)


# --- through the API -------------------------------------------------------------------


def _token(client: TestClient, cid: str, secret: str) -> dict[str, str]:
    r = client.post(
        f"{API}/auth/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
    )
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _cases(rt: Runtime, client: TestClient, case: str) -> tuple[str, dict[str, str], Any, str]:
    """(url, headers, body with the placeholder BAD, the field expected in the error)."""
    if case in ("authorize", "settle", "batch-authorize", "batch-settle"):
        fam = make_family(rt)
        headers = institution_headers(rt, client)
        auth = {
            "holder_id_number": fam.holder_number,
            "member_id_number": fam.member_number,
            "amount_fen": "BAD",
            "reference": "BILL-1",
        }
        pid = str(uuid.uuid4())
        return {
            "authorize": (f"{API}/payments/authorize", headers, auth, "body.amount_fen"),
            "settle": (
                f"{API}/payments/{pid}/settle",
                headers,
                {"amount_fen": "BAD"},
                "body.amount_fen",
            ),
            "batch-authorize": (
                f"{API}/payments/batch",
                headers,
                {"operations": [{"op": "authorize", **auth}]},
                "body.operations.0.authorize.amount_fen",
            ),
            "batch-settle": (
                f"{API}/payments/batch",
                headers,
                {"operations": [{"op": "settle", "payment_id": pid, "amount_fen": "BAD"}]},
                "body.operations.0.settle.amount_fen",
            ),
        }[case]
    if case == "contribution":
        headers = _token(client, *add_client(rt, "collector", "150600"))
        body = {"id_number": id_number(seq=5), "period": "2026-10", "base_fen": "BAD"}
        return f"{API}/contributions", headers, body, "body.base_fen"
    _, _, headers = person_with_account(rt, client)
    body = {
        "member_id_number": id_number(seq=9),
        "member_name": "李四",
        "relation": "spouse",
        "mutual_aid": True,
        "mutual_aid_yearly_limit_fen": "BAD",
    }
    return f"{API}/me/family", headers, body, "body.mutual_aid_yearly_limit_fen"


CASES = ["authorize", "settle", "batch-authorize", "batch-settle", "contribution", "bind"]


@pytest.mark.parametrize("case", CASES)
def test_non_integer_amounts_are_a_422_problem(rt: Runtime, client: TestClient, case: str) -> None:
    url, headers, body, field = _cases(rt, client, case)
    for literal in [*BAD_JSON, "-1", str(MAX_FEN + 1)]:
        raw = json.dumps(body).replace('"BAD"', literal)
        r = client.post(url, content=raw, headers={**headers, "Content-Type": "application/json"})
        assert r.status_code == 422, (case, literal, r.text)
        problem = r.json()
        assert r.headers["content-type"].startswith("application/problem+json")
        assert problem["code"] == "VALIDATION_ERROR"
        assert field in {e["field"] for e in problem["errors"]}, (literal, problem["errors"])
    with rt.db.unit_of_work() as s:
        assert s.execute(select(func.count()).select_from(Payment)).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(Contribution)).scalar_one() == 0


@pytest.mark.parametrize("value", BAD_QUERY_VALUES)
def test_the_quote_query_refuses_non_integer_bases(client: TestClient, value: str) -> None:
    r = client.get(f"{API}/regions/150600/contribution-quote", params={"base_fen": value})
    assert r.status_code == 422, (value, r.text)
    assert r.json()["code"] == "VALIDATION_ERROR"
    assert "query.base_fen" in {e["field"] for e in r.json()["errors"]}
    ok = client.get(f"{API}/regions/150600/contribution-quote", params={"base_fen": "500000"})
    assert ok.status_code == 200 and ok.json()["base_fen"] == 500000
