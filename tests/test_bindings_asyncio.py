"""The asyncio binding over real loopback TCP, on asyncio's loop and on uvloop."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sanschat import Data, EndOfStream, Frame, Handler
from sanschat.asyncio import FramedConnection, connect, open_connection, serve, start_server

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


async def echo_server(factory: Callable[[], Handler] = Echo) -> tuple[asyncio.Server, int]:
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
