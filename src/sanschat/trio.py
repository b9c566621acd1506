"""Run sanschat on trio: a framed wrapper over any ``trio.abc.Stream``.

- :class:`FramedConnection` wraps a stream (TCP, TLS via ``trio.SSLStream``, the
  in-memory pairs of ``trio.testing``): ``async for event in framed`` to
  receive, ``await framed.send(...)`` / ``push`` + ``await framed.flush()`` to
  send, ``aclose()``. One task may send while another receives.
- :func:`serve_stream` / :func:`serve` run a :class:`~sanschat.Handler` per
  connection on a :class:`~sanschat.Driver`, the same class and the same
  rules as under the select and asyncio bindings.

Cancellation (trio's contract, kept):

- receiving: a cancelled :meth:`FramedConnection.receive` loses nothing. Received
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

import ssl
from collections.abc import Callable
from typing import Any

try:
    import trio
except ImportError as error:  # pragma: no cover - exercised in a subprocess
    raise ImportError("sanschat.trio needs trio, which is an extra: pip install 'sanschat[trio]'") from error

from ._async_driver import Primitives, Server, Transport, run_connection
from ._driver import DEFAULT_HANDSHAKE_TIMEOUT, Driver
from ._events import NEED_DATA, EndOfStream, InputEvent
from ._framer import Framer
from ._handler import ConnectionInfo, Handler
from ._output import BytesLike, Producer
from ._sockets import DEFAULT_BACKLOG, listening_socket
from ._terminators import Terminator

__all__ = ["FramedConnection", "serve_stream", "serve", "connect", "Server"]


class FramedConnection(trio.abc.AsyncResource):
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

    def __aiter__(self) -> FramedConnection:
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


async def serve_stream(
    transport: trio.abc.Stream,
    handler: Handler,
    *,
    receive_size: int = 65536,
    linger: float = 2.0,
    tls: ssl.SSLContext | None = None,
    server_side: bool = True,
    server_hostname: str | None = None,
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    task_status: trio.TaskStatus[Driver] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``handler`` on ``transport`` until the connection is over, on a
    :class:`~sanschat.Driver` (so it behaves as under every binding).

    Reading and writing are two tasks: output pushed at any time (by another
    connection, a timer) is sent at once. A handler error is logged by the
    driver and ends the connection after the output queued before it; a reset
    ends it at once. Either way ``connection_lost`` gets the reason and this
    returns normally. A clean close sends our end of stream, then drops what
    the peer still sends until its own end or ``linger`` seconds.

    ``tls`` runs TLS from the first byte in sanschat's own sans-IO layer (the
    same under every binding), in the server's role unless ``server_side`` is
    false; ``handler.start_tls`` upgrades later. A handshake longer than
    ``handshake_timeout`` seconds ends the connection. Through
    ``nursery.start`` it hands back the connection's Driver once the
    Handler's ``connection_made`` has run.
    """
    driver = Driver(
        handler,
        _info(transport),
        tls=tls,
        server_side=server_side,
        server_hostname=server_hostname,
        handshake_timeout=handshake_timeout,
    )
    await run_connection(TRIO, _transport(transport, receive_size), driver, linger, task_status)


async def connect(
    handler: Handler,
    host: str,
    port: int,
    *,
    tls: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    task_status: trio.TaskStatus[Driver] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Connect to ``host:port`` and run ``handler`` as a client until the
    connection is over: with ``tls`` from the first byte, verifying the
    server's certificate against ``server_hostname`` (default ``host``).
    ``driver = await nursery.start(connect, handler, host, port)`` returns
    once connected (``connection_made`` has run) with the connection's
    :class:`~sanschat.Driver`, the connection going on in the nursery."""
    hostname = (server_hostname or host) if tls is not None else server_hostname
    stream = await trio.open_tcp_stream(host, port)
    await serve_stream(
        stream, handler, tls=tls, server_side=False, server_hostname=hostname, task_status=task_status
    )


TRIO = Primitives(
    trio.Event,
    trio.open_nursery,
    trio.move_on_after,
    trio.CancelScope,
    trio.sleep,
    (trio.BrokenResourceError, trio.ClosedResourceError),
)


def _transport(stream: trio.abc.Stream, receive_size: int) -> Transport:
    half_closeable = isinstance(stream, trio.abc.HalfCloseableStream)
    return Transport(
        lambda: stream.receive_some(receive_size),
        stream.send_all,
        stream.send_eof if half_closeable else None,  # type: ignore[attr-defined]
        stream.aclose,
        lambda: trio.aclose_forcefully(stream),
    )


def _info(transport: trio.abc.Stream) -> ConnectionInfo:
    """Addresses and TLS object of ``transport`` (a socket, or TLS over one)."""
    tls = transport if isinstance(transport, trio.SSLStream) else None
    inner = tls.transport_stream if tls is not None else transport
    sock = getattr(inner, "socket", None)
    if sock is None:
        return ConnectionInfo(tls=tls)
    try:
        return ConnectionInfo(sock.getpeername(), sock.getsockname(), tls)
    except OSError:
        return ConnectionInfo(tls=tls)


def _wrap(stream: trio.SocketStream) -> tuple[Transport, ConnectionInfo]:
    return _transport(stream, 65536), _info(stream)


def _address(listener: trio.SocketListener) -> Any:
    return listener.socket.getsockname()


async def serve(
    factory: Callable[[], Handler],
    host: str | None = "127.0.0.1",
    port: int = 0,
    *,
    backlog: int = DEFAULT_BACKLOG,
    reuse_port: bool = False,
    tls: ssl.SSLContext | None = None,
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve TCP on ``host:port``, running a Handler from ``factory`` per client,
    until cancelled or :meth:`Server.shutdown`.

    ``server = await nursery.start(serve, factory)`` gives the :class:`Server`
    (``server.port``, ``await server.shutdown(timeout)``). An error in one
    connection's handler is logged (logger ``sanschat``) and closes that
    connection only; a failing accept (out of descriptors) backs off briefly.
    ``tls`` (a server context): every connection runs TLS from its first byte.
    """
    options = {"tls": tls, "handshake_timeout": handshake_timeout}
    sock = listening_socket(host, port, backlog=backlog, reuse_port=reuse_port)
    listeners = [trio.SocketListener(trio.socket.from_stdlib_socket(sock))]
    with trio.CancelScope() as scope:
        await Server(TRIO, listeners, scope, _wrap, _address, options).serve(factory, task_status)


def __getattr__(name: str) -> Any:
    if name == "FramedStream":  # its name until 0.1: "stream" now means only the delivery mode
        import warnings

        warnings.warn("FramedStream is now FramedConnection", DeprecationWarning, stacklevel=2)
        return FramedConnection
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
