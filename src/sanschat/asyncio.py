"""Run sanschat on asyncio: Handler callbacks, or ``async for event in stream``.

Two front ends over one protocol class (an ``asyncio.BufferedProtocol``, so
the transport reads into a buffer allocated once):

- :func:`serve` / :func:`connect` run a :class:`~sanschat.Handler` per
  connection, the same class the select and trio bindings run;
- :func:`open_connection` / :func:`start_server` give a :class:`FramedStream`:
  ``async for event in stream``, ``stream.push(...)``, ``await stream.drain()``.

Output goes through the connection's Framer. Producers are pulled only while
the transport is not paused (``pause_writing``), so a peer that never reads
holds memory at the transport's high water mark plus one chunk, however much
was queued. ``close_when_done`` closes the transport once its output is out.
Input is read only while the application keeps up: a stream's unconsumed input
past its limit, or a handler whose peer does not read its output, pauses reading.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ._events import NEED_DATA, EndOfStream, InputEvent
from ._framer import DEFAULT_MAX_FRAME_SIZE, Framer
from ._handler import Handler, deliver_events
from ._output import BytesLike, Producer
from ._terminators import Terminator

__all__ = [
    "FramerProtocol",
    "HandlerProtocol",
    "FramedStream",
    "serve",
    "connect",
    "open_connection",
    "start_server",
]

_WRITE_CHUNK = 65536


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
            data = framer.data_to_send(_WRITE_CHUNK)
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


class HandlerProtocol(FramerProtocol):
    """Runs a :class:`~sanschat.Handler`'s callbacks for one connection."""

    def __init__(self, handler: Handler, *, read_size: int = 65536) -> None:
        super().__init__(handler.new_framer(), read_size=read_size)
        self.handler = handler
        self._ended = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._guard(self.handler.connection_made, self.framer)

    def _input_ready(self) -> None:
        try:
            if deliver_events(self.framer, self.handler):
                self._ended = True
        except Exception as error:
            self._fail(error)
            return
        self._flush()
        if self.framer.writing_paused or self._write_paused:
            self._pause_reading()  # the peer does not read what we answer

    def resume_writing(self) -> None:
        super().resume_writing()
        if not self._ended and not self.framer.writing_paused:
            self._resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._guard(self.handler.connection_lost, exc)

    def _guard(self, callback: Callable[..., object], *args: object) -> None:
        try:
            callback(*args)
        except Exception as error:
            self._fail(error)

    def _fail(self, error: Exception) -> None:
        loop = asyncio.get_running_loop()
        loop.call_exception_handler(
            {
                "message": f"closing the connection after an error in {self.handler!r}",
                "exception": error,
                "protocol": self,
                "transport": self.transport,
            }
        )
        if self.transport is not None:
            self.transport.abort()


class FramedStream(FramerProtocol):
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

    async def __aenter__(self) -> FramedStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


# ------------------------------------------------------------------ helpers


def _framer_factory(terminator: Terminator, stream: bool, max_frame_size: int | None) -> Callable[[], Framer]:
    return lambda: Framer(terminator, stream=stream, max_frame_size=max_frame_size)


async def serve(
    factory: Callable[[], Handler], host: str = "127.0.0.1", port: int = 0, **kwargs: Any
) -> asyncio.Server:
    """Start a server whose every connection runs a Handler from ``factory``.
    Extra keywords go to ``loop.create_server``."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: HandlerProtocol(factory()), host, port, **kwargs)


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
) -> FramedStream:
    """Connect and return a :class:`FramedStream` framing with ``terminator``."""
    loop = asyncio.get_running_loop()
    make = _framer_factory(terminator, stream, max_frame_size)
    _transport, protocol = await loop.create_connection(lambda: FramedStream(make()), host, port, **kwargs)
    return protocol


async def start_server(
    client_connected: Callable[[FramedStream], Awaitable[None]],
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

    async def run(framed: FramedStream) -> None:
        try:
            await client_connected(framed)
        finally:
            await framed.aclose()

    class ServerStream(FramedStream):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            task = loop.create_task(run(self))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    return await loop.create_server(lambda: ServerStream(make()), host, port, **kwargs)
