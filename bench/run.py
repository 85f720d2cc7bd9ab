"""sqlmig's benchmark: one command, one run, one markdown report.

    .venv/bin/python bench/run.py            # full run (make bench), writes bench/RESULTS.md
    .venv/bin/python bench/run.py --smoke    # N = 20, one repetition (make bench-smoke)

Every figure is the median of the repetitions with min and max; every comparison is a
ratio of medians measured in the same run, with the tools interleaved (their order
rotates each repetition) so that a noisy machine hurts all of them alike. Each
measurement of a run that changes the database gets a fresh database.

sqlmig and the floor run from the project's .venv (the same interpreter); alembic and
yoyo-migrations from bench/.venv (``sh bench/venv.sh``), which also makes the two
environments case 4 times sqlmig's start-up in: sqlmig with typer 0.28, the last
before pydantic, and with the newest typer; dbmate, a Go binary, from
bench/node_modules (``sh bench/npm.sh``; when it is missing its cells say why). The server is
``SQLMIG_BENCH_DATABASE_URL`` (an admin URL: databases are created and dropped on it)
or an embedded PostgreSQL 16 from pgserver, started here in a temporary directory.

Exits 1 when a case failed to run (a missed target is not a failure).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import psycopg
from sqlalchemy.engine import URL

import measure
import report
import roundtrips
import server as pg
import workload
from delay import DelayProxy
from measure import Sample, Series
from report import Row, Table, Target

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
MAIN_BIN = ROOT / ".venv" / "bin"
PEER_BIN = BENCH / ".venv" / "bin"
PYTHON = str(MAIN_BIN / "python")
SQLMIG = str(MAIN_BIN / "sqlmig")
FLOOR = str(BENCH / "floor.py")
INPROC = str(BENCH / "inproc.py")
TYPER_VENVS = (BENCH / ".venv-typer-0.28", BENCH / ".venv-typer-latest")
NODE_MODULES = BENCH / "node_modules"
PYTHON_PEERS = ("alembic", "yoyo")  # from bench/.venv
PEERS = (*PYTHON_PEERS, "dbmate")
T = TypeVar("T")

# Case 1's targets by N (case 2 is held to the same).
UP_TARGETS = {100: 1.10, 1000: 1.0}
NOOP_TARGET = 1.2
NOOP_TYPER_TARGET = 1.15  # against the floor that imports typer too
FLAT_TARGET = 1.2  # status with 10x the migrations; "flat" read as at most 1.2x
HELP_TARGET = 1.5
VALIDATE_10K_SECONDS = 1.0
LINEAR_TARGET = 11.0
RSS_TARGET = 3.0
LATENCY_DELAY = 0.005  # case 8: seconds added to each chunk, each way
LATENCY_FLOOR_TARGET = 0.45
LATENCY_PEER_SPEEDUP = 2.0  # sqlmig at least this many times faster than each peer
SINGLE_FLAG = "--single-transaction"
# Round trips of sqlmig (rt): per transactional migration, fixed per up run, no-op
# up, status.
RT_TARGETS = {"per migration": 1, "per run": 8, "no-op up": 6, "status": 4}


@dataclass(frozen=True)
class Config:
    smoke: bool
    reps: int
    up_ns: tuple[int, ...]  # cases 1, 2, 7
    applied: int  # case 3: migrations applied for the no-op up and status
    flat_small: int  # case 3: status with this many applied, to compare with `applied`
    validate_files: tuple[int, int]  # case 5: files (pairs: half as many migrations)
    status_applied: int  # case 5: migrations recorded for status
    big_bytes: int  # case 6
    rt_ns: tuple[int, int]  # round trips: two sizes, per migration = difference / (n2 - n1)
    latency_n: int  # case 8: migrations applied through the delay proxy
    single_n: int  # case 9: migrations applied with and without --single-transaction
    fleet: tuple[int, int, int]  # case 10: tenant schemas, migrations each, repetitions


FULL = Config(
    False,
    5,
    (100, 1000),
    1000,
    100,
    (10_000, 100_000),
    10_000,
    50_000_000,
    (20, 100),
    50,
    1000,
    (200, 20, 3),
)
SMOKE = Config(True, 1, (20,), 20, 5, (100, 1_000), 1_000, 5_000_000, (10, 20), 20, 20, (10, 5, 1))
FLEET_SPEEDUP = 1.6  # --jobs 4 against --jobs 1
LOOP_SPEEDUP = 5.0  # against a shell loop of one `sqlmig up` per tenant
FLEET_STATUS_SECONDS = 2.0


def rotated(items: Sequence[T], shift: int) -> list[T]:
    """The items starting at ``shift``: each repetition runs the tools in another order."""
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Dbmate:
    """dbmate's binary and version, or why it cannot run here (``binary`` is None)."""

    binary: str | None
    version: str = ""
    why_not: str = ""


def find_dbmate() -> Dbmate:
    """The Go binary that ``npx dbmate`` would exec (npm's package for this platform).

    It runs directly, not through the npm package's node wrapper: the wrapper only
    adds node's start-up, which neither the Go users' nor the bench's figures want.
    """
    found = sorted(NODE_MODULES.glob("@dbmate/*/bin/dbmate"))
    if not found:
        failure = BENCH / ".npm-install.log"
        if failure.exists():
            return Dbmate(None, why_not=f"not installed: {npm_failure(failure)}")
        if (NODE_MODULES / "dbmate").exists():
            return Dbmate(None, why_not="npm has no dbmate binary for this platform")
        return Dbmate(None, why_not="not installed (`sh bench/npm.sh`)")
    try:
        result = subprocess.run(
            [str(found[0]), "--version"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Dbmate(None, why_not=f"`dbmate --version` failed: {exc}")
    if result.returncode != 0:
        return Dbmate(None, why_not=f"`dbmate --version` exited {result.returncode}")
    return Dbmate(str(found[0]), result.stdout.strip().removeprefix("dbmate version "))


def npm_failure(log: Path) -> str:
    """What npm said when it failed: its error code and first message line."""
    code, message = "", ""
    for line in log.read_text("utf-8", "replace").splitlines():
        text = line.removeprefix("npm error").strip()
        if not text or text == line.strip():
            continue  # blank, or not an "npm error" line
        key, _, value = text.partition(" ")
        if key == "code":
            code = value
        elif not message and key not in ("syscall", "errno") and "complete log" not in text:
            message = text
    if not (code or message):
        lines = [line for line in log.read_text("utf-8", "replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else "npm failed"
    message = re.sub(r"https?://[^\s,]+", "(url)", message)  # no addresses in the report
    return f"npm install failed ({code or '?'}): {message}".rstrip(": ")


class Bench:
    def __init__(self, config: Config, server: pg.Server, work: Path) -> None:
        self.config = config
        self.server = server
        self.admin = server.admin
        self.work = work
        self.tables: list[Table] = []
        self.errors: list[str] = []
        # PYTHONDONTWRITEBYTECODE too: every tool runs with its bytecode cached, as
        # an installed package does (see byte_compile).
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SQLMIG_")
            and k not in ("DATABASE_URL", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
        }
        self.peers_ready = (PEER_BIN / "alembic").exists() and (PEER_BIN / "yoyo").exists()
        self.dbmate = find_dbmate()
        self._dirs: dict[tuple[str, int], Path] = {}
        # Series kept for the case 7 summary: (tool, figure) -> series.
        self.kept: dict[tuple[str, str], Series] = {}

    # --- workloads and commands ------------------------------------------------------

    def directory(self, kind: str, n: int) -> Path:
        key = (kind, n)
        if key not in self._dirs:
            where = self.work / f"{kind}-{n}"
            if kind == "sqlmig":
                workload.sqlmig_dir(where, n)
            elif kind == "yoyo":
                workload.yoyo_dir(where, n)
            elif kind == "dbmate":
                workload.dbmate_dir(where, n)
            elif kind == "alembic":
                workload.alembic_project(where, n)
                # Compile the revision files once, as any run after the first finds them.
                self.check(
                    [str(PEER_BIN / "alembic"), "-c", str(where / "alembic.ini"), "heads"], {}
                )
            else:
                raise ValueError(kind)
            self._dirs[key] = where
        return self._dirs[key]

    def up_command(self, tool: str, n: int, url: URL) -> tuple[list[str], dict[str, str]]:
        """The command that applies the workload of ``n`` migrations with ``tool``."""
        env = dict(self.env)
        if tool == "sqlmig":
            env["DATABASE_URL"] = pg.libpq(url)
            return [SQLMIG, "--dir", str(self.directory("sqlmig", n)), "up"], env
        if tool == "floor":
            return [PYTHON, FLOOR, "apply", pg.libpq(url), str(self.directory("sqlmig", n))], env
        if tool == "alembic":
            env["BENCH_ALEMBIC_URL"] = pg.sqlalchemy_url(url)
            ini = self.directory("alembic", n) / "alembic.ini"
            return [str(PEER_BIN / "alembic"), "-c", str(ini), "upgrade", "head"], env
        if tool == "yoyo":
            return [*self._yoyo("apply", url), str(self.directory("yoyo", n))], env
        if tool == "dbmate":
            return self._dbmate("up", n, url), env
        raise ValueError(tool)

    def status_command(self, tool: str, n: int, url: URL) -> tuple[list[str], dict[str, str]]:
        """The command that shows the state of ``n`` migrations (the floor: one query)."""
        env = dict(self.env)
        if tool == "sqlmig":
            env["DATABASE_URL"] = pg.libpq(url)
            return [SQLMIG, "--dir", str(self.directory("sqlmig", n)), "status"], env
        if tool == "floor":
            return [PYTHON, FLOOR, "noop", pg.libpq(url)], env
        if tool == "alembic":
            env["BENCH_ALEMBIC_URL"] = pg.sqlalchemy_url(url)
            ini = self.directory("alembic", n) / "alembic.ini"
            return [str(PEER_BIN / "alembic"), "-c", str(ini), "current"], env
        if tool == "yoyo":
            return [*self._yoyo("list", url), str(self.directory("yoyo", n))], env
        if tool == "dbmate":
            return self._dbmate("status", n, url), env
        raise ValueError(tool)

    def _yoyo(self, command: str, url: URL) -> list[str]:
        return [
            str(PEER_BIN / "yoyo"),
            command,
            "--batch",
            "--no-config-file",
            "--database",
            pg.sqlalchemy_url(url),
        ]

    def _dbmate(self, command: str, n: int, url: URL) -> list[str]:
        """dbmate as its users run it (no schema dump: that would time pg_dump)."""
        if self.dbmate.binary is None:
            raise RuntimeError(f"dbmate {self.dbmate.why_not}")
        return [
            self.dbmate.binary,
            "--url",
            pg.dbmate_url(url),
            "--migrations-dir",
            str(self.directory("dbmate", n)),
            "--no-dump-schema",
            command,
        ]

    def run(self, argv: Sequence[str], env: dict[str, str]) -> Sample:
        return measure.run(argv, env=env, cwd=str(self.work))

    def check(self, argv: Sequence[str], env: dict[str, str]) -> Sample:
        return self.run(argv, {**self.env, **env})

    def tables_made(self, url: URL) -> int:
        with psycopg.connect(pg.libpq(url)) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_tables WHERE tablename ~ '^t_[0-9]+$'"
            ).fetchone()
        return int(row[0]) if row else 0

    def fresh(self) -> contextlib.AbstractContextManager[URL]:
        return pg.fresh_database(self.admin)

    def tools(self) -> list[str]:
        """The tools that can run here: the floor, sqlmig, then the peers."""
        python_peers = PYTHON_PEERS if self.peers_ready else ()
        return ["floor", "sqlmig", *python_peers, *(("dbmate",) if self.dbmate.binary else ())]

    def missing(self, table: Table, what: str) -> None:
        """A row saying why dbmate did not run, where its figures would be."""
        if self.dbmate.binary is None:
            table.add(Row(f"dbmate {what}", None, note=f"not run: dbmate {self.dbmate.why_not}"))

    # --- running the cases ---------------------------------------------------------

    def case(self, title: str, intro: str, body: Callable[[Table], None]) -> None:
        table = Table(title, intro)
        log(f"{title} ...")
        start = time.perf_counter()
        try:
            body(table)
        except Exception as exc:
            table.error = f"{type(exc).__name__}: {exc}".replace("\n", " ")
            self.errors.append(f"{title}: {table.error}")
            traceback.print_exc()
        log(f"{title}: {time.perf_counter() - start:.0f} s")
        self.tables.append(table)

    def all_cases(self, only: set[str] | None = None) -> None:
        """Run the cases: all, or those in ``only`` (1-9, and rt for the round trips)."""
        c = self.config
        ns = ", ".join(str(n) for n in c.up_ns)
        cases: list[tuple[str, str, str, Callable[[Table], None]]] = [
            (
                "1",
                "Case 1: `sqlmig up` through the CLI, against the floor",
                f"N = {ns} migrations on a fresh database per run; each tool is a process "
                "started by the bench. The floor is `bench/floor.py apply` (psycopg only). "
                "alembic, yoyo and dbmate ran in the same interleaved loop (case 7).",
                self.case_up_cli,
            ),
            (
                "2",
                "Case 2: `Migrator(engine, dir).up()` in-process, against the floor in-process",
                "Each measurement is a fresh worker process (`bench/inproc.py`); the Engine "
                "(SQLAlchemy defaults, one connection already made) or the floor's psycopg "
                "connection exists before the clock starts.",
                self.case_up_api,
            ),
            (
                "3",
                f"Case 3: no-op `up` and `status` with {c.applied} applied",
                "The floor: a process that imports SQLAlchemy and psycopg, connects and runs one "
                "query (`bench/floor.py noop`); floor + typer imports typer too (`bench/floor.py "
                "noop-typer`): the CLI's dependencies and nothing else.",
                self.case_noop,
            ),
            (
                "4",
                "Case 4: start-up (`--help`, `--version`)",
                'Against `python -c "import typer"` and `python -c pass` of the same virtual '
                "environment: the project's .venv, and sqlmig with typer 0.28 and with the "
                "newest typer (bench/.venv-typer-*, made by `sh bench/venv.sh`). `sqlmig new` "
                "(`--dir` a temporary directory, `--sequential`) is a command that reads its "
                "options and needs no database.",
                self.case_startup,
            ),
            (
                "5",
                "Case 5: many files: `validate` (no database) and `status`",
                "Files are up/down pairs, so N files are N/2 migrations. `validate` runs with no "
                "database URL. `status` runs after `sqlmig baseline` recorded every migration.",
                self.case_many_files,
            ),
            (
                "6",
                f"Case 6: one {c.big_bytes / 1e6:.0f} MB script",
                "One migration: CREATE TABLE big, then multi-row INSERT statements (1,000 rows "
                "each), in one transaction. Peak RSS is the child's own (`wait4`).",
                self.case_big_script,
            ),
            (
                "7",
                "Case 7: peers, on the same cases, against the same floor",
                "Figures from the interleaved runs of cases 1 and 3. alembic: a linear chain of "
                "revisions that `op.execute` the same SQL, env.py online mode with "
                "`transaction_per_migration=True`; `upgrade head`, status = `current`. yoyo: "
                "the same SQL files (`NNNN_t_i.sql`, `.rollback.sql`), `apply --batch`, status = "
                "`list`, URL `postgresql+psycopg://` (psycopg 3; the Unix-socket URL works). "
                "dbmate: the same SQL in its single-file form (`NNNN_t_i.sql` with `-- migrate:up` "
                "and `-- migrate:down`; a transaction per migration, its default), `--url "
                "postgres://…?sslmode=disable` (`socket=DIR` for a Unix socket) `--migrations-dir "
                "DIR --no-dump-schema up`, status = `status`.",
                self.case_peers,
            ),
            (
                "8",
                f"Case 8: latency: `up` of {c.latency_n} migrations, "
                f"{LATENCY_DELAY * 1000:g} ms each way",
                "Every tool reaches the server through a delay proxy on loopback TCP "
                "(`bench/delay.py`): each chunk of bytes leaves "
                f"{LATENCY_DELAY * 1000:g} ms after it arrived, in order, in both directions, "
                "so every round trip costs twice that and throughput is not throttled. A fresh "
                "database per run; the tools interleaved. Round trips: one more run of each "
                "tool, without delay, through the counting proxy of the round-trip table.",
                self.case_latency,
            ),
            (
                "9",
                f"Case 9: `sqlmig up {SINGLE_FLAG}`, N={c.single_n}",
                f"The whole run in one transaction (`sqlmig up {SINGLE_FLAG}`) against the "
                "default path (`sqlmig up`, a transaction per migration), interleaved, a fresh "
                "database per run.",
                self.case_single_transaction,
            ),
            (
                "10",
                f"Case 10: a fleet of {c.fleet[0]} tenant schemas x {c.fleet[1]} migrations",
                "One database with a schema per tenant, the same files for each (their tables "
                "land in the tenant's schema through its search_path). `sqlmig "
                "--schemas-matching 'tenant_*' --jobs N up` against `--jobs 1`, and against a "
                "shell loop of one `sqlmig up` process per tenant (`--schema` and a URL that "
                "sets search_path); then `status` over the fleet. A fresh database per run. "
                "Peak connections: sqlmig's sessions in `pg_stat_activity`, sampled every 5 ms "
                f"during a `--jobs 4` run. Repetitions: {c.fleet[2]}.",
                self.case_fleet,
            ),
            (
                "rt",
                "Round trips",
                "Counted by a wire-protocol proxy (`bench/roundtrips.py`): one round trip per "
                "ReadyForQuery, i.e. per simple query or per Sync. Per migration = the difference "
                f"between runs of {c.rt_ns[0]} and {c.rt_ns[1]} migrations; per run = the rest.",
                self.case_round_trips,
            ),
        ]
        for key, title, intro, body in cases:
            if only is None or key in only:
                self.case(title, intro, body)

    # --- case 1 and 7: up through processes -----------------------------------------

    def case_up_cli(self, table: Table) -> None:
        if not self.peers_ready:
            self.errors.append("peers: bench/.venv has no alembic or yoyo (sh bench/venv.sh)")
        tools = self.tools()
        for n in self.config.up_ns:
            series = {tool: Series(tool) for tool in tools}
            for rep in range(self.config.reps):
                for tool in rotated(tools, rep):
                    with self.fresh() as url:
                        argv, env = self.up_command(tool, n, url)
                        series[tool].add(self.run(argv, env))
                        if rep == 0 and self.tables_made(url) != n:
                            raise RuntimeError(f"{tool} did not create the {n} tables")
            floor = series["floor"]
            table.add(Row(f"floor, N={n}", floor))
            for tool in tools[1:]:
                value = measure.ratio(series[tool], floor)
                bound = UP_TARGETS.get(n) if tool == "sqlmig" else None
                table.add(
                    Row(
                        f"{tool} up, N={n}" + (" (case 7)" if tool in PEERS else ""),
                        series[tool],
                        value,
                        "floor",
                        Target.at_most(value, bound) if bound else None,
                    )
                )
                self.kept[(tool, f"up N={n}")] = series[tool]
            self.missing(table, f"up, N={n} (case 7)")
            self.kept[("floor", f"up N={n}")] = floor

    # --- case 2: in-process ---------------------------------------------------------------

    def case_up_api(self, table: Table) -> None:
        for n in self.config.up_ns:
            directory = str(self.directory("sqlmig", n))
            series = {tool: Series(tool) for tool in ("floor", "sqlmig")}
            for rep in range(self.config.reps):
                for tool in rotated(["floor", "sqlmig"], rep):
                    with self.fresh() as url:
                        address = pg.sqlalchemy_url(url) if tool == "sqlmig" else pg.libpq(url)
                        argv = [PYTHON, INPROC, tool, address, directory]
                        series[tool].add(measure.run_timed_inside(argv, env=self.env))
                        if rep == 0 and self.tables_made(url) != n:
                            raise RuntimeError(f"{tool} did not create the {n} tables")
            value = measure.ratio(series["sqlmig"], series["floor"])
            bound = UP_TARGETS.get(n)
            table.add(Row(f"floor.apply(conn), N={n}", series["floor"]))
            table.add(
                Row(
                    f"Migrator(engine).up(), N={n}",
                    series["sqlmig"],
                    value,
                    "floor",
                    Target.at_most(value, bound) if bound else None,
                    "case 1's target",
                )
            )
        table.extra.append("Peak RSS here is the whole worker process's.")

    # --- case 3: no-op ---------------------------------------------------------------

    def case_noop(self, table: Table) -> None:
        c = self.config
        n, small = c.applied, c.flat_small
        tools = self.tools()
        with contextlib.ExitStack() as stack:
            urls = {tool: stack.enter_context(self.fresh()) for tool in tools if tool != "floor"}
            urls["floor"] = urls["sqlmig"]  # the floors read sqlmig's tracking table
            urls["small"] = stack.enter_context(self.fresh())
            for tool in tools[1:]:
                self.check(*self.up_command(tool, n, urls[tool]))
            self.check(*self.up_command("sqlmig", small, urls["small"]))

            floor_argv, floor_env = self.status_command("floor", n, urls["floor"])
            commands: dict[str, tuple[list[str], dict[str, str]]] = {
                "floor": (floor_argv, floor_env),
                "floor + typer": ([PYTHON, FLOOR, "noop-typer", floor_argv[-1]], floor_env),
                "sqlmig up (no-op)": self.up_command("sqlmig", n, urls["sqlmig"]),
                "sqlmig status": self.status_command("sqlmig", n, urls["sqlmig"]),
                f"sqlmig status, {small} applied": self.status_command(
                    "sqlmig", small, urls["small"]
                ),
            }
            for peer in tools[2:]:
                commands[f"{peer} up (no-op)"] = self.up_command(peer, n, urls[peer])
                commands[f"{peer} status"] = self.status_command(peer, n, urls[peer])
            series = {name: Series(name) for name in commands}
            names = list(commands)
            for rep in range(c.reps):
                for name in rotated(names, rep):
                    series[name].add(self.run(*commands[name]))

        floor, floor_typer = series["floor"], series["floor + typer"]
        table.add(Row("floor: import SQLAlchemy + psycopg, connect, 1 query", floor))
        table.add(
            Row(
                "floor + typer: import SQLAlchemy + psycopg + typer, connect, 1 query",
                floor_typer,
                measure.ratio(floor_typer, floor),
                "floor",
            )
        )
        self.kept[("floor", "no-op")] = floor
        for name in names[2:]:
            if name.startswith("sqlmig status, "):
                continue
            value = measure.ratio(series[name], floor)
            tool = name.split()[0]
            target = Target.at_most(value, NOOP_TARGET) if tool == "sqlmig" else None
            label = name + (" (case 7)" if tool in PEERS else "")
            table.add(Row(label, series[name], value, "floor", target))
            self.kept[(tool, "no-op up" if "up" in name else "status")] = series[name]
            if tool == "sqlmig":
                typer_value = measure.ratio(series[name], floor_typer)
                table.add(
                    Row(
                        f"{name}, against floor + typer",
                        None,
                        typer_value,
                        "floor + typer",
                        Target.at_most(typer_value, NOOP_TYPER_TARGET),
                    )
                )
        self.missing(table, "up (no-op), status (case 7)")
        flat = measure.ratio(series["sqlmig status"], series[f"sqlmig status, {small} applied"])
        table.add(
            Row(
                f"sqlmig status, {small} applied",
                series[f"sqlmig status, {small} applied"],
            )
        )
        table.add(
            Row(
                f"sqlmig status: {n} applied / {small} applied",
                None,
                flat,
                "",
                Target.at_most(flat, FLAT_TARGET),
                "must stay flat (bound chosen by the bench)",
            )
        )
        self.kept[("sqlmig", "status small")] = series[f"sqlmig status, {small} applied"]

    # --- case 4: start-up ---------------------------------------------------------------

    def case_startup(self, table: Table) -> None:
        """Each environment's figures against its own ``import typer``, all interleaved.

        ``--help`` and ``--version`` exit before any option value is read; ``new`` (no
        database) reads them, which is where typer 0.29 would import pydantic.
        """
        environments = {".venv": MAIN_BIN}
        for venv in TYPER_VENVS:
            if (venv / "bin" / "sqlmig").exists():
                environments[f"bench/{venv.name}"] = venv / "bin"
            else:
                self.errors.append(f"case 4: {venv} is missing (sh bench/venv.sh)")
        commands: dict[tuple[str, str], list[str]] = {}
        for where, bin_ in environments.items():
            python, sqlmig = str(bin_ / "python"), str(bin_ / "sqlmig")
            new_dir = str(self.work / f"startup-new-{bin_.parent.name}")
            commands[(where, "python -c pass")] = [python, "-c", "pass"]
            commands[(where, 'python -c "import typer"')] = [python, "-c", "import typer"]
            commands[(where, "sqlmig --help")] = [sqlmig, "--help"]
            commands[(where, "sqlmig --version")] = [sqlmig, "--version"]
            commands[(where, "sqlmig new")] = [sqlmig, "--dir", new_dir, "new", "x", "--sequential"]
        series = {key: Series(" ".join(key)) for key in commands}
        keys = list(commands)
        for rep in range(max(self.config.reps * 4, 1)):
            for key in rotated(keys, rep):
                series[key].add(self.run(commands[key], self.env))
        for where, bin_ in environments.items():
            typer_version = versions(bin_ / "python", ["typer"])["typer"]
            label = f"({where}, typer {typer_version})"
            bare = series[(where, "python -c pass")]
            typer_ = series[(where, 'python -c "import typer"')]
            table.add(Row(f"python -c pass {label}", bare))
            typer_ratio = measure.ratio(typer_, bare)
            table.add(Row(f'python -c "import typer" {label}', typer_, typer_ratio, "pass"))
            for name in ("sqlmig --help", "sqlmig --version", "sqlmig new"):
                value = measure.ratio(series[(where, name)], typer_)
                table.add(
                    Row(
                        f"{name} {label}",
                        series[(where, name)],
                        value,
                        "import typer",
                        None if name == "sqlmig new" else Target.at_most(value, HELP_TARGET),
                        f"{measure.ratio(series[(where, name)], bare):.2f}x `python -c pass`",
                    )
                )

    # --- case 5: many files ---------------------------------------------------------------

    def case_many_files(self, table: Table) -> None:
        c = self.config
        small, large = c.validate_files
        dirs = {files: self.directory("sqlmig", files // 2) for files in (small, large)}
        commands = {
            files: [SQLMIG, "--dir", str(dirs[files]), "validate"] for files in (small, large)
        }
        series = {files: Series(f"validate {files}") for files in commands}
        for rep in range(c.reps):
            for files in rotated([small, large], rep):
                series[files].add(self.run(commands[files], self.env))
        for files in (small, large):
            target = (
                Target.below(series[files].median, VALIDATE_10K_SECONDS, "s")
                if files == 10_000
                else None
            )
            table.add(Row(f"validate, {files:,} files ({files // 2:,} migrations)", series[files]))
            table.rows[-1].target = target
        scale = large / small
        time_ratio = measure.ratio(series[large], series[small])
        rss_ratio = series[large].rss_median / series[small].rss_median
        table.add(
            Row(
                f"validate {large:,} / {small:,} files: time",
                None,
                time_ratio,
                "",
                Target.at_most(time_ratio, LINEAR_TARGET) if scale == 10 else None,
                f"peak RSS ratio {rss_ratio:.2f}x (includes the interpreter's own)",
            )
        )

        n = c.status_applied
        with self.fresh() as url:
            status_dir = self.directory("sqlmig", n)
            self.check(
                [SQLMIG, "--dir", str(status_dir), "-q", "baseline", workload.last_version(n)],
                {"DATABASE_URL": pg.libpq(url)},
            )
            argv, env = self.status_command("sqlmig", n, url)
            status = Series("status")
            for _ in range(c.reps):
                status.add(self.run(argv, env))
        row = table.add(Row(f"sqlmig status, {n:,} applied (baseline)", status))
        reference = self.kept.get(("sqlmig", "status"))
        if reference:
            row.ratio = measure.ratio(status, reference)
            row.ratio_to = f"status with {c.applied}"
            row.note = f"{n / c.applied:g}x the migrations"

    # --- case 6: one big script -----------------------------------------------------------

    def case_big_script(self, table: Table) -> None:
        c = self.config
        directory = self.work / "big"
        script = workload.big_script_dir(directory, c.big_bytes)
        size = script.stat().st_size
        commands = {
            "floor": lambda url: (
                [PYTHON, FLOOR, "apply", pg.libpq(url), str(directory)],
                self.env,
            ),
            "sqlmig": lambda url: (
                [SQLMIG, "--dir", str(directory), "up"],
                {**self.env, "DATABASE_URL": pg.libpq(url)},
            ),
        }
        series = {tool: Series(tool) for tool in commands}
        for rep in range(c.reps):
            for tool in rotated(list(commands), rep):
                with self.fresh() as url:
                    series[tool].add(self.run(*commands[tool](url)))
        floor = series["floor"]
        table.intro += f" Script: {size / 1e6:.1f} MB."
        for tool in ("floor", "sqlmig"):
            rss = series[tool].rss_high / size
            ratio = measure.ratio(series[tool], floor) if tool != "floor" else None
            table.add(
                Row(
                    f"{tool} up",
                    series[tool],
                    ratio,
                    "floor" if ratio is not None else "",
                    Target.at_most(rss, RSS_TARGET, "x the script (peak RSS)")
                    if tool == "sqlmig"
                    else None,
                    f"peak RSS {series[tool].rss_high / 1e6:.0f} MB = {rss:.2f}x the script",
                )
            )

    # --- case 7: summary of the peers ------------------------------------------------------

    def case_peers(self, table: Table) -> None:
        if not self.peers_ready:
            raise RuntimeError("bench/.venv has no alembic or yoyo: run `sh bench/venv.sh`")
        figures = [f"up N={n}" for n in self.config.up_ns] + ["no-op up", "status"]
        head = "| tool | " + " | ".join(figures) + " |"
        lines = [head, "|---|" + "---:|" * len(figures)]
        for tool in ("sqlmig", *PEERS):
            if tool == "dbmate" and self.dbmate.binary is None:
                why = f"not run: dbmate {self.dbmate.why_not}"
                lines.append(f"| {tool} | " + " | ".join([why] + ["—"] * (len(figures) - 1)) + " |")
                continue
            cells = []
            for figure in figures:
                mine = self.kept.get((tool, figure))
                floor_figure = "no-op" if figure in ("no-op up", "status") else figure
                floor = self.kept.get(("floor", floor_figure))
                if mine and floor:
                    cells.append(
                        f"{measure.ratio(mine, floor):.2f}x ({report.seconds(mine.median)} s)"
                    )
                else:
                    cells.append("—")
            lines.append(f"| {tool} | " + " | ".join(cells) + " |")
        table.extra += [
            "Ratio to the floor (median seconds in brackets); the floor of `up` is "
            "`floor.py apply`, of no-op up and status `floor.py noop`.",
            "",
            *lines,
        ]

    # --- case 8: latency ---------------------------------------------------------------------

    def case_latency(self, table: Table) -> None:
        c = self.config
        n = c.latency_n
        tools = self.tools()
        series = {tool: Series(tool) for tool in tools}
        with DelayProxy(self.admin, LATENCY_DELAY) as proxy:
            ping = self.ping(proxy)
            for rep in range(c.reps):
                for tool in rotated(tools, rep):
                    with self.fresh() as url:
                        series[tool].add(self.run(*self.up_command(tool, n, proxy.url(url))))
                        if rep == 0 and self.tables_made(url) != n:
                            raise RuntimeError(f"{tool} did not create the {n} tables")
        table.intro += (
            f" Measured round trip through the delay proxy: {ping * 1000:.1f} ms "
            "(median of 20 `SELECT 1`)."
        )
        trips = self.count_up(tools, n)
        floor, sqlmig = series["floor"], series["sqlmig"]

        def waiting(tool: str) -> str:
            count = trips[tool].total
            return f"{count} round trips, {count * ping:.2f} s at {ping * 1000:.1f} ms each"

        table.add(Row(f"floor up, N={n}", floor, note=waiting("floor")))
        value = measure.ratio(sqlmig, floor)
        table.add(
            Row(
                f"sqlmig up, N={n}",
                sqlmig,
                value,
                "floor",
                Target.at_most(value, LATENCY_FLOOR_TARGET),
                waiting("sqlmig"),
            )
        )
        for peer in tools[2:]:
            speedup = measure.ratio(series[peer], sqlmig)
            table.add(
                Row(
                    f"{peer} up, N={n}",
                    series[peer],
                    measure.ratio(series[peer], floor),
                    "floor",
                    Target.at_least(speedup, LATENCY_PEER_SPEEDUP, "x sqlmig's time"),
                    f"{speedup:.2f}x sqlmig's time; {waiting(peer)}",
                )
            )
        if not self.peers_ready:
            table.add(Row("alembic, yoyo", None, note="not run: bench/.venv has no peers"))
        self.missing(table, f"up, N={n}")

    def ping(self, proxy: DelayProxy, times: int = 20) -> float:
        """The median round trip of ``SELECT 1`` through ``proxy``, in seconds."""
        took = []
        with psycopg.connect(pg.libpq(proxy.url(self.admin))) as conn:
            for _ in range(times):
                start = time.perf_counter()
                conn.execute("SELECT 1").fetchone()
                took.append(time.perf_counter() - start)
        return statistics.median(took)

    def count_up(self, tools: Sequence[str], n: int) -> dict[str, roundtrips.Count]:
        """The round trips of one ``up`` of ``n`` migrations by each tool, fresh databases."""
        proxy = roundtrips.Proxy(self.admin)
        counts = {}
        try:
            for tool in tools:
                with self.fresh() as url:
                    proxy.reset()
                    self.check(*self.up_command(tool, n, proxy.url(url)))
                    counts[tool] = roundtrips.count(proxy.events)
        finally:
            proxy.close()
        return counts

    # --- case 9: up --single-transaction -----------------------------------------------------

    def case_single_transaction(self, table: Table) -> None:
        c = self.config
        n = c.single_n
        usage = subprocess.run(
            [SQLMIG, "up", "--help"], capture_output=True, text=True, env=self.env, check=False
        )
        if SINGLE_FLAG not in usage.stdout:
            table.add(
                Row(
                    f"sqlmig up {SINGLE_FLAG}",
                    None,
                    note=f"not available in this build (`sqlmig up --help` has no {SINGLE_FLAG})",
                )
            )
            return
        names = ("sqlmig up", f"sqlmig up {SINGLE_FLAG}")
        series = {name: Series(name) for name in names}
        for rep in range(c.reps):
            for name in rotated(names, rep):
                with self.fresh() as url:
                    argv, env = self.up_command("sqlmig", n, url)
                    if name != "sqlmig up":
                        argv = [*argv, SINGLE_FLAG]
                    series[name].add(self.run(argv, env))
                    if rep == 0 and self.tables_made(url) != n:
                        raise RuntimeError(f"`{name}` did not create the {n} tables")
        default, single = series["sqlmig up"], series[f"sqlmig up {SINGLE_FLAG}"]
        value = measure.ratio(single, default)
        table.add(Row(f"sqlmig up, N={n}", default))
        table.add(
            Row(
                f"sqlmig up {SINGLE_FLAG}, N={n}",
                single,
                value,
                "default",
                Target.below(value, 1.0, "x the default's time"),
            )
        )

    # --- case 10: a fleet ---------------------------------------------------------------------

    def case_fleet(self, table: Table) -> None:
        tenants, n, reps = self.config.fleet
        directory = str(self.directory("sqlmig", n))
        schemas = ";".join(f"CREATE SCHEMA tenant_{i:03d}" for i in range(tenants))

        def fleet(url: URL, *args: str) -> tuple[list[str], dict[str, str]]:
            env = {**self.env, "DATABASE_URL": pg.libpq(url)}
            return [SQLMIG, "--dir", directory, "--schemas-matching", "tenant_*", *args], env

        def prepared() -> contextlib.AbstractContextManager[URL]:
            return pg.fresh_database(self.admin, setup=schemas)

        names = ("--jobs 4", "--jobs 1")
        series = {name: Series(name) for name in names}
        for rep in range(reps):
            for name in rotated(names, rep):
                with prepared() as url:
                    series[name].add(self.run(*fleet(url, *name.split(), "up")))
                    if rep == 0 and self.tables_made(url) != tenants * n:
                        raise RuntimeError(f"`{name} up` did not create {tenants * n} tables")
        loop = Series("a loop of sqlmig up")
        status = Series("status")
        with prepared() as url:
            start = time.perf_counter()
            for i in range(tenants):
                tenant = f"tenant_{i:03d}"
                own = url.update_query_dict({"options": f"-csearch_path={tenant}"})
                argv = [SQLMIG, "--dir", directory, "--schema", tenant, "up"]
                self.run(argv, {**self.env, "DATABASE_URL": pg.libpq(own)})
            loop.add(measure.Sample(time.perf_counter() - start, 0, ""))
            for _ in range(reps):
                status.add(self.run(*fleet(url, "status")))
        with prepared() as url:
            peak = self.peak_connections(url, *fleet(url, "--jobs", "4", "up"))
        four, one = series["--jobs 4"], series["--jobs 1"]
        table.add(Row(f"--jobs 1 up, {tenants} x {n}", one))
        speedup = measure.ratio(one, four)
        table.add(
            Row(
                f"--jobs 4 up, {tenants} x {n}",
                four,
                speedup,
                "faster than --jobs 1",
                Target.at_least(speedup, FLEET_SPEEDUP),
                f"peak {peak} sqlmig connections (budget 20)",
            )
        )
        against_loop = measure.ratio(loop, four)
        table.add(
            Row(
                f"a loop of {tenants} `sqlmig up` processes",
                loop,
                against_loop,
                "slower than --jobs 4",
                Target.at_least(against_loop, LOOP_SPEEDUP),
                "one run",
            )
        )
        table.add(
            Row(
                f"status over {tenants} targets",
                status,
                target=Target.below(status.median, FLEET_STATUS_SECONDS, "s"),
            )
        )

    def peak_connections(self, url: URL, argv: list[str], env: dict[str, str]) -> int:
        """The most sessions sqlmig held at once while ``argv`` ran."""
        seen = [0]
        done = threading.Event()

        def watch() -> None:
            with psycopg.connect(pg.libpq(url), autocommit=True) as watcher:
                while not done.is_set():
                    row = watcher.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sqlmig'"
                    ).fetchone()
                    seen[0] = max(seen[0], int(row[0]) if row else 0)
                    time.sleep(0.005)

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        try:
            self.run(argv, env)
        finally:
            done.set()
            thread.join()
        return seen[0]

    # --- round trips ------------------------------------------------------------------------

    def case_round_trips(self, table: Table) -> None:
        n1, n2 = self.config.rt_ns
        proxy = roundtrips.Proxy(self.admin)
        counts: dict[tuple[str, str], roundtrips.Count] = {}
        try:
            for tool in self.tools():
                for n in (n1, n2):
                    with self.fresh() as url:
                        through = proxy.url(url)
                        proxy.reset()
                        self.check(*self.up_command(tool, n, through))
                        counts[(tool, f"up {n}")] = roundtrips.count(proxy.events)
                        if not proxy.events:
                            raise RuntimeError(f"{tool} did not connect through the proxy")
                        if n != n2:
                            continue
                        if tool != "floor":  # the floor has no no-op: it would apply again
                            proxy.reset()
                            self.check(*self.up_command(tool, n, through))
                            counts[(tool, "no-op up")] = roundtrips.count(proxy.events)
                        proxy.reset()
                        self.check(*self.status_command(tool, n, through))
                        counts[(tool, "status")] = roundtrips.count(proxy.events)
                        if tool == "floor":
                            counts[(tool, "no-op up")] = counts[(tool, "status")]
        finally:
            proxy.close()

        lines = [
            f"| tool | up, N={n1} | up, N={n2} | per migration | per run | connections "
            "| no-op up | status |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        figures: dict[str, dict[str, float]] = {}
        for tool in self.tools():
            a, b = counts[(tool, f"up {n1}")], counts[(tool, f"up {n2}")]
            per = (b.total - a.total) / (n2 - n1)
            fixed = b.total - per * n2
            noop = counts[(tool, "no-op up")]
            status = counts[(tool, "status")]
            figures[tool] = {
                "per migration": per,
                "per run": fixed,
                "no-op up": noop.total,
                "status": status.total,
            }
            name = tool if tool != "floor" else "floor (no-op and status: `floor.py noop`)"
            lines.append(
                f"| {name} | {a.total} | {b.total} | {per:g} | {fixed:g} | {b.connections} "
                f"| {noop.total} | {status.total} |"
            )
        if self.dbmate.binary is None:
            lines.append(f"| dbmate | not run: {self.dbmate.why_not} |" + " |" * 6)
        table.extra += lines

        labels = {
            "per migration": "per transactional migration",
            "per run": "fixed per `up` run",
            "no-op up": "no-op `up`",
            "status": "`status`",
        }
        for key, bound in RT_TARGETS.items():
            value = figures["sqlmig"][key]
            unit = "round trip" if bound == 1 else "round trips"
            table.add(
                Row(
                    f"sqlmig round trips: {labels[key]}",
                    None,
                    target=Target.at_most(value, bound, unit),
                    note=f"{value:g}",
                )
            )
        for tool in ("sqlmig", "floor", "dbmate"):
            if tool not in figures:
                continue
            a, b = counts[(tool, f"up {n1}")], counts[(tool, f"up {n2}")]
            table.extra += ["", f"**{tool}**, what each round trip sent (SQL shortened):", ""]
            table.extra += _breakdown(a, b, n1, n2)
            if tool == "dbmate":
                table.extra += [
                    "",
                    "`(sync)`: executing the statement parsed in the round trip before it "
                    "(lib/pq sends a query with parameters in two round trips).",
                ]
        for what in ("no-op up", "status"):
            table.extra += ["", f"**sqlmig {what}** ({n2} applied):", ""]
            table.extra += [
                f"- {times}x `{shape}`"
                for shape, times in counts[("sqlmig", what)].by_shape.most_common()
            ]


def _breakdown(a: roundtrips.Count, b: roundtrips.Count, n1: int, n2: int) -> list[str]:
    lines = ["| round trip | per migration | per run |", "|---|---:|---:|"]
    shapes = sorted(set(a.by_shape) | set(b.by_shape), key=lambda s: -b.by_shape.get(s, 0))
    for shape in shapes:
        per = (b.by_shape.get(shape, 0) - a.by_shape.get(shape, 0)) / (n2 - n1)
        fixed = b.by_shape.get(shape, 0) - per * n2
        text = shape.replace("|", "\\|")
        lines.append(f"| `{text}` | {per:g} | {fixed:g} |")
    return lines


# --- the report's header -------------------------------------------------------------------


def versions(python: Path, packages: Sequence[str]) -> dict[str, str]:
    if not python.exists():
        return dict.fromkeys(packages, "not installed")
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for p in sys.argv[1:]:\n"
        "    try: out[p] = m.version(p)\n"
        "    except m.PackageNotFoundError: out[p] = 'not installed'\n"
        "print(json.dumps(out))"
    )
    result = subprocess.run(
        [str(python), "-c", code, *packages], capture_output=True, text=True, check=True
    )
    return dict(json.loads(result.stdout))


def machine() -> dict[str, str]:
    model = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram = "?"
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    return {
        "CPU": model,
        "cores": str(os.cpu_count()),
        "RAM": ram,
        "OS": f"{platform.system()} {platform.release()}",
    }


def header(
    config: Config, server: pg.Server, dbmate: Dbmate, elapsed: float | None = None
) -> list[str]:
    main = versions(MAIN_BIN / "python", ["sqlmig", "SQLAlchemy", "psycopg", "typer"])
    peer = versions(
        PEER_BIN / "python", ["alembic", "yoyo-migrations", "SQLAlchemy", "psycopg", "pyinstrument"]
    )
    python = subprocess.run(
        [PYTHON, "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    settings = server.settings("fsync", "synchronous_commit", "shared_buffers")
    m = machine()
    mode = "smoke (`make bench-smoke`)" if config.smoke else "full (`make bench`)"
    lines = [
        "# sqlmig benchmark results",
        "",
        f"Written by `bench/run.py`, {mode}, on "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
        + (f" in {elapsed / 60:.1f} min" if elapsed else "")
        + ". Every figure is the median of the repetitions (n) with min and max; every "
        "ratio is a ratio of medians measured in this run, the tools interleaved. "
        "Targets are from issue 6; a miss is marked **MISS**.",
        "",
        "| | |",
        "|---|---|",
        f"| machine | {m['CPU']}, {m['cores']} cores, {m['RAM']} RAM, {m['OS']} |",
        f"| Python | {python} (project .venv; peers in bench/.venv) |",
        f"| PostgreSQL | {server.version()}, {server.source}; fsync={settings['fsync']}, "
        f"synchronous_commit={settings['synchronous_commit']}, "
        f"shared_buffers={settings['shared_buffers']} |",
        f"| sqlmig | {main['sqlmig']} (SQLAlchemy {main['SQLAlchemy']}, psycopg "
        f"{main['psycopg']}, typer {main['typer']}) |",
        f"| alembic | {peer['alembic']} (SQLAlchemy {peer['SQLAlchemy']}, psycopg "
        f"{peer['psycopg']}) |",
        f"| yoyo-migrations | {peer['yoyo-migrations']} |",
        "| dbmate | "
        + (
            f"{dbmate.version} (npm package `dbmate`, its Go binary run directly)"
            if dbmate.binary
            else dbmate.why_not
        )
        + " |",
        f"| repetitions | {config.reps} (case 4: {config.reps * 4}) |",
        "",
    ]
    return lines


def byte_compile() -> None:
    """Compile the project's modules before anything is timed.

    pip compiles an installed package; an editable checkout is compiled on first
    import, unless PYTHONDONTWRITEBYTECODE is set, when every run would compile
    sqlmig from source (tens of milliseconds) while its peers and the floor load
    their site-packages bytecode.
    """
    sources = [str(ROOT / "src"), str(ROOT / "alembic_compat"), *map(str, BENCH.glob("*.py"))]
    subprocess.run([PYTHON, "-m", "compileall", "-q", *sources], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="N = 20, one repetition, small cases")
    parser.add_argument("--output", type=Path, help="where to write the report")
    parser.add_argument("--reps", type=int, help="repetitions (default 5; smoke 1)")
    parser.add_argument(
        "--cases", help="comma-separated subset to run: 1-9 and rt (round trips); default all"
    )
    args = parser.parse_args(argv)
    config = SMOKE if args.smoke else FULL
    if args.reps:
        config = replace(config, reps=args.reps)
    output = args.output
    if output is None:
        output = (
            Path(tempfile.gettempdir()) / "sqlmig-bench-smoke.md"
            if config.smoke
            else BENCH / "RESULTS.md"
        )
    for needed in (PYTHON, SQLMIG):
        if not Path(needed).exists():
            print(f"{needed} is missing: run `make install` first", file=sys.stderr)
            return 2

    started = time.perf_counter()
    byte_compile()
    log("starting PostgreSQL ...")
    server = pg.start()
    work = Path(tempfile.mkdtemp(prefix="sqlmig-bench-"))
    try:
        bench = Bench(config, server, work)
        bench.all_cases(set(args.cases.split(",")) if args.cases else None)
        elapsed = time.perf_counter() - started
        footer = _footer(bench.errors)
        text = report.render(header(config, server, bench.dbmate, elapsed), bench.tables, footer)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        server.stop()
    output.write_text(text, encoding="utf-8")
    log(f"wrote {output} in {(time.perf_counter() - started) / 60:.1f} min")
    if bench.errors:
        for error in bench.errors:
            print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


NOTES = [
    "## Notes",
    "",
    "- Each tool runs as its users run it, with its default output: sqlmig prints a line "
    "as each migration starts and ends (stderr), alembic logs one per migration (its "
    "generic template's logging), yoyo prints nothing in `--batch` mode, dbmate prints "
    "a line as each migration starts and ends (stdout).",
    "- dbmate comes from npm (`bench/package.json`, locked; `sh bench/npm.sh` installs it "
    "into bench/node_modules). Its npm command is a node wrapper that execs the Go binary "
    "of the platform's package; the bench runs that binary directly, as users of its "
    "release builds do, so node's start-up is not counted against it.",
    "- The floor of `up` (`bench/floor.py`) does the same server work as sqlmig with the "
    "same round trips per migration (BEGIN, script, tracking upsert, COMMIT) and nothing "
    "else: no lock, no checks, no SQLAlchemy. The floor of case 3 only imports SQLAlchemy "
    "and psycopg (and typer, for floor + typer), connects and reads the tracking table.",
    "- Before each measured run the bench creates the database and runs CHECKPOINT, so that "
    "no run pays for the writes of the one before. Absolute times on a shared VM drift "
    "between runs; compare the ratios, which are measured with the tools interleaved.",
    "- Case 8's delay proxy (`bench/delay.py`) delays each chunk by the same time whatever "
    "its size, and sends each at its own deadline: a tool pays for its round trips, not "
    "for its bytes. Its peers' round trips are counted on a separate run without delay.",
    "- Re-run part of it with `.venv/bin/python bench/run.py --cases 1,3 --output FILE`; "
    "profile a command with `.venv/bin/python bench/profiling.py up 1000` (see its "
    "docstring).",
    "",
]


def _footer(errors: list[str]) -> list[str]:
    lines = list(NOTES)
    if errors:
        lines += ["## Errors", "", *[f"- {e}" for e in errors], ""]
    return lines


if __name__ == "__main__":
    sys.exit(main())
