"""Run sanschat on trio: a framed wrapper over any ``trio.abc.Stream``.

- :class:`FramedStream` wraps a stream (TCP, TLS via ``trio.SSLStream``, the
  in-memory pairs of ``trio.testing``): ``async for event in framed`` to
  receive, ``await framed.send(...)`` / ``push`` + ``await framed.flush()`` to
  send, ``aclose()``. One task may send while another receives.
- :func:`run_handler` / :func:`serve` run a :class:`~sanschat.Handler` per
  connection, the same class the select and asyncio bindings run.

Cancellation (trio's contract, kept):

- receiving: a cancelled :meth:`FramedStream.receive` loses nothing. Received
  bytes go into the Framer before the next checkpoint, so what was not yet
  delivered comes with the next ``receive``.
- sending: output leaves the Framer's queue only once the stream has taken it
  (``peek_output``/``consume_output``). On a ``trio.SocketStream`` the socket
  is written directly, and a cancelled send sends nothing it does not account
  for: the rest stays queued for the next ``flush``. Other streams only offer
  ``send_all``, which after a cancel or an error may have sent any part of the
  chunk; that chunk stays counted in ``framer.pending_output`` and later
  sends raise ``trio.BrokenResourceError``, since the stream's position is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

try:
    import trio
except ImportError as error:  # pragma: no cover - exercised in a subprocess
    raise ImportError("sanschat.trio needs trio, which is an extra: pip install 'sanschat[trio]'") from error

from ._events import NEED_DATA, EndOfStream, InputEvent
from ._framer import Framer
from ._handler import Handler, deliver_events
from ._output import BytesLike, Producer
from ._terminators import Terminator

__all__ = ["FramedStream", "run_handler", "serve"]

log = logging.getLogger("sanschat.trio")


class FramedStream(trio.abc.AsyncResource):
    """A trio stream framed by ``framer`` (which carries both directions).

    Input is read only when the Framer needs data, so unconsumed input costs
    at most one ``receive_size`` read beyond the frame being assembled.
    """

    def __init__(self, transport: trio.abc.Stream, framer: Framer, *, receive_size: int = 65536) -> None:
        if receive_size < 1:
            raise ValueError(f"receive_size must be >= 1, not {receive_size}")
        self.transport = transport
        self.framer = framer
        self.receive_size = receive_size
        #: Why the input ended early (a reset, say), or None after a clean EOF.
        self.receive_error: BaseException | None = None
        self._send_lock = trio.StrictFIFOLock()
        self._send_broken = False
        self._receiving = False
        self._ended = False
        self._progress: trio.Event | None = None
        socket_stream = isinstance(transport, trio.SocketStream)
        self._socket = transport.socket if socket_stream else None  # type: ignore[attr-defined]

    # --------------------------------------------------------------- input

    async def receive(self) -> InputEvent:
        """The next ``Frame``, ``Data`` or ``EndOfStream``.

        At the end of the input (the peer's EOF, or a broken connection, kept
        in :attr:`receive_error`) the unterminated rest comes as
        ``EndOfStream``; after it, ``EndOfStream(b"")`` again. Two tasks may
        not receive at once (``trio.BusyResourceError``).
        """
        if self._receiving:
            raise trio.BusyResourceError("another task is already receiving on this stream")
        self._receiving = True
        try:
            framer = self.framer
            event = framer.next_event()
            while event is NEED_DATA:
                await self._fill()
                event = framer.next_event()
            if type(event) is EndOfStream:
                self._ended = True
            return event  # type: ignore[return-value]
        finally:
            self._receiving = False

    async def _fill(self) -> None:
        """Read once from the transport into the Framer (b"" = EOF)."""
        try:
            data = await self.transport.receive_some(self.receive_size)
        except trio.BrokenResourceError as error:
            self.receive_error = error
            data = b""
        self.framer.receive_data(data)  # no checkpoint since the read: nothing lost

    def __aiter__(self) -> FramedStream:
        return self

    async def __anext__(self) -> InputEvent:
        if self._ended:
            raise StopAsyncIteration
        return await self.receive()

    def set_terminator(self, terminator: Terminator, *, stream: bool | None = None) -> None:
        """Same as the Framer's: applies to bytes already received."""
        self.framer.set_terminator(terminator, stream=stream)

    # -------------------------------------------------------------- output

    def push(self, data: BytesLike) -> None:
        """Queue bytes; they go out with the next :meth:`flush` or :meth:`send`."""
        self.framer.push(data)

    def push_with_producer(self, producer: Producer | BytesLike) -> None:
        """Queue a producer; it is pulled only as fast as the stream takes data."""
        self.framer.push_with_producer(producer)

    async def send(self, data: BytesLike) -> None:
        """Queue ``data`` and send everything queued. If cancelled, ``data`` stays
        queued (see the module's notes) and goes out with the next flush."""
        self.framer.push(data)
        await self.flush()

    async def flush(self) -> None:
        """Send everything queued, pulling producers as the stream takes their
        output, then close the stream if ``close_when_done`` was called."""
        async with self._send_lock:
            if self._send_broken:
                raise trio.BrokenResourceError("an earlier send was interrupted mid-chunk")
            framer = self.framer
            while True:
                view = framer.peek_output()
                if not view:
                    break
                framer.consume_output(await self._send_some(view))
                if self._progress is not None and not framer.writing_paused:
                    self._progress.set()
                    self._progress = None
            if framer.should_close:
                await self.transport.aclose()

    async def _send_some(self, view: memoryview) -> int:
        if self._socket is not None:
            try:
                sent: int = await self._socket.send(view)  # all-or-nothing under cancel
            except OSError as error:
                raise trio.BrokenResourceError(f"socket send failed: {error}") from error
            return sent
        try:
            await self.transport.send_all(view)
        except BaseException:
            self._send_broken = True  # send_all may have sent any part of view
            raise
        return len(view)

    async def wait_writable(self) -> None:
        """Wait until the Framer's output is at or below its low water mark.

        Returns at once if ``framer.writing_paused`` is false; some task must
        be flushing for it to return otherwise.
        """
        while self.framer.writing_paused:
            if self._progress is None:
                self._progress = trio.Event()
            await self._progress.wait()

    async def send_eof(self) -> None:
        """Send what is queued, then close the sending side (half-close)."""
        if not isinstance(self.transport, trio.abc.HalfCloseableStream):
            raise TypeError(f"{type(self.transport).__name__} cannot half-close")
        await self.flush()
        async with self._send_lock:
            await self.transport.send_eof()

    async def aclose(self) -> None:
        """Close the stream now. Output not yet flushed is not sent; it stays
        counted in ``framer.pending_output``."""
        await self.transport.aclose()


# ------------------------------------------------------------- handlers


async def run_handler(transport: trio.abc.Stream, handler: Handler, *, receive_size: int = 65536) -> None:
    """Run ``handler`` on ``transport`` until the connection is over.

    Reading and writing are two tasks: output pushed at any time (by another
    connection, a timer) is sent at once. Reading pauses while the handler's
    output is above its high water mark. A reset ends the connection with
    ``connection_lost(error)``; an exception from the handler closes the
    connection, goes to ``connection_lost`` and is re-raised.
    """
    framed = FramedStream(transport, handler.new_framer(), receive_size=receive_size)
    framer = framed.framer
    wakeup = trio.Event()
    failure: list[BaseException] = []

    def output_ready() -> None:
        wakeup.set()

    async def read_loop() -> None:
        while not deliver_events(framer, handler):
            await framed.wait_writable()  # a peer that does not read is not read either
            await framed._fill()
            if framed.receive_error is not None:
                raise framed.receive_error

    async def write_loop() -> None:
        nonlocal wakeup
        while True:
            wakeup = trio.Event()  # armed before looking, so no push is missed
            await framed.flush()
            if framer.should_close:
                return
            if not framer.has_output:
                await wakeup.wait()

    async def guarded(job: Callable[[], Any], scope: trio.CancelScope, last: bool) -> None:
        try:
            await job()
        except Exception as error:  # a handler bug, or the connection broke
            failure.append(error)
            scope.cancel()
        else:
            if last:
                scope.cancel()

    framer.on_output_ready = output_ready
    try:
        handler.connection_made(framer)
        async with trio.open_nursery() as nursery:
            # Reading may end (EOF) while output still flows; writing ends the
            # connection when the handler closes it.
            nursery.start_soon(guarded, read_loop, nursery.cancel_scope, False)
            nursery.start_soon(guarded, write_loop, nursery.cancel_scope, True)
    except Exception as error:  # from connection_made
        failure.append(error)
    finally:
        framer.on_output_ready = None
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(transport)
            # Also when cancelled from outside: we closed it, a normal close.
            reason = failure[0] if failure else None
            handler.connection_lost(reason)
    if reason is not None and not isinstance(reason, (trio.BrokenResourceError, trio.ClosedResourceError)):
        raise reason


async def _serve_one(factory: Callable[[], Handler], transport: trio.abc.Stream) -> None:
    try:
        handler = factory()
    except Exception:
        log.exception("handler factory failed; dropping the client")
        await trio.aclose_forcefully(transport)
        return
    try:
        await run_handler(transport, handler)
    except Exception:
        log.exception("closed a connection after an error in %r", handler)


async def serve(
    factory: Callable[[], Handler],
    port: int,
    *,
    host: str = "127.0.0.1",
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve TCP on ``host:port``, running a Handler from ``factory`` per client.

    Use with ``nursery.start(serve, factory, 0)`` to get the listeners (and so
    the port). An error in one connection's handler is logged
    (logger ``sanschat.trio``) and closes that connection only.
    """
    await trio.serve_tcp(partial(_serve_one, factory), port, host=host, task_status=task_status)
