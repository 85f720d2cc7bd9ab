"""PgBouncer in transaction pooling mode in front of the test PostgreSQL.

Started once per test run (the first test that asks for it) on a free loopback port,
with a temporary directory of its own for its config, auth file, log and pid file,
and stopped at the end. Any database of the server is reachable through it under the
same name, so each test's fresh database is too. Clients log in with a password
(md5), so the tests also see that no password shows through the pooler; PgBouncer
logs in to the server with the same user, over the server's Unix socket or TCP.

PgBouncer refuses to run as root: as root it is started as an unprivileged user.
The binary comes from the Debian package `pgbouncer` (`make test` installs it when
missing, as root with apt-get: tests/install-pgbouncer.sh).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

CANDIDATES = ("pgbouncer", "/usr/sbin/pgbouncer")
# Who runs PgBouncer when the tests run as root: pgserver's own user where it exists
# (it can reach that server's socket), else nobody.
UNPRIVILEGED = ("pgserver", "nobody")


class NoPgBouncerError(RuntimeError):
    """PgBouncer is not installed, or did not start; the message says which."""


@dataclass
class Bouncer:
    """A running PgBouncer: its port, the credentials it accepts, how to stop it."""

    port: int
    user: str
    password: str
    process: subprocess.Popen[bytes]
    directory: Path

    def url(self, database_url: str) -> str:
        """``database_url``'s database, reached through PgBouncer."""
        name = make_url(database_url).database
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{name}"

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)


def binary() -> str | None:
    for candidate in CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def start(admin_url: str) -> Bouncer:
    """PgBouncer in transaction mode in front of the server of ``admin_url``."""
    program = binary()
    if program is None:
        raise NoPgBouncerError(
            "PgBouncer is not installed: apt-get install pgbouncer (`make test` does it "
            "when run as root)"
        )
    server = make_url(admin_url)
    host = server.host or str(server.query.get("host") or "/var/run/postgresql")
    user = server.username or "postgres"
    password = server.password or f"pooled-{secrets.token_hex(8)}"
    directory = Path(tempfile.mkdtemp(prefix="sqlmig-pgbouncer-"))
    port = _free_port()
    (directory / "userlist.txt").write_text(f'"{user}" "{password}"\n')
    (directory / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={host} port={server.port or 5432}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = md5\n"
        f"auth_file = {directory / 'userlist.txt'}\n"
        "pool_mode = transaction\n"
        "max_client_conn = 500\n"
        "default_pool_size = 40\n"
        f"logfile = {directory / 'pgbouncer.log'}\n"
        f"pidfile = {directory / 'pgbouncer.pid'}\n"
    )
    argv = [program]
    if os.geteuid() == 0:
        account = _unprivileged()
        for path in (directory, *directory.iterdir()):
            os.chown(path, account.pw_uid, account.pw_gid)
        argv += ["-u", account.pw_name]
    argv.append(str(directory / "pgbouncer.ini"))
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    bouncer = Bouncer(port, user, password, process, directory)
    deadline = time.monotonic() + 15
    while not _answers(port):
        if process.poll() is not None or time.monotonic() > deadline:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            log = bouncer.log()
            bouncer.stop()
            raise NoPgBouncerError(f"PgBouncer did not start: {output.strip()} {log[-2000:]}")
        time.sleep(0.05)
    return bouncer


def _unprivileged() -> pwd.struct_passwd:
    for name in UNPRIVILEGED:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise NoPgBouncerError("PgBouncer will not run as root, and there is no user 'nobody'")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0
