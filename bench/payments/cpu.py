"""CPU of the server and of the PostgreSQL cluster during one measurement window.

Both are read from /proc (``bench.common.cpu``), so PostgreSQL must run on this machine."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.common.cpu import Proc, machine_busy, ms, read_proc, snapshot, tree_ticks


@dataclass
class Cluster:
    """The PostgreSQL cluster the database lives on, seen from /proc."""

    postmaster: int
    database: str
    prefix: str  # process titles start with "postgres: <cluster_name>: "
    autovacuum: str
    conninfo: str  # to read the WAL position

    def wal_lsn(self) -> int:
        """The cluster's current WAL position, in bytes (cluster-wide: every database's
        writes count, so the figure is only clean on an otherwise quiet cluster)."""
        with psycopg.connect(self.conninfo) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
        assert row is not None
        return int(row[0])

    @classmethod
    def find(cls, db: str) -> Cluster:
        with psycopg.connect(db) as conn:
            row = conn.execute(
                "SELECT pg_backend_pid(), current_setting('data_directory'),"
                " current_setting('cluster_name'), current_database(),"
                " current_setting('autovacuum')"
            ).fetchone()
            assert row is not None
            backend, data_dir, name, database, autovacuum = row
            me = read_proc(backend)
        if me is None:
            raise SystemExit("PostgreSQL must run on this machine: its CPU is read from /proc")
        try:  # the postmaster's pid is the first line of postmaster.pid ...
            postmaster = int(Path(data_dir, "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            postmaster = me.ppid  # ... and every backend's parent
        if postmaster != me.ppid:
            raise SystemExit(
                f"postmaster.pid names {postmaster}, the backend's parent is {me.ppid}"
            )
        prefix = f"postgres: {name}: " if name else "postgres: "
        return cls(postmaster, database, prefix, autovacuum, db)

    def database_of(self, pid: int) -> str | None:
        """The database a backend serves, from its process title; None for auxiliary ones."""
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            return None
        if not title.startswith(self.prefix):
            return None
        rest = title[len(self.prefix) :]
        m = re.match(r"autovacuum worker (\S+)", rest) or re.match(
            r"\S+ (\S+) (?:\S+\(\d+\)|\[local\])", rest
        )
        return m.group(1) if m else None


class Window:
    """CPU of the server tree and of the PostgreSQL cluster between start() and stop(),
    and the WAL the cluster wrote meanwhile.

    The cluster's figure is all its processes (postmaster, backends, checkpointer,
    WAL writer, ...) minus the backends of other databases, which a sampler
    thread follows every half second (the machine is shared)."""

    def __init__(self, cluster: Cluster, server: int | None) -> None:
        self.cluster, self.server = cluster, server
        self.roots = (cluster.postmaster,) if server is None else (cluster.postmaster, server)
        # (pid, start) -> [ticks when first seen (0 if born in the window), last ticks, db]
        self.backends: dict[tuple[int, int], list[Any]] = {}
        self.stopping = threading.Event()
        self.sampler = threading.Thread(target=self._sample, daemon=True)

    def _follow(self, procs: dict[int, Proc], first: bool) -> None:
        for pid, p in procs.items():
            if p.ppid != self.cluster.postmaster:
                continue
            rec = self.backends.get((pid, p.start))
            if rec is None:
                self.backends[(pid, p.start)] = [
                    p.ticks if first else 0,
                    p.ticks,
                    self.cluster.database_of(pid),
                ]
            else:
                rec[1] = p.ticks
                if rec[2] is None:  # a new backend's title may not be set yet
                    rec[2] = self.cluster.database_of(pid)

    def _sample(self) -> None:
        while not self.stopping.wait(0.5):
            self._follow(snapshot(), first=False)

    def start(self) -> Window:
        # A backend exiting while the first snapshot is read could be miscounted: let
        # the previous step's connections (psql, token requests) end first.
        time.sleep(0.3)
        self.wal0 = self.cluster.wal_lsn()
        self.busy0 = machine_busy()
        self.t0 = time.perf_counter()
        self.procs0 = snapshot(self.roots)
        self._follow(self.procs0, first=True)
        self.sampler.start()
        return self

    def stop(self) -> dict[str, float]:
        self.stopping.set()
        self.sampler.join()
        procs = snapshot(self.roots)
        busy = machine_busy() - self.busy0
        wal = self.cluster.wal_lsn() - self.wal0
        self._follow(procs, first=False)
        pm = self.cluster.postmaster
        if pm not in procs or (self.server is not None and self.server not in procs):
            raise SystemExit("the server or the postmaster exited during a measurement")
        cluster = tree_ticks(procs, pm) - tree_ticks(self.procs0, pm)
        other = sum(
            last - first
            for first, last, db in self.backends.values()
            if db is not None and db != self.cluster.database
        )
        server = 0
        if self.server is not None:
            server = tree_ticks(procs, self.server) - tree_ticks(self.procs0, self.server)
        return {
            "server": ms(server),
            "postgres": ms(cluster - other),
            "postgres_other_databases": ms(other),
            "machine_busy": ms(busy),
            "wall_s": time.perf_counter() - self.t0,
            "wal_bytes": float(wal),
        }
