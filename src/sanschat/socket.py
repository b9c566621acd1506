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
Socket I/O runs outside the lock, in parallel. Under gevent's monkey-patching
(threads, sockets and ``select`` patched) this module works unchanged.
"""

from __future__ import annotations

import contextlib
import logging
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
from ._terminators import Terminator

__all__ = ["FramedSocket", "connect", "Server", "serve", "POLL"]

#: Seconds a connection thread waits on its socket before it looks at
#: requests from other threads (a push, a shutdown).
POLL = 0.05


class FramedSocket:
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
            try:
                self.framer.receive_data(self.sock.recv(65536))
            except TimeoutError:
                continue  # the deadline check says it
        return cast(InputEvent, event)

    def __iter__(self) -> Iterator[InputEvent]:
        """Every event up to and including the ``EndOfStream``."""
        while not isinstance(event := self.next_event(), EndOfStream):
            yield event
        yield event

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> FramedSocket:
        return self

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
        self._aborting = threading.Event()

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
        with self.lock:
            for driver in self.connections:
                driver.framer.close_when_done()
        deadline = time.monotonic() + timeout
        while self.connections:
            if time.monotonic() > deadline:
                self._aborting.set()
            time.sleep(POLL)


class _Connection(socketserver.BaseRequestHandler):
    """One connection's thread: its bytes through a Driver, its callbacks under the lock."""

    server: Server

    def handle(self) -> None:
        server, sock, lock = self.server, self.request, self.server.lock
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
        sock.setblocking(False)
        while not self.server._aborting.is_set():
            with lock:
                action, reading, view = driver.close_action, driver.wants_read, driver.peek_output()
            if action is not CloseAction.NONE:
                break
            ready, writable, _ = select.select([sock] if reading else [], [sock] if view else [], [], POLL)
            sent, data, failed = 0, None, None
            try:
                sent = sock.send(view) if writable else 0
                data = sock.recv(65536) if ready else None
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as error:
                failed = error
            with lock:
                driver.consume_output(sent)  # first: these bytes went out
                if failed is not None:
                    return driver.transport_failed(failed)
                if data is not None:
                    driver.data_received(data) if data else driver.eof_received()
        if action is CloseAction.CLOSE and not driver.input_ended and not self.server._aborting.is_set():
            with contextlib.suppress(OSError):  # our end of stream; drop what the peer sends until its own
                sock.shutdown(socket.SHUT_WR)
                end = time.monotonic() + 2.0
                while time.monotonic() < end and (
                    not select.select([sock], [], [], POLL)[0] or sock.recv(65536)
                ):
                    pass


def serve(factory: Callable[[], Handler], host: str = "127.0.0.1", port: int = 0) -> Server:
    """Start serving TCP on ``host:port`` (``0``: a free port, ``server.port``)
    with a Handler from ``factory`` per connection, in a background thread;
    returns at once. ``server.shutdown(timeout)`` stops it."""
    server = Server(factory, host, port)
    threading.Thread(target=server.serve_forever, args=(POLL,), daemon=True).start()
    return server
