"""Faults from the server and the network in the middle of a run, on a real PostgreSQL.

Each case breaks a run while a migration is in progress: the server terminates the
work or the lock connection, the network drops or stalls (through ``tcpproxy``, a
proxy the test controls), the server restarts. The run must stop with a clear error
and exit code, never hang, leave a tracking table that tells the truth, and a fresh
run afterwards must complete with every migration applied exactly once (a ledger
table gets one row per migration that really ran).

"In the middle of a migration" is a state the test waits for, not a guess: migration
0002 waits on a *gate*, an advisory lock the test holds, until the test opens it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers import connect, sessions, tables, tracking, write
from sqlalchemy.engine import make_url
from tcpproxy import TcpProxy, proxy_to

from sqlmig.database import new_engine
from sqlmig.errors import ConnectionStalledError
from sqlmig.migrator import Migrator
from sqlmig.watchdog import GRACE

pytestmark = pytest.mark.integration

SCRIPT = Path(sys.executable).parent / "sqlmig"
MIGRATION_LOCK = 123456789
GATE = 4242
VERSIONS = ["0001", "0002", "0003"]


# --- the database, seen from outside ------------------------------------------------


def close_gate(observer: psycopg.Connection[Any]) -> None:
    observer.execute("SELECT pg_advisory_lock(%s)", (GATE,))


def open_gate(observer: psycopg.Connection[Any]) -> None:
    observer.execute("SELECT pg_advisory_unlock_all()")


def wait_at_gate(observer: psycopg.Connection[Any], within: float = 20.0) -> int:
    """The pid of the run's work session once migration 0002 waits at the gate."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        row = observer.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event = 'advisory' AND query LIKE '%lock_shared(4242)%'"
        ).fetchone()
        if row is not None:
            return int(row[0])
        time.sleep(0.02)
    pytest.fail(f"migration 0002 did not reach the gate within {within}s")


def lock_holder_pid(observer: psycopg.Connection[Any]) -> int:
    row = observer.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND classid = 0 AND objid = %s AND objsubid = 1 "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        (MIGRATION_LOCK,),
    ).fetchone()
    assert row is not None, "nobody holds the migration lock"
    return int(row[0])


def terminate(observer: psycopg.Connection[Any], pid: int) -> None:
    observer.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


def ledger(observer: psycopg.Connection[Any]) -> list[str]:
    """One entry per migration whose work really committed, in order."""
    return [str(v) for (v,) in observer.execute("SELECT version FROM ledger ORDER BY seq")]


def assert_all_applied_once(observer: psycopg.Connection[Any]) -> None:
    assert tracking(observer) == dict.fromkeys(VERSIONS, "applied")
    assert ledger(observer) == VERSIONS
    assert {"t2", "t3"} <= tables(observer)


def wait_until_alone(observer: psycopg.Connection[Any], within: float = 20.0) -> None:
    """Until no session of sqlmig is left on the server (a dropped one may linger briefly)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if sessions(observer, "sqlmig") == 0:
            return
        time.sleep(0.05)
    pytest.fail(f"sqlmig sessions still on the server after {within}s")


# --- migrations and runs --------------------------------------------------------------


def write_migrations(folder: Path, *, no_transaction: bool = False) -> Path:
    """0001 creates the ledger; 0002 waits at the gate half-way; 0003 comes after."""
    flag = "-- sqlmig:no-transaction\n" if no_transaction else ""
    files = {
        "0001_ledger.up.sql": (
            "CREATE TABLE ledger (seq serial PRIMARY KEY, version text NOT NULL);\n"
            "INSERT INTO ledger (version) VALUES ('0001');\n"
        ),
        "0002_gated.up.sql": (
            f"{flag}CREATE TABLE t2 (id int);\n"
            "INSERT INTO ledger (version) VALUES ('0002');\n"
            f"SELECT pg_advisory_xact_lock_shared({GATE});\n"
        ),
        "0003_after.up.sql": (
            "CREATE TABLE t3 (id int);\nINSERT INTO ledger (version) VALUES ('0003');\n"
        ),
    }
    return write(folder, files)


def start(url: str, folder: Path, *options: str) -> subprocess.Popen[str]:
    """`sqlmig up` in a subprocess, with nothing of the test's environment but PATH and such."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("SQLMIG_") and k != "DATABASE_URL"
    }
    env["SQLMIG_DATABASE_URL"] = url
    return subprocess.Popen(
        [str(SCRIPT), "--dir", str(folder), "--no-color", *options, "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str
    seconds: float  # from the call to finish() until the process ended

    @property
    def error(self) -> str:
        """The error message: from "error: " to the end, traceback-free."""
        assert "Traceback" not in self.stderr, self.stderr
        assert "error: " in self.stderr, self.stderr
        return self.stderr[self.stderr.index("error: ") :]


def finish(proc: subprocess.Popen[str], within: float = 60.0) -> Finished:
    began = time.monotonic()
    try:
        out, err = proc.communicate(timeout=within)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"sqlmig hung: still running after {within}s\n{err}")
    return Finished(proc.returncode, out, err, time.monotonic() - began)


def run(url: str, folder: Path, *options: str) -> Finished:
    return finish(start(url, folder, *options))


def within(seconds: float, call: Callable[[], object], proxy: TcpProxy) -> BaseException:
    """The exception ``call`` raises in a thread; fails the test if it is still blocked
    after ``seconds`` (dropping the proxy's connections then sets the thread free)."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        proxy.drop()
        thread.join(10)
        pytest.fail(f"still blocked after {seconds}s: it hung")
    assert raised, "it returned without an error"
    return raised[0]


# --- 1. the server terminates the runner's connections ------------------------------------


def test_terminated_work_connection_exits_4_and_rolls_back_the_migration_in_progress(
    database_url: str, observer: psycopg.Connection[Any], tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path / "migrations")
    close_gate(observer)
    proc = start(database_url, folder)
    terminate(observer, wait_at_gate(observer))
    done = finish(proc)

    assert done.code == 4
    assert done.error.startswith(
        f"error: migration 0002 (up) failed at {folder / '0002_gated.up.sql'}: the connection "
        "to the server was lost: "
    )
    # Its COMMIT had gone out with it: the run asked the server, on the lock's connection,
    # how the session it left behind ended, and can say so for certain.
    assert done.error.endswith(
        "\nIts transaction was rolled back: nothing of 0002 remains. Before it, this run "
        "applied 1: 0001. Run `sqlmig up` again once the server answers.\n"
    )
    assert tracking(observer) == {"0001": "applied"}
    assert ledger(observer) == ["0001"]
    assert "t2" not in tables(observer)

    open_gate(observer)
    assert run(database_url, folder).code == 0
    assert_all_applied_once(observer)


def test_terminated_work_connection_in_a_no_transaction_migration_leaves_it_failed_for_repair(
    database_url: str, observer: psycopg.Connection[Any], tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path / "migrations", no_transaction=True)
    close_gate(observer)
    proc = start(database_url, folder)
    terminate(observer, wait_at_gate(observer))
    done = finish(proc)

    assert done.code == 4
    assert (
        "the connection to the server was lost: terminating connection due to administrator "
        "command [SQLSTATE 57P01]\nIt runs outside a transaction: statements 1-2 of 3 were "
        "applied and committed, and statement 3 (line 4) was running: it may or may not have "
        "taken effect. It is recorded as 'failed' and `sqlmig up` will refuse to run until "
        "you resolve it"
    ) in done.error
    assert "`sqlmig repair 0002 --applied`, `--rolled-back` or `--forget`" in done.error
    # The truth: its first two statements committed, and the row says it needs a look.
    assert tracking(observer) == {"0001": "applied", "0002": "failed"}
    assert ledger(observer) == ["0001", "0002"]
    assert "t2" in tables(observer)

    refused = run(database_url, folder)
    assert refused.code == 1
    assert "0002 0002_gated.up.sql: failed" in refused.error

    # The operator looks: the gate statement changes nothing, so 0002 is complete.
    open_gate(observer)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQLMIG_")}
    repaired = subprocess.run(
        [
            str(SCRIPT),
            "--database-url",
            database_url,
            "--dir",
            str(folder),
            "repair",
            "0002",
            "--applied",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert repaired.returncode == 0, repaired.stderr
    assert run(database_url, folder).code == 0
    assert_all_applied_once(observer)


def test_terminated_lock_connection_stops_the_run_before_the_next_migration(
    database_url: str, observer: psycopg.Connection[Any], tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path / "migrations")
    close_gate(observer)
    proc = start(database_url, folder)
    wait_at_gate(observer)
    terminate(observer, lock_holder_pid(observer))
    open_gate(observer)  # 0002 finishes: it had started while the lock was held
    done = finish(proc)

    assert done.code == 4
    assert done.error == (
        "error: the connection holding the migration lock was lost (terminated by the "
        "server, a restart or the network), so no further migration was started. Run "
        "`sqlmig status` to see the state, then run again.\n"
    )
    assert "[2/3] 0002 gated done" in done.stderr
    assert "0003" not in done.stderr
    assert tracking(observer) == {"0001": "applied", "0002": "applied"}
    assert ledger(observer) == ["0001", "0002"]
    assert "t3" not in tables(observer)

    assert run(database_url, folder).code == 0
    assert_all_applied_once(observer)


# --- 2. the network: dropped, stalled ---------------------------------------------------


def test_dropped_network_fails_the_run_at_once_and_leaves_the_truth(
    database_url: str, observer: psycopg.Connection[Any], tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path / "migrations")
    close_gate(observer)
    with proxy_to(database_url) as proxy:
        proc = start(proxy.url(database_url), folder, "--format", "json")
        wait_at_gate(observer)
        proxy.drop()
        done = finish(proc, within=30)

    assert done.code == 4
    assert done.seconds < 5
    assert done.error.startswith(
        f"error: migration 0002 (up) failed at {folder / '0002_gated.up.sql'}: the connection "
        "to the server was lost: "
    )
    # Its statements went out together with its COMMIT, and both connections are gone:
    # until the server notices, it cannot be known whether that COMMIT will run.
    assert (
        "0002 was sent with its COMMIT and no answer came back, so it is either applied and "
        "recorded, or not at all." in done.error
    )
    document = json.loads(done.stdout)
    assert document["ok"] is False
    keys = ("type", "exit_code", "version", "file", "outcome")
    assert {k: document["error"][k] for k in keys} == {
        "type": "ConnectionLostError",
        "exit_code": 4,
        "version": "0002",
        "file": str(folder / "0002_gated.up.sql"),
        "outcome": "uncertain",
    }
    assert [m["version"] for m in document["migrations"]] == ["0001"]
    wait_until_alone(observer)
    assert tracking(observer) == {"0001": "applied"}
    assert ledger(observer) == ["0001"]

    open_gate(observer)
    assert run(database_url, folder).code == 0
    assert_all_applied_once(observer)


def test_stalled_network_fails_the_run_within_its_statement_timeout_instead_of_hanging(
    database_url: str, observer: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """The proxy keeps every socket open and forwards nothing: on loopback the kernel
    still ACKs, so only sqlmig's own watchdog can end the wait. 0002 sends 3 statements
    plus BEGIN, its record and COMMIT, each allowed the 1 s statement timeout."""
    folder = write_migrations(tmp_path / "migrations")
    limit = 6 * 1 + GRACE
    close_gate(observer)
    with proxy_to(database_url) as proxy:
        proc = start(proxy.url(database_url), folder, "--statement-timeout", "1")
        wait_at_gate(observer)
        proxy.stall()
        done = finish(proc, within=limit + 30)
        assert done.seconds < limit + 5
        assert done.code == 4
        assert done.error.startswith(
            f"error: migration 0002 (up) failed at {folder / '0002_gated.up.sql'}: the "
            f"connection stalled: no answer from the server within {limit:g}s (the statement "
            "timeout of 1s for each statement, plus a grace period), so sqlmig closed it\n"
            "0002 was sent with its COMMIT and no answer came back, so it is either applied "
            "and recorded, or not at all. Until the server notices the connection is gone, "
            "its session keeps its locks, so a new run may wait for the migration lock."
        )
        assert "[SQLSTATE" not in done.error
        # The partition heals: the server learns that the client is gone.
        proxy.resume()
        wait_until_alone(observer)

    assert tracking(observer) == {"0001": "applied"}
    assert ledger(observer) == ["0001"]
    open_gate(observer)
    assert run(database_url, folder).code == 0
    assert_all_applied_once(observer)


def test_stall_while_waiting_for_the_lock_fails_instead_of_waiting_forever(
    database_url: str, observer: psycopg.Connection[Any], tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path / "migrations")
    observer.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))  # another run
    with proxy_to(database_url) as proxy:
        migrator = Migrator(
            proxy.url(database_url),
            folder,
            lock_timeout=120,
            statement_timeout=1,
            on_event=lambda event: proxy.stall(),
        )
        began = time.monotonic()
        with migrator:
            failure = within(1 + GRACE + 5, migrator.up, proxy)
        took = time.monotonic() - began
        proxy.resume()

    assert took < 1 + GRACE + 5
    assert isinstance(failure, ConnectionStalledError)
    assert failure.exit_code == 4
    assert str(failure).startswith("the server stopped answering (server 127.0.0.1:")
    assert str(failure).endswith(
        f"no answer within {1 + GRACE:g}s while taking the migration lock. Nothing was run. "
        "Check the network to the server, then run again."
    )
    wait_until_alone(observer)
    assert "schema_migrations" not in tables(observer)

    open_gate(observer)  # releases the lock too
    assert run(database_url, folder).code == 0
    assert_all_applied_once(observer)


def test_stalled_network_while_connecting_times_out_with_exit_4(
    database_url: str, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path / "migrations")
    with proxy_to(database_url) as proxy:
        proxy.stall()
        url = make_url(proxy.url(database_url)).update_query_dict({"connect_timeout": "2"})
        done = run(url.render_as_string(hide_password=False), folder)

    assert done.code == 4
    assert done.seconds < 10
    assert done.error.startswith(f"error: timed out connecting (server 127.0.0.1:{proxy.port}, ")


def test_stalled_network_without_a_statement_timeout_keeps_waiting_for_a_long_migration(
    database_url: str, observer: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Without a statement timeout, a slow migration cannot be told from a stall: the
    run waits (on a real network TCP keepalives and tcp_user_timeout end it), and it
    finishes normally once the bytes flow again."""
    folder = write_migrations(tmp_path / "migrations")
    close_gate(observer)
    with proxy_to(database_url) as proxy:
        proc = start(proxy.url(database_url), folder)
        wait_at_gate(observer)
        proxy.stall()
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=GRACE + 2)
        proxy.resume()
        open_gate(observer)
        done = finish(proc)
    assert done.code == 0, done.stderr
    assert_all_applied_once(observer)


# --- 3. the server restarts -------------------------------------------------------------


class PrivateServer:
    """An embedded PostgreSQL of this test alone, to stop and start at will."""

    def __init__(self, datadir: str) -> None:
        import pgserver

        self.server = pgserver.get_server(datadir, cleanup_mode="stop")
        self.url = self.server.get_uri()
        self.socket_dir = str(make_url(self.url).query["host"])

    def _pg_ctl(self, *args: str) -> None:
        from pgserver import _commands

        _commands.pg_ctl(
            ["-w", *args], pgdata=self.server.pgdata, user=self.server.system_user, timeout=60
        )

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "stop")  # ends every session, as a restart does

    def start(self) -> None:
        # The options pgserver itself starts it with: no TCP, a socket in socket_dir.
        self._pg_ctl(
            "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.server.log), "start"
        )


@pytest.fixture
def private_server() -> Iterator[PrivateServer]:
    datadir = tempfile.mkdtemp(prefix="sqlmig-restart-")
    try:
        server = PrivateServer(datadir)
        try:
            yield server
        finally:
            server.server.cleanup()
    finally:
        shutil.rmtree(datadir, ignore_errors=True)


def test_server_restart_mid_migration_exits_4_and_a_rerun_completes_once_it_is_back(
    private_server: PrivateServer, tmp_path: Path
) -> None:
    url = private_server.url
    folder = write_migrations(tmp_path / "migrations")
    with connect(url) as gatekeeper:
        close_gate(gatekeeper)
        proc = start(url, folder)
        wait_at_gate(gatekeeper)
        private_server.stop()
    done = finish(proc)

    assert done.code == 4
    assert done.error.startswith(
        f"error: migration 0002 (up) failed at {folder / '0002_gated.up.sql'}: the connection "
        "to the server was lost: "
    )
    assert (
        "0002 was sent with its COMMIT and no answer came back, so it is either applied and "
        "recorded, or not at all." in done.error
    )

    while_down = run(url, folder)
    assert while_down.code == 4
    assert while_down.error.startswith("error: connection refused (server ")

    private_server.start()
    with connect(url) as observer:
        assert tracking(observer) == {"0001": "applied"}
        assert ledger(observer) == ["0001"]
        again = run(url, folder)
        assert again.code == 0, again.stderr
        assert_all_applied_once(observer)


# --- connection settings and timeouts -------------------------------------------------------


def test_new_engine_asks_libpq_for_keepalives_and_a_tcp_user_timeout_unless_the_url_says(
    database_url: str,
) -> None:
    def parameters(url: str) -> dict[str, str]:
        engine = new_engine(url)
        try:
            with engine.connect() as conn:
                info = conn.connection.driver_connection.info  # type: ignore[union-attr]
                return dict(info.get_parameters())
        finally:
            engine.dispose()

    defaults = parameters(database_url)
    assert {
        k: defaults.get(k) for k in ("keepalives", "keepalives_idle", "keepalives_interval")
    } == {
        "keepalives": "1",
        "keepalives_idle": "30",
        "keepalives_interval": "10",
    }
    assert defaults.get("keepalives_count") == "3"
    assert defaults.get("tcp_user_timeout") == "60000"
    assert defaults.get("connect_timeout") == "10"
    assert defaults.get("application_name") == "sqlmig"

    own = {
        "keepalives_idle": "7",
        "tcp_user_timeout": "1234",
        "connect_timeout": "3",
        "application_name": "deployer",
    }
    chosen = parameters(make_url(database_url).update_query_dict(own).render_as_string(False))
    assert {k: chosen.get(k) for k in own} == own
    assert chosen.get("keepalives_interval") == "10"


def test_a_sub_millisecond_timeout_is_applied_as_1ms_not_as_no_limit(
    engine: Any, tmp_path: Path
) -> None:
    """PostgreSQL reads 0 as "no limit": 0.0004 s must not round down to it."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_seen.up.sql").write_text(
        "CREATE TABLE seen AS SELECT current_setting('lock_timeout') AS lock_timeout;\n"
    )
    Migrator(engine, folder, migration_lock_timeout=0.0004).up()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT lock_timeout FROM seen").scalar_one() == "1ms"


def test_a_script_of_many_slow_statements_within_the_timeout_is_not_taken_for_a_stall(
    database_url: str, observer: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """PostgreSQL applies the statement timeout to each statement of a script, so the
    watchdog allows one per statement: nine sleeps of 0.7 s run 6.3 s, longer than
    one timeout plus the grace period, and the run still succeeds."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_slow.up.sql").write_text(
        "CREATE TABLE slow (id int);\n" + "SELECT pg_sleep(0.7);\n" * 9
    )
    assert 1 + GRACE < 9 * 0.7
    done = run(database_url, folder, "--statement-timeout", "1")
    assert done.code == 0, done.stderr
    assert "stalled" not in done.stderr
    assert tracking(observer) == {"0001": "applied"}


@pytest.mark.parametrize("transaction", ["", "-- sqlmig:no-transaction\n"])
def test_a_migration_that_sets_its_own_statement_timeout_is_not_taken_for_a_stall(
    database_url: str, observer: psycopg.Connection[Any], tmp_path: Path, transaction: str
) -> None:
    """Raising the timeout before a long statement (an index build, say) is the
    migration's own decision: its 7 s sleep outlasts the watchdog's 3 x 0.5 s + grace
    and still succeeds."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_long.up.sql").write_text(
        f"{transaction}SET statement_timeout = '60s';\nSELECT pg_sleep(7);\n"
    )
    assert 3 * 0.5 + GRACE < 7
    done = run(database_url, folder, "--statement-timeout", "0.5")
    assert done.code == 0, done.stderr
    assert tracking(observer) == {"0001": "applied"}


@pytest.mark.parametrize(("query", "user_timeout"), [("", 60_000), ("?tcp_user_timeout=0", 0)])
def test_the_lock_connection_of_an_application_engine_gets_keepalives_on_its_socket(
    database_url: str, query: str, user_timeout: int
) -> None:
    """An application's engine may not ask libpq for keepalives: the lock's socket gets
    them anyway, except a tcp_user_timeout the URL sets (0 too: the kernel's "never")."""
    import socket

    from sqlalchemy import create_engine

    from sqlmig.locking import advisory_lock
    from sqlmig.watchdog import socket_fd

    with proxy_to(database_url) as proxy:
        url = make_url(proxy.url(database_url)).set(drivername="postgresql+psycopg")
        engine = create_engine(url.render_as_string(hide_password=False) + query)
        try:
            with advisory_lock(engine, timeout=0) as lock:
                fd = socket_fd(lock.connection)
                assert fd is not None
                sock = socket.socket(fileno=os.dup(fd))
                try:
                    options = {
                        "keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                        "idle": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                        "count": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
                        "user_timeout": sock.getsockopt(
                            socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT
                        ),
                    }
                finally:
                    sock.close()
        finally:
            engine.dispose()

    assert options == {"keepalive": 1, "idle": 30, "count": 3, "user_timeout": user_timeout}
