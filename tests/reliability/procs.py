"""The real `sqlmig` command in subprocesses, started together, and PostgreSQL watched
from outside: who holds the migration lock, who waits at a gate, what is committed.

Every process runs `python -c LAUNCH ARGS...`, which is `python -m sqlmig ARGS...`
with two additions for the tests: SIGINT is restored to Python's default handler (a
test runner started as a background job inherits it ignored), and with a barrier the
process pays for its imports first, says it is ready, then waits for the start line,
so that eight processes reach the lock within milliseconds of each other.

A *gate* is an advisory lock the test holds; a migration that runs
``SELECT pg_advisory_xact_lock_shared(GATE)`` waits there until the test opens it.
That makes "in the middle of a migration" a state the test can wait for instead of
guessing with sleeps.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from helpers import clean_environ, connect, document, query, tables, tracking

MIGRATION_LOCK = 123456789
GATE = 4242
GATE_SQL = f"SELECT pg_advisory_xact_lock_shared({GATE});"

LAUNCH = """
import os, signal, sys, time, runpy
signal.signal(signal.SIGINT, signal.default_int_handler)
barrier = os.environ.get("SQLMIG_TEST_BARRIER")
if barrier:
    import psycopg, sqlalchemy, sqlmig.cli, sqlmig.migrator
    open(f"{barrier}.ready.{os.getpid()}", "w").close()
    while not os.path.exists(barrier):
        time.sleep(0.002)
sys.argv = ["sqlmig", *sys.argv[1:]]
runpy.run_module("sqlmig", run_name="__main__", alter_sys=True)
"""


T = TypeVar("T")


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Done:
    """A finished process: exit code and output."""

    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        """stdout as exactly one JSON document."""
        return document(self.stdout)


class Proc:
    """One running `sqlmig`, its output going to files (a pipe could fill and block it)."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], name: str) -> None:
        self.out = cwd / f"{name}.out"
        self.err = cwd / f"{name}.err"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.popen = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stderr_so_far(self) -> str:
        return self.err.read_text()

    def running(self) -> bool:
        return self.popen.poll() is None

    def signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def wait(self, timeout: float = 60.0) -> Done:
        self.popen.wait(timeout)
        return Done(self.popen.returncode, self.out.read_text(), self.err.read_text())

    def kill(self) -> None:
        if self.running():
            self.popen.kill()
            self.popen.wait(10)


class Runner:
    """Starts `sqlmig` processes on one database and kills any left running at the end."""

    def __init__(self, url: str, cwd: Path) -> None:
        self.url = url
        self.cwd = cwd
        self.procs: list[Proc] = []
        clean = clean_environ()
        self.env = {**clean, "DATABASE_URL": url, "NO_COLOR": "1"}

    def start(self, *args: str, barrier: Path | None = None) -> Proc:
        env = dict(self.env)
        if barrier is not None:
            env["SQLMIG_TEST_BARRIER"] = str(barrier)
        argv = [sys.executable, "-c", LAUNCH, *args]
        proc = Proc(argv, self.cwd, env, f"sqlmig-{len(self.procs)}")
        self.procs.append(proc)
        return proc

    def run(self, *args: str, timeout: float = 60.0) -> Done:
        return self.start(*args).wait(timeout)

    def start_together(self, commands: list[list[str]]) -> list[Proc]:
        """Start every command, wait until each has imported everything, then let all go."""
        barrier = self.cwd / f"barrier-{len(self.procs)}"
        procs = [self.start(*args, barrier=barrier) for args in commands]
        wait_for(
            lambda: (
                len(list(self.cwd.glob(f"{barrier.name}.ready.*"))) == len(procs)
                or any(not p.running() for p in procs)
            ),
            "every process to be ready at the barrier",
            timeout=60,
        )
        barrier.touch()
        return procs

    def kill_all(self) -> None:
        for proc in self.procs:
            proc.kill()


@contextmanager
def runner(url: str, cwd: Path) -> Iterator[Runner]:
    r = Runner(url, cwd)
    try:
        yield r
    finally:
        r.kill_all()


class Observer:
    """A plain autocommit session that looks at the database from outside."""

    def __init__(self, url: str) -> None:
        self.conn = connect(url)

    def close(self) -> None:
        self.conn.close()

    def rows(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        return query(self.conn, sql, *params)

    def value(self, sql: str, *params: object) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def _advisory(self, key: int, granted: bool) -> list[int]:
        return [
            pid
            for (pid,) in self.rows(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1"
                " AND classid::bigint = %s AND objid::bigint = %s AND granted = %s"
                " AND database = (SELECT oid FROM pg_database"
                "                 WHERE datname = current_database())",
                (key >> 32) & 0xFFFFFFFF,
                key & 0xFFFFFFFF,
                granted,
            )
        ]

    def lock_holders(self) -> list[int]:
        """Backends holding the migration lock on this database."""
        return self._advisory(MIGRATION_LOCK, True)

    def waiting_at_gate(self) -> list[int]:
        """Backends blocked on the gate, i.e. in the middle of a gated migration."""
        return self._advisory(GATE, False)

    def tracking(self) -> dict[str, str]:
        return tracking(self.conn)

    def tables(self) -> set[str]:
        return tables(self.conn)

    def sqlmig_backends(self) -> list[tuple[int, str, str]]:
        """(pid, state, query) of every session sqlmig has open on this database."""
        return [
            (pid, state, query)
            for pid, state, query in self.rows(
                "SELECT pid, state, query FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = 'sqlmig'"
            )
        ]


@contextmanager
def observer(url: str) -> Iterator[Observer]:
    o = Observer(url)
    try:
        yield o
    finally:
        o.close()


class Gate:
    """Held by the test: migrations running GATE_SQL wait until it opens."""

    def __init__(self, url: str) -> None:
        self.conn = connect(url)
        self.conn.execute("SELECT pg_advisory_lock(%s)", (GATE,))

    def open(self) -> None:
        if not self.conn.closed:
            self.conn.close()


@contextmanager
def closed_gate(url: str) -> Iterator[Gate]:
    g = Gate(url)
    try:
        yield g
    finally:
        g.open()


SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}
