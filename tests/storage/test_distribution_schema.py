"""The migrated schema obeys the distribution map (qinqing.schema.distribution): what Citus
would refuse is found here, on plain PostgreSQL, with every violation listed at once
(the rules: qinqing.schema.distribution_check; the checker's own tests: test_distribution_check)."""

from __future__ import annotations

import pytest

from qinqing.kit.db import make_engine
from qinqing.schema.distribution_check import read_schema, violations
from support.databases import PG_URL

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="set QINQING_TEST_DATABASE_URL to run it"),
]


def test_migrated_schema_obeys_the_distribution_map(pg_migrated: str) -> None:
    engine = make_engine(pg_migrated, pool_size=1)
    try:
        with engine.connect() as conn:
            found = violations(read_schema(conn))
    finally:
        engine.dispose()
    if found:
        pytest.fail(f"{len(found)} violations of the distribution map:\n" + "\n".join(found))
