"""Run sanschat on asyncio: Handler callbacks, or ``async for event in connection``.

Two front ends, both subclasses of ``asyncio.BufferedProtocol``:

- :func:`serve` / :func:`connect` run a :class:`~sanschat.Handler` per
  connection on a :class:`~sanschat.Driver` (:class:`HandlerProtocol`), under
  the same rules as the select and trio bindings; :func:`shutdown` stops a
  server gracefully;
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
import logging
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ._callback import WRITE_CHUNK, CallbackBinding
from ._events import NEED_DATA, EndOfStream, InputEvent
from ._framer import DEFAULT_MAX_FRAME_SIZE, Framer
from ._handler import ConnectionInfo, Handler
from ._output import BytesLike, Producer
from ._terminators import Terminator

__all__ = [
    "FramerProtocol",
    "HandlerProtocol",
    "shutdown",
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

    def __init__(self, handler: Handler, *, linger: float = 2.0) -> None:
        loop = asyncio.get_running_loop()
        super().__init__(handler, linger, loop.call_later, self._schedule_update)
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
        super()._update()
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


# ------------------------------------------------------------------ helpers


def _framer_factory(terminator: Terminator, stream: bool, max_frame_size: int | None) -> Callable[[], Framer]:
    return lambda: Framer(terminator, stream=stream, max_frame_size=max_frame_size)


_connections: weakref.WeakKeyDictionary[asyncio.Server, set[HandlerProtocol]] = weakref.WeakKeyDictionary()


async def serve(
    factory: Callable[[], Handler], host: str = "127.0.0.1", port: int = 0, **kwargs: Any
) -> asyncio.Server:
    """Start a server whose every connection runs a Handler from ``factory``.
    Extra keywords go to ``loop.create_server``. Stop it with :func:`shutdown`."""
    loop = asyncio.get_running_loop()
    connections: set[HandlerProtocol] = set()

    class ServerProtocol(HandlerProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            connections.add(self)
            super().connection_made(transport)

        def connection_lost(self, exc: Exception | None) -> None:
            connections.discard(self)
            super().connection_lost(exc)

    def protocol() -> HandlerProtocol:
        try:
            return ServerProtocol(factory())
        except Exception:
            log.exception("handler factory failed; dropping the client")
            raise

    server = await loop.create_server(protocol, host, port, **kwargs)
    _connections[server] = connections
    return server


async def shutdown(server: asyncio.Server, timeout: float = 10.0) -> None:
    """Stop ``server`` gracefully: stop accepting, let every connection finish
    what it has queued (``close_when_done``), wait up to ``timeout`` seconds,
    then abort the connections still open, and wait for the server to close."""
    server.close()
    connections = _connections.get(server, set())
    for protocol in list(connections):
        protocol.close_when_done()
    if connections:
        await asyncio.wait([asyncio.ensure_future(p.wait_closed()) for p in connections], timeout=timeout)
    for protocol in list(connections):
        protocol.abort()
    await server.wait_closed()


async def connect(handler: Handler, host: str, port: int, **kwargs: Any) -> HandlerProtocol:
    """Connect to ``host:port`` and run ``handler`` on the connection."""
    loop = asyncio.get_running_loop()
    _transport, protocol = await loop.create_connection(
        lambda: HandlerProtocol(handler), host, port, **kwargs
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
) -> asyncio.Server:
    """Start a server that runs ``client_connected(stream)`` as a task per client;
    the stream is closed (after its output is sent) when the task ends."""
    loop = asyncio.get_running_loop()
    make = _framer_factory(terminator, stream, max_frame_size)
    tasks: set[asyncio.Task[None]] = set()

    async def run(framed: FramedConnection) -> None:
        try:
            await client_connected(framed)
        finally:
            await framed.aclose()

    class ServerStream(FramedConnection):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            task = loop.create_task(run(self))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    return await loop.create_server(lambda: ServerStream(make()), host, port, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "FramedStream":  # its name until 0.1: "stream" now means only the delivery mode
        import warnings

        warnings.warn("FramedStream is now FramedConnection", DeprecationWarning, stacklevel=2)
        return FramedConnection
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
