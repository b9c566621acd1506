"""Run sanschat Handlers on the standard library's ``selectors``.

A :class:`Loop` owns listening and connected non-blocking sockets. Each
connection runs its :class:`~sanschat.Handler` on a :class:`~sanschat.Driver`,
which decides everything the Handler contract says (what a handler error does,
when to read, when to close); this module only moves bytes, with partial-send
accounting. Nothing here is thread-safe except
:meth:`Loop.call_soon_threadsafe`, :meth:`Loop.stop`, and a :class:`Server`'s
``close`` and ``shutdown``.

    server = serve(EchoHandler, "127.0.0.1", 8000)
    server.serve_forever()          # until server.shutdown(timeout) has ended

or, for several servers and clients on one loop::

    loop = Loop()
    server = loop.listen(EchoHandler, "127.0.0.1", 0)
    loop.run()                      # until loop.stop(), or nothing is left
"""

from __future__ import annotations

import heapq
import itertools
import logging
import selectors
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable, Iterable
from time import monotonic
from typing import Any

from ._driver import ACCEPT_BACKOFF, DEFAULT_HANDSHAKE_TIMEOUT, CloseAction, Driver
from ._framer import Framer
from ._handler import ConnectionInfo, Handler
from ._shape import ServerShape
from ._sockets import DEFAULT_BACKLOG, half_close, listening_socket, receive, send, tls_of

__all__ = ["serve", "Server", "Loop", "Connection", "Timer"]

log = logging.getLogger("sanschat.select")


_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE


class Timer:
    """A callback scheduled by :meth:`Loop.call_later`; :meth:`cancel` it at will."""

    __slots__ = ("when", "callback", "args", "cancelled")

    def __init__(self, when: float, callback: Callable[..., object], args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run the callback."""
        self.cancelled = True


class Connection:
    """One connected socket running one Handler, through a :class:`~sanschat.Driver`.

    ``tls`` runs TLS from the first byte (the Driver's, without blocking the
    loop), in the server's role unless ``server_side`` is false; a client's
    ``server_hostname`` is the name its peer's certificate must match.
    """

    def __init__(
        self,
        loop: Loop,
        sock: socket.socket,
        handler: Handler,
        *,
        tls: ssl.SSLContext | None = None,
        server_side: bool = True,
        server_hostname: str | None = None,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        server: Server | None = None,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.handler = handler
        #: The Server that accepted it (None: a client's, or one added by hand).
        self.server = server
        self.peer: Any = _address(sock.getpeername)
        info = ConnectionInfo(self.peer, _address(sock.getsockname), tls_of(sock))
        self.driver = Driver(
            handler,
            info,
            on_wake=self._update,
            tls=tls,
            server_side=server_side,
            server_hostname=server_hostname,
            handshake_timeout=handshake_timeout,
        )
        self.closed = False
        self._mask = 0
        self._linger: Timer | None = None  # set once a clean close is under way
        self._handshake_timer: Timer | None = None  # armed while a TLS handshake runs
        sock.setblocking(False)
        loop.connections.add(self)
        if server is not None:
            server._connections.add(self)
        self.driver.start()
        self._update()

    @property
    def framer(self) -> Framer:
        """The connection's Framer (the Handler's, once started)."""
        return self.driver.framer

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<Connection {self.peer} {state} {type(self.handler).__name__}>"

    # -------------------------------------------------------------- events

    def _on_ready(self, mask: int) -> None:
        if mask & _READ:
            receive(self.sock, self.driver, self.loop.recv_size)  # (dropped and counted once closing)
        # The answers to what was just read go out at once, as asyncio's
        # transports do: the socket nearly always takes them, which saves a
        # round of select and two selector changes per read.
        if mask & _WRITE or self.driver.wants_write:
            send(self.sock, self.driver)
        self._update()

    def _update(self) -> None:
        """Do what the driver says now: close, or ask the selector for the right events."""
        if self.closed:
            return
        driver = self.driver
        if driver.deadline is not None and self._handshake_timer is None:
            self._handshake_timer = self.loop.call_later(driver.deadline - monotonic(), self._deadline_due)
        action = driver.close_action
        if action is CloseAction.ABORT or (action is CloseAction.CLOSE and driver.input_ended):
            self._finish()
            return
        if action is CloseAction.CLOSE and self._linger is None:
            # Everything is sent: send our end of stream, then read and drop
            # what the peer still sends until its own (or ``Loop.linger``
            # seconds), so that the kernel does not answer it with a reset
            # that could destroy our answers.
            half_close(self.sock)
            self._linger = self.loop.call_later(self.loop.linger, self._finish)
        mask = (_READ if driver.wants_read else 0) | (_WRITE if driver.wants_write else 0)
        if mask == self._mask:
            return
        selector = self.loop.selector
        if not self._mask:
            selector.register(self.sock, mask, self._on_ready)
        elif not mask:
            selector.unregister(self.sock)
        else:
            selector.modify(self.sock, mask, self._on_ready)
        self._mask = mask

    def _deadline_due(self) -> None:
        self._handshake_timer = None
        self.driver.check_deadline()
        self._update()

    # ------------------------------------------------------------- closing

    def close(self) -> None:
        """Close now, dropping unsent output (see ``close_when_done`` for a flush)."""
        self._finish()

    def _finish(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._linger is not None:
            self._linger.cancel()
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
        if self._mask:
            self.loop.selector.unregister(self.sock)
            self._mask = 0
        self.sock.close()
        self.loop.connections.discard(self)
        if self.server is not None:
            self.server._forget(self)
        self.driver.connection_lost()
        deadline = self.loop._deadline
        if deadline is not None and not self.loop.connections:
            deadline.cancel()  # a shutdown finished before its timeout


def _address(get: Callable[[], Any]) -> Any:
    try:
        return get()
    except OSError:
        return None


class Server(ServerShape):
    """A listening socket that makes a :class:`Connection`, with a new Handler,
    per client: what :func:`serve` and :meth:`Loop.listen` return.

    The same names as every binding's server: :attr:`port`, :attr:`addresses`,
    :attr:`connections`, :meth:`close` and :meth:`shutdown`. In this loop's
    style, ``shutdown`` begins the stop and returns at once; :meth:`serve_forever`
    (or ``loop.run()``) returns once it has ended.
    """

    def __init__(
        self,
        loop: Loop,
        sock: socket.socket,
        factory: Callable[[], Handler],
        *,
        tls: ssl.SSLContext | None = None,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.factory = factory
        self.tls = tls
        self.handshake_timeout = handshake_timeout
        self.address: Any = sock.getsockname()
        self._addresses = [self.address]
        self._connections: set[Connection] = set()
        self._paused: Timer | None = None
        self._deadline: Timer | None = None  # a shutdown's timeout
        self._owns_loop = False  # serve() made the loop: serve_forever closes it
        sock.setblocking(False)
        loop.selector.register(sock, _READ, self._on_ready)
        loop.listeners.add(self)

    def _open_drivers(self) -> Iterable[Driver]:
        return (connection.driver for connection in self._connections)

    def _on_ready(self, mask: int) -> None:
        for _ in range(256):  # accept a burst, then let the others run
            try:
                client, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # out of descriptors, and the like
                self._back_off(error)
                return
            if client.family in (socket.AF_INET, socket.AF_INET6):
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                handler = self.factory()
            except Exception:
                log.exception("handler factory failed; dropping the client")
                client.close()
                continue
            Connection(
                self.loop,
                client,
                handler,
                tls=self.tls,
                handshake_timeout=self.handshake_timeout,
                server=self,
            )

    def _back_off(self, error: OSError) -> None:
        """accept() failed (descriptors exhausted, say): stop listening for
        ``ACCEPT_BACKOFF`` seconds instead of spinning on a ready socket."""
        log.warning("accept failed on %r: %s; retrying in %.1f s", self.address, error, ACCEPT_BACKOFF)
        self.loop.selector.unregister(self.sock)
        self._paused = self.loop.call_later(ACCEPT_BACKOFF, self._resume)

    def _resume(self) -> None:
        self._paused = None
        if self in self.loop.listeners:
            self.loop.selector.register(self.sock, _READ, self._on_ready)

    def close(self) -> None:
        """Stop accepting clients; the connections already made go on. From
        any thread (from another, it happens on the loop's next turn)."""
        if not self.loop._in_own_thread():
            self.loop.call_soon_threadsafe(self.close)
            return
        if self in self.loop.listeners:
            self.loop.listeners.discard(self)
            if self._paused is not None:
                self._paused.cancel()
            else:
                self.loop.selector.unregister(self.sock)
            self.sock.close()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Begin a graceful stop and return at once: stop accepting, let each
        connection finish what it has queued (``close_when_done``), and cut
        those still open after ``timeout`` seconds. From any thread."""
        if not self.loop._in_own_thread():
            self.loop.call_soon_threadsafe(self.shutdown, timeout)
            return
        self.close()
        for connection in list(self._connections):
            connection.framer.close_when_done()
            connection._update()
        if self._connections and self._deadline is None:
            self._deadline = self.loop.call_later(timeout, self._cut)

    def _cut(self) -> None:
        for connection in list(self._connections):
            connection.close()

    def _forget(self, connection: Connection) -> None:
        self._connections.discard(connection)
        if self._deadline is not None and not self._connections:
            self._deadline.cancel()  # a shutdown finished before its timeout
            self._deadline = None

    def serve_forever(self) -> None:
        """Run the loop until this server is shut down and its last connection
        has closed (with a loop of its own, as :func:`serve` makes) or until
        the loop has nothing left to do; then close the loop if it is ours."""
        try:
            self.loop.run()
        finally:
            if self._owns_loop:
                self.loop.close()


class Loop:
    """A small selectors-based event loop for sanschat Handlers."""

    def __init__(self, *, recv_size: int = 65536, linger: float = 2.0) -> None:
        self.selector: selectors.BaseSelector = selectors.DefaultSelector()
        self.recv_size = recv_size
        #: Seconds a cleanly closing connection waits for the peer's end of
        #: stream (dropping what it sends) before closing anyway.
        self.linger = linger
        self.connections: set[Connection] = set()
        self.listeners: set[Server] = set()
        self._timers: list[tuple[float, int, Timer]] = []
        self._sequence = itertools.count()
        self._ready: deque[tuple[Callable[..., object], tuple[Any, ...]]] = deque()
        self._stopping = False
        self._deadline: Timer | None = None  # a shutdown's timeout
        self._thread: int | None = None  # the thread in run(), if any
        self._wake_recv, self._wake_send = socket.socketpair()
        self._wake_recv.setblocking(False)
        self._wake_send.setblocking(False)
        self.selector.register(self._wake_recv, _READ, self._drain_wakeups)

    # ------------------------------------------------------------ sockets

    def listen(
        self,
        factory: Callable[[], Handler],
        host: str | None = "127.0.0.1",
        port: int = 0,
        *,
        backlog: int = DEFAULT_BACKLOG,
        reuse_port: bool = False,
        tls: ssl.SSLContext | None = None,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    ) -> Server:
        """Accept TCP clients on ``host:port`` (0: a free port, see ``.port``);
        each gets a Handler from ``factory``. ``reuse_port``: other processes
        may listen on the same port (``SO_REUSEPORT``). ``tls``: every
        connection runs TLS from its first byte (a server context), its
        handshake bounded by ``handshake_timeout`` seconds."""
        sock = listening_socket(host, port, backlog=backlog, reuse_port=reuse_port)
        return Server(self, sock, factory, tls=tls, handshake_timeout=handshake_timeout)

    def connect(
        self,
        handler: Handler,
        host: str,
        port: int,
        *,
        timeout: float = 10.0,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> Connection:
        """Connect to ``host:port`` (blocking for at most ``timeout``) and run
        ``handler`` as a client: with ``tls`` from the first byte, verifying
        the server's certificate against ``server_hostname`` (default
        ``host``); ``handler.start_tls`` upgrades later as a client too."""
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        hostname = (server_hostname or host) if tls is not None else server_hostname
        return Connection(self, sock, handler, tls=tls, server_side=False, server_hostname=hostname)

    def add_socket(self, sock: socket.socket, handler: Handler, **options: Any) -> Connection:
        """Run ``handler`` on an already connected stream socket (a socketpair,
        say); ``options`` are :class:`Connection`'s (``tls``, ``server_side``...)."""
        return Connection(self, sock, handler, **options)

    # ---------------------------------------------------------- callbacks

    def call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        """Run ``callback(*args)`` on the next turn of the loop."""
        self._ready.append((callback, args))

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: Any) -> None:
        """Like :meth:`call_soon`, from any thread: wakes the loop up."""
        self._ready.append((callback, args))
        self._wake()

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Timer:
        """Run ``callback(*args)`` after ``delay`` seconds."""
        timer = Timer(monotonic() + delay, callback, args)
        heapq.heappush(self._timers, (timer.when, next(self._sequence), timer))
        return timer

    def stop(self) -> None:
        """Make :meth:`run` return after the current turn; safe from any thread."""
        self._stopping = True
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_send.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already awake, or closing

    def _drain_wakeups(self, mask: int) -> None:
        try:
            while self._wake_recv.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    # ---------------------------------------------------------------- run

    def run(self, timeout: float | None = None) -> None:
        """Serve until :meth:`stop`, until ``timeout`` seconds have passed, or until
        there is nothing left to do (no listener, connection, timer or callback)."""
        deadline = None if timeout is None else monotonic() + timeout
        self._stopping = False
        self._thread = threading.get_ident()
        try:
            self._run_until(deadline)
        finally:
            self._thread = None

    def _in_own_thread(self) -> bool:
        """Whether the caller may touch the loop: it runs in this thread, or not at all."""
        return self._thread is None or self._thread == threading.get_ident()

    def _run_until(self, deadline: float | None) -> None:
        while not self._stopping:
            self._run_ready()
            timers = self._timers
            while timers and timers[0][2].cancelled:
                heapq.heappop(timers)
            if not (self.connections or self.listeners or timers or self._ready):
                return
            now = monotonic()
            if deadline is not None and now >= deadline:
                return
            wait = self._next_wait(now, deadline)
            for key, mask in self.selector.select(wait):
                key.data(mask)
            self._run_timers()

    def _next_wait(self, now: float, deadline: float | None) -> float | None:
        if self._ready:
            return 0
        candidates = [t[0] for t in self._timers[:1]]
        if deadline is not None:
            candidates.append(deadline)
        return max(0.0, min(candidates) - now) if candidates else None

    def _run_ready(self) -> None:
        for _ in range(len(self._ready)):
            callback, args = self._ready.popleft()
            self._call(callback, args)

    def _run_timers(self) -> None:
        now = monotonic()
        while self._timers and self._timers[0][0] <= now:
            timer = heapq.heappop(self._timers)[2]
            if not timer.cancelled:
                self._call(timer.callback, timer.args)

    @staticmethod
    def _call(callback: Callable[..., object], args: tuple[Any, ...]) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("callback %r failed", callback)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Begin a graceful stop and return at once: stop accepting, let every
        connection finish what it has queued (``close_when_done``), and close
        those still open after ``timeout`` seconds. :meth:`run` returns once
        the last one has closed. Call it in the loop's thread (from another,
        through :meth:`call_soon_threadsafe`)."""
        for listener in list(self.listeners):
            listener.close()
        for connection in list(self.connections):
            connection.framer.close_when_done()
            connection._update()
        if self.connections:
            self._deadline = self.call_later(timeout, self._close_connections)

    def _close_connections(self) -> None:
        for connection in list(self.connections):
            connection.close()

    def close(self) -> None:
        """Close every connection and listener, then the loop itself."""
        for listener in list(self.listeners):
            listener.close()
        for connection in list(self.connections):
            connection.close()
            # A Ctrl-C that interrupted the connection's own close left it
            # marked closed, and its socket open: the socket goes anyway.
            connection.sock.close()
        self.selector.unregister(self._wake_recv)
        self._wake_recv.close()
        self._wake_send.close()
        self.selector.close()

    def __enter__(self) -> Loop:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def serve(
    factory: Callable[[], Handler],
    host: str | None = "127.0.0.1",
    port: int = 0,
    *,
    backlog: int = DEFAULT_BACKLOG,
    reuse_port: bool = False,
    tls: ssl.SSLContext | None = None,
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    loop: Loop | None = None,
) -> Server:
    """Listen on ``host:port`` with a Handler from ``factory`` per client, on
    ``loop`` or on a new Loop of the server's own; returns the :class:`Server`
    at once. ``server.serve_forever()`` runs it until ``server.shutdown()``
    has ended. Keywords as under every binding (see :meth:`Loop.listen`)."""
    own = loop is None
    loop = Loop() if loop is None else loop
    try:
        server = loop.listen(
            factory,
            host,
            port,
            backlog=backlog,
            reuse_port=reuse_port,
            tls=tls,
            handshake_timeout=handshake_timeout,
        )
    except BaseException:
        if own:
            loop.close()
        raise
    server._owns_loop = own
    return server


def __getattr__(name: str) -> Any:
    if name == "Listener":  # its name in 0.1
        import warnings

        warnings.warn("sanschat.select.Listener is now Server", DeprecationWarning, stacklevel=2)
        return Server
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
