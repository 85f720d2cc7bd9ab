"""A delay proxy: a TCP listener on loopback in front of the bench's PostgreSQL.

Every chunk of bytes that arrives on one side leaves on the other ``delay`` seconds
after it arrived, in order. Each direction has a reader, which stamps each chunk with
its deadline (arrival + delay) and queues it, and a writer, which sends each chunk at
its deadline: chunks are not serialised behind each other's delays, so a stream is
not throttled, only late. A round trip through the proxy costs twice the delay (5 ms
each way: 10 ms), what a client pays to reach a database in another zone.

The proxy forwards bytes only (no parsing); it listens on TCP because the tools under
test reach remote databases over TCP, and connects upstream the way the round-trip
proxy does (Unix socket or TCP).

    with DelayProxy(admin_url, delay=0.005) as proxy:
        url = proxy.url(fresh_database_url)   # host=127.0.0.1, port=the proxy's
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from types import TracebackType

from sqlalchemy.engine import URL

from roundtrips import connect_upstream

_CHUNK = 1 << 16
_EOF = b""


class DelayProxy:
    """Forwards each connection to ``upstream``, each chunk ``delay`` seconds late."""

    def __init__(self, upstream: URL, delay: float = 0.005) -> None:
        self.upstream = upstream
        self.delay = delay
        self.connections = 0
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name="delay-accept", daemon=True).start()

    def url(self, url: URL) -> URL:
        """``url`` (a database on the upstream server) reached through the proxy."""
        query = {k: v for k, v in url.query.items() if k not in ("host", "port")}
        return url.set(host="127.0.0.1", port=self.port, query=query)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()

    def __enter__(self) -> DelayProxy:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = connect_upstream(self.upstream)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                if sock.family != socket.AF_UNIX:
                    # No Nagle: a small message waits for nothing but the delay.
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
            pair = _Pair(client, server)
            for source, target in ((client, server), (server, client)):
                _Direction(source, target, self.delay, pair).start()


class _Pair:
    """Closes both sockets once both directions have finished."""

    def __init__(self, a: socket.socket, b: socket.socket) -> None:
        self.sockets = (a, b)
        self.open = 2
        self.lock = threading.Lock()

    def done(self) -> None:
        with self.lock:
            self.open -= 1
            last = self.open == 0
        if last:
            for sock in self.sockets:
                sock.close()


class _Direction:
    """One way of one connection: a reader that stamps chunks, a writer that sends them."""

    def __init__(
        self, source: socket.socket, target: socket.socket, delay: float, pair: _Pair
    ) -> None:
        self.source = source
        self.target = target
        self.delay = delay
        self.pair = pair
        self.chunks: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()

    def start(self) -> None:
        threading.Thread(target=self._read, name="delay-read", daemon=True).start()
        threading.Thread(target=self._write, name="delay-write", daemon=True).start()

    def _read(self) -> None:
        try:
            while True:
                data = self.source.recv(_CHUNK)
                self.chunks.put((time.monotonic() + self.delay, data))
                if not data:
                    return
        except OSError:
            self.chunks.put((time.monotonic(), _EOF))

    def _write(self) -> None:
        try:
            while True:
                deadline, data = self.chunks.get()
                wait = deadline - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if not data:
                    break
                self.target.sendall(data)
        except OSError:
            # The far side went away: stop reading from the near side too.
            with contextlib.suppress(OSError):
                self.source.shutdown(socket.SHUT_RD)
        finally:
            with contextlib.suppress(OSError):
                self.target.shutdown(socket.SHUT_WR)
            self.pair.done()
