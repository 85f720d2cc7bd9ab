"""Counting round trips: a PostgreSQL wire-protocol proxy on a Unix socket.

Clients connect to the proxy instead of the server; it forwards every byte both ways
and watches the messages. Each ReadyForQuery ('Z') the server sends ends one round
trip (a simple query, or an extended-protocol batch ending in Sync), so counting them
counts round trips exactly, whatever the client library does (BEGIN sent on its
own, auto-prepared statements, pool pings). Each is labelled with the SQL the client
sent since the previous one. The first 'Z' of a connection ends its start-up.

The proxy is only used by the round-trip runs, never by the timed ones.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy.engine import URL

CONNECT = "<connection start-up>"
_LABEL_BYTES = 160


class _Messages:
    """Splits a byte stream into (type, first bytes of body), across reads."""

    def __init__(self, typed: bool) -> None:
        self.typed = typed
        self.header = bytearray()
        self.in_body = False
        self.left = 0
        self.kind = 0
        self.head = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        found: list[tuple[int, bytes]] = []
        i, n = 0, len(data)
        while i < n:
            if not self.in_body:
                size = 5 if self.typed else 4
                take = min(size - len(self.header), n - i)
                self.header += data[i : i + take]
                i += take
                if len(self.header) < size:
                    break
                if self.typed:
                    self.kind = self.header[0]
                    length = int.from_bytes(self.header[1:5], "big")
                else:
                    self.kind = 0
                    length = int.from_bytes(self.header[0:4], "big")
                self.header.clear()
                self.left = length - 4
                self.head = bytearray()
                self.in_body = True
            take = min(self.left, n - i)
            room = _LABEL_BYTES - len(self.head)
            if room > 0:
                self.head += data[i : i + min(take, room)]
            i += take
            self.left -= take
            if self.left == 0:
                self.in_body = False
                found.append((self.kind, bytes(self.head)))
                self.typed = True  # only the start-up message has no type byte
        return found


@dataclass
class _Connection:
    number: int
    pending: list[str]
    started: bool = False
    prepared: dict[bytes, str] = field(default_factory=dict)


class Proxy:
    """Forwards connections from a Unix socket to ``upstream`` and records round trips."""

    def __init__(self, upstream: URL) -> None:
        self.upstream = upstream
        self.directory = tempfile.mkdtemp(prefix="sqlmig-bench-proxy-")
        self.path = f"{self.directory}/.s.PGSQL.5432"
        self.events: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        self._count = 0
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, url: URL) -> URL:
        """``url`` (a database on the upstream server) reached through the proxy."""
        query = {k: v for k, v in url.query.items() if k not in ("host", "port", "sslmode")}
        # URL.set() ignores None, so a TCP host would survive it and win in yoyo's parser.
        return url._replace(host=None, port=None).set(query={**query, "host": self.directory})

    def reset(self) -> None:
        with self._lock:
            self.events.clear()

    def close(self) -> None:
        self._listener.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = connect_upstream(self.upstream)
            with self._lock:
                self._count += 1
                conn = _Connection(self._count, [])
            threading.Thread(
                target=self._client_side, args=(client, server, conn), daemon=True
            ).start()
            threading.Thread(
                target=self._server_side, args=(server, client, conn), daemon=True
            ).start()

    def _client_side(self, client: socket.socket, server: socket.socket, conn: _Connection) -> None:
        messages = _Messages(typed=False)
        for data in _pump(client, server):
            for kind, body in messages.feed(data):
                label = _query_of(kind, body, conn.prepared)
                if label is not None:
                    with self._lock:
                        conn.pending.append(label)

    def _server_side(self, server: socket.socket, client: socket.socket, conn: _Connection) -> None:
        messages = _Messages(typed=True)
        for data in _pump(server, client):
            for kind, _ in messages.feed(data):
                if kind != ord("Z"):
                    continue
                with self._lock:
                    if not conn.started:
                        label = CONNECT
                        conn.started = True
                    else:
                        label = " ; ".join(conn.pending) or "(sync)"
                    conn.pending.clear()
                    self.events.append((conn.number, label))


def connect_upstream(url: URL) -> socket.socket:
    """A socket connected to the server of ``url``: its Unix socket or TCP port."""
    host = url.host or url.query.get("host")
    if isinstance(host, tuple):
        host = host[0]
    port = url.port or int(str(url.query.get("port") or 5432))
    if not host or str(host).startswith("/"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(f"{host or '/var/run/postgresql'}/.s.PGSQL.{port}")
        return sock
    return socket.create_connection((str(host), port))


def _pump(source: socket.socket, target: socket.socket):  # type: ignore[no-untyped-def]
    try:
        while True:
            data = source.recv(1 << 16)
            if not data:
                break
            # The caller reads the messages before they go on: a query is recorded before
            # the server can answer it, and a ReadyForQuery before the client can go on.
            yield data
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _query_of(kind: int, body: bytes, prepared: dict[bytes, str]) -> str | None:
    """The SQL a message sends: a simple Query ('Q'), a Parse ('P'), or a Bind ('B') of
    a statement prepared earlier on the connection; None for other messages."""
    if kind == ord("Q"):
        return _text(body.split(b"\0", 1)[0])
    if kind == ord("P"):
        name, _, rest = body.partition(b"\0")
        query = _text(rest.split(b"\0", 1)[0])
        if not name:
            return query
        prepared[name] = query
        return f"[prepare] {query}"
    if kind == ord("B"):
        _, _, rest = body.partition(b"\0")
        name = rest.split(b"\0", 1)[0]
        return f"[prepared] {prepared.get(name, '?')}" if name else None
    return None


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


_NUMBERS = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")


def shape(label: str, width: int = 90) -> str:
    """A label with numbers as N and whitespace collapsed, so like statements group.

    A prepared statement's execution counts as the statement itself (its one-off
    ``[prepare]`` round trip stays apart)."""
    text = _SPACE.sub(" ", _NUMBERS.sub("N", label.removeprefix("[prepared] "))).strip()
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(frozen=True)
class Count:
    """The round trips of one run."""

    total: int
    connections: int
    by_shape: Counter[str]


def count(events: list[tuple[int, str]]) -> Count:
    shapes = Counter(shape(label) for _, label in events)
    return Count(len(events), shapes.get(CONNECT, 0), shapes)
