"""Payments benchmark (issues 4 and 12): pgbench baseline, single payments, batches, CPU per op.

One run measures, against one PostgreSQL database:

  (a) ``pgbench`` TPC-B-like with 8 clients: the baseline;
  (b) single payments over HTTP (authorize then settle) from 8 concurrent
      connections (``wrk`` with ``bench/payments/payments.lua``);
  (c) with ``--grouped``: the same load against a second server started with
      ``QINQING_GROUP_COMMIT=on``;
  (d) ``POST /api/v1/payments/batch`` with 1000-operation batches.

For each: throughput, p50/p99 latency, failures, and CPU milliseconds per
operation split into the server (the ``qinqing serve`` process tree), PostgreSQL
(the cluster's processes) and the load generator, plus the ratio of each to
(a). A payment is one authorize+settle pair; pgbench's operation is one
transaction. ``--repeat N`` interleaves the measurements (a b [c] d a b [c] d …)
and reports medians. The database named is WIPED.

    .venv/bin/python -m bench.payments --seconds 10 --repeat 3 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/qinqing_bench

Run from the repository root. The modules, one idea each: ``options`` (the command
line), ``setup`` (families and funds), ``baseline`` (pgbench), ``server`` (``qinqing
serve``), ``load`` (wrk and batch phases), ``cpu`` (CPU per window), ``figures``,
``report`` (medians, ratios, targets, JSON); ``__main__`` runs them in order.
"""
