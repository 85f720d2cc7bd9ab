"""What the server receives: the statements a client sends, read off the wire.

A tap on ``tcpproxy`` parses the PostgreSQL frontend protocol: a simple Query is one
statement; in the extended protocol a Parse gives a statement its text and each Bind
runs it with its parameter values. So a test sees exactly what reached the server,
text and values apart, whatever the client library did to get it there.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tcpproxy import TcpProxy, proxy_to


@dataclass(frozen=True)
class Sent:
    """One statement as the server received it: its text, its parameters (None: none),
    and the number of the connection it came on (from 1, in the order they opened)."""

    sql: str
    params: tuple[str | None, ...] | None
    connection: int


@dataclass
class _Stream:
    buffer: bytearray = field(default_factory=bytearray)
    started: bool = False  # the start-up message, which has no type byte, is behind
    prepared: dict[bytes, str] = field(default_factory=dict)


class Capture:
    """Every statement each connection sent, in order, and its round trips: one per
    simple Query or Sync, each of which the server answers before the client waits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[int, _Stream] = {}
        self.sent: list[Sent] = []
        self.round_trips: Counter[int] = Counter()

    def __call__(self, connection: int, data: bytes) -> None:
        with self._lock:
            stream = self._streams.setdefault(connection, _Stream())
            stream.buffer += data
            for kind, body in self._messages(stream):
                self._read(connection, stream, kind, body)

    @staticmethod
    def _messages(stream: _Stream) -> Iterator[tuple[int, bytes]]:
        buffer = stream.buffer
        while True:
            header = 5 if stream.started else 4
            if len(buffer) < header:
                return
            length = int.from_bytes(buffer[header - 4 : header], "big")
            if len(buffer) < header - 4 + length:
                return
            kind = buffer[0] if stream.started else 0
            body = bytes(buffer[header : header - 4 + length])
            del buffer[: header - 4 + length]
            if not stream.started:
                # An SSL or GSS request is answered with one byte and followed by
                # another start-up message: only a protocol version starts for good.
                stream.started = int.from_bytes(body[:4], "big") >> 16 == 3
                continue
            yield kind, body

    def _read(self, connection: int, stream: _Stream, kind: int, body: bytes) -> None:
        if kind in (ord("Q"), ord("S")):
            self.round_trips[connection] += 1
        if kind == ord("Q"):
            self.sent.append(Sent(_text(body.split(b"\0", 1)[0]), None, connection))
        elif kind == ord("P"):
            name, _, rest = body.partition(b"\0")
            stream.prepared[name] = _text(rest.split(b"\0", 1)[0])
        elif kind == ord("B"):
            _, _, rest = body.partition(b"\0")
            name, _, rest = rest.partition(b"\0")
            formats = int.from_bytes(rest[:2], "big")
            at = 2 + 2 * formats
            count = int.from_bytes(rest[at : at + 2], "big")
            at += 2
            values: list[str | None] = []
            for _ in range(count):
                size = int.from_bytes(rest[at : at + 4], "big", signed=True)
                at += 4
                if size < 0:
                    values.append(None)
                    continue
                values.append(rest[at : at + size].decode("utf-8", "replace"))
                at += size
            sql = stream.prepared.get(name, "?")
            self.sent.append(Sent(sql, tuple(values) if count else None, connection))


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


@contextmanager
def captured(database_url: str) -> Iterator[tuple[TcpProxy, Capture]]:
    """A proxy in front of the server, and what every client sent through it."""
    capture = Capture()
    with proxy_to(database_url, capture) as proxy:
        yield proxy, capture
