"""Webhooks to partner banks against a real HTTP receiver on 127.0.0.1 (both databases):
signatures verify with the reference library, retries after a 500 and a timeout keep
the webhook-id, failed events are retried by an operator, bodies carry no personal data."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from standardwebhooks import Webhook, WebhookVerificationError
from typer.testing import CliRunner

from qinqing.banks import rules
from qinqing.banks.delivery import deliver_webhooks
from qinqing.banks.models import WebhookEvent
from qinqing.entrypoints.cli import app
from qinqing.kit.clock import FrozenClock
from qinqing.runtime import Runtime
from support.accounts import STAFF_PASSWORD, add_staff, login
from support.banks import (
    API,
    add_bank,
    card_number,
    link_customer,
    receiver,
    self_signed_tls,
)
from support.family import PAYMENT_PASSWORD, bind, consent, make_active_link, new_person

PIN = {"method": "payment_password", "payment_password": PAYMENT_PASSWORD}


def _env(rt: Runtime) -> dict[str, str]:
    return {
        "QINQING_DATABASE_URL": rt.settings.database_url or "",
        "QINQING_SECRET_KEY": rt.settings.secret_key or "",
        "QINQING_ENV": "test",
    }


def events(rt: Runtime) -> list[WebhookEvent]:
    with rt.db.unit_of_work() as s:
        rows = s.execute(select(WebhookEvent).order_by(WebhookEvent.created_at)).scalars().all()
        for r in rows:
            s.expunge(r)
        return list(rows)


@pytest.fixture
def real_now(clock: FrozenClock) -> FrozenClock:
    """The receiver checks signature timestamps against the real time (5 minutes' tolerance)."""
    clock.set(datetime.now(UTC).replace(microsecond=0))
    return clock


def test_a_bank_link_event_is_signed_and_verifies(
    rt: Runtime, client: TestClient, real_now: FrozenClock
) -> None:
    with receiver() as rec:
        bank, secret = add_bank(rt, client, "BANKA", webhook_url=rec.url)
        assert secret is not None and secret.startswith("whsec_")
        person = new_person(rt, name="钱多多", account=False)
        account = card_number(1)
        bl = link_customer(client, bank, person.id_number, person.name, account).json()
        assert deliver_webhooks(rt, real_now.now(), 10) == 1
        assert deliver_webhooks(rt, real_now.now(), 10) == 0  # nothing twice
    headers, raw = rec.received[0]
    payload = Webhook(secret).verify(raw, headers)
    assert payload["type"] == "bank_link.created"
    assert payload["data"]["bank_link_id"] == bl["id"]
    assert payload["data"]["account_number_masked"] == bl["account_number_masked"]
    assert headers["webhook-id"].startswith("msg_")
    assert headers["webhook-timestamp"] == str(int(real_now.now().timestamp()))
    text = raw.decode()
    for secret_value in (account, account[4:12], person.id_number, person.name, person.phone):
        assert secret_value not in text
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(raw.replace(b"created", b"ended__"), headers)
    [event] = events(rt)
    assert event.status == "delivered" and event.attempts == 1 and event.last_status_code == 200


def test_a_500_is_retried_later_under_the_same_id(
    rt: Runtime, client: TestClient, real_now: FrozenClock
) -> None:
    with receiver(script=[500]) as rec:
        bank, secret = add_bank(rt, client, "BANKA", webhook_url=rec.url)
        person = new_person(rt, name="孙一", account=False)
        link_customer(client, bank, person.id_number, person.name, card_number(2))
        assert deliver_webhooks(rt, real_now.now(), 10, jitter=lambda: 0.0) == 0
        [event] = events(rt)
        assert event.status == "pending" and event.last_status_code == 500
        assert event.next_attempt_at == real_now.now() + rules.retry_delay(1, 0.0)
        # Not due yet: nothing is sent.
        assert deliver_webhooks(rt, real_now.now(), 10) == 0 and len(rec.received) == 1
        real_now.advance(rules.retry_delay(1, 0.0))
        assert deliver_webhooks(rt, real_now.now(), 10) == 1
    ids = [h["webhook-id"] for h, _ in rec.received]
    assert len(ids) == 2 and ids[0] == ids[1]  # the receiver's dedupe key
    assert len({h["webhook-timestamp"] for h, _ in rec.received}) == 2  # signed afresh
    assert rec.received[0][1] == rec.received[1][1]  # the same body
    assert secret is not None
    Webhook(secret).verify(rec.received[1][1], rec.received[1][0])
    # A receiver that dedupes by webhook-id processes the event once.
    assert len({h["webhook-id"] for h, _ in rec.received}) == 1


def test_a_timeout_is_a_failed_attempt(
    rt: Runtime, client: TestClient, real_now: FrozenClock
) -> None:
    with receiver(script=["hang"]) as rec:
        bank, _ = add_bank(rt, client, "BANKA", webhook_url=rec.url)
        person = new_person(rt, name="周二", account=False)
        link_customer(client, bank, person.id_number, person.name, card_number(3))
        assert deliver_webhooks(rt, real_now.now(), 10, timeout=0.2) == 0
        rec.release.set()
        [event] = events(rt)
        assert event.status == "pending" and event.last_error == "timeout"
        assert event.last_status_code is None
        real_now.advance(timedelta(hours=1))
        assert deliver_webhooks(rt, real_now.now(), 10) == 1


def test_a_receiver_whose_certificate_no_one_signed_gets_nothing(
    rt: Runtime, client: TestClient, real_now: FrozenClock, tmp_path: Path
) -> None:
    # Every pass of a process verifies with the same loaded roots: the second too.
    with receiver(tls=self_signed_tls(tmp_path)) as rec:
        bank, _ = add_bank(rt, client, "BANKA", webhook_url=rec.url)
        person = new_person(rt, name="郑四", account=False)
        link_customer(client, bank, person.id_number, person.name, card_number(5))
        for _ in range(2):
            assert deliver_webhooks(rt, real_now.now(), 10) == 0
            [event] = events(rt)
            assert event.status == "pending" and event.last_error == "ConnectError"
            real_now.advance(timedelta(hours=1))
        # The receiver notes a refusal in its own thread, possibly after the sender
        # has moved on (a wait, not a measurement: a busy machine only waits longer).
        deadline = time.monotonic() + 10
        while len(rec.tls_refusals) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    # The sender broke each handshake off because it does not know who signed the
    # certificate, and sent nothing.
    assert rec.tls_refusals == ["TLSV1_ALERT_UNKNOWN_CA"] * 2
    assert rec.received == []


def test_after_max_attempts_an_event_fails_and_an_operator_retries_it(
    rt: Runtime, client: TestClient, real_now: FrozenClock
) -> None:
    with receiver(script=[500] * rules.MAX_ATTEMPTS) as rec:
        bank, secret = add_bank(rt, client, "BANKA", webhook_url=rec.url)
        person = new_person(rt, name="吴三", account=False)
        link_customer(client, bank, person.id_number, person.name, card_number(4))
        for _ in range(rules.MAX_ATTEMPTS):
            assert deliver_webhooks(rt, real_now.now(), 10) == 0
            real_now.advance(rules.RETRY_CAP)
        [event] = events(rt)
        assert event.status == "failed" and event.attempts == rules.MAX_ATTEMPTS
        assert deliver_webhooks(rt, real_now.now(), 10) == 0  # failed stays failed
        runner = CliRunner()
        r = runner.invoke(app, ["webhooks", "list", "--failed", "--json"], env=_env(rt))
        assert r.exit_code == 0, r.output
        listed = json.loads(r.stdout)
        assert [e["id"] for e in listed] == [event.id] and listed[0]["last_status_code"] == 500
        r = runner.invoke(app, ["webhooks", "retry", event.id, "--json"], env=_env(rt))
        assert r.exit_code == 0, r.output
        r = runner.invoke(app, ["webhooks", "retry", event.id], env=_env(rt))
        assert r.exit_code == 1 and "WEBHOOK_EVENT_NOT_FAILED" in r.output
        real_now.set(datetime.now(UTC))
        assert deliver_webhooks(rt, real_now.now(), 10) == 1
    assert len(rec.received) == rules.MAX_ATTEMPTS + 1
    assert {h["webhook-id"] for h, _ in rec.received} == {event.id}  # never a new event id
    assert secret is not None
    Webhook(secret).verify(rec.received[-1][1], rec.received[-1][0])


def test_family_and_unbind_events_reach_every_bank_of_either_party(
    rt: Runtime, client: TestClient, real_now: FrozenClock
) -> None:
    with receiver() as rec_a, receiver() as rec_b, receiver() as rec_c:
        bank_a, _ = add_bank(rt, client, "BANKA", region="440100", webhook_url=rec_a.url)
        bank_b, _ = add_bank(rt, client, "BANKB", region="440100", webhook_url=rec_b.url)
        add_bank(rt, client, "BANKC", region="440100", webhook_url=rec_c.url)  # no customer here
        holder = new_person(rt, name="陈东", region="440100", client=client)
        member = new_person(
            rt,
            name="林西",
            region="440100",
            born=datetime(1986, 5, 5).date(),
            sex="F",
            client=client,
        )
        ha = link_customer(client, bank_a, holder.id_number, holder.name, card_number(5)).json()
        mb = link_customer(client, bank_b, member.id_number, member.name, card_number(6)).json()
        link = bind(client, holder.headers, member.id_number, member.name, "spouse").json()
        assert consent(client, member.headers, link["id"]).status_code == 200
        # 广州 reviews unbinds by hand.
        r = client.post(
            f"{API}/family/links/{link['id']}/unbind",
            headers=holder.headers,
            json={"verification": PIN},
        )
        assert r.json()["request"]["status"] == "pending_review", r.text
        add_staff(rt, "gz.reviewer", "reviewer", "440100")
        reviewer = login(client, "gz.reviewer", STAFF_PASSWORD)
        r = client.post(
            f"{API}/review/unbind-requests/{r.json()['request']['id']}/decision",
            headers=reviewer,
            json={"decision": "approve", "comment": "ok"},
        )
        assert r.status_code == 200, r.text
        assert deliver_webhooks(rt, real_now.now(), 100) == 10
    types_a = [b["type"] for b in rec_a.bodies()]
    types_b = [b["type"] for b in rec_b.bodies()]
    expected = [
        "family_link.activated",
        "unbind_request.pending_review",
        "unbind_request.decided",
        "family_link.ended",
    ]
    assert types_a == ["bank_link.created", *expected]
    assert types_b == ["bank_link.created", *expected]
    assert rec_c.received == []
    decided = next(b for b in rec_a.bodies() if b["type"] == "unbind_request.decided")["data"]
    assert decided["unbind_request_status"] == "approved" and decided["link_id"] == link["id"]
    # Each bank learns which of *its* customers the event is about, by its bank-link id.
    assert decided["customers"] == [{"bank_link_id": ha["id"], "role": "holder"}]
    ended_b = next(b for b in rec_b.bodies() if b["type"] == "family_link.ended")["data"]
    assert ended_b["customers"] == [{"bank_link_id": mb["id"], "role": "member"}]
    for _, raw in rec_a.received + rec_b.received:
        text = raw.decode()
        for value in (holder.id_number, member.id_number, holder.name, member.name, "ok"):
            assert value not in text


def test_no_bank_customer_no_event(rt: Runtime, client: TestClient) -> None:
    add_bank(rt, client, "BANKA", webhook_url="https://bank.example/hooks")
    make_active_link(rt, client)
    assert events(rt) == []


@pytest.mark.parametrize(
    "url",
    [
        "http://bank.example/hooks",
        "ftp://127.0.0.1/x",
        "https://user:pw@bank.example/",
        "not a url",
    ],
)
def test_webhook_urls_must_be_https_or_loopback(rt: Runtime, client: TestClient, url: str) -> None:
    from qinqing.kit.errors import DomainError

    with pytest.raises(DomainError) as err:
        add_bank(rt, client, "BANKA", webhook_url=url)
    assert err.value.code == "WEBHOOK_URL_INVALID"


def test_clients_add_prints_the_webhook_secret_once(rt: Runtime) -> None:
    args = [
        "clients",
        "add",
        "某银行",
        "--kind",
        "bank",
        "--region",
        "150600",
        "--bank-code",
        "ICBC",
    ]
    r = CliRunner().invoke(
        app, [*args, "--webhook-url", "https://bank.example/qinqing", "--json"], env=_env(rt)
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out) == {"client_id", "client_secret", "webhook_secret"}
    assert out["webhook_secret"].startswith("whsec_")
    with rt.db.engine.connect() as conn:
        from sqlalchemy import text

        rows = [repr(row) for row in conn.execute(text("SELECT * FROM bank_webhook_endpoints"))]
    assert len(rows) == 1 and out["webhook_secret"][6:] not in rows[0]
    r = CliRunner().invoke(
        app,
        [
            "clients",
            "add",
            "医院",
            "--kind",
            "institution",
            "--region",
            "150600",
            "--webhook-url",
            "https://x.example/",
        ],
        env=_env(rt),
    )
    assert r.exit_code == 1 and "WEBHOOK_ONLY_FOR_BANKS" in r.output
    r = CliRunner().invoke(
        app,
        [*args[:-1], "BOC", "--webhook-url", "https://boc.example/qinqing"],
        env=_env(rt),
    )
    assert r.exit_code == 0, r.output
    assert "webhook_secret: whsec_" in r.output and "shown only now" in r.output


def test_a_row_claimed_elsewhere_is_skipped_not_sent_twice(
    rt: Runtime, client: TestClient, real_now: FrozenClock
) -> None:
    """Another worker holding an event's row lock: this one skips it (SKIP LOCKED on
    PostgreSQL; SQLite serializes whole transactions instead)."""
    if rt.db.is_sqlite:
        pytest.skip("row locks are a PostgreSQL matter; SQLite serializes writers")
    with receiver() as rec:
        bank, _ = add_bank(rt, client, "BANKA", webhook_url=rec.url)
        person = new_person(rt, name="郑四", account=False)
        link_customer(client, bank, person.id_number, person.name, card_number(7))
        with rt.db.unit_of_work() as other_worker:
            # Another worker's claim: each event locked by its owner and id.
            for owner, event_id in other_worker.execute(
                select(WebhookEvent.person_id, WebhookEvent.id)
            ).all():
                other_worker.execute(
                    select(WebhookEvent)
                    .where(WebhookEvent.person_id == owner, WebhookEvent.id == event_id)
                    .with_for_update()
                ).scalar_one()
            assert deliver_webhooks(rt, real_now.now(), 10) == 0
            assert rec.received == []
        assert deliver_webhooks(rt, real_now.now(), 10) == 1
    assert len(rec.received) == 1
