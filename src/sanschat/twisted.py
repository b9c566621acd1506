"""Run sanschat Handlers on Twisted's reactor.

:class:`HandlerProtocol` is a Twisted ``Protocol`` running one Handler on a
:class:`~sanschat.Driver`, so a Twisted application can move a protocol from
``LineReceiver`` to a Handler that it can also test without sockets (and run
under any other binding). It half-closes (``IHalfCloseableProtocol``) and
takes backpressure through Twisted's producer interfaces both ways: it
registers as the transport's push producer, so it writes only while the
transport is not paused, and it pauses the transport's reading while its
Handler's unsent output is above ``pause_reading_above``.

``server = serve(factory, "127.0.0.1", 8080)`` listens, and gives a
:class:`Server` with the names of every binding's server;
``server.shutdown(timeout)`` returns a Deferred that fires once every
connection has closed. A :class:`HandlerFactory` serves any other port too
(``listenSSL``, which ends with TLS's own close; ``listenUNIX``). Needs
Twisted (``pip install 'sanschat[twisted]'``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

try:
    from twisted.internet import defer, error, interfaces, protocol
    from zope.interface import implementer
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError("sanschat.twisted needs Twisted, an extra: pip install 'sanschat[twisted]'") from exc

from ._callback import CallbackBinding
from ._driver import DEFAULT_HANDSHAKE_TIMEOUT, Driver
from ._handler import ConnectionInfo, Handler
from ._shape import ServerShape
from ._sockets import DEFAULT_BACKLOG, listening_socket

if TYPE_CHECKING:
    from ssl import SSLContext

__all__ = ["HandlerProtocol", "HandlerFactory", "Server", "serve", "connect", "shutdown"]


def _reactor() -> Any:
    """The running reactor, imported only when needed (so that an application
    may install another one first)."""
    from twisted.internet import reactor

    return reactor


@implementer(interfaces.IHalfCloseableProtocol, interfaces.IPushProducer)
class HandlerProtocol(CallbackBinding, protocol.Protocol):
    """One connection: bytes between the transport and ``handler``'s Driver."""

    def __init__(self, handler: Handler, *, linger: float = 2.0, **driver_options: Any) -> None:
        """``driver_options``: ``tls`` (a context: TLS from the first byte, in
        sanschat's sans-IO layer), ``server_side``, ``server_hostname``,
        ``handshake_timeout``, as :class:`~sanschat.Driver` takes them."""
        super().__init__(
            handler, linger, lambda delay, callback: _reactor().callLater(delay, callback), **driver_options
        )
        #: Fires (with None) once the connection is closed.
        self.closed: defer.Deferred[None] = defer.Deferred()

    def connectionMade(self) -> None:
        transport: Any = self.transport
        tls = transport if interfaces.ISSLTransport.providedBy(transport) else None
        info = ConnectionInfo(_address(transport.getPeer()), _address(transport.getHost()), tls)
        transport.registerProducer(self, True)
        self._connected(_Transport(transport), info)

    def dataReceived(self, data: bytes) -> None:
        self._received(data)

    def readConnectionLost(self) -> None:
        self._eof_received()

    def connectionLost(self, reason: Any = protocol.connectionDone) -> None:
        self._lost(None if reason.check(error.ConnectionDone) else reason.value)
        self.closed.callback(None)

    pauseProducing = CallbackBinding._pause_writing  # the transport's buffer is full
    resumeProducing = CallbackBinding._resume_writing

    def stopProducing(self) -> None:
        pass

    writeConnectionLost = stopProducing  # (nothing to do: our close follows the driver)


def _address(address: Any) -> Any:
    """A Twisted address as the standard library gives it: ``(host, port)``, or a UNIX path."""
    return (address.host, address.port) if hasattr(address, "port") else address.name


class _Transport:
    """A Twisted transport under the names the shared policy uses."""

    def __init__(self, transport: Any) -> None:
        self.twisted = transport
        self.write = transport.write
        self.pause_reading = transport.pauseProducing
        self.resume_reading = transport.resumeProducing
        self.abort = transport.abortConnection

    def write_eof(self) -> None:
        # Done producing first: once its buffer drains, Twisted resumes a push
        # producer it has paused *instead of* half-closing, so a close decided
        # while paused (after some 64 KiB of answers) would wait for the linger.
        self.twisted.unregisterProducer()
        self.twisted.loseWriteConnection()

    def close(self) -> None:
        self.twisted.unregisterProducer()  # done producing (TLS sends its close_notify only then)
        self.twisted.loseConnection()

    def can_write_eof(self) -> bool:  # not under TLS: its wrapper would half-close the TCP beneath
        return not interfaces.ISSLTransport.providedBy(self.twisted)

    def is_closing(self) -> bool:
        return bool(self.twisted.disconnecting)


class HandlerFactory(protocol.Factory):
    """Builds a :class:`HandlerProtocol` around a Handler from ``factory`` per
    connection, and keeps the open ones for :meth:`shutdown`."""

    def __init__(self, factory: Callable[[], Handler], **driver_options: Any) -> None:
        self.handler_factory = factory
        self.driver_options = driver_options  # for each HandlerProtocol (tls, ...)
        self.connections: set[HandlerProtocol] = set()

    def buildProtocol(self, addr: Any) -> HandlerProtocol:
        connection = HandlerProtocol(self.handler_factory(), **self.driver_options)
        connection.factory = self
        self.connections.add(connection)
        connection.closed.addCallback(lambda _: self.connections.discard(connection))
        return connection

    def shutdown(self, timeout: float = 10.0) -> defer.Deferred[Any]:
        """Close each connection once its answers are out; abort the rest
        after ``timeout`` seconds. The Deferred fires when all are closed."""
        connections = list(self.connections)
        for connection in connections:
            connection.close_when_done()
        cutting = _reactor().callLater(timeout, self._abort_all)
        all_closed = defer.DeferredList([connection.closed for connection in connections])
        return all_closed.addBoth(lambda result: cutting.cancel() if cutting.active() else None)

    def _abort_all(self) -> None:
        for connection in list(self.connections):
            connection.abort()


class Server(ServerShape):
    """What :func:`serve` returns, with the names every binding's server has:
    :attr:`port`, :attr:`addresses`, :attr:`connections`, :meth:`close` and
    :meth:`shutdown`, the last two returning Deferreds in the reactor's style.
    Wrap any port a :class:`HandlerFactory` listens on to get the same names:
    ``Server(reactor.listenSSL(0, factory, context), factory)``."""

    def __init__(self, listening_port: Any, factory: HandlerFactory) -> None:
        #: Twisted's ``IListeningPort``.
        self.listening_port = listening_port
        #: The :class:`HandlerFactory` building each connection's protocol.
        self.factory = factory
        host = listening_port.getHost()
        self._addresses = [(host.host, host.port)]

    def _open_drivers(self) -> Iterable[Driver]:
        return (protocol.driver for protocol in self.factory.connections)

    def close(self) -> defer.Deferred[Any]:
        """Stop accepting clients; the connections go on. Fires once the port is closed."""
        return defer.maybeDeferred(self.listening_port.stopListening)

    def shutdown(self, timeout: float = 10.0) -> defer.Deferred[Any]:
        """Stop accepting, then close every connection gracefully (see
        :meth:`HandlerFactory.shutdown`); fires when all are closed."""
        return self.close().addCallback(lambda _: self.factory.shutdown(timeout))

    def getHost(self) -> Any:  # noqa: N802 (Twisted's name)
        """Deprecated: :attr:`port` and :attr:`addresses`."""
        _deprecated("serve() returns a Server: server.port, not port.getHost().port")
        return self.listening_port.getHost()

    def stopListening(self) -> defer.Deferred[Any]:  # noqa: N802 (Twisted's name)
        """Deprecated: :meth:`close`."""
        _deprecated("serve() returns a Server: server.close(), not port.stopListening()")
        return self.close()


def _deprecated(message: str) -> None:
    import warnings

    warnings.warn(message, DeprecationWarning, stacklevel=3)


def serve(
    factory: Callable[[], Handler],
    host: str | None = "127.0.0.1",
    port: int = 0,
    *,
    backlog: int = DEFAULT_BACKLOG,
    reuse_port: bool = False,
    tls: SSLContext | None = None,
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    interface: str | None = None,
) -> Server:
    """Listen on ``host:port`` with a Handler from ``factory`` per client, on
    the reactor; returns the :class:`Server` at once. ``reuse_port``: other
    processes may listen on the same port (``SO_REUSEPORT``). ``tls`` (a
    server context): every connection runs TLS from its first byte, in
    sanschat's sans-IO layer (the same under every binding; ``start_tls``
    works), its handshake bounded by ``handshake_timeout`` seconds.

    The order of 0.1, ``serve(factory, port, interface)``, still works, with a
    DeprecationWarning."""
    if isinstance(host, int) and not isinstance(host, bool):  # serve(factory, port[, interface])
        _deprecated("sanschat.twisted.serve(factory, port, interface) is now serve(factory, host, port)")
        old_interface = port if isinstance(port, str) else None
        host, port = old_interface or interface or "127.0.0.1", host
    elif interface is not None:
        _deprecated("sanschat.twisted.serve(..., interface=) is now serve(factory, host, port)")
        host = interface
    handlers = HandlerFactory(factory, tls=tls, handshake_timeout=handshake_timeout)
    sock = listening_socket(host, port, backlog=backlog, reuse_port=reuse_port)
    try:
        sock.setblocking(False)  # (as the reactor requires of an adopted socket)
        listening = _reactor().adoptStreamPort(sock.fileno(), sock.family, handlers)
    finally:
        sock.close()  # (the reactor listens on a duplicate)
    return Server(listening, handlers)


def connect(
    handler: Handler,
    host: str,
    port: int,
    *,
    tls: SSLContext | None = None,
    server_hostname: str | None = None,
) -> defer.Deferred[HandlerProtocol]:
    """Connect to ``host:port`` and run ``handler`` as a client; the Deferred
    fires with the :class:`HandlerProtocol` once connected (its ``closed``
    fires at the end). ``tls`` runs TLS from the first byte, verifying the
    server's certificate against ``server_hostname`` (default ``host``)."""
    from twisted.internet import endpoints

    hostname = (server_hostname or host) if tls is not None else server_hostname

    class Once(protocol.Factory):
        def buildProtocol(self, addr: Any) -> HandlerProtocol:
            return HandlerProtocol(handler, tls=tls, server_side=False, server_hostname=hostname)

    endpoint = endpoints.TCP4ClientEndpoint(_reactor(), host, port)
    connected: defer.Deferred[HandlerProtocol] = endpoint.connect(Once())  # type: ignore[arg-type,assignment]
    return connected


def shutdown(server: Server, timeout: float = 10.0) -> defer.Deferred[Any]:
    """Deprecated: ``server.shutdown(timeout)``."""
    _deprecated("sanschat.twisted.shutdown(server, t) is now server.shutdown(t)")
    if isinstance(server, Server):
        return server.shutdown(timeout)
    listening: Any = server  # an IListeningPort from another source
    return defer.maybeDeferred(listening.stopListening).addCallback(
        lambda _: listening.factory.shutdown(timeout)
    )
