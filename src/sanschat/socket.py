"""Blocking sockets: a client for scripts, tests and threads, and a
thread-per-connection server that runs an unmodified Handler.

- :class:`FramedSocket` (or :func:`open_connection`): ``send``,
  ``next_event(timeout)``, ``send_eof`` and iteration over a blocking socket.
  Use one from one thread at a time.
- :func:`connect` runs a Handler as a client, as every binding's does.
- :func:`serve` starts a :class:`Server` (a ``socketserver.ThreadingTCPServer``)
  running a :class:`Connection` per client. A Connection, which can also run a
  Handler on any connected socket (a client's), has a thread that reads and
  one that writes, both in plain blocking calls, so neither direction waits
  for the other; its bytes go through a :class:`~sanschat.Driver`, so it
  keeps the Handler contract of every binding.

Thread safety, plainly: every Handler callback of one server runs while
holding ``server.lock``, so callbacks never overlap, even across connections;
a Handler written for an event loop (one pushing to other connections, say)
needs no change. Code in other threads that touches a Handler or its Framer
must hold that lock too (``connection.lock``, the same one); what it pushes
is sent at once. Socket calls run outside the lock, in parallel.

With ``shared_lock=False`` each connection's callbacks hold a lock of their
own instead, so Handlers that block (on a database, say) run in parallel;
they must then not touch each other. Under gevent's monkey-patching (threads
and sockets patched) this module works unchanged.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast, overload

from ._driver import ACCEPT_BACKOFF, DEFAULT_HANDSHAKE_TIMEOUT, CloseAction, Driver
from ._events import NEED_DATA, EndOfStream, InputEvent
from ._framer import Framer
from ._handler import ConnectionInfo, Handler
from ._shape import ServerShape
from ._sockets import DEFAULT_BACKLOG, half_close, listening_socket, shut_down, tls_of
from ._terminators import Terminator

if TYPE_CHECKING:
    from ssl import SSLContext

__all__ = ["FramedSocket", "open_connection", "connect", "Connection", "Server", "serve"]

#: Seconds a cleanly closing connection waits for the peer's end of stream.
LINGER = 2.0

log = logging.getLogger("sanschat")


class FramedSocket(contextlib.AbstractContextManager["FramedSocket"]):
    """A blocking socket framed by ``framer`` (which carries both directions).

    A timeout loses nothing. Each call that waits is bounded by its
    ``timeout`` argument, or when that is None by the socket's own timeout
    (the one :func:`connect` gave; None waits for ever); a TimeoutError leaves
    the bytes received in the Framer and the bytes not sent queued in it,
    first in line, so later calls carry on exactly where this one stopped.
    The socket's own timeout is the same after every call as before it.
    """

    def __init__(self, sock: socket.socket, framer: Framer) -> None:
        self.sock = sock
        self.framer = framer

    def send(self, data: bytes = b"", timeout: float | None = None) -> None:
        """Queue ``data``, then send everything queued (producers included)
        within ``timeout`` seconds (None: the socket's own timeout).
        TimeoutError if the peer does not take it all in time: the rest stays
        queued, and the next ``send()`` sends it first."""
        framer, sock = self.framer, self.sock
        if data:
            framer.push(data)
        own, limit, deadline = self._bounds(timeout)
        try:
            # Output leaves the Framer only once the socket took it: peek, send
            # what the socket accepts (part, perhaps), consume exactly that.
            # (sendall cannot say how much of a chunk went out before a timeout.)
            while view := framer.peek_output():
                self._wait_until(deadline)
                try:
                    sent = sock.send(view)
                except (TimeoutError, BlockingIOError):
                    queued = framer.pending_output
                    raise TimeoutError(f"not all sent within {limit} s; {queued} bytes stay queued") from None
                framer.consume_output(sent)
        finally:
            sock.settimeout(own)

    def next_event(self, timeout: float | None = None) -> InputEvent:
        """The next ``Frame``, ``Data`` or ``EndOfStream``, reading as needed;
        TimeoutError if none is complete within ``timeout`` seconds (None: the
        socket's own timeout). The bytes read so far stay in the Framer."""
        framer, sock = self.framer, self.sock
        event = framer.next_event()
        if event is NEED_DATA:
            own, limit, deadline = self._bounds(timeout)
            try:
                while event is NEED_DATA:
                    self._wait_until(deadline)
                    try:
                        data = sock.recv(65536)
                    except (TimeoutError, BlockingIOError):
                        raise TimeoutError(f"no complete event within {limit} s") from None
                    framer.receive_data(data)
                    event = framer.next_event()
            finally:
                sock.settimeout(own)
        return cast(InputEvent, event)  # (mypy cannot narrow NEED_DATA away)

    def _bounds(self, timeout: float | None) -> tuple[float | None, float | None, float | None]:
        """The socket's own timeout, the call's bound (``timeout``, or else
        the socket's own), and the call's deadline (None: none)."""
        own = self.sock.gettimeout()
        limit = own if timeout is None else timeout
        return own, limit, None if limit is None else time.monotonic() + limit

    def _wait_until(self, deadline: float | None) -> None:
        if deadline is not None:  # 0 s left: the socket's call looks once, without waiting
            self.sock.settimeout(max(deadline - time.monotonic(), 0.0))

    def __iter__(self) -> Iterator[InputEvent]:
        """Every event up to and including the ``EndOfStream``, each within the
        socket's own timeout. After a TimeoutError, iterate again to go on."""
        while not isinstance(event := self.next_event(), EndOfStream):
            yield event
        yield event

    def send_eof(self, timeout: float | None = None) -> None:
        """Send everything queued (as :meth:`send`), then our end of stream: the
        peer reads its end, and this socket can still read its answers (a
        half-close). A TLS FramedSocket raises ``io.UnsupportedOperation``
        (an OSError) before sending anything: the standard library's
        ``SSLSocket`` cannot read on after its own ``close_notify``."""
        if tls_of(self.sock) is not None:
            raise io.UnsupportedOperation("a TLS FramedSocket cannot half-close; close() it instead")
        self.send(timeout=timeout)
        self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Close the socket; output still queued is not sent."""
        self.sock.close()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_connection(
    host: str,
    port: int,
    terminator: Terminator = b"\r\n",
    *,
    timeout: float = 10.0,
    tls: SSLContext | None = None,
    server_hostname: str | None = None,
    **framer_options: Any,
) -> FramedSocket:
    """Connect to ``host:port`` (within ``timeout`` seconds) and return a
    :class:`FramedSocket` (a pull client) framing with ``terminator``;
    ``timeout`` also bounds each later call that is given none. ``tls`` (a
    client context) runs TLS from the first byte, verifying the server's
    certificate against ``server_hostname`` (default ``host``): a FramedSocket
    is used from one thread at a time, so the standard library's ``SSLSocket``
    carries it."""
    sock = socket.create_connection((host, port), timeout)
    if tls is not None:
        try:
            sock = tls.wrap_socket(sock, server_hostname=server_hostname or host)
        except BaseException:
            sock.close()
            raise
    return FramedSocket(sock, Framer(terminator, **framer_options))


@overload
def connect(
    handler: Handler,
    host: str,
    port: int,
    *,
    timeout: float = ...,
    tls: SSLContext | None = ...,
    server_hostname: str | None = ...,
    **options: Any,
) -> Connection: ...


@overload
def connect(  # deprecated: open_connection
    handler: str,
    host: int,
    port: Terminator = ...,
    *args: Any,
    timeout: float = ...,
    tls: SSLContext | None = ...,
    server_hostname: str | None = ...,
    **options: Any,
) -> FramedSocket: ...


def connect(
    handler: Handler | str,
    host: str | int,
    port: int | Terminator = 0,
    *args: Any,
    timeout: float = 10.0,
    tls: SSLContext | None = None,
    server_hostname: str | None = None,
    **options: Any,
) -> Connection | FramedSocket:
    """Connect to ``host:port`` (within ``timeout`` seconds) and run ``handler``
    as a client, as every binding's ``connect`` does: in threads of its own
    (:meth:`Connection.start`), returning once ``connection_made`` has run.
    ``tls`` runs TLS from the first byte, verifying the server's certificate
    against ``server_hostname`` (default ``host``).

    ``connect(host, port, terminator)``, 0.1's pull client, still works with a
    DeprecationWarning: it is :func:`open_connection` now."""
    if isinstance(handler, str):
        import warnings

        warnings.warn(
            "sanschat.socket.connect(host, port, ...) is now open_connection(host, port, ...)",
            DeprecationWarning,
            stacklevel=2,
        )
        terminator = () if port == 0 else (port,)  # (0: not given)
        return open_connection(
            handler,
            cast(int, host),
            *terminator,
            *args,
            timeout=timeout,
            tls=tls,
            server_hostname=server_hostname,
            **options,
        )
    if not isinstance(host, str) or not isinstance(port, int) or args:
        raise TypeError("connect(handler, host, port, *, timeout, tls, server_hostname)")
    sock = socket.create_connection((host, port), timeout)
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    hostname = (server_hostname or host) if tls is not None else server_hostname
    try:
        connection = Connection(
            sock, handler, tls=tls, server_side=False, server_hostname=hostname, **options
        )
    except BaseException:
        sock.close()
        raise
    connection.start()
    return connection


class Connection:
    """A connected blocking socket running one Handler, through a
    :class:`~sanschat.Driver`: :meth:`run` reads in the calling thread and
    writes in a second one, so neither direction waits for the other. Every
    driver call holds :attr:`lock`, and so must code in other threads that
    touches the Handler or its Framer; what it pushes is sent at once."""

    def __init__(
        self,
        sock: socket.socket,
        handler: Handler,
        lock: threading.RLock | None = None,
        *,
        tls: SSLContext | None = None,
        server_side: bool = True,
        server_hostname: str | None = None,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    ) -> None:
        """``tls`` runs TLS from the first byte in the Driver (whose calls all
        hold :attr:`lock`, so the two threads share one TLS session safely),
        in the server's role unless ``server_side`` is false."""
        if tls_of(sock) is not None:  # one ssl.SSLSocket cannot be read and written by two threads
            raise TypeError("give Connection a plain socket and tls=context: the Driver runs the TLS")
        self.sock = sock
        #: Held by every callback of the Handler (given: shared with other connections).
        self.lock = lock if lock is not None else threading.RLock()
        self._changed = threading.Condition(self.lock)  # the driver's answers may differ
        info = ConnectionInfo(sock.getpeername(), sock.getsockname())
        self.driver = Driver(
            handler,
            info,
            on_wake=self._changed.notify_all,
            tls=tls,
            server_side=server_side,
            server_hostname=server_hostname,
            handshake_timeout=handshake_timeout,
        )
        #: Set once the Handler's ``connection_made`` has run.
        self.started = threading.Event()
        #: Set once the connection is over (``connection_lost`` has run).
        self.closed = threading.Event()

    def run(self) -> None:
        """Serve the connection until it is over: the socket closed, and
        ``connection_lost`` called."""
        try:
            with self.lock:
                self.driver.start()
        finally:
            self.started.set()
        writer = threading.Thread(target=self._guarded, args=(self._write,), daemon=True)
        writer.start()
        try:
            self._guarded(self._read)
        finally:
            writer.join()
            self.sock.close()
            with self.lock:
                self.driver.connection_lost()
            self.closed.set()

    def start(self) -> None:
        """Run the connection in a thread of its own; return once the Handler's
        ``connection_made`` has run. ``closed.wait()`` waits for the end."""
        threading.Thread(target=self.run, daemon=True).start()
        self.started.wait()

    def abort(self, error: BaseException) -> None:
        """Cut the connection now (holding :attr:`lock`): ``connection_lost`` gets ``error``."""
        self.driver.transport_failed(error)
        self._changed.notify_all()
        shut_down(self.sock)  # wakes both threads

    def _guarded(self, run: Callable[[], None]) -> None:
        """Run one direction; should it fail, cut the connection, so that the other ends too."""
        try:
            run()
        except BaseException as error:
            log.exception("the connection to %s failed; cutting it", self.driver.info.peer)
            with self.lock:
                self.abort(error)

    def _call(self, method: Callable[..., object], *args: Any) -> None:
        with self.lock:
            method(*args)
            self._changed.notify_all()

    def _read(self) -> None:
        driver, sock = self.driver, self.sock
        while True:
            with self.lock:
                self._changed.wait_for(lambda: driver.wants_read or driver.input_ended)
                if driver.input_ended:
                    return
            try:  # wait with a 1-byte buffer, so that an idle connection holds no 64 KiB one
                data = sock.recv(1, socket.MSG_PEEK) and sock.recv(65536)
            except OSError as error:  # reset by the peer, and the like
                self._call(driver.transport_failed, error)
                continue
            if data:
                self._call(driver.data_received, data)
            else:
                self._call(driver.eof_received)

    def _write(self) -> None:
        driver, sock = self.driver, self.sock
        while True:
            with self.lock:
                while not (driver.wants_write or driver.close_action is not CloseAction.NONE):
                    deadline = driver.deadline  # a TLS handshake under way must end by then
                    self._changed.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
                    driver.check_deadline()
                data, action = driver.data_to_send(65536), driver.close_action
                self._changed.notify_all()  # output taken: input held for it may go on
            if data:
                try:
                    sock.sendall(data)
                except OSError as error:
                    self._call(driver.transport_failed, error)
            elif action is not CloseAction.NONE:
                break
        if action is CloseAction.CLOSE:
            half_close(sock)  # then drop what the peer sends until its own end (see sanschat.select)
            with self.lock:
                self._changed.wait_for(lambda: driver.input_ended, LINGER)
        shut_down(sock)  # wakes the reader


class Server(ServerShape, socketserver.ThreadingTCPServer):
    """A TCP server running a Handler from ``factory`` per client, each on a
    :class:`Connection` of its own thread; see :func:`serve`. The names of
    every binding's server: :attr:`port`, :attr:`addresses`,
    :attr:`connections`, :meth:`close` and :meth:`shutdown` (which blocks)."""

    daemon_threads = True

    def __init__(
        self,
        factory: Callable[[], Handler],
        host: str | None = "127.0.0.1",
        port: int = 0,
        *,
        backlog: int = DEFAULT_BACKLOG,
        reuse_port: bool = False,
        shared_lock: bool = True,
        tls: SSLContext | None = None,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    ) -> None:
        super().__init__((host or "", port), _Request, bind_and_activate=False)
        self.socket.close()  # (socketserver's, replaced by one made as every binding makes it)
        self.socket = listening_socket(host, port, backlog=backlog, reuse_port=reuse_port)
        self.address_family = self.socket.family
        self.server_address = self.socket.getsockname()
        self._addresses = [self.server_address]
        self.factory = factory
        self.shared_lock = shared_lock
        #: Keywords for each Connection (``tls``, ``handshake_timeout``).
        self.connection_options: dict[str, Any] = {"tls": tls, "handshake_timeout": handshake_timeout}
        #: Held by every Handler callback of this server, unless ``shared_lock``
        #: is false (see the module's notes); it also guards the connections.
        self.lock = threading.RLock()
        self._connections: set[Connection] = set()
        self._changed = threading.Condition(self.lock)  # a connection ended
        self._closed = False

    def _open_drivers(self) -> Iterable[Driver]:
        # (touch one's Handler only holding lock_for(driver))
        with self.lock:
            return [connection.driver for connection in self._connections]

    def lock_for(self, driver: Driver) -> threading.RLock:
        """The lock that ``driver``'s Handler callbacks hold (:attr:`lock`,
        unless each connection has its own)."""
        with self.lock:
            for connection in self._connections:
                if connection.driver is driver:
                    return connection.lock
        raise KeyError(f"{driver!r} is not an open connection of this server")

    def close(self) -> None:
        """Stop accepting clients and close the listening socket; the
        connections go on. (Not from a Handler callback: it waits for the
        accepting thread.)"""
        if not self._closed:
            self._closed = True
            super().shutdown()  # serve_forever returns
            self.server_close()

    def get_request(self) -> tuple[Any, Any]:
        try:
            return super().get_request()
        except BlockingIOError:
            raise
        except OSError as error:  # out of descriptors, and the like: do not spin on it
            log.warning("accept failed: %s; retrying in %.1f s", error, ACCEPT_BACKOFF)
            time.sleep(ACCEPT_BACKOFF)
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("no handler for %s; dropping the client", client_address)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop accepting; each connection closes once its answers are out
        (``close_when_done``); after ``timeout`` seconds the rest are cut."""
        self.close()
        if not self._each(lambda connection: connection.driver.framer.close_when_done(), timeout):
            self._each(lambda connection: connection.abort(TimeoutError(f"open {timeout} s after shutdown")))

    def _each(self, action: Callable[[Connection], None], timeout: float | None = None) -> bool:
        """Do ``action`` to each open connection, holding its lock (and not
        the server's: no thread holds one while taking the other, in either
        order), then wait up to ``timeout`` seconds for all to end; whether they have."""
        with self.lock:
            connections = list(self._connections)
        for connection in connections:
            with connection.lock:
                action(connection)
        with self.lock:
            return self._changed.wait_for(lambda: not self._connections, timeout)


class _Request(socketserver.BaseRequestHandler):
    server: Server

    def handle(self) -> None:
        server = self.server
        lock = server.lock if server.shared_lock else None
        connection = Connection(self.request, server.factory(), lock, **server.connection_options)
        with server.lock:
            server._connections.add(connection)
        try:
            connection.run()
        finally:
            with server.lock:
                server._connections.discard(connection)
                server._changed.notify_all()


def serve(
    factory: Callable[[], Handler],
    host: str | None = "127.0.0.1",
    port: int = 0,
    *,
    backlog: int = DEFAULT_BACKLOG,
    reuse_port: bool = False,
    shared_lock: bool = True,
    tls: SSLContext | None = None,
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
) -> Server:
    """Start serving TCP on ``host:port`` (``0``: a free port, ``server.port``)
    with a Handler from ``factory`` per connection, in a background thread;
    returns at once. ``server.shutdown(timeout)`` stops it. ``reuse_port``:
    other processes may listen on the same port (``SO_REUSEPORT``).
    ``shared_lock``: see the module's notes. ``tls`` (a server context): every
    connection runs TLS from its first byte, in the Driver (``start_tls``
    works too)."""
    server = Server(
        factory,
        host,
        port,
        backlog=backlog,
        reuse_port=reuse_port,
        shared_lock=shared_lock,
        tls=tls,
        handshake_timeout=handshake_timeout,
    )
    # serve_forever looks for a shutdown request every 0.05 s
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server
