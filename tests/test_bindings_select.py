"""The selectors binding over real loopback TCP (127.0.0.1 only)."""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time

import pytest

from sanschat import FrameTooLarge, Handler
from sanschat.select import Loop


class Echo(Handler):
    """Echo every line; QUIT closes after the reply."""

    def frame_received(self, data: bytes) -> None:
        self.framer.push(b"echo: " + data + b"\r\n")
        if data == b"QUIT":
            self.framer.close_when_done()


class Client(Handler):
    """Pipeline some lines, then QUIT; collect the replies."""

    def __init__(self, lines: list[bytes], done: list[Client], expected: int) -> None:
        self.lines = lines
        self.done = done
        self.expected = expected
        self.replies: list[bytes] = []
        self.error: BaseException | None = None

    def connection_made(self, framer) -> None:  # type: ignore[no-untyped-def]
        super().connection_made(framer)
        framer.push(b"".join(line + b"\r\n" for line in self.lines) + b"QUIT\r\n")

    def frame_received(self, data: bytes) -> None:
        self.replies.append(data)

    def connection_lost(self, error: BaseException | None) -> None:
        self.error = error
        self.done.append(self)


def serve(factory=Echo) -> tuple[Loop, int]:  # type: ignore[no-untyped-def]
    loop = Loop()
    listener = loop.listen(factory, "127.0.0.1", 0)
    return loop, listener.address[1]


def run_until(loop: Loop, condition, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        loop.run(timeout=0.05)
    assert condition(), "timed out"


def test_200_concurrent_clients_each_get_their_own_echoes() -> None:
    loop, port = serve()
    done: list[Client] = []
    clients = []
    for n in range(200):
        lines = [b"client %d line %d" % (n, i) for i in range(20)]
        clients.append(Client(lines, done, 21))
        loop.connect(clients[-1], "127.0.0.1", port)
    run_until(loop, lambda: len(done) == 200)
    for n, client in enumerate(clients):
        assert client.replies == [b"echo: client %d line %d" % (n, i) for i in range(20)] + [b"echo: QUIT"]
        assert client.error is None
    loop.close()


def trickle(port: int, message: bytes, results: list[bytes]) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(message)):
            sock.send(message[i : i + 1])
            time.sleep(0.001)
        data = bytearray()
        while chunk := sock.recv(4096):
            data += chunk
        results.append(bytes(data))


def test_peers_sending_one_byte_at_a_time() -> None:
    loop, port = serve()
    results: list[bytes] = []
    message = b"hello\r\nsplit \r\n\r\nQUIT\r\n"
    threads = [threading.Thread(target=trickle, args=(port, message, results)) for _ in range(20)]
    for t in threads:
        t.start()
    run_until(loop, lambda: len(results) == 20)
    assert results == [b"echo: hello\r\necho: split \r\necho: \r\necho: QUIT\r\n"] * 20
    loop.close()


class Fragile(Echo):
    def frame_received(self, data: bytes) -> None:
        if data == b"boom":
            raise RuntimeError("handler bug")
        super().frame_received(data)


def test_a_handler_error_closes_only_its_connection(caplog: pytest.LogCaptureFixture) -> None:
    loop, port = serve(Fragile)
    done: list[Client] = []
    bad = Client([b"boom"], done, 0)
    good = Client([b"fine"], done, 2)
    loop.connect(bad, "127.0.0.1", port)
    loop.connect(good, "127.0.0.1", port)
    with caplog.at_level(logging.ERROR, logger="sanschat.select"):
        run_until(loop, lambda: len(done) == 2)
    assert bad.replies == []
    assert good.replies == [b"echo: fine", b"echo: QUIT"]
    assert "handler bug" in caplog.text
    loop.close()


class Recorder(Echo):
    seen: list[tuple[str, object]] = []

    def end_received(self, data: bytes) -> None:
        Recorder.seen.append(("end", data))
        self.framer.push(b"got partial: " + data + b"\r\n")
        self.framer.close_when_done()

    def connection_lost(self, error: BaseException | None) -> None:
        Recorder.seen.append(("lost", type(error).__name__ if error else None))


def test_half_close_delivers_the_partial_frame_and_the_reply_still_arrives() -> None:
    Recorder.seen = []
    loop, port = serve(Recorder)
    result: list[bytes] = []

    def client() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"full line\r\nno end")
            sock.shutdown(socket.SHUT_WR)
            data = bytearray()
            while chunk := sock.recv(4096):
                data += chunk
            result.append(bytes(data))

    t = threading.Thread(target=client)
    t.start()
    run_until(loop, lambda: bool(result) and len(Recorder.seen) == 2)
    assert result == [b"echo: full line\r\ngot partial: no end\r\n"]
    assert Recorder.seen == [("end", b"no end"), ("lost", None)]
    loop.close()


def test_a_reset_mid_frame_is_a_clean_end_for_the_server_and_others_go_on() -> None:
    Recorder.seen = []
    loop, port = serve(Recorder)
    rude = socket.create_connection(("127.0.0.1", port))
    rude.sendall(b"half a fra")
    run_until(loop, lambda: len(loop.connections) == 1)
    loop.run(timeout=0.1)
    rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    rude.close()  # RST
    done: list[Client] = []
    polite = Client([b"still here"], done, 2)
    loop.connect(polite, "127.0.0.1", port)
    run_until(loop, lambda: len(done) == 1 and any(s[0] == "lost" for s in Recorder.seen))
    assert polite.replies == [b"echo: still here", b"echo: QUIT"]
    # The reset connection ended: either as a reset error or as an end of stream.
    assert ("lost", "ConnectionResetError") in Recorder.seen or ("end", b"half a fra") in Recorder.seen
    loop.close()


class Flood(Handler):
    """On connect, push a lazy producer of 1 GiB; count what it made."""

    made = 0

    class Producer:
        def more(self) -> bytes:
            Flood.made += 65536
            return b"x" * 65536 if Flood.made <= 1 << 30 else b""

    def connection_made(self, framer) -> None:  # type: ignore[no-untyped-def]
        super().connection_made(framer)
        framer.push_with_producer(Flood.Producer())


def test_a_peer_that_never_reads_holds_output_memory_bounded() -> None:
    Flood.made = 0
    loop, port = serve(Flood)
    sleeper = socket.create_connection(("127.0.0.1", port))
    sleeper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    loop.run(timeout=1.0)
    (connection,) = loop.connections
    # Only what the kernel buffers took, plus one chunk, was ever produced.
    assert Flood.made < 16 << 20
    assert connection.framer.pending_output <= 65536
    sleeper.close()
    run_until(loop, lambda: not loop.connections)
    loop.close()


class Strict(Echo):
    terminator = b"\n"
    max_frame_size = 10

    def frame_too_large(self, error: FrameTooLarge) -> None:
        self.framer.push(b"500 line too long\n")


def test_an_oversized_line_can_be_answered_and_the_connection_goes_on() -> None:
    loop, port = serve(Strict)
    result: list[bytes] = []

    def client() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"short\n" + b"y" * 100 + b"\nQUIT\n")
            data = bytearray()
            while chunk := sock.recv(4096):
                data += chunk
            result.append(bytes(data))

    threading.Thread(target=client).start()
    run_until(loop, lambda: bool(result))
    assert result == [b"echo: short\r\n500 line too long\necho: QUIT\r\n"]
    loop.close()


def test_an_oversized_line_closes_the_connection_by_default(caplog: pytest.LogCaptureFixture) -> None:
    class Limited(Echo):
        max_frame_size = 8

    loop, port = serve(Limited)
    done: list[Client] = []
    client = Client([b"this line is far too long"], done, 0)
    loop.connect(client, "127.0.0.1", port)
    with caplog.at_level(logging.ERROR, logger="sanschat.select"):
        run_until(loop, lambda: bool(done))
    assert client.replies == []
    assert "max_frame_size=8" in caplog.text
    loop.close()


def test_timers_run_in_order_and_can_be_cancelled() -> None:
    with Loop() as loop:
        fired: list[str] = []
        loop.call_later(0.05, fired.append, "second")
        loop.call_later(0.01, fired.append, "first")
        loop.call_later(0.02, fired.append, "never").cancel()
        loop.call_soon(fired.append, "soon")
        loop.run()  # returns when nothing is left
        assert fired == ["soon", "first", "second"]


def test_stop_from_another_thread() -> None:
    loop, _port = serve()
    running = threading.Event()

    def stop_when_running() -> None:
        running.wait()
        loop.stop()

    stopper = threading.Thread(target=stop_when_running)
    stopper.start()
    stopped_by: list[str] = []
    loop.call_soon(running.set)

    # A backstop for a stop that never lands: it turns a hang into a failure.
    def backstop() -> None:
        stopped_by.append("backstop")
        loop.stop()

    loop.call_later(300, backstop)
    loop.run()
    stopper.join()
    assert stopped_by == []
    loop.close()


def test_run_with_a_timeout_returns_while_serving() -> None:
    loop, _port = serve()
    loop.run(timeout=0.05)
    assert loop.listeners
    loop.close()


def test_a_handler_on_a_socketpair() -> None:
    with Loop() as loop:
        mine, theirs = socket.socketpair()
        loop.add_socket(mine, Echo())
        theirs.sendall(b"ping\r\nQUIT\r\n")
        theirs.settimeout(5)
        data = bytearray()
        while b"QUIT" not in data:
            loop.run(timeout=0.05)
            try:
                data += theirs.recv(100)
            except TimeoutError:
                pass
        assert bytes(data) == b"echo: ping\r\necho: QUIT\r\n"
        theirs.close()


def test_answers_go_out_at_once_without_asking_the_selector_for_writability() -> None:
    """An answer to what was just read is sent straight away, as asyncio's
    transports do: the socket has room, so the connection never waits for
    EVENT_WRITE (which costs a round of select and two selector changes per read)."""
    import selectors

    with Loop() as loop:
        asked: list[int] = []
        register, modify = loop.selector.register, loop.selector.modify

        def recording_register(fileobj, events, data=None):  # type: ignore[no-untyped-def]
            asked.append(events)
            return register(fileobj, events, data)

        def recording_modify(fileobj, events, data=None):  # type: ignore[no-untyped-def]
            asked.append(events)
            return modify(fileobj, events, data)

        loop.selector.register = recording_register  # type: ignore[method-assign]
        loop.selector.modify = recording_modify  # type: ignore[method-assign]
        listener = loop.listen(Echo, "127.0.0.1", 0)
        with socket.create_connection(("127.0.0.1", listener.address[1]), timeout=5) as client:
            data = bytearray()
            for round_ in range(20):
                client.sendall(b"line %d\r\n" % round_)
                while not data.endswith(b"line %d\r\n" % round_):
                    loop.run(timeout=0.01)
                    client.settimeout(0.01)
                    try:
                        data += client.recv(100)
                    except TimeoutError:
                        pass
        assert bytes(data) == b"".join(b"echo: line %d\r\n" % n for n in range(20))
        assert asked, "nothing was registered"
        assert not [events for events in asked if events & selectors.EVENT_WRITE]


def test_closing_the_loop_closes_a_socket_whose_own_close_was_interrupted() -> None:
    """Ctrl-C can land inside a connection's close, after it is marked closed and
    before its socket is: closing the loop (as serve does on the way out) must
    still close that socket, or it leaks (found as a ResourceWarning in CI)."""
    loop = Loop()
    mine, theirs = socket.socketpair()
    connection = loop.add_socket(mine, Echo())
    connection.closed = True  # where an interrupted _finish leaves it
    loop.close()
    assert mine.fileno() == -1
    theirs.close()
