"""Run sanschat Handlers on Twisted's reactor.

:class:`HandlerProtocol` is a Twisted ``Protocol`` running one Handler on a
:class:`~sanschat.Driver`, so a Twisted application can move a protocol from
``LineReceiver`` to a Handler that it can also test without sockets (and run
under any other binding). It half-closes (``IHalfCloseableProtocol``) and
takes backpressure through Twisted's producer interfaces both ways: it
registers as the transport's push producer, so it writes only while the
transport is not paused, and it pauses the transport's reading while its
Handler's unsent output is above ``pause_reading_above``.

``port = serve(factory, 8080)`` listens (``reactor.listenTCP``);
``shutdown(port, timeout)`` returns a Deferred that fires once every
connection has closed. Needs Twisted (``pip install 'sanschat[twisted]'``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

try:
    from twisted.internet import defer, error, interfaces, protocol
    from zope.interface import implementer
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "sanschat.twisted needs Twisted, which is an extra: pip install 'sanschat[twisted]'"
    ) from exc

from ._driver import CloseAction, Driver
from ._handler import ConnectionInfo, Handler

__all__ = ["HandlerProtocol", "HandlerFactory", "serve", "shutdown"]


def _reactor() -> Any:
    """The running reactor, imported only when needed (so that an application
    may install another one first)."""
    from twisted.internet import reactor

    return reactor


@implementer(interfaces.IHalfCloseableProtocol, interfaces.IPushProducer)
class HandlerProtocol(protocol.Protocol):
    """One connection: bytes between the transport and ``handler``'s Driver."""

    def __init__(self, handler: Handler, *, linger: float = 2.0) -> None:
        self.driver = Driver(handler, on_wake=self._update)
        self.linger = linger
        self._write_paused = self._read_paused = False
        self._lingering: Any = None
        #: Fires (with None) once the connection is closed.
        self.closed: defer.Deferred[None] = defer.Deferred()

    def connectionMade(self) -> None:
        transport: Any = self.transport
        peer, host = transport.getPeer(), transport.getHost()
        tls = transport if interfaces.ISSLTransport.providedBy(transport) else None
        self.driver.info = ConnectionInfo((peer.host, peer.port), (host.host, host.port), tls)
        transport.registerProducer(self, True)
        self.driver.start()
        self._update()

    def dataReceived(self, data: bytes) -> None:
        self.driver.data_received(data)  # (dropped and counted once closing)
        self._update()

    def readConnectionLost(self) -> None:
        if self._lingering is not None:  # the peer ended too: close now
            cast(Any, self.transport).loseConnection()
            return
        self.driver.eof_received()
        self._update()

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason: Any = protocol.connectionDone) -> None:
        if self._lingering is not None and self._lingering.active():
            self._lingering.cancel()
        if not reason.check(error.ConnectionDone):
            self.driver.transport_failed(reason.value)
        self.driver.connection_lost()
        if isinstance(self.factory, HandlerFactory):
            self.factory.connections.discard(self)
        self.closed.callback(None)

    def pauseProducing(self) -> None:  # the transport's buffer is full
        self._write_paused = True

    def resumeProducing(self) -> None:
        self._write_paused = False
        self._update()

    def stopProducing(self) -> None:
        pass

    def _update(self) -> None:
        """Do what the driver says now: write, pause or resume reading, close."""
        driver, transport = self.driver, cast(Any, self.transport)
        if transport is None or self._lingering is not None:
            return
        while not self._write_paused and driver.wants_write:
            transport.write(driver.data_to_send(65536))  # may call pauseProducing()
        action = driver.close_action
        if action is CloseAction.ABORT:
            transport.abortConnection()
        elif action is CloseAction.CLOSE and driver.input_ended:
            transport.loseConnection()  # after what is buffered
        elif action is CloseAction.CLOSE:  # our end of stream; drop what the peer sends until its own
            transport.loseWriteConnection()
            if self._read_paused:  # drain the peer, so that no reset destroys the answers
                transport.resumeProducing()
            self._lingering = _reactor().callLater(self.linger, transport.loseConnection)
        elif driver.wants_read == self._read_paused:
            self._read_paused = not self._read_paused
            (transport.pauseProducing if self._read_paused else transport.resumeProducing)()


class HandlerFactory(protocol.Factory):
    """Builds a :class:`HandlerProtocol` around a Handler from ``factory`` per
    connection, and keeps the open ones for :meth:`shutdown`."""

    def __init__(self, factory: Callable[[], Handler]) -> None:
        self.handler_factory = factory
        self.connections: set[HandlerProtocol] = set()

    def buildProtocol(self, addr: Any) -> HandlerProtocol:
        connection = HandlerProtocol(self.handler_factory())
        connection.factory = self
        self.connections.add(connection)
        return connection

    def shutdown(self, timeout: float = 10.0) -> defer.Deferred[Any]:
        """Close each connection once its answers are out; abort the rest
        after ``timeout`` seconds. The Deferred fires when all are closed."""
        connections = list(self.connections)
        for connection in connections:
            connection.driver.framer.close_when_done()
            connection._update()
        cutting = _reactor().callLater(timeout, self._abort_all)
        all_closed = defer.DeferredList([connection.closed for connection in connections])
        return all_closed.addBoth(lambda result: cutting.cancel() if cutting.active() else None)

    def _abort_all(self) -> None:
        for connection in list(self.connections):
            cast(Any, connection.transport).abortConnection()


def serve(factory: Callable[[], Handler], port: int = 0, interface: str = "127.0.0.1") -> Any:
    """Listen on ``interface:port`` (``reactor.listenTCP``); returns the
    listening port (``.getHost().port``; its ``.factory`` is the HandlerFactory)."""
    return _reactor().listenTCP(port, HandlerFactory(factory), interface=interface)


def shutdown(port: Any, timeout: float = 10.0) -> defer.Deferred[Any]:
    """Stop listening, then close every connection gracefully (see
    :meth:`HandlerFactory.shutdown`); the Deferred fires when all are closed."""
    listening = defer.maybeDeferred(port.stopListening)
    return listening.addCallback(lambda _: port.factory.shutdown(timeout))
