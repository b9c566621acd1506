"""Every binding that can run over TLS, over real TLS on loopback: a Handler
answers, sees the TLS object in its ``connection_info``, and its clean close
reaches the client as a TLS close (close_notify), not a truncation."""

from __future__ import annotations

import asyncio
import queue
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trustme

from sanschat import Framer, Handler

from .servers import running_reactor

CA = trustme.CA()
SERVER_CERT = CA.issue_cert("localhost")
SERVER_CONTEXT = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
SERVER_CERT.configure_cert(SERVER_CONTEXT)
CLIENT_CONTEXT = ssl.create_default_context()
CA.configure_trust(CLIENT_CONTEXT)


class Upper(Handler):
    """Answers each line in upper case; QUIT closes after the answer."""

    max_frame_size = None
    tls_seen: list[object] = []

    def connection_made(self, framer: Framer) -> None:
        super().connection_made(framer)
        Upper.tls_seen.append(self.connection_info.tls)

    def frame_received(self, data: bytes) -> None:
        self.framer.push(data.upper() + b"\r\n")
        if data == b"quit":
            self.framer.close_when_done()


@contextmanager
def asyncio_tls() -> Iterator[int]:
    import sanschat.asyncio

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    serving = sanschat.asyncio.serve(Upper, ssl=SERVER_CONTEXT)
    server = asyncio.run_coroutine_threadsafe(serving, loop).result()
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        asyncio.run_coroutine_threadsafe(server.shutdown(5.0), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


class _TwistedContext:
    """A context factory for ``listenSSL`` (``getContext``), loading the
    certificate from files, as pyOpenSSL now asks (declared an
    ``IOpenSSLContextFactory`` in ``twisted_tls``)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        SERVER_CERT.cert_chain_pems[0].write_to_path(f"{directory}/chain.pem")
        SERVER_CERT.private_key_pem.write_to_path(f"{directory}/key.pem")

    def getContext(self) -> Any:
        from OpenSSL import SSL

        context = SSL.Context(SSL.TLS_SERVER_METHOD)
        context.use_certificate_chain_file(f"{self.directory}/chain.pem")
        context.use_privatekey_file(f"{self.directory}/key.pem")
        return context


@contextmanager
def twisted_tls() -> Iterator[int]:
    from twisted.internet.interfaces import IOpenSSLContextFactory
    from twisted.internet.threads import blockingCallFromThread
    from zope.interface import directlyProvides

    import sanschat.twisted

    reactor = running_reactor()
    factory = sanschat.twisted.HandlerFactory(Upper)
    with tempfile.TemporaryDirectory() as directory:
        context = _TwistedContext(directory)
        directlyProvides(context, IOpenSSLContextFactory)
        port = blockingCallFromThread(reactor, reactor.listenSSL, 0, factory, context, interface="127.0.0.1")
        server = sanschat.twisted.Server(port, factory)  # the one shape, over any listening port
        try:
            yield server.port
        finally:
            closed = threading.Event()
            reactor.callFromThread(lambda: server.shutdown(5.0).addBoth(lambda _: closed.set()))
            assert closed.wait(30)


@contextmanager
def anyio_tls() -> Iterator[int]:
    import anyio
    import anyio.from_thread
    from anyio.abc import SocketAttribute, TaskStatus
    from anyio.streams.tls import TLSListener

    import sanschat.anyio

    async def serve(*, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        tcp = await anyio.create_tcp_listener(local_host="127.0.0.1")
        listener = TLSListener(tcp, SERVER_CONTEXT)

        async def handle(stream: Any) -> None:
            await sanschat.anyio.serve_stream(stream, Upper())

        async with listener:
            task_status.started(tcp.extra(SocketAttribute.local_port))
            await listener.serve(handle)

    with anyio.from_thread.start_blocking_portal("asyncio") as portal:
        serving, port = portal.start_task(serve)
        try:
            yield port
        finally:
            serving.cancel()


@contextmanager
def trio_tls() -> Iterator[int]:
    import trio

    import sanschat.trio

    started: queue.Queue[tuple[int, trio.CancelScope, trio.lowlevel.TrioToken]] = queue.Queue()

    async def handle(tcp: trio.SocketStream) -> None:
        await sanschat.trio.serve_stream(trio.SSLStream(tcp, SERVER_CONTEXT, server_side=True), Upper())

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, handle, 0)
            port = listeners[0].socket.getsockname()[1]
            started.put((port, nursery.cancel_scope, trio.lowlevel.current_trio_token()))

    thread = threading.Thread(target=trio.run, args=(main,))
    thread.start()
    port, scope, token = started.get(timeout=30)
    try:
        yield port
    finally:
        trio.from_thread.run_sync(scope.cancel, trio_token=token)
        thread.join()


@contextmanager
def select_tls() -> Iterator[int]:
    """The select binding takes a TLS socket already shaken hands with (``add_socket``)."""
    from sanschat.select import Loop

    listening = socket.create_server(("127.0.0.1", 0))
    loop = Loop()

    def serve_one() -> None:
        client, _ = listening.accept()
        loop.add_socket(SERVER_CONTEXT.wrap_socket(client, server_side=True), Upper())
        loop.run()

    thread = threading.Thread(target=serve_one)
    thread.start()
    try:
        yield listening.getsockname()[1]
    finally:
        thread.join(30)
        loop.close()
        listening.close()


SERVERS: dict[str, Callable[[], Any]] = {
    "select": select_tls,
    "asyncio": asyncio_tls,
    "trio": trio_tls,
    "anyio": anyio_tls,
    "twisted": twisted_tls,
}


@pytest.mark.parametrize("serve", SERVERS.values(), ids=SERVERS.keys())
def test_a_handler_over_tls_answers_and_closes_cleanly(serve: Callable[[], Any]) -> None:
    with serve() as port:
        raw = socket.create_connection(("127.0.0.1", port), timeout=30)
        with CLIENT_CONTEXT.wrap_socket(
            raw, server_hostname="localhost", suppress_ragged_eofs=False
        ) as client:
            client.sendall(b"secret\r\n" + b"big " * 50_000 + b"\r\nquit\r\n")
            reply = b""
            while chunk := client.recv(65536):  # b"" only at the peer's close_notify
                reply += chunk
        assert reply == b"SECRET\r\n" + b"BIG " * 50_000 + b"\r\nQUIT\r\n"
        assert Upper.tls_seen[-1] is not None
