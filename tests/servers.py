"""Every binding's server, started the same way for the tests: a context
manager taking a Handler factory and yielding a ``Served`` (its address, its
open connections, and a graceful ``shutdown(timeout)`` that begins the stop
and returns at once). Each binding is started with the one ``serve(factory,
host, port, **options)`` and then touched only through the names every
binding's server has, so a binding that strays from that shape fails here. The
conformance checker and the load tests both use these, so every binding faces
the same scenarios and the same traffic."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import queue
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import anyio.from_thread
import trio

import sanschat.anyio
import sanschat.asyncio
import sanschat.select
import sanschat.socket
import sanschat.trio
import sanschat.twisted
from sanschat import Driver, Handler
from sanschat.testing import Peer, Serve, Served, TcpPeer, TlsPeer, memory_server

Factory = Callable[[], Handler]


class _Tcp:
    """A Served over TCP, driving the server only through the one shape every
    binding's server has: ``port``, ``addresses``, ``connections`` and
    ``shutdown(timeout)``, each called in the loop's own thread by ``call``.
    With a ``client`` context (a TLS server), peers are verifying TLS clients."""

    def __init__(self, server: Any, call: Callable[..., Any], stop: Callable[[float], None]) -> None:
        self.server = server
        self._call = call
        self._stop = stop
        port = call(lambda: server.port)
        assert ("127.0.0.1", port) in [tuple(a[:2]) for a in call(lambda: server.addresses)]
        self.address = ("127.0.0.1", port)
        self.client: ssl.SSLContext | None = None
        self.handshake_timeout: float | None = None

    def connect(self) -> Peer:
        if self.client is not None:
            return TlsPeer(self.address, self.client, "localhost")
        return TcpPeer(self.address)

    def connections(self) -> frozenset[Driver]:
        return self._call(lambda: self.server.connections)  # type: ignore[no-any-return]

    def shutdown(self, timeout: float) -> None:
        self._stop(timeout)


def _once(stop: Callable[[float], None]) -> Callable[[float], None]:
    """``stop``, called at most once (the first timeout wins, as in a server)."""
    done: list[bool] = []

    def once(timeout: float) -> None:
        if not done:
            done.append(True)
            stop(timeout)

    return once


def _direct(function: Callable[[], Any]) -> Any:
    return function()


@contextmanager
def select_server(factory: Factory, port: int = 0, **options: Any) -> Iterator[_Tcp]:
    server = sanschat.select.serve(factory, "127.0.0.1", port, **options)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()

    def call(function: Callable[[], Any]) -> Any:
        answer: concurrent.futures.Future[Any] = concurrent.futures.Future()
        server.loop.call_soon_threadsafe(lambda: answer.set_result(function()))
        return answer.result(timeout=60)

    stop = _once(server.shutdown)  # (from any thread: it begins the stop and returns)
    try:
        yield _Tcp(server, call, stop)
    finally:
        stop(0.0)
        thread.join()  # serve_forever returns once every connection has closed


@contextmanager
def asyncio_server(factory: Factory, port: int = 0, **options: Any) -> Iterator[_Tcp]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    try:
        serving = sanschat.asyncio.serve(factory, "127.0.0.1", port, **options)
        server = asyncio.run_coroutine_threadsafe(serving, loop).result()
    except BaseException:  # stop the loop's thread, or the process never exits
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        raise
    stopping: list[concurrent.futures.Future[None]] = []

    def call(function: Callable[[], Any]) -> Any:
        async def run() -> Any:
            return function()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=60)

    stop = _once(
        lambda timeout: stopping.append(asyncio.run_coroutine_threadsafe(server.shutdown(timeout), loop))
    )
    try:
        yield _Tcp(server, call, stop)
    finally:
        stop(0.0)
        stopping[0].result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


@contextmanager
def trio_server(factory: Factory, port: int = 0, **options: Any) -> Iterator[_Tcp]:
    started: queue.Queue[Any] = queue.Queue()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            serving = functools.partial(sanschat.trio.serve, factory, "127.0.0.1", port, **options)
            server = await nursery.start(serving)
            started.put((server, nursery, trio.lowlevel.current_trio_token()))

    def run() -> None:
        try:
            trio.run(main)
        except BaseException as error:  # reported by the test, not lost in the thread
            started.put(error)

    thread = threading.Thread(target=run)
    thread.start()
    result = started.get(timeout=120)  # the server, or why trio.run ended without one
    if isinstance(result, BaseException):
        thread.join()
        inner: tuple[BaseException, ...] = getattr(result, "exceptions", ())
        raise inner[0] if len(inner) == 1 else result  # (a nursery wraps what serve raised)
    server, nursery, token = result

    def call(function: Callable[[], Any]) -> Any:
        return trio.from_thread.run_sync(function, trio_token=token)

    stop = _once(lambda timeout: call(lambda: nursery.start_soon(server.shutdown, timeout)))
    try:
        yield _Tcp(server, call, stop)
    finally:
        stop(0.0)
        thread.join()  # serve returns once every connection has closed


def socket_server(shared_lock: bool) -> Callable[..., AbstractContextManager[_Tcp]]:
    @contextmanager
    def serve(factory: Factory, port: int = 0, **options: Any) -> Iterator[_Tcp]:
        server = sanschat.socket.serve(factory, "127.0.0.1", port, shared_lock=shared_lock, **options)
        stopping: list[threading.Thread] = []

        def begin(timeout: float) -> None:  # shutdown blocks: begin it in a thread, return at once
            stopping.append(threading.Thread(target=server.shutdown, args=(timeout,)))
            stopping[0].start()

        stop = _once(begin)
        try:
            yield _Tcp(server, _direct, stop)
        finally:
            stop(0.0)
            stopping[0].join()  # shutdown returns once every connection thread has ended

    return serve


def running_reactor() -> Any:
    """Twisted's reactor, running in a thread of its own for the whole session
    (a reactor cannot be started twice in one process)."""
    reactor: Any = sanschat.twisted._reactor()
    if not getattr(running_reactor, "started", False):
        threading.Thread(target=reactor.run, kwargs={"installSignalHandlers": False}, daemon=True).start()
        running_reactor.started = True  # type: ignore[attr-defined]
    return reactor


@contextmanager
def twisted_server(factory: Factory, port: int = 0, **options: Any) -> Iterator[_Tcp]:
    from twisted.internet.threads import blockingCallFromThread

    reactor = running_reactor()
    server = blockingCallFromThread(
        reactor, functools.partial(sanschat.twisted.serve, factory, "127.0.0.1", port, **options)
    )
    closed = threading.Event()

    def call(function: Callable[[], Any]) -> Any:
        return blockingCallFromThread(reactor, function)

    stop = _once(
        lambda timeout: reactor.callFromThread(
            lambda: server.shutdown(timeout).addBoth(lambda _: closed.set())
        )
    )
    try:
        yield _Tcp(server, call, stop)
    finally:
        stop(0.0)
        assert closed.wait(60), "the Twisted server did not close its connections"


def anyio_server(backend: str) -> Callable[..., AbstractContextManager[_Tcp]]:
    @contextmanager
    def serve(factory: Factory, port: int = 0, **options: Any) -> Iterator[_Tcp]:
        with anyio.from_thread.start_blocking_portal(backend) as portal:
            serving, server = portal.start_task(
                functools.partial(sanschat.anyio.serve, factory, "127.0.0.1", port, **options)
            )
            stopping: list[concurrent.futures.Future[None]] = []
            stop = _once(lambda timeout: stopping.append(portal.start_task_soon(server.shutdown, timeout)))
            try:
                yield _Tcp(server, portal.call, stop)
            finally:
                stop(0.0)
                serving.result()  # serve returns once every connection has closed

    return serve


#: Every binding's server over real TCP, typed as what it is: each takes
#: ``port`` and ``serve``'s keywords, and yields a Served with an ``address``.
TCP_SERVERS: dict[str, Callable[..., AbstractContextManager[_Tcp]]] = {
    "select": select_server,
    "asyncio": asyncio_server,
    "trio": trio_server,
    "socket": socket_server(shared_lock=True),
    "socket-own-locks": socket_server(shared_lock=False),
    "twisted": twisted_server,
    "anyio-asyncio": anyio_server("asyncio"),
    "anyio-trio": anyio_server("trio"),
}

#: The bindings that serve real TCP, as the checker takes them.
TCP_BINDINGS: dict[str, Serve] = dict(TCP_SERVERS)

#: Every binding, and the bare Driver (``memory``, no sockets).
BINDINGS: dict[str, Serve] = {"memory": memory_server, **TCP_BINDINGS}


@functools.cache
def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for localhost, and a client context
    that trusts its CA (verification on), from one throwaway trustme CA."""
    import trustme

    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


def over_tls(serve: Callable[..., Any], handshake_timeout: float = 5.0) -> Serve:
    """``serve`` with TLS from the first byte (sanschat's, in the Driver), and
    verifying TLS peers; a short handshake timeout, for the stalled-handshake
    scenario (a well-behaved handshake takes milliseconds)."""

    @contextmanager
    def tls_serve(factory: Factory) -> Iterator[Served]:
        server_context, client_context = tls_contexts()
        with serve(factory, tls=server_context, handshake_timeout=handshake_timeout) as served:
            served.client = client_context
            served.handshake_timeout = handshake_timeout
            yield served

    return tls_serve


#: Every TCP binding, serving TLS from the first byte.
TLS_BINDINGS: dict[str, Serve] = {name: over_tls(serve) for name, serve in TCP_BINDINGS.items()}
