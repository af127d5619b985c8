"""In production a webhook goes only to a public address, checked again at each
delivery: a URL whose host resolves inside the network now (DNS changed since the
operator set it) is not sent to, and the attempt is recorded for a retry."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select

from qinqing.banks.delivery import NOT_PUBLIC, deliver_webhooks
from qinqing.banks.models import WebhookEndpoint, WebhookEvent
from qinqing.config import Env
from qinqing.entrypoints.bootstrap import build_runtime
from qinqing.kit.clock import FrozenClock
from qinqing.runtime import Runtime
from support.banks import add_bank, card_number, link_customer, receiver
from support.family import new_person


def test_a_host_that_resolves_inside_the_network_is_not_sent_to(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    clock.set(datetime.now(UTC).replace(microsecond=0))
    with receiver() as rec:
        bank, _ = add_bank(rt, client, "BANKP", webhook_url=rec.url)
        # The name an operator set, which now resolves to this machine.
        with rt.db.unit_of_work() as s:
            endpoint = s.execute(select(WebhookEndpoint)).scalar_one()
            endpoint.url = rec.url.replace("127.0.0.1", "localhost")
        person = new_person(rt, name="钱多多", account=False)
        link_customer(client, bank, person.id_number, person.name, card_number(3))
        prod = build_runtime(
            rt.settings.model_copy(update={"env": Env.production, "face_provider": "none"}),
            clock=clock,
            migrate=False,
        )
        try:
            assert deliver_webhooks(prod, clock.now(), 10) == 0
        finally:
            prod.db.dispose()
        assert rec.received == []
        with rt.db.unit_of_work() as s:
            event = s.execute(select(WebhookEvent)).scalar_one()
            assert event.status == "pending" and event.last_error == NOT_PUBLIC
        # Outside production (the demo's loopback receiver), the same event is sent.
        with rt.db.unit_of_work() as s:
            s.execute(select(WebhookEvent)).scalar_one().next_attempt_at = clock.now()
        assert deliver_webhooks(rt, clock.now(), 10) == 1
    assert len(rec.received) == 1
