"""Which of the demo's published credentials a database still accepts.

`serve --demo` prints its logins and secrets, and docs quote them: a database
that still accepts one of them must not run in production. Each credential is
checked by what it opens, not by a flag a copy of the data could lose: a demo
client whose secret still verifies, the demo bank's webhook secret, a demo
person's account that still takes the demo password, and staff on the demo's
default password. On a real database none of the demo's ids or ID numbers exist,
so the check costs a few look-ups; only a row that exists costs a hash."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from qinqing.auth.models import ApiClient, PersonAccount, StaffUser
from qinqing.auth.service import passwords
from qinqing.banks.endpoints import SECRET_KIND
from qinqing.banks.models import WebhookEndpoint
from qinqing.entrypoints import demo
from qinqing.persons.service import find_by_id_number
from qinqing.runtime import Runtime


def demo_credentials_in_use(session: Session, rt: Runtime) -> list[str]:
    """What still opens with a published demo credential, named without personal data."""
    found: list[str] = []
    staff = session.execute(
        select(StaffUser.username).where(
            StaffUser.default_password.is_(True), StaffUser.disabled.is_(False)
        )
    ).scalars()
    found += [f"staff {name} (default password)" for name in sorted(staff)]
    hasher = passwords(rt)
    for client_id, *_, secret in demo.CLIENTS:
        client = session.get(ApiClient, client_id)
        if client is not None and not client.disabled and hasher.verify(client.secret_hash, secret):
            found.append(f"API client {client_id} (published secret)")
    endpoint = session.get(WebhookEndpoint, demo.DEMO_BANK_ID)
    if (
        endpoint is not None
        and endpoint.enabled
        and rt.vault.decrypt(SECRET_KIND, endpoint.secret_cipher) == demo.DEMO_WEBHOOK_SECRET
    ):
        found.append(f"webhook secret of {demo.DEMO_BANK_ID} (published)")
    accounts = 0
    for person in demo.PEOPLE:
        if not person.account:
            continue
        row = find_by_id_number(session, rt.vault, person.id_number)
        if row is None:
            continue
        hashed = session.execute(
            select(PersonAccount.password_hash).where(PersonAccount.person_id == row.id)
        ).scalar_one_or_none()
        if hashed is not None and hasher.verify(hashed, demo.PERSON_PASSWORD):
            accounts += 1
    if accounts:
        found.append(f"{accounts} demo person account(s) (published password)")
    return found
