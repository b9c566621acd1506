"""Blocking sockets: a client for scripts, tests and threads, and a
thread-per-connection server that runs an unmodified Handler.

- :class:`FramedSocket` (or :func:`connect`): ``send``, ``next_event(timeout)``
  and iteration over a blocking socket. Use one from one thread at a time.
- :func:`serve` starts a :class:`Server` (a ``socketserver.ThreadingTCPServer``):
  a thread per connection moves its bytes through a :class:`~sanschat.Driver`,
  so the connection keeps the Handler contract of every binding.

Thread safety, plainly: every Handler callback of one server runs while
holding ``server.lock``, so callbacks never overlap, even across connections;
a Handler written for an event loop (one pushing to other connections, say)
needs no change. Code in other threads that touches a Handler or its Framer
must hold ``server.lock`` too; a push made so is sent within ``POLL`` seconds.
Connection threads wait for their sockets outside the lock, in parallel; the
socket calls themselves never block, so the lock is held briefly. Under
gevent's monkey-patching (threads, sockets and ``select`` patched) this module
works unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import math
import select
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

from ._driver import CloseAction, Driver
from ._events import NEED_DATA, EndOfStream, InputEvent
from ._framer import Framer
from ._handler import ConnectionInfo, Handler
from ._sockets import half_close, receive, send
from ._terminators import Terminator

__all__ = ["FramedSocket", "connect", "Server", "serve", "POLL"]

#: Seconds a connection thread waits on its socket before it looks at
#: requests from other threads (a push, a shutdown).
POLL = 0.05
#: Seconds a cleanly closing connection waits for the peer's end of stream.
LINGER = 2.0


class FramedSocket(contextlib.AbstractContextManager["FramedSocket"]):
    """A blocking socket framed by ``framer`` (which carries both directions)."""

    def __init__(self, sock: socket.socket, framer: Framer) -> None:
        self.sock = sock
        self.framer = framer

    def send(self, data: bytes = b"") -> None:
        """Queue ``data``, then send everything queued (producers included)."""
        if data:
            self.framer.push(data)
        while chunk := self.framer.data_to_send(65536):
            self.sock.sendall(chunk)

    def next_event(self, timeout: float | None = None) -> InputEvent:
        """The next ``Frame``, ``Data`` or ``EndOfStream``, reading as needed;
        TimeoutError if none is complete within ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (event := self.framer.next_event()) is NEED_DATA:  # (mypy cannot narrow this)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"no complete event within {timeout} s")
            self.sock.settimeout(left)
            with contextlib.suppress(TimeoutError):  # the deadline check says it
                self.framer.receive_data(self.sock.recv(65536))
        return cast(InputEvent, event)

    def __iter__(self) -> Iterator[InputEvent]:
        """Every event up to and including the ``EndOfStream``."""
        while not isinstance(event := self.next_event(), EndOfStream):
            yield event
        yield event

    def close(self) -> None:
        self.sock.close()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def connect(
    host: str, port: int, terminator: Terminator = b"\r\n", *, timeout: float = 10.0, **framer_options: Any
) -> FramedSocket:
    """Connect to ``host:port`` (within ``timeout`` seconds) and frame with ``terminator``."""
    return FramedSocket(socket.create_connection((host, port), timeout), Framer(terminator, **framer_options))


class Server(socketserver.ThreadingTCPServer):
    """A TCP server running a Handler from ``factory`` per connection, each in
    a thread of its own (``socketserver``); see :func:`serve`."""

    daemon_threads = True

    def __init__(self, factory: Callable[[], Handler], host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), _Connection)
        self.factory = factory
        #: Held by every Handler callback of this server (see the module's notes).
        self.lock = threading.RLock()
        self.connections: set[Driver] = set()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        logging.getLogger("sanschat").exception("no handler for %s; dropping the client", client_address)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop accepting; each connection closes once its answers are out
        (``close_when_done``); after ``timeout`` seconds the rest are cut."""
        super().shutdown()  # serve_forever returns
        self.server_close()
        deadline = time.monotonic() + timeout
        with self.lock:
            for driver in self.connections:
                driver.framer.close_when_done()
        while self.connections:
            if time.monotonic() > deadline:
                with self.lock:
                    for driver in self.connections:
                        driver.transport_failed(TimeoutError(f"still open {timeout} s after shutdown"))
            time.sleep(POLL)


class _Connection(socketserver.BaseRequestHandler):
    """One connection's thread: its bytes through a Driver, its callbacks under the lock."""

    server: Server

    def handle(self) -> None:
        server, sock, lock = self.server, self.request, self.server.lock
        sock.setblocking(False)  # so that the I/O under the lock never waits
        with lock:
            driver = Driver(server.factory(), ConnectionInfo(sock.getpeername(), sock.getsockname()))
            server.connections.add(driver)
            driver.start()
        try:
            self._run(sock, driver, lock)
        finally:
            with lock:
                server.connections.discard(driver)
                driver.connection_lost()

    def _run(self, sock: socket.socket, driver: Driver, lock: threading.RLock) -> None:
        linger_end = math.inf
        while time.monotonic() < linger_end:
            with lock:
                action, reading, writing = driver.close_action, driver.wants_read, driver.wants_write
            if action is CloseAction.ABORT or (action is CloseAction.CLOSE and driver.input_ended):
                return
            if action is CloseAction.CLOSE and linger_end == math.inf:
                half_close(sock)  # then drop what the peer sends until its own end (see sanschat.select)
                linger_end = time.monotonic() + LINGER
            readable, writable, _ = select.select(
                [sock] if reading else [], [sock] if writing else [], [], POLL
            )
            with lock:
                if writable:
                    send(sock, driver)
                if readable:
                    receive(sock, driver)


def serve(factory: Callable[[], Handler], host: str = "127.0.0.1", port: int = 0) -> Server:
    """Start serving TCP on ``host:port`` (``0``: a free port, ``server.port``)
    with a Handler from ``factory`` per connection, in a background thread;
    returns at once. ``server.shutdown(timeout)`` stops it."""
    server = Server(factory, host, port)
    threading.Thread(target=server.serve_forever, args=(POLL,), daemon=True).start()
    return server
