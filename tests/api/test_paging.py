"""Every paged list of the API refuses paging input it cannot honour with the usual
422 problem+json (VALIDATION_ERROR, the field named), never a 200 that quietly
answers another page: offset-paged lists (``page``, ``page_size``) check both
ranges; lists paged by a cursor (``limit``, ``before``) check ``limit`` and refuse
``page``, ``page_size`` and ``offset`` rather than ignore them."""

from __future__ import annotations

from fastapi.testclient import TestClient
from httpx import Response

from qinqing.runtime import Runtime
from support.accounts import STAFF_PASSWORD, add_staff, login
from support.family import API, new_person
from support.resident import collector_headers


def _paged_routes(client: TestClient) -> dict[str, set[str]]:
    """GET routes without path parameters that take `page` or `limit`, with their
    query parameters."""
    schema = client.app.openapi()  # type: ignore[attr-defined]
    found = {}
    for path, operations in schema["paths"].items():
        get = operations.get("get")
        if get is None or "{" in path:
            continue
        names = {p["name"] for p in get.get("parameters", []) if p["in"] == "query"}
        if names & {"page", "limit"}:
            found[path] = names
    return found


def _refused(r: Response, *fields: str) -> None:
    assert r.status_code == 422, (r.request.url, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "VALIDATION_ERROR"
    assert {e["field"] for e in body["errors"]} == {f"query.{f}" for f in fields}, body


def test_every_paged_list_refuses_paging_it_cannot_honour(rt: Runtime, client: TestClient) -> None:
    person = new_person(rt, client=client)
    add_staff(rt, "pager-reviewer", "reviewer")
    reviewer = login(client, "pager-reviewer", password=STAFF_PASSWORD)
    routes = _paged_routes(client)
    assert {f"{API}/me/notifications", f"{API}/me/account/entries"} <= set(routes)
    assert {f"{API}/review/unbind-requests", f"{API}/review/link-proofs"} <= set(routes)
    collector = collector_headers(rt, client)
    for path, params in routes.items():
        headers = reviewer if path.startswith(f"{API}/review/") else person.headers
        # The collector's list of resident contributions is for one cover year.
        fixed = "year=2027&" if path == f"{API}/resident-contributions" else ""
        if fixed:
            headers = collector
        get = lambda query, p=path, h=headers, f=fixed: client.get(  # noqa: E731
            f"{p}?{f}{query}", headers=h
        )
        if "page" in params:
            assert get("page=1&page_size=100").status_code == 200, path
            for query, field in (
                ("page=-1", "page"),
                ("page=0", "page"),
                ("page=x", "page"),
                ("page_size=0", "page_size"),
                ("page_size=100000", "page_size"),
            ):
                _refused(get(query), field)
            _refused(get("page=-1&page_size=100000"), "page", "page_size")
        else:
            assert get("limit=1").status_code == 200, path
            for query in ("limit=0", "limit=-1", "limit=100000"):
                _refused(get(query), "limit")
            _refused(get("page=-1"), "page")
            _refused(get("page=2"), "page")
            _refused(get("page_size=100000"), "page_size")
            _refused(get("page=-1&page_size=100000"), "page", "page_size")
            _refused(get("offset=20&limit=5"), "offset")
