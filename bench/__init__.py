"""Benchmarks, one command each, run from the repository root (results in docs/benchmarks.md):

    .venv/bin/python -m bench.import_persons --rows 1000000   # persons import (issue 2)
    .venv/bin/python -m bench.payments --seconds 10 --repeat 3  # payments (issues 4 and 12)

Both WIPE the database named by ``--database-url``. ``bench.common`` holds what the
two share or what is not tied to one of them: the database reset, generated ID
numbers, CPU accounting from /proc, child processes and the verdict words.
"""
