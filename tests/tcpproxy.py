"""A TCP proxy on loopback that a test controls: forward, stall, or drop every connection.

It stands between sqlmig and PostgreSQL to play the network (and, with a ``tap``,
to see what a client sends): ``stall()`` stops
forwarding bytes but keeps every socket open (a partition as the client sees it: its
kernel still ACKs what it sends, so TCP keepalives and ``tcp_user_timeout`` never
fire), ``drop()`` closes both sides of every connection (a reset), ``resume()``
forwards again. The upstream is a TCP address or, for pgserver which listens only on
a Unix socket, a socket path.
"""

from __future__ import annotations

import selectors
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlalchemy.engine import URL, make_url

Upstream = tuple[str, int] | str  # (host, port) or a Unix socket path


def upstream_of(url: str) -> Upstream:
    """Where a PostgreSQL URL points: a TCP address, or the Unix socket libpq would use."""
    parsed = make_url(url)
    if parsed.host:
        return (parsed.host, parsed.port or 5432)
    directory = str(parsed.query.get("host") or "/var/run/postgresql")
    port = parsed.port or int(str(parsed.query.get("port") or 5432))
    return str(Path(directory) / f".s.PGSQL.{port}")


Tap = Callable[[int, bytes], None]
"""Sees every chunk a client sends, with the number of its connection (from 1)."""


class TcpProxy:
    """Listens on 127.0.0.1 and relays each connection to ``upstream``, one thread a pair."""

    def __init__(self, upstream: Upstream, tap: Tap | None = None) -> None:
        self.upstream = upstream
        self.tap = tap
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._closed = False
        self.accepted = 0
        self._acceptor = threading.Thread(target=self._accept, name="tcpproxy", daemon=True)
        self._acceptor.start()

    def url(self, database_url: str) -> str:
        """``database_url`` pointed at the proxy (user, password, database and query kept)."""
        parsed: URL = make_url(database_url)
        query = {k: v for k, v in parsed.query.items() if k not in {"host", "port"}}
        return parsed.set(host="127.0.0.1", port=self.port, query=query).render_as_string(
            hide_password=False
        )

    # --- what the test does ---------------------------------------------------------

    def stall(self) -> None:
        """Stop relaying bytes in both directions; every socket stays open."""
        self._flowing.clear()

    def resume(self) -> None:
        """Relay again, including what queued up while stalled."""
        self._flowing.set()

    def drop(self) -> None:
        """Close both sides of every open connection; new ones are still accepted."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            # Shut down here, closed by the pair's own thread: closing a socket that
            # another thread is polling could let its number be reused under it.
            for sock in pair:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def close(self) -> None:
        self._closed = True
        self._flowing.set()
        _close(self._listener)
        self.drop()
        self._acceptor.join(timeout=5)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- relaying ----------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(
                target=self._open, args=(client, self.accepted), name="tcpproxy-pair", daemon=True
            ).start()

    def _open(self, client: socket.socket, number: int) -> None:
        # A stall holds new connections too: the client's connect() succeeds (the
        # kernel accepts), then nothing comes back, as over a dead route.
        self._flowing.wait()
        try:
            if isinstance(self.upstream, str):
                server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                server.connect(self.upstream)
            else:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
        except OSError:
            _close(client)
            return
        with self._lock:
            if self._closed:
                _close(client, server)
                return
            self._pairs.append((client, server))
        self._relay(client, server, number)

    def _relay(self, client: socket.socket, server: socket.socket, number: int) -> None:
        """Copy bytes both ways until either side closes; hold them while stalled."""
        with selectors.DefaultSelector() as sel:
            sel.register(client, selectors.EVENT_READ, (server, number))
            sel.register(server, selectors.EVENT_READ, (client, 0))
            while self._alive(client, server) and self._pump(sel):
                pass
        self._forget(client, server)
        _close(client, server)

    def _pump(self, sel: selectors.BaseSelector) -> bool:
        """Relay what is ready now; False once either side has closed."""
        if not self._flowing.is_set():
            self._flowing.wait(0.05)
            return True
        for key, _ in sel.select(timeout=0.05):
            source: socket.socket = key.fileobj  # type: ignore[assignment]
            target, client = key.data  # client: the connection's number, 0 from the server
            try:
                data = source.recv(65536)
                if not data:
                    return False
                if client and self.tap is not None:
                    self.tap(client, data)
                target.sendall(data)
            except OSError:
                return False
        return True

    def _alive(self, client: socket.socket, server: socket.socket) -> bool:
        with self._lock:
            return (client, server) in self._pairs

    def _forget(self, client: socket.socket, server: socket.socket) -> None:
        with self._lock, suppress(ValueError):
            self._pairs.remove((client, server))


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with suppress(OSError):
            sock.close()


@contextmanager
def proxy_to(database_url: str, tap: Tap | None = None) -> Iterator[TcpProxy]:
    """A proxy in front of the server of ``database_url``, closed afterwards."""
    proxy = TcpProxy(upstream_of(database_url), tap)
    try:
        yield proxy
    finally:
        proxy.close()
