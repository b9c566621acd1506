"""The trio binding: over in-memory stream pairs, real loopback TCP, and TLS."""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
import trustme

from sanschat import EndOfStream, Frame, Framer, Handler
from sanschat.trio import FramedConnection, serve, serve_stream

from .helpers import eventually, settled


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    async def bounded() -> Any:
        with trio.fail_after(60):
            return await main()

    return trio.run(bounded)


class Echo(Handler):
    def frame_received(self, data: bytes) -> None:
        self.framer.push(b"echo: " + data + b"\r\n")
        if data == b"QUIT":
            self.framer.close_when_done()


async def start(nursery: trio.Nursery, factory: Callable[[], Handler] = Echo) -> int:
    server = await nursery.start(serve, factory)
    port: int = server.port
    return port


async def connect(port: int, terminator: bytes = b"\r\n") -> FramedConnection:
    return FramedConnection(await trio.open_tcp_stream("127.0.0.1", port), Framer(terminator))


async def chat(port: int, lines: list[bytes]) -> list[object]:
    async with await connect(port) as framed:
        await framed.send(b"".join(line + b"\r\n" for line in lines) + b"QUIT\r\n")
        return [event async for event in framed]


# ------------------------------------------------------------ in memory


def test_frames_terminator_changes_and_counts_over_a_memory_stream() -> None:
    async def main() -> None:
        left, right = trio.testing.memory_stream_pair()
        framed = FramedConnection(right, Framer(b"\r\n"))
        for byte in b"LEN 5\r\nhelloLEN 0\r\ntail":
            await left.send_all(bytes([byte]))
        await left.send_eof()
        events = []
        async for event in framed:
            events.append(event)
            if type(event) is Frame and event.data.startswith(b"LEN "):
                framed.set_terminator(int(event.data[4:]))
            elif type(event) is Frame:
                framed.set_terminator(b"\r\n")
        assert events == [
            Frame(b"LEN 5"),
            Frame(b"hello"),
            Frame(b"LEN 0"),
            Frame(b""),
            EndOfStream(b"tail"),
        ]
        assert await framed.receive() == EndOfStream(b"")  # and again, like the Framer

    run(main)


def test_a_cancelled_receive_loses_no_byte() -> None:
    async def main() -> None:
        left, right = trio.testing.memory_stream_pair()
        framed = FramedConnection(right, Framer(b"\r\n"))
        await left.send_all(b"first\r\nhal")
        assert await framed.receive() == Frame(b"first")
        with trio.move_on_after(0.05) as scope:
            await framed.receive()  # "hal" is read, then it waits for the rest
        assert scope.cancelled_caught
        assert framed.framer.pending_input == 3
        await left.send_all(b"f\r\n")
        assert await framed.receive() == Frame(b"half")

    run(main)


def test_two_tasks_cannot_receive_at_once() -> None:
    async def main() -> None:
        _left, right = trio.testing.memory_stream_pair()
        framed = FramedConnection(right, Framer(b"\r\n"))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(framed.receive)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await framed.receive()
            nursery.cancel_scope.cancel()

    run(main)


def test_a_send_cancelled_mid_chunk_on_a_generic_stream_is_reported_not_hidden() -> None:
    async def main() -> None:
        left, right = trio.testing.lockstep_stream_pair()  # send_all waits for the reader
        framed = FramedConnection(left, Framer(b"\r\n"))
        with trio.move_on_after(0.05) as scope:
            await framed.send(b"x" * 1000)
        assert scope.cancelled_caught
        assert framed.framer.pending_output == 1000  # still counted: nothing silently dropped
        with pytest.raises(trio.BrokenResourceError):
            await framed.send(b"more")
        await right.aclose()

    run(main)


# ------------------------------------------------------------ loopback TCP


def test_a_cancelled_send_over_tcp_neither_loses_nor_duplicates() -> None:
    payload = bytes(range(256)) * 16384  # 4 MiB, far more than socket buffers hold

    async def main() -> None:
        listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
        port = listener.socket.getsockname()[1]
        async with listener:
            framed = await connect(port)
            peer = await listener.accept()
            with trio.move_on_after(0.2) as scope:
                await framed.send(payload)  # the peer is not reading yet
            assert scope.cancelled_caught
            left = framed.framer.pending_output
            assert 0 < left < len(payload)

            received = bytearray()

            async def read_all() -> None:
                while chunk := await peer.receive_some(1 << 16):
                    received.extend(chunk)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_all)
                await framed.flush()  # the rest, from where the cancel left it
                await framed.send_eof()
            assert received == payload
            await framed.aclose()
            await peer.aclose()

    run(main)


def test_200_concurrent_clients_pipelining_lines() -> None:
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            port = await start(nursery)
            results: dict[int, list[object]] = {}

            async def client(n: int) -> None:
                results[n] = await chat(port, [b"c%d l%d" % (n, i) for i in range(10)])

            async with trio.open_nursery() as clients:
                for n in range(200):
                    clients.start_soon(client, n)
            for n in range(200):
                expected = [Frame(b"echo: c%d l%d" % (n, i)) for i in range(10)]
                assert results[n] == [*expected, Frame(b"echo: QUIT"), EndOfStream(b"")]
            nursery.cancel_scope.cancel()

    run(main)


def test_one_task_sends_while_another_receives() -> None:
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            port = await start(nursery)
            framed = await connect(port)
            got: list[object] = []

            async def sender() -> None:
                for i in range(2000):
                    framed.push(b"line %d\r\n" % i)
                    if i % 100 == 0:
                        await framed.flush()
                await framed.send(b"QUIT\r\n")

            async def receiver() -> None:
                async for event in framed:
                    got.append(event)

            async with trio.open_nursery() as pair:
                pair.start_soon(sender)
                pair.start_soon(receiver)
            expected = [Frame(b"echo: line %d" % i) for i in range(2000)]
            assert got == [*expected, Frame(b"echo: QUIT"), EndOfStream(b"")]
            await framed.aclose()
            nursery.cancel_scope.cancel()

    run(main)


def test_a_client_trickling_one_byte_at_a_time() -> None:
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            port = await start(nursery)
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            for byte in b"slow line\r\nQUIT\r\n":
                await stream.send_all(bytes([byte]))
                await trio.sleep(0.001)
            received = b""
            while chunk := await stream.receive_some(1024):
                received += chunk
            assert received == b"echo: slow line\r\necho: QUIT\r\n"
            await stream.aclose()
            nursery.cancel_scope.cancel()

    run(main)


class Flood(Handler):
    made = 0

    class Producer:
        def more(self) -> bytes:
            Flood.made += 65536
            return b"x" * 65536 if Flood.made <= 1 << 30 else b""

    def connection_made(self, framer: Framer) -> None:
        super().connection_made(framer)
        framer.push_with_producer(Flood.Producer())


def test_a_peer_that_never_reads_costs_only_socket_buffers() -> None:
    async def main() -> None:
        Flood.made = 0
        async with trio.open_nursery() as nursery:
            port = await start(nursery, Flood)
            sleeper = socket.create_connection(("127.0.0.1", port))
            sleeper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            try:
                made = await settled(lambda: Flood.made, trio.sleep)
            finally:
                sleeper.close()
            assert made < 16 << 20  # of a 1 GiB producer
            nursery.cancel_scope.cancel()

    run(main)


class Recorder(Echo):
    seen: list[tuple[str, object]] = []

    def end_received(self, data: bytes) -> None:
        Recorder.seen.append(("end", data))
        self.framer.push(b"partial: " + data + b"\r\n")
        self.framer.close_when_done()

    def connection_lost(self, error: BaseException | None) -> None:
        Recorder.seen.append(("lost", type(error).__name__ if error else None))


def test_half_close_delivers_the_partial_frame() -> None:
    async def main() -> None:
        Recorder.seen = []
        async with trio.open_nursery() as nursery:
            port = await start(nursery, Recorder)
            framed = await connect(port)
            await framed.send(b"whole\r\nhalf")
            await framed.send_eof()
            assert [event async for event in framed] == [
                Frame(b"echo: whole"),
                Frame(b"partial: half"),
                EndOfStream(b""),
            ]
            await framed.aclose()
            await eventually(lambda: len(Recorder.seen) == 2, trio.sleep)
            assert Recorder.seen == [("end", b"half"), ("lost", None)]
            nursery.cancel_scope.cancel()

    run(main)


def test_a_reset_mid_frame_ends_cleanly_and_others_are_unaffected() -> None:
    async def main() -> None:
        Recorder.seen = []
        async with trio.open_nursery() as nursery:
            port = await start(nursery, Recorder)
            rude = socket.create_connection(("127.0.0.1", port))
            rude.sendall(b"half a fra")
            await trio.sleep(0.05)
            rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            rude.close()
            assert await chat(port, [b"fine"]) == [
                Frame(b"echo: fine"),
                Frame(b"echo: QUIT"),
                EndOfStream(b""),
            ]
            await eventually(lambda: ("lost", "BrokenResourceError") in Recorder.seen, trio.sleep)
            nursery.cancel_scope.cancel()

    run(main)


def test_a_reset_seen_by_a_framed_stream_is_its_end() -> None:
    async def main() -> None:
        listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
        port = listener.socket.getsockname()[1]
        async with listener:
            rude = socket.create_connection(("127.0.0.1", port))
            framed = FramedConnection(await listener.accept(), Framer(b"\r\n"))
            rude.sendall(b"one\r\ntw")  # one segment: "tw" is read with "one"
            assert await framed.receive() == Frame(b"one")
            rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            rude.close()
            assert [event async for event in framed] == [EndOfStream(b"tw")]
            assert isinstance(framed.receive_error, trio.BrokenResourceError)
            await framed.aclose()

    run(main)


class Fragile(Echo):
    def frame_received(self, data: bytes) -> None:
        if data == b"boom":
            raise RuntimeError("handler bug")
        super().frame_received(data)


def test_a_handler_error_closes_only_its_connection(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            port = await start(nursery, Fragile)
            bad = await chat(port, [b"boom"])
            good = await chat(port, [b"ok"])
            assert bad == [EndOfStream(b"")]
            assert good == [Frame(b"echo: ok"), Frame(b"echo: QUIT"), EndOfStream(b"")]
            nursery.cancel_scope.cancel()

    with caplog.at_level(logging.ERROR, logger="sanschat"):
        run(main)
    assert any("handler bug" in str(record.exc_info[1]) for record in caplog.records if record.exc_info)


def test_serve_stream_hands_a_handler_error_to_connection_lost() -> None:
    class Recorded(Fragile):
        reason: BaseException | None = None

        def connection_lost(self, error: BaseException | None) -> None:
            self.reason = error

    async def main() -> None:
        left, right = trio.testing.memory_stream_pair()
        await left.send_all(b"fine\r\nboom\r\nlater\r\n")
        handler = Recorded()
        await serve_stream(right, handler)
        assert isinstance(handler.reason, RuntimeError)
        assert await left.receive_some() == b"echo: fine\r\n"  # sent before the error

    run(main)


class BigEcho(Echo):
    max_frame_size = None


def test_framing_over_tls() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    async def handle(tcp: trio.SocketStream) -> None:
        tls = trio.SSLStream(tcp, server_context, server_side=True)
        await serve_stream(tls, BigEcho())

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, handle, 0)
            port = listeners[0].socket.getsockname()[1]
            tcp = await trio.open_tcp_stream("127.0.0.1", port)
            tls = trio.SSLStream(tcp, client_context, server_hostname="localhost")
            framed = FramedConnection(tls, Framer(b"\r\n", max_frame_size=None))
            await framed.send(b"secret\r\n" + b"big " * 50_000 + b"\r\nQUIT\r\n")
            events = []
            async for event in framed:
                events.append(event)
                if event == Frame(b"echo: QUIT"):
                    break
            assert events == [
                Frame(b"echo: secret"),
                Frame(b"echo: " + b"big " * 50_000),
                Frame(b"echo: QUIT"),
            ]
            await framed.aclose()
            nursery.cancel_scope.cancel()

    run(main)


def test_importing_without_trio_names_the_extra() -> None:
    code = "import sys; sys.modules['trio'] = None\ntry:\n import sanschat.trio\nexcept ImportError as e:\n print(e)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'sanschat[trio]'" in out.stdout
