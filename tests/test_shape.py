"""One shape for every binding: the same ``serve`` signature, the same server
names, one meaning of ``connect``, ``reuse_port`` everywhere, and the old
names of 0.1 still working with a DeprecationWarning.

The conformance checker (``tests/servers.py``) already drives every binding
only through ``serve(factory, host, port, **options)``, ``server.port``,
``server.addresses``, ``server.connections`` and ``server.shutdown``; these
tests pin the rest of the shape.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import io
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any, cast

import anyio
import pytest
import trio

import sanschat.anyio
import sanschat.asyncio
import sanschat.select
import sanschat.socket
import sanschat.trio
import sanschat.twisted
from sanschat import Driver, Framer, Handler, ServerShape
from sanschat._async_driver import Server as AsyncServer

from .servers import TCP_SERVERS, running_reactor

MODULES = {
    "select": sanschat.select,
    "asyncio": sanschat.asyncio,
    "trio": sanschat.trio,
    "anyio": sanschat.anyio,
    "socket": sanschat.socket,
    "twisted": sanschat.twisted,
}

SERVERS = {
    "select": sanschat.select.Server,
    "asyncio": sanschat.asyncio.Server,
    "trio": AsyncServer,
    "anyio": AsyncServer,
    "socket": sanschat.socket.Server,
    "twisted": sanschat.twisted.Server,
}

#: What every binding's ``serve`` takes, in this order, with these defaults.
SHAPE = [
    ("factory", inspect.Parameter.empty),
    ("host", "127.0.0.1"),
    ("port", 0),
    ("backlog", 1024),
    ("reuse_port", False),
    ("tls", None),
    ("handshake_timeout", 30.0),
]


@pytest.mark.parametrize("name", MODULES)
def test_every_serve_has_one_signature(name: str) -> None:
    parameters = inspect.signature(MODULES[name].serve).parameters
    assert [(p, parameters[p].default) for p, _ in SHAPE] == SHAPE
    assert list(parameters)[:3] == ["factory", "host", "port"]
    assert all(parameters[p].kind is inspect.Parameter.KEYWORD_ONLY for p, _ in SHAPE[3:])


@pytest.mark.parametrize("name", MODULES)
def test_every_server_has_the_same_names(name: str) -> None:
    server = SERVERS[name]
    assert issubclass(server, ServerShape)
    for attribute in ("port", "addresses", "connections"):
        assert isinstance(inspect.getattr_static(server, attribute), property), attribute
    for method in ("close", "shutdown"):
        assert callable(getattr(server, method)), method
    shutdown = inspect.signature(inspect.getattr_static(server, "shutdown"))
    assert list(shutdown.parameters) == ["self", "timeout"]
    assert shutdown.parameters["timeout"].default == 10.0


@pytest.mark.parametrize("name", MODULES)
def test_every_connect_takes_a_handler_host_and_port(name: str) -> None:
    connect = sanschat.select.Loop.connect if name == "select" else MODULES[name].connect
    parameters = list(inspect.signature(connect).parameters)
    if name == "select":
        parameters.remove("self")
    assert parameters[:3] == ["handler", "host", "port"]
    assert {"tls", "server_hostname"} <= set(parameters)


# -------------------------------------------------------------- reuse_port


class Echo(Handler):
    def frame_received(self, data: bytes) -> None:
        self.framer.push(data + b"\r\n")


needs_reuse_port = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT here")


def _ask(port: int, line: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(line + b"\r\n")
        answer = b""
        while not answer.endswith(b"\r\n"):
            chunk = sock.recv(4096)
            assert chunk, "closed before answering"
            answer += chunk
        return answer


@needs_reuse_port
@pytest.mark.parametrize("name", TCP_SERVERS)
def test_reuse_port_lets_two_servers_share_a_port(name: str) -> None:
    serve = TCP_SERVERS[name]
    seen: list[str] = []

    def factory(label: str) -> Callable[[], Handler]:
        def make() -> Handler:
            seen.append(label)
            return Echo()

        return make

    with serve(factory("first"), reuse_port=True) as first:
        port = first.address[1]
        with serve(factory("second"), port=port, reuse_port=True) as second:
            assert second.address == first.address
            answers = [_ask(port, b"line %d" % i) for i in range(64)]
    assert answers == [b"line %d\r\n" % i for i in range(64)]
    assert len(seen) == 64
    # The kernel shares clients between the sockets (by a hash of the
    # client's address and port), so 64 clients reach both, save a chance of 2**-63.
    assert set(seen) == {"first", "second"}


@pytest.mark.parametrize("name", TCP_SERVERS)
def test_without_reuse_port_a_taken_port_is_refused(name: str) -> None:
    serve = TCP_SERVERS[name]
    with serve(Echo) as first, pytest.raises(OSError), serve(Echo, port=first.address[1]):
        pass


# -------------------------------------------------- one meaning of connect


class Client(Handler):
    """Says hello on connection_made; keeps the answer."""

    def __init__(self) -> None:
        self.made = threading.Event()
        self.answered = threading.Event()
        self.answer = b""

    def connection_made(self, framer: Framer) -> None:
        super().connection_made(framer)
        framer.push(b"hello\r\n")
        self.made.set()

    def frame_received(self, data: bytes) -> None:
        self.answer = data
        self.answered.set()
        self.framer.close_when_done()


@pytest.fixture
def echo_port() -> Any:
    with TCP_SERVERS["socket"](Echo) as served:
        yield served.address[1]


def test_select_connect_returns_once_connected(echo_port: int) -> None:
    client = Client()
    with sanschat.select.Loop() as loop:
        connection = loop.connect(client, "127.0.0.1", echo_port)
        assert client.made.is_set()
        assert isinstance(connection.driver, Driver)
        loop.run(timeout=30)
    assert client.answer == b"hello"


def test_asyncio_connect_returns_once_connected(echo_port: int) -> None:
    client = Client()

    async def main() -> None:
        protocol = await sanschat.asyncio.connect(client, "127.0.0.1", echo_port)
        assert client.made.is_set()
        assert isinstance(protocol.driver, Driver)
        await protocol.wait_closed()

    asyncio.run(main())
    assert client.answer == b"hello"


def test_trio_connect_returns_the_driver_once_connected(echo_port: int) -> None:
    client = Client()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            driver = await nursery.start(sanschat.trio.connect, client, "127.0.0.1", echo_port)
            assert client.made.is_set()
            assert driver.handler is client

    trio.run(main)
    assert client.answer == b"hello"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_anyio_connect_returns_the_driver_once_connected(echo_port: int, backend: str) -> None:
    client = Client()

    async def main() -> None:
        async with anyio.create_task_group() as group:
            driver = await group.start(sanschat.anyio.connect, client, "127.0.0.1", echo_port)
            assert client.made.is_set()
            assert driver.handler is client

    anyio.run(main, backend=backend)
    assert client.answer == b"hello"


def test_socket_connect_runs_a_handler_in_threads(echo_port: int) -> None:
    client = Client()
    connection = sanschat.socket.connect(client, "127.0.0.1", echo_port)
    assert client.made.is_set()
    assert connection.closed.wait(30)
    assert client.answer == b"hello"


def test_twisted_connect_fires_once_connected(echo_port: int) -> None:
    from twisted.internet.threads import blockingCallFromThread

    reactor = running_reactor()
    client = Client()
    connecting: Callable[[], Any] = functools.partial(
        sanschat.twisted.connect, client, "127.0.0.1", echo_port
    )
    protocol: sanschat.twisted.HandlerProtocol = blockingCallFromThread(reactor, connecting)
    assert client.made.is_set()
    assert isinstance(protocol.driver, Driver)
    assert client.answered.wait(30)
    assert client.answer == b"hello"


def test_framed_socket_half_closes(echo_port: int) -> None:
    with sanschat.socket.open_connection("127.0.0.1", echo_port) as client:
        client.send_eof()  # nothing queued: just our end of stream
        assert client.framer.pending_output == 0
        assert [type(event).__name__ for event in client] == ["EndOfStream"]


def test_framed_socket_half_close_sends_what_is_queued_first() -> None:
    class AnswerAtEnd(Handler):
        def frame_received(self, data: bytes) -> None:
            self.framer.push(data + b"\r\n")

        def end_received(self, data: bytes) -> None:
            self.framer.push(b"end\r\n")
            self.framer.close_when_done()

    with TCP_SERVERS["select"](AnswerAtEnd) as served:
        with sanschat.socket.open_connection(*served.address) as client:
            client.framer.push(b"one\r\ntwo\r\n")
            client.send_eof()
            assert [getattr(event, "data", None) for event in client] == [b"one", b"two", b"end", b""]


def test_a_tls_framed_socket_refuses_to_half_close_before_sending(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    with TCP_SERVERS["select"](Echo, tls=server_context) as served:
        with sanschat.socket.open_connection(
            *served.address, tls=client_context, server_hostname="localhost"
        ) as client:
            client.framer.push(b"still queued\r\n")
            with pytest.raises(io.UnsupportedOperation, match="cannot half-close"):
                client.send_eof()
            assert client.framer.pending_output == len(b"still queued\r\n")  # nothing sent
            client.send()  # the connection is unharmed
            assert client.next_event(timeout=30).data == b"still queued"


# ---------------------------------------------- old names, one more release


def test_select_listener_is_server(recwarn: Any) -> None:
    with pytest.warns(DeprecationWarning, match="Server"):
        assert sanschat.select.Listener is sanschat.select.Server


def test_asyncio_shutdown_function_still_works() -> None:
    async def main() -> None:
        server = await sanschat.asyncio.serve(Echo)
        with pytest.warns(DeprecationWarning, match="server.shutdown"):
            await sanschat.asyncio.shutdown(server, 1.0)
        assert not server.is_serving()

    asyncio.run(main())


def test_socket_connect_with_a_host_first_is_open_connection(echo_port: int) -> None:
    with pytest.warns(DeprecationWarning, match="open_connection"):
        client = sanschat.socket.connect("127.0.0.1", echo_port, b"\n")
    with client:
        assert isinstance(client, sanschat.socket.FramedSocket)
        client.send(b"x\r\n")
        assert client.next_event(timeout=30).data == b"x\r"


def test_twisted_old_order_and_names_still_work() -> None:
    from twisted.internet.threads import blockingCallFromThread

    reactor = running_reactor()

    def old_style() -> tuple[Any, int]:
        with pytest.warns(DeprecationWarning, match="serve\\(factory, host, port\\)"):
            server = cast(Any, sanschat.twisted.serve)(Echo, 0, "127.0.0.1")  # 0.1's order
        with pytest.warns(DeprecationWarning, match="server.port"):
            port = server.getHost().port
        return server, port

    server, port = blockingCallFromThread(reactor, old_style)
    assert port == server.port and server.addresses == [("127.0.0.1", port)]
    assert _ask(port, b"old") == b"old\r\n"
    with pytest.warns(DeprecationWarning, match="server.shutdown"):
        blockingCallFromThread(reactor, functools.partial(sanschat.twisted.shutdown, server, 1.0))
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5)


def test_no_public_name_warns() -> None:
    """The package itself runs with every DeprecationWarning an error (the
    test suite's setting); here: no public name of a binding warns."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for module in MODULES.values():
            for name in getattr(module, "__all__", ()):
                getattr(module, name)
