"""The fast path's own connections are made from the service's database URL."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict

from qinqing.payments.fast import conninfo_of


def test_the_fast_paths_connection_keeps_every_option_of_the_url() -> None:
    """Two ``-c`` options in the URL (a search path and one more setting) reach the
    server as two settings: the URL's own text had joined them with a "+", and the
    fast path ran in a schema named ``qq+-cstatement_timeout=5000``."""
    url = (
        "postgresql+psycopg://app:s%20cret@db.example:6432/qinqing"
        "?options=-csearch_path%3Dqq%20-cstatement_timeout%3D5000&sslmode=require"
    )
    assert conninfo_to_dict(conninfo_of(url)) == {
        "host": "db.example",
        "port": "6432",
        "user": "app",
        "password": "s cret",
        "dbname": "qinqing",
        "options": "-csearch_path=qq -cstatement_timeout=5000",
        "sslmode": "require",
    }
