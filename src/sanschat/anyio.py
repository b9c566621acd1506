"""Run sanschat Handlers on anyio: any ``anyio.abc.ByteStream``, under the
asyncio or the trio backend, for the libraries that build on anyio.

``await serve_stream(stream, handler)`` runs one Handler on a stream until the
connection is over; ``server = await task_group.start(serve, factory, host,
port)`` serves TCP (``server.port``, ``await server.shutdown()``);
``await connect(handler, host, port)`` is the client side. The connection's
life is the :class:`~sanschat.Driver`'s, as under every binding. Needs anyio
(``pip install 'sanschat[anyio]'``).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

try:
    import anyio
    from anyio.abc import ByteStream, SocketAttribute, TaskStatus
    from anyio.streams.tls import TLSAttribute, TLSStream
except ImportError as error:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "sanschat.anyio needs anyio, which is an extra: pip install 'sanschat[anyio]'"
    ) from error

from ._async_driver import Primitives, Server, Transport, run_connection
from ._driver import DEFAULT_HANDSHAKE_TIMEOUT, Driver
from ._handler import ConnectionInfo, Handler
from ._sockets import DEFAULT_BACKLOG

__all__ = ["serve_stream", "connect", "serve", "Server"]

ANYIO = Primitives(
    anyio.Event,
    anyio.create_task_group,
    anyio.move_on_after,
    anyio.CancelScope,
    anyio.sleep,
    (anyio.BrokenResourceError, anyio.ClosedResourceError),
)


def _transport(stream: ByteStream, receive_size: int = 65536) -> Transport:
    async def receive() -> bytes:
        try:
            return await stream.receive(receive_size)
        except anyio.EndOfStream:
            return b""

    async def send_eof() -> None:
        try:
            await stream.send_eof()
        except NotImplementedError:  # another stream that cannot half-close: the linger ends it
            pass

    async def send(view: memoryview) -> None:
        whole = view.obj if type(view.obj) is bytes and len(view) == len(view.obj) else None
        await stream.send(whole if whole is not None else bytes(view))  # a ByteStream takes bytes

    tls = isinstance(stream, TLSStream)  # cannot half-close: its graceful close says the end
    return Transport(
        receive, send, None if tls else send_eof, stream.aclose, lambda: anyio.aclose_forcefully(stream)
    )


def _info(stream: ByteStream) -> ConnectionInfo:
    extra = stream.extra
    tls = extra(TLSAttribute.ssl_object, None)
    return ConnectionInfo(
        extra(SocketAttribute.remote_address, None), extra(SocketAttribute.local_address, None), tls
    )


async def serve_stream(
    stream: ByteStream,
    handler: Handler,
    *,
    receive_size: int = 65536,
    linger: float = 2.0,
    tls: ssl.SSLContext | None = None,
    server_side: bool = True,
    server_hostname: str | None = None,
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    task_status: TaskStatus[Driver] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``handler`` on ``stream`` until the connection is over (see
    ``sanschat.trio.serve_stream``: the same engine, the same rules, TLS too,
    and the Driver handed back through ``task_group.start``)."""
    driver = Driver(
        handler,
        _info(stream),
        tls=tls,
        server_side=server_side,
        server_hostname=server_hostname,
        handshake_timeout=handshake_timeout,
    )
    await run_connection(ANYIO, _transport(stream, receive_size), driver, linger, task_status)


async def connect(
    handler: Handler,
    host: str,
    port: int,
    *,
    tls: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    task_status: TaskStatus[Driver] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Connect to ``host:port`` and run ``handler`` as a client until the
    connection is over (``tls`` as in ``sanschat.trio.connect``);
    ``driver = await task_group.start(connect, handler, host, port)`` returns
    once connected with the connection's :class:`~sanschat.Driver`."""
    hostname = (server_hostname or host) if tls is not None else server_hostname
    stream = await anyio.connect_tcp(host, port)
    await serve_stream(
        stream, handler, tls=tls, server_side=False, server_hostname=hostname, task_status=task_status
    )


def _wrap(stream: ByteStream) -> tuple[Transport, ConnectionInfo]:
    return _transport(stream), _info(stream)


async def serve(
    factory: Callable[[], Handler],
    host: str | None = "127.0.0.1",
    port: int = 0,
    *,
    backlog: int = DEFAULT_BACKLOG,
    reuse_port: bool = False,
    tls: ssl.SSLContext | None = None,
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    task_status: TaskStatus[Server] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve TCP on ``host:port``, a Handler from ``factory`` per client, until
    cancelled or ``server.shutdown(timeout)``; ``await task_group.start(serve,
    ...)`` gives the Server (``server.port``). An error in one handler closes
    only its connection. ``tls`` (a server context): every connection runs TLS
    from its first byte, in sanschat's sans-IO layer."""
    options = {"tls": tls, "handshake_timeout": handshake_timeout}
    with anyio.CancelScope() as scope:
        listeners = (
            await anyio.create_tcp_listener(
                local_host=host or None, local_port=port, backlog=backlog, reuse_port=reuse_port
            )
        ).listeners
        await Server(
            ANYIO,
            list(listeners),
            scope,
            _wrap,
            lambda listener: listener.extra(SocketAttribute.local_address),
            options,
        ).serve(factory, task_status)
