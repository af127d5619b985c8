"""Property: for random registries and binding requests, a member under the consent
age is ``active`` only with a registered guardian as holder or an approved proof,
and nothing a ``pending_*`` link is asked to do succeeds. Over the API, on SQLite
and PostgreSQL."""

from __future__ import annotations

import io
import uuid
from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from qinqing.family.models import LinkProof, ProofStatus
from qinqing.kit.clock import FrozenClock
from qinqing.runtime import Runtime
from support.counter import clerk, staff
from support.family import API, PAYMENT_PASSWORD, Party, bind, new_person
from support.guardians import register_guardians
from support.profiles import examples
from support.unbind import load_link

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
# On the test clock's date (2026-11-23): 10, 15, just 16, and 40 years old.
BIRTHS = [date(2016, 6, 1), date(2011, 1, 1), date(2010, 11, 23), date(1986, 1, 1)]
ACTIONS = [
    "upload_approve",
    "upload_reject",
    "counter",
    "consent",
    "voucher",
    "costs",
    "upload",
    "withdraw",
]


def _approved_proof(rt: Runtime, link_id: str) -> bool:
    with rt.db.unit_of_work() as s:
        return (
            s.execute(
                select(LinkProof.id).where(
                    LinkProof.link_id == uuid.UUID(link_id),
                    LinkProof.status == ProofStatus.approved.value,
                )
            ).first()
            is not None
        )


def _upload(client: TestClient, holder: Party, link_id: str) -> Any:
    return client.post(
        f"{API}/family/links/{link_id}/proof",
        headers=holder.headers,
        data={"document_type": "birth_certificate"},
        files={"file": ("c.png", io.BytesIO(PNG), "image/png")},
    )


@settings(
    max_examples=examples(12),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    born=st.sampled_from(BIRTHS),
    guardians=st.sets(st.sampled_from(["a", "b"])),
    binder=st.sampled_from(["a", "b", "c"]),
    relation=st.sampled_from(["child", "grandchild", "sibling", "spouse"]),
    actions=st.lists(st.sampled_from(ACTIONS), max_size=4),
)
def test_a_minor_is_active_only_with_a_guardian_or_an_approved_proof(
    rt: Runtime,
    client: TestClient,
    clock: FrozenClock,
    born: date,
    guardians: set[str],
    binder: str,
    relation: str,
    actions: list[str],
) -> None:
    # Each example on a fresh hour: the registrations' SMS allowance per address.
    clock.advance(timedelta(hours=2))
    people = {
        k: new_person(rt, name=f"成人{k}", client=client, account=k == binder)
        for k in ("a", "b", "c")
    }
    member = new_person(rt, name="家庭成员", born=born, sex="F", client=client)
    register_guardians(rt, member.id_number, *(people[g].id_number for g in sorted(guardians)))
    holder = people[binder]
    minor = born > date(2010, 11, 23)
    is_guardian = binder in guardians
    r = bind(client, holder.headers, member.id_number, member.name, relation)
    if r.status_code != 201:
        # A minor is never bound as a spouse; anything refused made no link.
        assert minor and relation == "spouse", r.text
        return
    link_id = r.json()["id"]
    reviewer = staff(rt, client, f"rv{link_id[:8]}", "reviewer", "150600")
    desk = clerk(rt, client, f"ck{link_id[:8]}")
    for action in actions:
        status = load_link(rt, link_id).status
        if action in ("upload_approve", "upload_reject", "upload"):
            up = _upload(client, holder, link_id)
            if status != "pending_proof":
                assert up.status_code == 409, up.text
            elif up.status_code == 201 and action != "upload":
                decision = "approve" if action == "upload_approve" else "reject"
                client.post(
                    f"{API}/review/link-proofs/{up.json()['id']}/decision",
                    headers=reviewer,
                    json={"decision": decision, "comment": "核对"},
                )
        elif action == "counter":
            seen = client.post(
                f"{API}/counter/links/{link_id}/proof",
                headers=desk,
                json={
                    "document": {"type": "household_register", "number": "HK0001"},
                    "form_number": f"F-{link_id[:8]}",
                },
            )
            assert (seen.status_code == 200) == (status == "pending_proof"), seen.text
        elif action == "consent":
            c = client.post(
                f"{API}/family/links/{link_id}/consent",
                headers=member.headers,
                json={
                    "verification": {
                        "method": "payment_password",
                        "payment_password": PAYMENT_PASSWORD,
                    }
                },
            )
            assert (c.status_code == 200) == (status == "pending_consent"), c.text
        elif action == "voucher":
            v = client.post(f"{API}/vouchers", headers=holder.headers, json={"link_id": link_id})
            if status.startswith("pending"):
                assert v.status_code == 404, v.text
        elif action == "costs":
            p = client.get(f"{API}/family/links/{link_id}/payments", headers=holder.headers)
            assert (p.status_code == 200) == (not status.startswith("pending")), p.text
        else:
            client.post(f"{API}/family/links/{link_id}/decline", headers=holder.headers)
        final = load_link(rt, link_id).status
        if minor and final == "active":
            assert is_guardian or _approved_proof(rt, link_id), (binder, guardians, actions)
    if minor and not is_guardian and not _approved_proof(rt, link_id):
        assert load_link(rt, link_id).status != "active"
