"""The asyncio binding over real loopback TCP, on asyncio's loop and on uvloop."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import ssl
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trustme

from sanschat import Data, EndOfStream, Frame, Handler
from sanschat._driver import ACCEPT_BACKOFF
from sanschat.asyncio import FramedConnection, Server, connect, open_connection, serve, start_server

from .helpers import eventually, settled

LOOPS: list[Any] = [pytest.param(asyncio.new_event_loop, id="asyncio")]
try:
    import uvloop

    LOOPS.append(pytest.param(uvloop.new_event_loop, id="uvloop"))
except ImportError:  # pragma: no cover - uvloop does not build everywhere
    pass


async def finish_leftovers() -> None:
    left = asyncio.all_tasks() - {asyncio.current_task()}
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)
    await asyncio.sleep(0.01)


@pytest.fixture(params=LOOPS)
def run(request: pytest.FixtureRequest) -> Callable[[Callable[[], Awaitable[Any]]], Any]:
    """Run a coroutine function to completion on a fresh loop of each kind."""

    def runner(main: Callable[[], Awaitable[Any]]) -> Any:
        loop = request.param()
        try:
            return loop.run_until_complete(asyncio.wait_for(main(), 60))
        finally:
            # Whatever a test left running (per-client tasks, closing
            # transports) is finished here, so no socket outlives its loop.
            loop.run_until_complete(finish_leftovers())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    return runner


class Echo(Handler):
    def frame_received(self, data: bytes) -> None:
        self.framer.push(b"echo: " + data + b"\r\n")
        if data == b"QUIT":
            self.framer.close_when_done()


async def echo_server(factory: Callable[[], Handler] = Echo) -> tuple[Server, int]:
    server = await serve(factory, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def chat(port: int, lines: list[bytes]) -> list[object]:
    stream = await open_connection("127.0.0.1", port)
    stream.push(b"".join(line + b"\r\n" for line in lines) + b"QUIT\r\n")
    events: list[object] = [event async for event in stream]
    await stream.aclose()
    return events


def test_500_concurrent_clients_pipelining_lines(run: Any) -> None:
    async def main() -> None:
        server, port = await echo_server()
        results = await asyncio.gather(
            *(chat(port, [b"c%d l%d" % (n, i) for i in range(10)]) for n in range(500))
        )
        for n, events in enumerate(results):
            expected = [Frame(b"echo: c%d l%d" % (n, i)) for i in range(10)]
            assert events == [*expected, Frame(b"echo: QUIT"), EndOfStream(b"")]
        server.close()
        await server.wait_closed()

    run(main)


def test_a_client_trickling_one_byte_at_a_time(run: Any) -> None:
    async def main() -> None:
        server, port = await echo_server()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for byte in b"slow line\r\nQUIT\r\n":
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.001)
        assert await reader.read() == b"echo: slow line\r\necho: QUIT\r\n"
        writer.close()
        server.close()

    run(main)


class Flood(Handler):
    made = 0

    class Producer:
        def more(self) -> bytes:
            Flood.made += 65536
            return b"x" * 65536 if Flood.made <= 1 << 30 else b""

    def connection_made(self, framer) -> None:  # type: ignore[no-untyped-def]
        super().connection_made(framer)
        framer.push_with_producer(Flood.Producer())


def test_a_peer_that_never_reads_costs_only_the_high_water_mark(run: Any) -> None:
    async def main() -> None:
        Flood.made = 0
        server, port = await echo_server(Flood)
        sleeper = socket.create_connection(("127.0.0.1", port))
        sleeper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        try:
            made = await settled(lambda: Flood.made, asyncio.sleep)
        finally:
            sleeper.close()
        assert made < 16 << 20  # of a 1 GiB producer
        server.close()

    run(main)


class Recorder(Echo):
    seen: list[tuple[str, object]] = []

    def end_received(self, data: bytes) -> None:
        Recorder.seen.append(("end", data))
        self.framer.push(b"partial: " + data + b"\r\n")
        self.framer.close_when_done()

    def connection_lost(self, error: BaseException | None) -> None:
        Recorder.seen.append(("lost", type(error).__name__ if error else None))


def test_half_close_delivers_the_partial_frame(run: Any) -> None:
    async def main() -> None:
        Recorder.seen = []
        server, port = await echo_server(Recorder)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"whole\r\nhalf")
        writer.write_eof()
        assert await reader.read() == b"echo: whole\r\npartial: half\r\n"
        writer.close()
        await eventually(lambda: len(Recorder.seen) == 2, asyncio.sleep)
        assert Recorder.seen == [("end", b"half"), ("lost", None)]
        server.close()

    run(main)


def test_a_reset_mid_frame_ends_cleanly_and_others_are_unaffected(run: Any) -> None:
    async def main() -> None:
        Recorder.seen = []
        server, port = await echo_server(Recorder)
        rude = socket.create_connection(("127.0.0.1", port))
        rude.sendall(b"half a fra")
        await asyncio.sleep(0.05)
        rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        rude.close()
        assert await chat(port, [b"fine"]) == [Frame(b"echo: fine"), Frame(b"echo: QUIT"), EndOfStream(b"")]
        await eventually(lambda: sum(kind == "lost" for kind, _ in Recorder.seen) == 2, asyncio.sleep)
        server.close()

    run(main)


class Fragile(Echo):
    def frame_received(self, data: bytes) -> None:
        if data == b"boom":
            raise RuntimeError("handler bug")
        super().frame_received(data)


def test_a_handler_error_closes_only_its_connection(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        server, port = await echo_server(Fragile)
        bad, good = await asyncio.gather(chat(port, [b"boom"]), chat(port, [b"ok"]))
        assert bad == [EndOfStream(b"")]
        assert good == [Frame(b"echo: ok"), Frame(b"echo: QUIT"), EndOfStream(b"")]
        assert any("handler bug" in str(record.exc_info) for record in caplog.records)
        server.close()

    run(main)


def test_stream_server_with_terminator_changes_and_counts(run: Any) -> None:
    async def handle(stream: FramedConnection) -> None:
        async for event in stream:
            if type(event) is Frame and event.data.startswith(b"LEN "):
                stream.set_terminator(int(event.data[4:]))
            elif type(event) is Frame:
                await stream.send(b"body=" + event.data + b"\r\n")
                stream.set_terminator(b"\r\n")
            elif type(event) is Data:
                await stream.send(b"stray=" + event.data + b"\r\n")

    async def main() -> None:
        server = await start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"LEN 5\r\nhelloLEN 0\r\n")
        writer.write_eof()
        assert await reader.read() == b"body=hello\r\nbody=\r\n"
        writer.close()
        server.close()

    run(main)


def test_unconsumed_input_pauses_reading(run: Any) -> None:
    async def main() -> None:
        entered = asyncio.Event()
        release = asyncio.Event()
        seen: list[FramedConnection] = []

        async def lazy(stream: FramedConnection) -> None:
            seen.append(stream)
            entered.set()
            await release.wait()  # consume nothing for a while

        server = await start_server(lazy, "127.0.0.1", 0, max_frame_size=None)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await entered.wait()
        payload = b"x" * (1 << 16)
        sent = 0
        for _ in range(200):  # up to 12.5 MiB, far more than the limit
            writer.write(payload)
            sent += len(payload)
            try:
                await asyncio.wait_for(writer.drain(), 0.05)
            except asyncio.TimeoutError:
                break  # the server stopped reading: we are blocked
        (stream,) = seen
        assert stream.framer.pending_input <= stream.max_pending + 65536
        assert sent > stream.framer.pending_input  # the rest waits in kernel buffers
        release.set()
        await stream.wait_closed()  # the task ended, so the server closed it
        writer.close()
        server.close()

    run(main)


def test_drain_and_close_when_done(run: Any) -> None:
    async def main() -> None:
        server, port = await echo_server()

        class Collect(Handler):
            def __init__(self) -> None:
                self.frames: list[bytes] = []
                self.lost = asyncio.get_running_loop().create_future()

            def frame_received(self, data: bytes) -> None:
                self.frames.append(data)

            def connection_lost(self, error: BaseException | None) -> None:
                self.lost.set_result(error)

        client = Collect()
        protocol = await connect(client, "127.0.0.1", port)
        protocol.framer.push(b"a" * 60_000 + b"\r\nQUIT\r\n")
        await protocol.drain()
        assert await client.lost is None
        assert client.frames == [b"echo: " + b"a" * 60_000, b"echo: QUIT"]
        server.close()

    run(main)


async def echo_once(port: int, line: bytes, **kwargs: Any) -> bytes:
    """One round trip and QUIT; everything the server sent back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, **kwargs)
    writer.write(line + b"\r\nQUIT\r\n")
    reply = await reader.read()
    writer.close()
    return reply


class ReaderlessLoop(asyncio.SelectorEventLoop):
    """A loop without ``add_reader``, as Windows' proactor loop."""

    def add_reader(self, *args: Any) -> None:  # type: ignore[override]
        raise NotImplementedError


class FailingAccepts(socket.socket):
    """A listening socket whose accept() fails with EMFILE while ``failing``,
    as when the process is out of descriptors; it notes when each was tried."""

    def __init__(self) -> None:
        super().__init__(socket.AF_INET, socket.SOCK_STREAM)
        self.bind(("127.0.0.1", 0))
        self.failing = True
        self.failed_at: list[float] = []

    def accept(self) -> tuple[socket.socket, Any]:
        if self.failing:
            self.failed_at.append(time.monotonic())
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
        return super().accept()


@pytest.mark.parametrize("new_loop", [*LOOPS, pytest.param(ReaderlessLoop, id="readerless")])
def test_accept_out_of_descriptors_backs_off_logs_once_and_recovers(
    new_loop: Callable[[], asyncio.AbstractEventLoop], caplog: pytest.LogCaptureFixture
) -> None:
    """While accept() fails (EMFILE), the server retries it every
    ACCEPT_BACKOFF rather than at once, logs one warning for the whole
    episode, and serves the waiting client as soon as accept() works again."""
    caplog.set_level(logging.INFO, logger="sanschat.asyncio")

    async def main() -> None:
        listening = FailingAccepts()
        server = await serve(Echo, None, None, sock=listening)  # type: ignore[arg-type]
        port = server.sockets[0].getsockname()[1]
        client = asyncio.ensure_future(echo_once(port, b"waited"))  # waits in the backlog
        await eventually(lambda: len(listening.failed_at) >= 4, asyncio.sleep)
        gaps = [later - earlier for earlier, later in zip(listening.failed_at, listening.failed_at[1:])]
        assert min(gaps) >= ACCEPT_BACKOFF * 0.9, gaps  # (timers may round to the millisecond)
        warnings = [r for r in caplog.records if r.name == "sanschat.asyncio"]
        assert [r.levelno for r in warnings] == [logging.WARNING]
        assert "Too many open files" in warnings[0].getMessage()
        listening.failing = False
        assert await client == b"echo: waited\r\necho: QUIT\r\n"
        records = [r for r in caplog.records if r.name == "sanschat.asyncio"]
        assert [r.levelno for r in records] == [logging.WARNING, logging.INFO]
        assert "accepting again" in records[1].getMessage()
        server.close()
        await server.wait_closed()
        assert listening.fileno() == -1  # closed with the server

    loop = new_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(main(), 60))
    finally:
        loop.run_until_complete(finish_leftovers())
        loop.close()


def test_the_server_object_behaves_as_asyncios(run: Any) -> None:
    """start_serving=False binds without accepting; close() stops accepting
    and keeps the connections; wait_closed() returns once they are over."""

    async def main() -> None:
        server = await serve(Echo, "127.0.0.1", 0, start_serving=False, backlog=5)
        assert not server.is_serving() and server.get_loop() is asyncio.get_running_loop()
        port = server.sockets[0].getsockname()[1]
        await server.start_serving()
        assert server.is_serving()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"before\r\n")
        assert await reader.readline() == b"echo: before\r\n"
        server.close()
        assert server.sockets == () and not server.is_serving()
        closed = asyncio.ensure_future(server.wait_closed())
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"after\r\n")  # the connection goes on
        assert await reader.readline() == b"echo: after\r\n"
        assert not closed.done()
        writer.write(b"QUIT\r\n")
        assert await reader.read() == b"echo: QUIT\r\n"
        writer.close()
        await closed

    run(main)


def test_a_server_closed_before_it_started_closes_its_sockets(run: Any) -> None:
    async def main() -> None:
        server = await serve(Echo, "127.0.0.1", 0, start_serving=False)
        (sock,) = server.sockets
        server.close()
        await server.wait_closed()
        assert sock.fileno() == -1

    run(main)


def test_serve_forever_ends_by_cancellation_and_closes(run: Any) -> None:
    async def main() -> None:
        async with await serve(Echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            serving = asyncio.ensure_future(server.serve_forever())
            assert await echo_once(port, b"hi") == b"echo: hi\r\necho: QUIT\r\n"
            with pytest.raises(RuntimeError):
                await server.serve_forever()  # only once at a time
            serving.cancel()
            with pytest.raises(asyncio.CancelledError):
                await serving
            assert server.sockets == ()

    run(main)


def test_abort_clients_cuts_the_connections(run: Any) -> None:
    async def main() -> None:
        server, port = await echo_server()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hi\r\n")
        assert await reader.readline() == b"echo: hi\r\n"
        server.close()
        server.abort_clients()
        try:
            assert await reader.read() == b""
        except ConnectionResetError:
            pass
        writer.close()
        await server.wait_closed()

    run(main)


class Unmakeable(Echo):
    made = 0

    def __init__(self) -> None:
        Unmakeable.made += 1
        if Unmakeable.made == 1:
            raise RuntimeError("no handler for you")


def test_a_failing_handler_factory_drops_that_client_only(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        Unmakeable.made = 0
        server, port = await echo_server(Unmakeable)
        assert await echo_once(port, b"first") == b""  # dropped
        assert await echo_once(port, b"second") == b"echo: second\r\necho: QUIT\r\n"
        assert any("no handler for you" in str(record.exc_info) for record in caplog.records)
        server.close()
        await server.wait_closed()

    run(main)


def test_a_failed_tls_handshake_drops_that_client_only(run: Any) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    async def main() -> None:
        server = await serve(Echo, "127.0.0.1", 0, ssl=server_context, ssl_handshake_timeout=30)
        port = server.sockets[0].getsockname()[1]
        assert await echo_once(port, b"not TLS") == b""
        tls = {"ssl": client_context, "server_hostname": "localhost"}
        assert await echo_once(port, b"TLS", **tls) == b"echo: TLS\r\necho: QUIT\r\n"
        server.close()
        await server.wait_closed()

    run(main)


def test_serve_refuses_what_create_server_refuses(run: Any) -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="only meaningful with ssl"):
            await serve(Echo, ssl_handshake_timeout=1.0)
        with pytest.raises(TypeError):
            await serve(Echo, no_such_option=True)
        with socket.socket() as sock, pytest.raises(ValueError, match="can not be specified"):
            await serve(Echo, sock=sock)

    run(main)
