"""Run sanschat on asyncio: Handler callbacks, or ``async for event in connection``.

Two front ends, both subclasses of ``asyncio.BufferedProtocol``:

- :func:`serve` / :func:`connect` run a :class:`~sanschat.Handler` per
  connection on a :class:`~sanschat.Driver` (:class:`HandlerProtocol`), under
  the same rules as the select and trio bindings; :func:`shutdown` stops a
  server gracefully; a :class:`Server` accepts on a loop of its own that
  backs off when the process is out of descriptors;
- :func:`open_connection` / :func:`start_server` give a :class:`FramedConnection`:
  ``async for event in connection``, ``connection.push(...)``,
  ``await connection.drain()``.

Output goes through the connection's Framer and is written only while the
transport is not paused (``pause_writing``), so producers are pulled as fast as
the peer reads. A connection's unconsumed input past its limit pauses reading; a
Handler's reading follows its driver (its unsent output, not the transport's
buffer).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import sys
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ._accept import AcceptFailures
from ._callback import WRITE_CHUNK, CallbackBinding
from ._driver import DEFAULT_HANDSHAKE_TIMEOUT, Driver
from ._events import NEED_DATA, EndOfStream, InputEvent
from ._framer import DEFAULT_MAX_FRAME_SIZE, Framer
from ._handler import ConnectionInfo, Handler
from ._output import BytesLike, Producer
from ._shape import ServerShape
from ._sockets import DEFAULT_BACKLOG
from ._terminators import Terminator

if TYPE_CHECKING:
    from ssl import SSLContext

__all__ = [
    "FramerProtocol",
    "HandlerProtocol",
    "shutdown",
    "Server",
    "FramedConnection",
    "serve",
    "connect",
    "open_connection",
    "start_server",
]

log = logging.getLogger("sanschat.asyncio")

_READ_SIZE = 65536


class FramerProtocol(asyncio.BufferedProtocol):
    """The transport side shared by both front ends: reads into the Framer,
    writes from it, with flow control both ways."""

    def __init__(self, framer: Framer, *, read_size: int = 65536) -> None:
        self.framer = framer
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray(read_size)
        self._view = memoryview(self._buffer)
        self._write_paused = False
        self._read_paused = False
        self._flush_scheduled = False
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._drain_waiters: deque[asyncio.Future[None]] = deque()
        framer.on_output_ready = self._schedule_flush

    # ------------------------------------------------------------- input

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        self.framer.receive_data(self._view[:nbytes])  # copied: the buffer is reused
        self._input_ready()

    def eof_received(self) -> bool:
        self.framer.receive_data(b"")
        self._input_ready()
        return True  # keep the transport open for what we still have to send

    def _input_ready(self) -> None:
        """New input (or the end of it) is in the Framer."""
        raise NotImplementedError

    def _pause_reading(self) -> None:
        if not self._read_paused and self.transport is not None:
            self._read_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._read_paused and self.transport is not None and not self.transport.is_closing():
            self._read_paused = False
            self.transport.resume_reading()

    # ------------------------------------------------------------ output

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Write what the Framer has, while the transport is not paused."""
        self._flush_scheduled = False
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        framer = self.framer
        while not self._write_paused:
            data = framer.data_to_send(WRITE_CHUNK)
            if not data:
                break
            transport.write(data)  # may call pause_writing() right away
            if transport.is_closing():
                # A failed send closes the transport, which then drops every
                # later write without pausing us: stop pulling producers.
                return
        if framer.should_close:
            transport.close()
        elif not self._write_paused and not framer.has_output:
            self._wake_drainers(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._flush()

    async def drain(self) -> None:
        """Wait until everything queued has been handed to the transport and the
        transport is not paused. Raises ConnectionError if the connection is lost."""
        if self._closed.done():
            raise ConnectionResetError("connection lost")
        if not self._write_paused and not self.framer.has_output:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._drain_waiters.append(waiter)
        await waiter

    def _wake_drainers(self, error: BaseException | None) -> None:
        while self._drain_waiters:
            waiter = self._drain_waiters.popleft()
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)

    # ----------------------------------------------------------- closing

    def connection_lost(self, exc: Exception | None) -> None:
        self.framer.on_output_ready = None
        self._wake_drainers(exc or ConnectionResetError("connection lost"))
        if not self._closed.done():
            self._closed.set_result(None)

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        await asyncio.shield(self._closed)


class HandlerProtocol(CallbackBinding, asyncio.BufferedProtocol):
    """Runs a :class:`~sanschat.Handler` for one connection on a
    :class:`~sanschat.Driver`; this class only moves bytes.

    Reads go into one buffer shared by every connection of the thread (asyncio
    hands it back with ``buffer_updated`` before reading anything else, and
    the Framer copies what it keeps), so an idle connection costs no read
    buffer. The transport's own write buffer never pauses reading: output
    waits in the Framer, bounded by the Handler's ``pause_reading_above`` and
    ``max_output``.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        linger: float = 2.0,
        tls: SSLContext | None = None,
        server_side: bool = True,
        server_hostname: str | None = None,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    ) -> None:
        loop = asyncio.get_running_loop()
        super().__init__(
            handler,
            linger,
            loop.call_later,
            self._schedule_update,
            tls=tls,
            server_side=server_side,
            server_hostname=server_hostname,
            handshake_timeout=handshake_timeout,
        )
        self.transport: asyncio.Transport | None = None
        self._update_scheduled = False
        self._view = _shared_read_buffer()
        self._closed: asyncio.Future[None] = loop.create_future()
        self._drained: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        tls = transport.get_extra_info("ssl_object")
        peer, local = transport.get_extra_info("peername"), transport.get_extra_info("sockname")
        self._connected(self.transport, ConnectionInfo(peer, local, tls))  # type: ignore[arg-type]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        self.driver.data_received(self._view[:nbytes])  # (dropped and counted once closing)
        self._update()

    def eof_received(self) -> bool:
        self._eof_received()
        return True  # keep the transport open for what we still have to send

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._resume_writing()

    def _schedule_update(self) -> None:
        if not self._update_scheduled:
            self._update_scheduled = True
            asyncio.get_running_loop().call_soon(self._scheduled_update)

    def _scheduled_update(self) -> None:
        self._update_scheduled = False
        self._update()

    def _update(self) -> None:
        CallbackBinding._update(self)  # (not super(): this runs once per read)
        drained, transport = self._drained, self.transport
        if drained is not None and transport is not None and not transport.is_closing():
            if not self._write_paused and not self.driver.wants_write:
                self._drained = None
                drained.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(exc)
        if not self._closed.done():
            self._closed.set_result(None)
        if self._drained is not None:
            self._drained.set_exception(exc or ConnectionResetError("connection lost"))
            self._drained = None

    async def drain(self) -> None:
        """Wait until the queued output has been handed to the transport and the
        transport is not paused. Raises ConnectionError if the connection is lost."""
        if self._closed.done():
            raise ConnectionResetError("connection lost")
        if self._write_paused or self.driver.wants_write:
            if self._drained is None:
                self._drained = asyncio.get_running_loop().create_future()
            self._schedule_update()
            await asyncio.shield(self._drained)

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        await asyncio.shield(self._closed)


_buffers = threading.local()


def _shared_read_buffer() -> memoryview:
    """This thread's read buffer, shared by its connections (see HandlerProtocol).

    The proactor loop (Windows) reads into the buffer later, asynchronously, so
    there each connection gets its own."""
    proactor = getattr(asyncio, "ProactorEventLoop", None)
    if proactor is not None and isinstance(asyncio.get_running_loop(), proactor):
        return memoryview(bytearray(_READ_SIZE))  # pragma: no cover - Windows
    view: memoryview | None = getattr(_buffers, "view", None)
    if view is None:
        view = _buffers.view = memoryview(bytearray(_READ_SIZE))
    return view


class FramedConnection(FramerProtocol):
    """Pull-style use of a connection: ``async for event in stream``.

    Events are ``Frame``, ``Data`` and a last ``EndOfStream``. Reading pauses
    while more than ``max_pending`` bytes wait unconsumed in the Framer.
    """

    def __init__(self, framer: Framer, *, read_size: int = 65536, max_pending: int = 262144) -> None:
        super().__init__(framer, read_size=read_size)
        self.max_pending = max_pending
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False

    def _input_ready(self) -> None:
        if self.framer.pending_input > self.max_pending:
            self._pause_reading()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.framer.eof_received:
            self.framer.receive_data(b"")  # a reset is the end of the stream too
        self._input_ready()

    async def receive(self) -> InputEvent:
        """The next ``Frame``, ``Data`` or ``EndOfStream`` (a reset ends the
        stream too); after the ``EndOfStream``, ``EndOfStream(b"")`` again."""
        while True:
            event = self.framer.next_event()
            if event is not NEED_DATA:
                break
            self._resume_reading()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if type(event) is EndOfStream:
            self._ended = True
        return event  # type: ignore[return-value]

    def __aiter__(self) -> AsyncIterator[InputEvent]:
        return self

    async def __anext__(self) -> InputEvent:
        if self._ended:
            raise StopAsyncIteration
        return await self.receive()

    def set_terminator(self, terminator: Terminator, *, stream: bool | None = None) -> None:
        """Same as the Framer's: applies to bytes already received."""
        self.framer.set_terminator(terminator, stream=stream)

    def push(self, data: BytesLike) -> None:
        """Queue bytes to send (written on the next loop turn)."""
        self.framer.push(data)

    def push_with_producer(self, producer: Producer | BytesLike) -> None:
        """Queue a producer; it is pulled only while the transport takes data."""
        self.framer.push_with_producer(producer)

    async def send(self, data: BytesLike) -> None:
        """Push and wait until the transport has taken it."""
        self.framer.push(data)
        self._flush()
        await self.drain()

    async def aclose(self) -> None:
        """Close once queued output is sent, and wait for the close."""
        if self.transport is not None and not self.transport.is_closing():
            self.framer.close_when_done()
            self._flush()
        await self.wait_closed()

    async def __aenter__(self) -> FramedConnection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


# ------------------------------------------------------------------ servers

_Connection = HandlerProtocol | FramerProtocol  # what a Server's protocols are


class Server(ServerShape, asyncio.AbstractServer):
    """A listening server, as :func:`serve` and :func:`start_server` return it,
    with the methods of :class:`asyncio.Server`: ``sockets``, ``close()``,
    ``wait_closed()``, ``serve_forever()``, ``is_serving()``,
    ``start_serving()``, ``close_clients()``, ``abort_clients()``,
    ``get_loop()`` and ``async with``.

    Its accept loop is sanschat's own, not asyncio's: when ``accept()`` fails
    (for lack of resources, say: out of descriptors, EMFILE or ENFILE; ENOBUFS,
    ENOMEM), the server stops accepting on that socket for ``ACCEPT_BACKOFF``
    (0.1 s) and tries again, logging once when the failures start and once
    when they end, so it recovers as soon as descriptors are free again.
    (asyncio's own loop retries many times a second, logging each failure,
    and in sanschat's test never served again.) Each accepted socket becomes
    a transport by ``loop.connect_accepted_socket``, so TLS (``ssl=``) and
    uvloop work as with ``loop.create_server``.

    ``wait_closed()`` returns once the server is closed and every connection
    it accepted is over, on every Python version (as asyncio's does since
    3.12.1).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sockets: list[socket.socket],
        protocol_factory: Callable[[], _Connection],
        backlog: int,
        connection_options: dict[str, Any],
    ) -> None:
        self._loop = loop
        self._sockets: list[socket.socket] | None = sockets
        self._addresses = [sock.getsockname() for sock in sockets]  # (kept once closed)
        self._listeners = [_Listener(self, sock) for sock in sockets]
        self._protocol_factory = protocol_factory
        self._backlog = backlog
        self._options = connection_options  # for connect_accepted_socket: ssl and its timeouts
        self._serving = False
        self._setups: set[asyncio.Task[None]] = set()  # accepted, connection not yet made
        self._connections: set[_Connection] = set()
        self._waiters: list[asyncio.Future[None]] | None = []  # None: closed, and no connection left
        self._serving_forever: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} sockets={self.sockets!r}>"

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets; none once closed."""
        return tuple(self._sockets or ())

    def _open_drivers(self) -> Iterable[Driver]:
        # (a start_server stream's connection runs no Handler, hence no Driver)
        return (c.driver for c in self._connections if isinstance(c, HandlerProtocol))

    async def shutdown(self, timeout: float = 10.0) -> None:
        """Stop gracefully: stop accepting, let every connection finish what it
        has queued (``close_when_done``), wait up to ``timeout`` seconds, then
        abort the connections still open, and wait for the server to close.
        A client still in its TLS handshake is dropped. (A
        :func:`start_server` stream's connections are closed by their tasks.)"""
        self.close()
        self._cancel_setups()
        handlers = [p for p in self._connections if isinstance(p, HandlerProtocol)]
        for protocol in handlers:
            protocol.close_when_done()
        if handlers:
            await asyncio.wait([asyncio.ensure_future(p.wait_closed()) for p in handlers], timeout=timeout)
        for protocol in handlers:
            protocol.abort()
        await self.wait_closed()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        """The loop the server runs on."""
        return self._loop

    def is_serving(self) -> bool:
        """Whether it accepts clients (started and not closed)."""
        return self._serving

    async def start_serving(self) -> None:
        """Start accepting clients (``serve`` does, unless given ``start_serving=False``)."""
        self._start_serving()

    def _start_serving(self) -> None:
        if self._serving or self._sockets is None:
            return
        self._serving = True
        for listener in self._listeners:
            listener.start()

    async def serve_forever(self) -> None:
        """Accept clients until cancelled; then close the server and wait for
        it to close."""
        if self._serving_forever is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._sockets is None:
            raise RuntimeError(f"server {self!r} is closed")
        self._start_serving()
        self._serving_forever = self._loop.create_future()
        try:
            await self._serving_forever
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever = None

    def close(self) -> None:
        """Stop accepting and close the listening sockets; the connections go on."""
        if self._sockets is None:
            return
        self._sockets = None
        self._serving = False
        for listener in self._listeners:
            listener.close()
        self._listeners = []
        if self._serving_forever is not None and not self._serving_forever.done():
            self._serving_forever.cancel()
        self._wake_if_closed()

    def close_clients(self) -> None:
        """Close every connection's transport (what it has buffered is still sent)."""
        for connection in list(self._connections):
            if connection.transport is not None:
                connection.transport.close()

    def abort_clients(self) -> None:
        """Abort every connection's transport, and drop the clients not yet connected."""
        self._cancel_setups()
        for connection in list(self._connections):
            if connection.transport is not None:
                connection.transport.abort()

    async def wait_closed(self) -> None:
        """Wait until the server is closed and every connection is over."""
        if self._waiters is None:
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter

    # ------------------------------------------------------- connections

    def _open(self, sock: socket.socket) -> None:
        """Make a connection of an accepted socket: its protocol now, its
        transport in a task (a TLS handshake takes round trips)."""
        try:
            protocol = self._protocol_factory()
        except Exception:
            log.exception("handler factory failed; dropping the client")
            sock.close()
            return
        setup = self._loop.create_task(self._connect(sock, protocol))
        self._setups.add(setup)
        setup.add_done_callback(self._set_up)

    async def _connect(self, sock: socket.socket, protocol: _Connection) -> None:
        try:
            await self._loop.connect_accepted_socket(lambda: protocol, sock, **self._options)
        except OSError as error:  # a TLS handshake failed or timed out, a reset: that client only
            log.debug("dropped a client before its connection was made: %r", error)
        except Exception:  # the transport cleans up after itself, as under create_server
            log.exception("could not make a connection of an accepted socket")

    def _set_up(self, setup: asyncio.Task[None]) -> None:
        self._setups.discard(setup)
        self._wake_if_closed()

    def _cancel_setups(self) -> None:
        for setup in list(self._setups):
            setup.cancel()

    def _attach(self, connection: _Connection) -> None:
        self._connections.add(connection)

    def _detach(self, connection: _Connection) -> None:
        self._connections.discard(connection)
        self._wake_if_closed()

    def _wake_if_closed(self) -> None:
        if self._sockets is None and not self._connections and not self._setups:
            waiters, self._waiters = self._waiters, None
            for waiter in waiters or ():
                if not waiter.done():
                    waiter.set_result(None)


class _Listener:
    """The accept loop of one listening socket (see :class:`Server`)."""

    def __init__(self, server: Server, sock: socket.socket) -> None:
        self._server = server
        self._loop = server._loop
        self._sock = sock
        self._failures = AcceptFailures(log, sock.getsockname())
        self._reading = False
        self._resuming: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._sock.listen(self._server._backlog)
        try:
            self._loop.add_reader(self._sock, self._accept_ready)
            self._reading = True
        except NotImplementedError:  # Windows' proactor loop: no readers, so a task
            self._task = self._loop.create_task(self._accept_forever())

    def _accept_ready(self) -> None:
        for _ in range(self._server._backlog):  # a burst (as asyncio's), then the others run
            try:
                sock, _address = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:  # that client left before we took it
                continue
            except OSError as error:  # out of descriptors, and the like: do not spin on it
                if self._reading:  # (else the Server was closed by a callback)
                    self._loop.remove_reader(self._sock)
                    self._reading = False
                    self._resuming = self._loop.call_later(self._failures.failed(error), self._resume)
                return
            self._failures.accepted()
            self._server._open(sock)

    def _resume(self) -> None:
        self._resuming = None
        self._loop.add_reader(self._sock, self._accept_ready)
        self._reading = True

    async def _accept_forever(self) -> None:
        while True:
            try:
                sock, _address = await self._loop.sock_accept(self._sock)
            except ConnectionAbortedError:
                continue
            except OSError as error:
                await asyncio.sleep(self._failures.failed(error))
                continue
            self._failures.accepted()
            self._server._open(sock)

    def close(self) -> None:
        if self._task is not None:
            # The pending sock_accept lets go of the socket as the task ends.
            self._task.add_done_callback(lambda _task: self._sock.close())
            self._task.cancel()
            return
        if self._resuming is not None:
            self._resuming.cancel()
        if self._reading:
            self._loop.remove_reader(self._sock)
            self._reading = False
        self._sock.close()


async def _bind(
    protocol_factory: Callable[[], _Connection],
    host: str | Sequence[str] | None,
    port: int | str | None,
    *,
    family: int = socket.AF_UNSPEC,
    flags: int = socket.AI_PASSIVE,
    sock: socket.socket | None = None,
    backlog: int = 100,
    ssl: SSLContext | None = None,
    reuse_address: bool | None = None,
    reuse_port: bool | None = None,
    keep_alive: bool | None = None,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
) -> Server:
    """A Server, not yet serving, on sockets bound as ``loop.create_server``
    binds them (same keywords, same errors)."""
    loop = asyncio.get_running_loop()
    if isinstance(ssl, bool):
        raise TypeError("ssl argument must be an SSLContext or None")
    options: dict[str, Any] = {}
    if ssl is not None:
        options["ssl"] = ssl
    if ssl_handshake_timeout is not None:
        if ssl is None:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        options["ssl_handshake_timeout"] = ssl_handshake_timeout
    if ssl_shutdown_timeout is not None:
        if ssl is None:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        options["ssl_shutdown_timeout"] = ssl_shutdown_timeout
    if host is None and port is None:
        if sock is None:
            raise ValueError("Neither host/port nor sock were specified")
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")
        sockets = [sock]
    elif sock is not None:
        raise ValueError("host/port and sock can not be specified at the same time")
    else:
        if reuse_address is None:
            reuse_address = os.name == "posix" and sys.platform != "cygwin"
        hosts: Sequence[str | None] = (
            [None] if host == "" else [host] if isinstance(host, str | None) else host
        )
        found = [await _addresses(loop, h, port, family, flags) for h in hosts]
        infos = list(dict.fromkeys(info for infos in found for info in infos))
        sockets = []
        try:
            for af, kind, proto, _name, address in infos:
                try:
                    sock = socket.socket(af, kind, proto)
                except OSError:  # a family this machine lacks
                    continue
                sockets.append(sock)
                _listening_options(sock, reuse_address, reuse_port, keep_alive)
                try:
                    sock.bind(address)
                except OSError as error:
                    if error.errno == errno.EADDRNOTAVAIL:  # that family is not enabled
                        sockets.pop().close()
                        continue
                    reason = (error.strerror or str(error)).lower()
                    message = f"error while attempting to bind on address {address!r}: {reason}"
                    raise OSError(error.errno, message) from None
            if not sockets:
                raise OSError(f"could not bind on any address out of {[info[4] for info in infos]!r}")
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
    for sock in sockets:
        sock.setblocking(False)
    return Server(loop, sockets, protocol_factory, backlog, options)


async def _addresses(
    loop: asyncio.AbstractEventLoop, host: str | None, port: int | str | None, family: int, flags: int
) -> list[tuple[Any, ...]]:
    try:  # a numeric address needs no resolver thread
        found = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, flags | socket.AI_NUMERICHOST)
    except socket.gaierror:
        found = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM, flags=flags)
    return [tuple(info) for info in found]


def _listening_options(
    sock: socket.socket, reuse_address: bool, reuse_port: bool | None, keep_alive: bool | None
) -> None:
    if reuse_address:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        if not hasattr(socket, "SO_REUSEPORT"):
            raise ValueError("reuse_port not supported by socket module")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if keep_alive:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if sock.family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
        # No dual stack (Linux's default): an IPv4 address gets a socket of its own.
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)


# ------------------------------------------------------------------ helpers


def _framer_factory(terminator: Terminator, stream: bool, max_frame_size: int | None) -> Callable[[], Framer]:
    return lambda: Framer(terminator, stream=stream, max_frame_size=max_frame_size)


async def serve(
    factory: Callable[[], Handler],
    host: str | None = "127.0.0.1",
    port: int = 0,
    *,
    backlog: int = DEFAULT_BACKLOG,
    reuse_port: bool = False,
    tls: SSLContext | None = None,
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    **kwargs: Any,
) -> Server:
    """Start a server whose every connection runs a Handler from ``factory``.
    ``reuse_port``: other processes may listen on the same port
    (``SO_REUSEPORT``). ``tls`` (a server context): every connection runs TLS
    from its first byte in sanschat's sans-IO layer, the same under every
    binding (and ``handler.start_tls`` works); a handshake longer than
    ``handshake_timeout`` seconds ends it. Extra keywords are those of
    ``loop.create_server`` (``sock``, ``family``, ``start_serving``... and
    asyncio's own ``ssl``, which still works but cannot upgrade). Stop it with
    ``await server.shutdown(timeout)``."""
    if tls is not None and kwargs.get("ssl") is not None:
        raise ValueError("give tls= (sanschat's TLS) or ssl= (asyncio's), not both")
    options: dict[str, Any] = {"tls": tls, "handshake_timeout": handshake_timeout}
    server: Server

    class ServerProtocol(HandlerProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            server._attach(self)
            super().connection_made(transport)

        def connection_lost(self, exc: Exception | None) -> None:
            server._detach(self)
            super().connection_lost(exc)

    start = kwargs.pop("start_serving", True)
    server = await _bind(
        lambda: ServerProtocol(factory(), **options),
        host,
        port,
        backlog=backlog,
        reuse_port=reuse_port,
        **kwargs,
    )
    if start:
        await server.start_serving()
    return server


async def shutdown(server: Server, timeout: float = 10.0) -> None:
    """Deprecated: ``await server.shutdown(timeout)``."""
    import warnings

    warnings.warn(
        "sanschat.asyncio.shutdown(server, t) is now await server.shutdown(t)",
        DeprecationWarning,
        stacklevel=2,
    )
    await server.shutdown(timeout)


async def connect(
    handler: Handler,
    host: str,
    port: int,
    *,
    tls: SSLContext | None = None,
    server_hostname: str | None = None,
    **kwargs: Any,
) -> HandlerProtocol:
    """Connect to ``host:port`` and run ``handler`` on the connection, as a
    client: with ``tls`` from the first byte, verifying the server's
    certificate against ``server_hostname`` (default ``host``);
    ``handler.start_tls`` upgrades later as a client too. Extra keywords are
    those of ``loop.create_connection``."""
    loop = asyncio.get_running_loop()
    hostname = (server_hostname or host) if tls is not None else server_hostname
    _transport, protocol = await loop.create_connection(
        lambda: HandlerProtocol(handler, tls=tls, server_side=False, server_hostname=hostname),
        host,
        port,
        **kwargs,
    )
    return protocol


async def open_connection(
    host: str,
    port: int,
    terminator: Terminator = b"\r\n",
    *,
    stream: bool = False,
    max_frame_size: int | None = DEFAULT_MAX_FRAME_SIZE,
    **kwargs: Any,
) -> FramedConnection:
    """Connect and return a :class:`FramedConnection` framing with ``terminator``."""
    loop = asyncio.get_running_loop()
    make = _framer_factory(terminator, stream, max_frame_size)
    _transport, protocol = await loop.create_connection(
        lambda: FramedConnection(make()), host, port, **kwargs
    )
    return protocol


async def start_server(
    client_connected: Callable[[FramedConnection], Awaitable[None]],
    host: str = "127.0.0.1",
    port: int = 0,
    terminator: Terminator = b"\r\n",
    *,
    stream: bool = False,
    max_frame_size: int | None = DEFAULT_MAX_FRAME_SIZE,
    **kwargs: Any,
) -> Server:
    """Start a server that runs ``client_connected(stream)`` as a task per client;
    the stream is closed (after its output is sent) when the task ends."""
    loop = asyncio.get_running_loop()
    make = _framer_factory(terminator, stream, max_frame_size)
    tasks: set[asyncio.Task[None]] = set()
    server: Server

    async def run(framed: FramedConnection) -> None:
        try:
            await client_connected(framed)
        finally:
            await framed.aclose()

    class ServerStream(FramedConnection):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            server._attach(self)
            super().connection_made(transport)
            task = loop.create_task(run(self))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        def connection_lost(self, exc: Exception | None) -> None:
            server._detach(self)
            super().connection_lost(exc)

    start = kwargs.pop("start_serving", True)
    server = await _bind(lambda: ServerStream(make()), host, port, **kwargs)
    if start:
        await server.start_serving()
    return server


def __getattr__(name: str) -> Any:
    if name == "FramedStream":  # its name until 0.1: "stream" now means only the delivery mode
        import warnings

        warnings.warn("FramedStream is now FramedConnection", DeprecationWarning, stacklevel=2)
        return FramedConnection
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
