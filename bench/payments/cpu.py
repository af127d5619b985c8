"""CPU of the server and of the PostgreSQL cluster during one measurement window.

Both are read from /proc (``bench.common.cpu``), so PostgreSQL must run on this machine."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

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

    @classmethod
    def find_citus(cls, db: str) -> list[Cluster]:
        """A Citus coordinator and its workers, each a cluster on this machine (the
        workers reached at the coordinator's database through pg_dist_node)."""
        coordinator = cls.find(db)
        with psycopg.connect(db) as conn:
            port = conn.execute("SELECT current_setting('port')::int").fetchone()
            nodes = conn.execute(
                "SELECT nodename, nodeport FROM pg_dist_node"
                " WHERE isactive AND noderole = 'primary' ORDER BY nodeid"
            ).fetchall()
        assert port is not None
        workers = [
            cls.find(make_conninfo(db, host=host, port=node_port))
            for host, node_port in nodes
            if node_port != port[0]
        ]
        if not workers:
            raise SystemExit(f"{db} is no Citus coordinator with workers (pg_dist_node)")
        return [coordinator, *workers]

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


# One cluster, or a Citus coordinator and its workers.
Nodes = Cluster | Sequence[Cluster]


class Window:
    """CPU of the server tree and of the PostgreSQL cluster(s) between start() and
    stop(), and the WAL they wrote meanwhile.

    A cluster's figure is all its processes (postmaster, backends, checkpointer,
    WAL writer, ...) minus the backends of other databases, which a sampler
    thread follows every half second (the machine is shared). Several clusters (a
    Citus coordinator and its workers) are summed: every node's CPU counts."""

    def __init__(self, clusters: Nodes, server: int | None) -> None:
        self.clusters = [clusters] if isinstance(clusters, Cluster) else list(clusters)
        self.by_postmaster = {c.postmaster: c for c in self.clusters}
        self.server = server
        postmasters = tuple(self.by_postmaster)
        self.roots = postmasters if server is None else (*postmasters, server)
        # (pid, start) -> [ticks when first seen (0 if born in the window), last ticks,
        # db, the cluster's own database]
        self.backends: dict[tuple[int, int], list[Any]] = {}
        self.stopping = threading.Event()
        self.sampler = threading.Thread(target=self._sample, daemon=True)

    def _follow(self, procs: dict[int, Proc], first: bool) -> None:
        for pid, p in procs.items():
            cluster = self.by_postmaster.get(p.ppid)
            if cluster is None:
                continue
            rec = self.backends.get((pid, p.start))
            if rec is None:
                self.backends[(pid, p.start)] = [
                    p.ticks if first else 0,
                    p.ticks,
                    cluster.database_of(pid),
                    cluster,
                ]
            else:
                rec[1] = p.ticks
                if rec[2] is None:  # a new backend's title may not be set yet
                    rec[2] = cluster.database_of(pid)

    def _sample(self) -> None:
        while not self.stopping.wait(0.5):
            self._follow(snapshot(), first=False)

    def _wal(self) -> int:
        return sum(c.wal_lsn() for c in self.clusters)

    def start(self) -> Window:
        # A backend exiting while the first snapshot is read could be miscounted: let
        # the previous step's connections (psql, token requests) end first.
        time.sleep(0.3)
        self.wal0 = self._wal()
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
        wal = self._wal() - self.wal0
        self._follow(procs, first=False)
        if any(pm not in procs for pm in self.by_postmaster) or (
            self.server is not None and self.server not in procs
        ):
            raise SystemExit("the server or a postmaster exited during a measurement")
        cluster = sum(
            tree_ticks(procs, pm) - tree_ticks(self.procs0, pm) for pm in self.by_postmaster
        )
        other = sum(
            last - first
            for first, last, db, owner in self.backends.values()
            if db is not None and db != owner.database
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
