"""Benchmark: `persons import` of N rows into PostgreSQL (target: 1,000,000 rows < 120 s).

    .venv/bin/python -m bench.import_persons --rows 1000000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/qinqing_bench

The database named by ``--database-url`` is WIPED (its ``public`` schema is
dropped and recreated, then migrated). The CSV (N unique rows, about 1 %
deliberately invalid) is generated into a temporary file first; only
``import_csv`` is timed, end to end (reading, validation, vault, COPY, insert,
audit entry, commit).

Run from the repository root. The modules: ``options`` (the command line),
``generate`` (the CSV), ``report`` (the printed figures and the target);
``__main__`` runs them.
"""
