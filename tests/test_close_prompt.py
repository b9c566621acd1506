"""A clean close is prompt under every binding, over real loopback sockets:
once the last answer is out, the end of stream follows at once, even after
answers that filled the transport's buffer (some 64 KiB and more), rather
than when the linger gives up waiting for the peer's end. A client that
waits for the server's close (QUIT, ``Connection: close``) would otherwise
wait out the linger on every connection.

Each binding's linger is raised to :data:`LINGER` here, so that a held close
is unmistakable: the tests see the server's end of stream while the server
is still waiting for ours (its Handler has not been told the connection is
lost), and a held one would not come within :data:`PROMPT`, a backstop far
below the linger and far above what a busy machine needs."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FunctionType
from typing import cast

import pytest

import sanschat._async_driver
import sanschat.asyncio
import sanschat.select
import sanschat.socket
import sanschat.twisted
from sanschat import Handler
from sanschat.testing import Serve, Served, TcpPeer

from .servers import TCP_BINDINGS

#: Each binding's linger in these tests (seconds).
LINGER = 30.0
#: The most the end of stream may take after the last answer byte (seconds).
PROMPT = 10.0
#: A backstop for what should happen at once.
PATIENCE = 60.0

ANSWER = b"a" * 5000


@pytest.fixture(autouse=True)
def long_linger(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every binding's linger, at its own default, raised to LINGER."""
    for init in (
        sanschat.select.Loop.__init__,
        sanschat.asyncio.HandlerProtocol.__init__,
        sanschat.twisted.HandlerProtocol.__init__,
    ):
        defaults = cast(FunctionType, init).__kwdefaults__
        assert defaults is not None and "linger" in defaults
        monkeypatch.setitem(defaults, "linger", LINGER)
    monkeypatch.setattr(sanschat.socket, "LINGER", LINGER)
    monkeypatch.setattr(sanschat._async_driver.Server, "linger", LINGER)  # trio's and anyio's serve


class Journal:
    """Why each connection of a test was lost, and an event set at the first."""

    def __init__(self) -> None:
        self.lost: list[BaseException | None] = []
        self.closed = threading.Event()

    def handler(self) -> Handler:
        return Answers(self)


class Answers(Handler):
    """Answers each request line with a 5 KB line, and ``BIG n`` with ``n``
    bytes; closes after ``QUIT``; tells the journal when the connection is lost."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def frame_received(self, data: bytes) -> None:
        if data == b"QUIT":
            self.framer.close_when_done()
        elif data.startswith(b"BIG "):
            self.framer.push(b"a" * int(data[4:]))
        else:
            self.framer.push(data + b" " + ANSWER + b"\r\n")

    def connection_lost(self, error: BaseException | None) -> None:
        self.journal.lost.append(error)
        self.journal.closed.set()


@contextmanager
def connected(served: Served) -> Iterator[socket.socket]:
    """A client's socket, blocking (with a backstop timeout)."""
    peer = served.connect()
    assert isinstance(peer, TcpPeer)
    try:
        yield peer.sock
    finally:
        peer.close()


def read_exactly(sock: socket.socket, count: int) -> bytes:
    received = bytearray()
    while len(received) < count:
        chunk = sock.recv(min(count - len(received), 1 << 20))
        assert chunk, f"the end of stream after {len(received)} of {count} bytes"
        received += chunk
    return bytes(received)


def assert_the_end_comes_while_the_server_lingers(client: socket.socket, journal: Journal) -> None:
    """After the last answer byte: the server's end of stream, while the
    server still waits for ours (its Handler still connected); then ours,
    and a clean close."""
    client.settimeout(PROMPT)
    try:
        end = client.recv(1)
    except TimeoutError:
        pytest.fail(
            f"no end of stream {PROMPT} s after the last answer: the close is held (linger {LINGER} s)"
        )
    assert end == b"", "more than the answers"
    assert not journal.closed.is_set(), "the server closed before it had our end of stream"
    client.shutdown(socket.SHUT_WR)
    assert journal.closed.wait(PATIENCE)
    assert journal.lost == [None]


@pytest.mark.parametrize("requests", [3, 50], ids=["15-KB-of-answers", "250-KB-of-answers"])
@pytest.mark.parametrize("binding", TCP_BINDINGS.values(), ids=TCP_BINDINGS.keys())
def test_the_end_of_stream_follows_pipelined_answers_at_once(binding: Serve, requests: int) -> None:
    journal = Journal()
    lines = [b"%05d" % number for number in range(requests)]
    answers = b"".join(line + b" " + ANSWER + b"\r\n" for line in lines)
    with binding(journal.handler) as served:
        with connected(served) as client:
            client.sendall(b"".join(line + b"\r\n" for line in lines) + b"QUIT\r\n")  # one pipeline
            assert read_exactly(client, len(answers)) == answers
            assert_the_end_comes_while_the_server_lingers(client, journal)


@pytest.mark.parametrize("binding", TCP_BINDINGS.values(), ids=TCP_BINDINGS.keys())
def test_the_end_of_stream_follows_the_answers_of_a_graceful_shutdown_at_once(binding: Serve) -> None:
    """The close decided from outside (the server's shutdown) while an answer
    far larger than every buffer is still going out to a client that has not
    read it yet."""
    journal = Journal()
    size = 16 << 20
    with binding(journal.handler) as served:
        with connected(served) as client:
            client.sendall(b"BIG %d\r\n" % size)
            assert read_exactly(client, 1) == b"a"  # the whole answer is queued
            served.shutdown(2 * LINGER)
            assert read_exactly(client, size - 1) == b"a" * (size - 1)
            assert_the_end_comes_while_the_server_lingers(client, journal)
