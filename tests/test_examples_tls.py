"""The example servers over TLS from the first byte (``--tls-cert``), under
every binding, with real clients that verify the certificate: redis-py with
``ssl=True`` against the RESP example, ``http.client.HTTPSConnection`` against
the HTTP one. And sanschat's clients against a TLS server of another library
(asyncio's own ``ssl=``), refusing a wrong name or an unknown CA."""

from __future__ import annotations

import asyncio
import http.client
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

import sanschat
import sanschat.select
from sanschat import Handler

from .helpers import serving

LOOPS = ["select", "asyncio", "trio", "anyio", "socket", "twisted"]


def example(name: str, loop: str, pem: Path) -> Iterator[int]:
    args = ["-m", f"sanschat.examples.{name}", "--backend", loop, "--port", "0", "--tls-cert", str(pem)]
    with serving(*args) as port:
        yield port


@pytest.mark.parametrize("loop", LOOPS)
def test_resp_over_tls_with_redis_py(loop: str, pem: Path, ca_pem: Path) -> None:
    redis = pytest.importorskip("redis")
    for port in example("resp", loop, pem):
        client = redis.Redis(
            host="localhost",
            port=port,
            ssl=True,
            ssl_ca_certs=str(ca_pem),
            ssl_cert_reqs="required",
            socket_timeout=30,
            protocol=2,
        )
        try:
            assert client.ping() is True
            big = bytes(range(256)) * 4096  # 1 MiB
            assert client.set("big", big) is True
            assert client.get("big") == big
            pipe = client.pipeline(transaction=False)
            for _ in range(300):
                pipe.incr("counter")
            assert pipe.execute() == list(range(1, 301))
        finally:
            client.close()


@pytest.mark.parametrize("loop", LOOPS)
def test_http_over_tls_with_https_connection(loop: str, pem: Path, client_context: ssl.SSLContext) -> None:
    for port in example("http", loop, pem):
        connection = http.client.HTTPSConnection("localhost", port, context=client_context, timeout=30)
        try:
            for path, body in [("/a", b""), ("/b", b"x" * 200_000), ("/c", b"tail")]:
                connection.request("POST", path, body=body)
                reply = connection.getresponse()
                assert reply.status == 200
                assert reply.read() == b"POST %s HTTP/1.1: %d body bytes\n" % (path.encode(), len(body))
        finally:
            connection.close()


@pytest.mark.parametrize("loop", LOOPS)
def test_a_client_without_the_ca_is_refused_and_the_server_goes_on(
    loop: str, pem: Path, client_context: ssl.SSLContext
) -> None:
    stranger = ssl.create_default_context()  # trusts the system's CAs, not ours
    for port in example("http", loop, pem):
        refused = http.client.HTTPSConnection("localhost", port, context=stranger, timeout=30)
        with pytest.raises(ssl.SSLCertVerificationError):
            refused.request("GET", "/")
        refused.close()
        served = http.client.HTTPSConnection("localhost", port, context=client_context, timeout=30)
        served.request("GET", "/after")
        assert served.getresponse().status == 200
        served.close()


# ------------------------------------------------------ sanschat's clients


class Greeter(Handler):
    """A client: says hello once TLS is up, keeps the answer, then closes."""

    def __init__(self) -> None:
        self.answers: list[bytes] = []
        self.lost: list[BaseException | None] = []
        self.done = threading.Event()

    def tls_started(self) -> None:
        self.framer.push(b"hello\r\n")

    def frame_received(self, data: bytes) -> None:
        self.answers.append(data)
        self.framer.close_when_done()

    def connection_lost(self, error: BaseException | None) -> None:
        self.lost.append(error)
        self.done.set()


@pytest.fixture(scope="module")
def asyncio_tls_server(ca: trustme.CA) -> Iterator[int]:
    """A line echo on asyncio's own TLS (``create_server(ssl=...)``): another library's server."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    ready: list[int] = []
    started = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(b"echo: " + line)
            await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=context)
        ready.append(server.sockets[0].getsockname()[1])
        started.set()
        await stop.wait()
        server.close()
        await server.wait_closed()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),))
    thread.start()
    assert started.wait(30)
    try:
        yield ready[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


def _connect_select(greeter: Greeter, port: int, context: ssl.SSLContext, hostname: str) -> None:
    with sanschat.select.Loop() as loop:
        loop.connect(greeter, "127.0.0.1", port, tls=context, server_hostname=hostname)
        loop.run(timeout=30)


def _connect_asyncio(greeter: Greeter, port: int, context: ssl.SSLContext, hostname: str) -> None:
    import sanschat.asyncio

    async def main() -> None:
        protocol = await sanschat.asyncio.connect(
            greeter, "127.0.0.1", port, tls=context, server_hostname=hostname
        )
        await asyncio.wait_for(protocol.wait_closed(), 30)

    asyncio.run(main())


def _connect_trio(greeter: Greeter, port: int, context: ssl.SSLContext, hostname: str) -> None:
    import trio

    import sanschat.trio

    async def main() -> None:
        with trio.fail_after(30):
            await sanschat.trio.connect(greeter, "127.0.0.1", port, tls=context, server_hostname=hostname)

    trio.run(main)


def _connect_anyio(greeter: Greeter, port: int, context: ssl.SSLContext, hostname: str) -> None:
    import anyio

    import sanschat.anyio

    async def main() -> None:
        with anyio.fail_after(30):
            await sanschat.anyio.connect(greeter, "127.0.0.1", port, tls=context, server_hostname=hostname)

    anyio.run(main)


def _connect_socket(greeter: Greeter, port: int, context: ssl.SSLContext, hostname: str) -> None:
    import sanschat.socket

    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    connection = sanschat.socket.Connection(
        sock, greeter, tls=context, server_side=False, server_hostname=hostname
    )
    connection.run()


def _connect_twisted(greeter: Greeter, port: int, context: ssl.SSLContext, hostname: str) -> None:
    import sanschat.twisted

    from .servers import running_reactor

    reactor = running_reactor()
    reactor.callFromThread(
        sanschat.twisted.connect, greeter, "127.0.0.1", port, tls=context, server_hostname=hostname
    )
    assert greeter.done.wait(30)


CLIENTS: dict[str, Callable[[Greeter, int, ssl.SSLContext, str], None]] = {
    "select": _connect_select,
    "asyncio": _connect_asyncio,
    "trio": _connect_trio,
    "anyio": _connect_anyio,
    "socket": _connect_socket,
    "twisted": _connect_twisted,
}


@pytest.mark.parametrize("client", CLIENTS.values(), ids=CLIENTS.keys())
@pytest.mark.parametrize(
    ("trusted", "hostname", "error"),
    [
        (True, "localhost", None),
        (True, "example.org", ssl.SSLCertVerificationError),
        (False, "localhost", ssl.SSLCertVerificationError),
    ],
    ids=["verified", "hostname-mismatch", "untrusted"],
)
def test_every_binding_connects_with_tls_to_another_librarys_server(
    asyncio_tls_server: int,
    client_context: ssl.SSLContext,
    client: Callable[[Greeter, int, ssl.SSLContext, str], None],
    trusted: bool,
    hostname: str,
    error: type | None,
) -> None:
    context = client_context if trusted else ssl.create_default_context()
    greeter = Greeter()
    client(greeter, asyncio_tls_server, context, hostname)
    assert greeter.done.wait(30)
    if error is None:
        assert greeter.answers == [b"echo: hello"] and greeter.lost == [None]
    else:
        assert greeter.answers == [] and isinstance(greeter.lost[0], error), greeter.lost


def test_a_framed_socket_connects_with_tls(asyncio_tls_server: int, client_context: ssl.SSLContext) -> None:
    import sanschat.socket

    with sanschat.socket.open_connection(
        "127.0.0.1", asyncio_tls_server, b"\n", tls=client_context, server_hostname="localhost"
    ) as client:
        client.send(b"over tls\n")
        assert client.next_event(timeout=30) == sanschat.Frame(b"echo: over tls")
    with pytest.raises(ssl.SSLCertVerificationError):
        sanschat.socket.open_connection(
            "127.0.0.1", asyncio_tls_server, tls=client_context, server_hostname="example.org"
        )
