"""/metrics (docs/operations.md "Metrics"): hidden from everyone but the scraper, what a
real API flow counts, no personal data in any label, and the shipped dashboard and
alert rules use only metrics that a real scrape has."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from qinqing.entrypoints.app import create_app
from qinqing.entrypoints.worker import JOBS, Worker
from qinqing.kit.clock import FrozenClock
from qinqing.persons.service import id_number_of
from qinqing.runtime import Runtime
from support.accounts import STAFF_PASSWORD, add_client, add_person, add_staff, login, sms_lines
from support.banks import add_bank, card_number, link_customer, receiver
from support.client import AppClient
from support.family import new_person
from support.unbind import party, pin_verification

API = "/api/v1"
DOCS = Path(__file__).resolve().parents[2] / "docs"
TOKEN = "scrape-me-0123456789abcdef"
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _runtime(rt: Runtime, **settings: object) -> Runtime:
    return dataclasses.replace(rt, settings=rt.settings.model_copy(update=settings))


@pytest.fixture
def scraped(rt: Runtime) -> Iterator[TestClient]:
    """The app with a metrics token and one scraper network configured."""
    app = create_app(_runtime(rt, metrics_token=TOKEN, metrics_scrapers="203.0.113.0/24"))
    with AppClient(app, raise_server_exceptions=False) as c:
        yield c


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(client: TestClient) -> str:
    r = client.get("/metrics", headers=SCRAPE)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


# --- who may scrape ---------------------------------------------------------------------


def test_metrics_answer_the_token_or_a_scraper_address_and_404_to_anyone_else(
    rt: Runtime, scraped: TestClient
) -> None:
    rid = {"X-Request-Id": "probe-1"}
    absent = scraped.get("/metricz", headers=rid)
    assert absent.status_code == 404
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        r = scraped.get("/metrics", headers={**headers, **rid})
        assert r.status_code == 404, headers
        assert r.headers["content-type"] == absent.headers["content-type"]
        # The very page of a path that does not exist (which names the path it was).
        assert r.text == absent.text.replace("metricz", "metrics")
        assert "qinqing_" not in r.text
    assert "qinqing_http_requests_total" in scrape(scraped)

    app = scraped.app
    with AppClient(app, client=("203.0.113.7", 40000)) as inside:
        assert inside.get("/metrics").status_code == 200
    # Loopback is not trusted by itself; nor is a neighbour of the network.
    for host in ("127.0.0.1", "203.0.114.7"):
        with AppClient(app, client=(host, 40000)) as outside:
            assert outside.get("/metrics").status_code == 404, host


def test_without_a_token_configured_an_empty_bearer_is_no_key(rt: Runtime) -> None:
    with AppClient(create_app(rt), raise_server_exceptions=False) as c:
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer None"}):
            assert c.get("/metrics", headers=headers).status_code == 404


def test_metrics_are_not_in_the_openapi_schema(scraped: TestClient) -> None:
    assert "/metrics" not in scraped.get("/openapi.json").json()["paths"]


# --- a whole flow -----------------------------------------------------------------------


def test_a_whole_api_flow_is_counted_and_no_personal_data_reaches_the_scrape(
    rt: Runtime, scraped: TestClient, clock: FrozenClock
) -> None:
    """Register, bind, consent, pay (authorize, settle, void, a refusal), unbind under
    review and its decision, a bank link with its webhook delivered, a worker pass:
    each is counted under its route template and outcome; then the scrape is grepped
    for every ID number, phone, name, account number and id the flow used."""
    client = scraped
    clock.set(datetime.now(UTC).replace(microsecond=0))  # webhook signatures: real time
    before = samples(scrape(client))

    # Registration by SMS code.
    # The login phone is the registry phone the code proved (PHONE_NOT_VERIFIED else).
    reg_name, reg_phone, app_phone = "赵敏", "13687654321", "13687654321"
    _, reg_number = add_person(rt, name=reg_name, phone=reg_phone, seq=31)
    r = client.post(
        f"{API}/auth/register/sms-code", json={"id_number": reg_number, "name": reg_name}
    )
    assert r.status_code == 202, r.text
    code = sms_lines(rt)[-1]["code"]
    r = client.post(
        f"{API}/auth/register",
        json={
            "id_number": reg_number,
            "name": reg_name,
            "phone": app_phone,
            "password": "Passw0rd-Long",
            "sms_code": code,
        },
    )
    assert r.status_code == 201, r.text

    # A binding, refused once then made and consented to.
    gz = "440100"
    holder, h = party(rt, client, name="王建国", phone="13800138001", seq=32, region=gz)
    member, m = party(rt, client, name="李秀英", phone="13800138002", seq=33, region=gz)
    numbers = [id_number_of(rt.vault, p) for p in (holder, member)]
    bind = {"member_id_number": numbers[1], "relation": "spouse", "mutual_aid": True}
    r = client.post(f"{API}/me/family", headers=h, json={**bind, "member_name": "别人"})
    assert r.status_code == 422 and r.json()["code"] == "MEMBER_NOT_FOUND"
    r = client.post(f"{API}/me/family", headers=h, json={**bind, "member_name": "李秀英"})
    assert r.status_code == 201, r.text
    link_id = r.json()["id"]
    r = client.post(
        f"{API}/family/links/{link_id}/consent",
        headers=m,
        json={"verification": pin_verification()},
    )
    assert r.status_code == 200, r.text

    # Payments: funds, then authorize, settle, authorize, void, and a refusal.
    collector = _token(client, *add_client(rt, "collector", gz))
    r = client.post(
        f"{API}/contributions",
        headers=collector,
        json={"id_number": numbers[0], "period": "2026-10", "base_fen": 800_000},
    )
    assert r.status_code == 201, r.text
    institution = _token(client, *add_client(rt, "institution", gz))
    pay = {"holder_id_number": numbers[0], "member_id_number": numbers[1], "amount_fen": 1_000}
    first = client.post(
        f"{API}/payments/authorize", headers=institution, json={**pay, "reference": "m-1"}
    )
    assert first.status_code == 201, first.text
    payment_id = first.json()["payment_id"]
    r = client.post(
        f"{API}/payments/{payment_id}/settle", headers=institution, json={"amount_fen": 800}
    )
    assert r.status_code == 200, r.text
    second = client.post(
        f"{API}/payments/authorize", headers=institution, json={**pay, "reference": "m-2"}
    )
    assert second.status_code == 201, second.text
    r = client.post(f"{API}/payments/{second.json()['payment_id']}/void", headers=institution)
    assert r.status_code == 200, r.text
    refused = client.post(
        f"{API}/payments/authorize",
        headers=institution,
        json={**pay, "amount_fen": 10**9, "reference": "m-3"},
    )
    assert refused.status_code in (402, 409, 422), refused.text
    refusal_code = refused.json()["code"]

    # An unbind that waits for review (Guangzhou), and its approval.
    add_staff(rt, "gz-reviewer-m", "reviewer", gz)
    reviewer = login(client, "gz-reviewer-m", STAFF_PASSWORD)
    r = client.post(
        f"{API}/family/links/{link_id}/unbind",
        headers=m,
        json={"verification": pin_verification(), "reason": "分开生活"},
    )
    assert r.status_code == 200, r.text
    request_id = r.json()["request"]["id"]
    r = client.post(
        f"{API}/review/unbind-requests/{request_id}/decision",
        headers=reviewer,
        json={"decision": "approve", "comment": "ok"},
    )
    assert r.status_code == 200, r.text

    # A bank links its customer's account; the worker delivers the webhook.
    with receiver() as rec:
        bank, _ = add_bank(rt, client, "BANKM", webhook_url=rec.url)
        customer = new_person(rt, name="钱多多", account=False)
        account = card_number(7)
        # Pending (202) until the person confirms it, which link_customer does.
        r = link_customer(client, bank, customer.id_number, customer.name, account)
        assert r.status_code == 202, r.text
        bank_link_id = r.json()["id"]
        waiting = samples(scrape(client))
        assert value(waiting, "qinqing_outbox_depth", outbox="webhooks") >= 1
        done = Worker(rt, JOBS).run_once()
        assert done["deliver_webhooks"] == 1 and len(rec.received) == 1

    text = scrape(client)
    after = samples(text)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # Counted under route templates, never paths.
    assert (
        grew(
            "qinqing_http_requests_total",
            route="/api/v1/family/links/{link_id}/consent",
            method="POST",
            status="200",
        )
        == 1
    )
    assert (
        grew("qinqing_http_requests_total", route="/api/v1/me/family", method="POST", status="422")
        == 1
    )
    assert (
        grew(
            "qinqing_http_request_duration_seconds_count",
            route="/api/v1/payments/{payment_id}/settle",
            method="POST",
        )
        == 1
    )
    assert (
        grew(
            "qinqing_http_request_duration_seconds_bucket",
            route="/api/v1/payments/{payment_id}/settle",
            method="POST",
            le="10.0",
        )
        == 1
    )
    assert grew("qinqing_payments_total", operation="authorize", outcome="ok") == 2
    assert grew("qinqing_payments_total", operation="settle", outcome="ok") == 1
    assert grew("qinqing_payments_total", operation="void", outcome="ok") == 1
    assert grew("qinqing_payments_total", operation="authorize", outcome=refusal_code) == 1
    assert grew("qinqing_bindings_total", outcome="MEMBER_NOT_FOUND") == 1
    assert grew("qinqing_bindings_total", outcome="pending_consent") == 1
    assert grew("qinqing_unbinds_total", channel="app", outcome="pending_review") == 1
    assert grew("qinqing_webhook_deliveries_total", outcome="delivered") == 1
    assert grew("qinqing_worker_pass_seconds_count", job="deliver_webhooks") == 1
    assert value(after, "qinqing_outbox_depth", outbox="webhooks") == 0
    assert ("qinqing_outbox_oldest_age_seconds", (("outbox", "notifications"),)) in after
    assert ("qinqing_db_pool_in_use", ()) in after and ("qinqing_db_pool_waiting", ()) in after

    # No personal data, and no id, in any label.
    secrets = [
        *numbers,
        reg_number,
        customer.id_number,
        reg_phone,
        app_phone,
        "13800138001",
        "13800138002",
        reg_name,
        "王建国",
        "李秀英",
        "别人",
        "钱多多",
        account,
        account[-4:] + '"',
        link_id,
        request_id,
        payment_id,
        bank_link_id,
        str(holder),
        str(member),
        institution["Authorization"].split()[1],
    ]
    for secret in secrets:
        assert secret not in text, "personal data or an id in the scrape"
    labels = re.findall(r'="([^"]*)"', text)
    assert not [v for v in labels if re.search(r"[0-9a-f]{8}-[0-9a-f]{4}|\d{11}", v)]

    # The dashboard and the alerts name only metrics this scrape has.
    names = {name for name, _ in after}
    used = _dashboard_metrics() | _alert_metrics()
    assert used, "the docs use no metric at all"
    assert sorted(used - names) == []


def _token(client: TestClient, cid: str, secret: str) -> dict[str, str]:
    r = client.post(
        f"{API}/auth/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


# --- the dashboard and the alert rules ----------------------------------------------------

_METRIC = re.compile(r"\bqinqing_[a-z_]+\b")


def _dashboard() -> dict[str, object]:
    data = json.loads((DOCS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _alerts() -> dict[str, object]:
    data = yaml.safe_load((DOCS / "prometheus-alerts.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _dashboard_metrics() -> set[str]:
    exprs = [
        target["expr"]
        for panel in _dashboard()["panels"]  # type: ignore[attr-defined]
        for target in panel.get("targets", [])
    ]
    return {m for e in exprs for m in _METRIC.findall(e)}


def _alert_metrics() -> set[str]:
    rules = [r for g in _alerts()["groups"] for r in g["rules"]]  # type: ignore[attr-defined]
    return {m for r in rules for m in _METRIC.findall(r["expr"])}


def test_the_dashboard_has_the_panels_an_operator_needs() -> None:
    dashboard = _dashboard()
    panels = dashboard["panels"]
    assert isinstance(panels, list)
    titles = " | ".join(str(p["title"]).lower() for p in panels)
    for wanted in (
        "request rate",
        "error ratio",
        "p50",
        "p99",
        "payments",
        "unbinds",
        "outbox",
        "worker",
    ):
        assert wanted in titles, wanted
    for panel in panels:
        for target in panel.get("targets", []):
            assert _METRIC.search(target["expr"]), panel["title"]


def test_the_alert_rules_are_prometheus_rules_with_what_to_do() -> None:
    groups = _alerts()["groups"]
    assert isinstance(groups, list) and groups
    names = set()
    for group in groups:
        assert group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) >= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert rule["labels"]["severity"] in ("page", "ticket")
            assert rule["annotations"]["summary"] and rule["annotations"]["runbook"]
            names.add(rule["alert"])
    assert {
        "QinqingHigh5xxRatio",
        "QinqingSlowRequests",
        "QinqingOutboxStuck",
        "QinqingWorkerStalled",
    } <= names
    operations = (DOCS / "operations.md").read_text(encoding="utf-8")
    for name in names:
        assert name in operations, f"{name} is not explained in docs/operations.md"


def test_counted_on_commit_of_the_transaction_not_of_a_savepoint_nor_a_rollback(
    rt: Runtime,
) -> None:
    """What a unit of work counts shows once it commits: a savepoint released inside it
    is not the commit, a rolled-back run (a conflict's retry) counts nothing."""
    from sqlalchemy import text

    from qinqing.kit import metrics

    seen: list[str] = []
    with rt.db.unit_of_work() as session:
        metrics.on_commit(session, lambda: seen.append("counted"))
        with session.begin_nested():
            session.execute(text("SELECT 1"))
        assert seen == [], "a released savepoint is not the commit"
        try:
            with session.begin_nested():
                session.execute(text("SELECT 1"))
                raise RuntimeError("the savepoint rolls back")
        except RuntimeError:
            pass
        assert seen == []
    assert seen == ["counted"], "a savepoint's rollback does not undo the outer count"

    with pytest.raises(RuntimeError), rt.db.unit_of_work() as session:
        metrics.on_commit(session, lambda: seen.append("rolled back"))
        session.execute(text("SELECT 1"))
        raise RuntimeError("the unit of work fails")
    assert seen == ["counted"]


def test_a_metric_that_cannot_be_recorded_never_fails_the_request(
    rt: Runtime,
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A full disk under the metrics directory costs the metric, not the answer."""
    from qinqing.kit import metrics

    def broken() -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(metrics, "_m", broken)
    holder, h = party(rt, client, name="周一", phone="13800138011", seq=41, region="440100")
    r = client.post(
        f"{API}/me/family",
        headers=h,
        json={
            "member_id_number": id_number_of(rt.vault, holder),
            "member_name": "周一",
            "relation": "spouse",
            "mutual_aid": True,
        },
    )
    assert r.status_code == 422, r.text  # the refusal, counted or not
    assert client.get("/healthz").status_code == 200
    assert "not recorded" in caplog.text
