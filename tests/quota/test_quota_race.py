"""Real concurrent transactions on PostgreSQL: a quota top-up, the member's payment
and an unbind of the same link at once never lose or double a fen, and never end
a link with money left in its quota."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from qinqing.auth.verification import FaceVerification, simulated_face_token
from qinqing.kit.errors import DomainError
from qinqing.payments import service as payments
from qinqing.quota import service as quota
from qinqing.runtime import Runtime
from qinqing.unbind import service as unbind
from qinqing.unbind.service import UnbindRefused
from support.concurrency import race
from support.family import MadeLink, principal_of
from support.ledger import institution_principal
from support.quota import MEMBER_REGION, quota_balance, quota_family, top_up
from support.resident import assert_reconciled, balance_of


@pytest.fixture
def pg(rt: Runtime) -> Runtime:
    if rt.db.is_sqlite:
        pytest.skip("row-lock races are a PostgreSQL property (SQLite serializes writers)")
    return rt


def _face(made: MadeLink) -> FaceVerification:
    return FaceVerification(method="face", face_token=simulated_face_token(made.holder_id))


def test_top_up_payment_and_unbind_at_once_keep_every_fen(pg: Runtime, client: TestClient) -> None:
    pg.settings.authorize_failures_per_hour = 1_000_000
    inst = institution_principal(pg, region=MEMBER_REGION)
    seen: set[str] = set()
    for round_ in range(6):
        made = quota_family(pg, client)
        assert top_up(client, made, 30_000).status_code == 201

        def act(i: int, made: MadeLink = made, round_: int = round_) -> str:
            try:
                with pg.db.unit_of_work() as s:
                    if i == 0:
                        quota.top_up(
                            s,
                            pg,
                            principal_of(pg, made.holder_id),
                            made.link_id,
                            20_000,
                            _face(made),
                        )
                        return "topped_up"
                    if i == 1:
                        out = payments.execute(
                            s,
                            pg,
                            inst,
                            [
                                payments.Authorize(
                                    made.holder.id_number,
                                    made.member.id_number,
                                    25_000,
                                    f"race-{round_}",
                                    by_voucher=True,
                                )
                            ],
                        )[0]
                        return "authorized" if out.ok else str(out.code)
                    done = unbind.unbind(
                        s, pg, principal_of(pg, made.holder_id), made.link_id, _face(made)
                    )
                    return str(done.request.status)
            except UnbindRefused as exc:
                return "+".join(exc.codes)
            except DomainError as exc:
                return exc.code

        results = race(3, act)
        assert all(isinstance(r, str) for r in results), results
        seen.add("/".join(map(str, results)))
        q_balance, q_held = quota_balance(pg, made)
        # No fen lost or doubled: what the holder had is in the account or the quota.
        assert balance_of(pg, made) + q_balance == 100_000, results
        assert q_balance - q_held >= 0
        if results[2] == "completed":
            # The link ended: its quota kept nothing back (no hold could be open).
            assert (q_balance, q_held) == (0, 0), results
            # Ended first, the payment found no link in force (by its voucher it is told
            # so; the member is insured elsewhere, so the pair is then unknown).
            assert results[1] in ("PERSON_NOT_FOUND", "NO_MUTUAL_AID_LINK"), results
        else:
            assert results[2] == "UNSETTLED_PAYMENTS" and results[1] == "authorized", results
            assert q_held == 25_000
        assert results[0] in ("topped_up", "NO_MUTUAL_AID_LINK"), results
        assert_reconciled(pg)
    # The orderings the races took (for the log when one fails).
    assert seen
