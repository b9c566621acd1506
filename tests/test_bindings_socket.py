"""sanschat.socket: the blocking client and the thread-per-connection server,
over real loopback sockets (the Handler contract itself is in test_conformance)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator

import pytest

from sanschat import Data, EndOfStream, Frame, Framer, Handler, InputEvent
from sanschat.socket import FramedSocket, Server, open_connection, serve


class Echo(Handler):
    def frame_received(self, data: bytes) -> None:
        if data == b"QUIT":
            self.framer.close_when_done()
        else:
            self.framer.push(data + b"\r\n")


@pytest.fixture
def server() -> Iterator[Server]:
    running = serve(Echo)
    yield running
    running.shutdown(timeout=1.0)


def test_send_next_event_and_iteration(server: Server) -> None:
    with open_connection("127.0.0.1", server.port) as client:
        client.send(b"one\r\ntw")
        assert client.next_event(timeout=30) == Frame(b"one")
        client.send(b"o\r\nQUIT\r\n")
        assert list(client) == [Frame(b"two"), EndOfStream(b"")]


def test_next_event_times_out_and_loses_nothing(server: Server) -> None:
    with open_connection("127.0.0.1", server.port) as client:
        with pytest.raises(TimeoutError, match="no complete event within 0.1 s"):
            client.next_event(timeout=0.1)
        client.send(b"late\r\n")
        assert client.next_event(timeout=30) == Frame(b"late")


def test_a_streamed_frame_comes_in_pieces_then_its_end(server: Server) -> None:
    with open_connection("127.0.0.1", server.port, stream=True) as client:
        client.send(b"x" * 50_000 + b"\r\n")
        pieces = []
        while not isinstance(event := client.next_event(timeout=30), Frame):
            assert isinstance(event, Data)
            pieces.append(event.data)
        assert b"".join(pieces) + event.data == b"x" * 50_000


def test_a_push_from_another_thread_under_the_server_lock_is_sent(server: Server) -> None:
    with open_connection("127.0.0.1", server.port) as client:
        client.send(b"hello\r\n")
        assert client.next_event(timeout=30) == Frame(b"hello")

        def announce() -> None:
            with server.lock:  # the rule for touching a Handler from outside its callbacks
                for driver in server.connections:
                    assert server.lock_for(driver) is server.lock
                    driver.framer.push(b"from another thread\r\n")

        thread = threading.Thread(target=announce)
        thread.start()
        thread.join()
        assert client.next_event(timeout=30) == Frame(b"from another thread")


def test_framed_socket_wraps_any_connected_socket(server: Server) -> None:
    from sanschat import Framer

    with FramedSocket(socket.create_connection(("127.0.0.1", server.port)), Framer(b"\r\n")) as client:
        client.send(b"a\r\nb\r\n")
        assert [client.next_event(30), client.next_event(30)] == [Frame(b"a"), Frame(b"b")]


# ------------------------------------------------- a timeout loses nothing
#
# Every FramedSocket call that can time out, followed by more calls, against a
# real peer: every byte arrives exactly once, in order, in both directions,
# and the socket keeps its own timeout.

#: The timeout of the calls meant to time out (seconds): it expires, by design.
SHORT = 0.2
#: The socket's own timeout otherwise: a backstop, never expected to expire.
PATIENCE = 30.0


def numbered_lines(first: int, count: int) -> bytes:
    return b"".join(b"%07d\r\n" % number for number in range(first, first + count))


class FarEnd:
    """The peer of a FramedSocket: a plain socket over loopback that reads
    (and keeps) everything in a thread of its own, and can stop reading for a
    while. Small buffers on both sides, so a peer that stops soon blocks the
    sender."""

    def __init__(self) -> None:
        with socket.socket() as listener:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)  # (inherited by the accepted one)
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            client = socket.create_connection(listener.getsockname(), timeout=PATIENCE)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
            self.sock, _ = listener.accept()
        self.client = FramedSocket(client, Framer(b"\r\n"))
        self.received = bytearray()
        self.ended = False
        self._reading = threading.Event()
        self._reading.set()
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        # If a FramedSocket call that should time out blocks for ever, the cut
        # ends it (with an end of stream), so the test fails instead of hanging.
        self._watchdog = threading.Timer(4 * PATIENCE, self.cut)
        self._watchdog.start()

    def _read(self) -> None:
        while self._reading.wait() and (chunk := self.sock.recv(65536)):
            with self._changed:
                self.received += chunk
        with self._changed:
            self.ended = True
            self._changed.notify_all()

    def stop_reading(self) -> None:
        self._reading.clear()  # (a read under way still finishes)

    def resume_reading(self) -> None:
        self._reading.set()

    def everything(self) -> bytes:
        """All the client sent, once it has sent its end of stream."""
        with self._changed:
            assert self._changed.wait_for(lambda: self.ended, PATIENCE)
            return bytes(self.received)

    def cut(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._watchdog.cancel()
        self.resume_reading()
        self.cut()
        self._reader.join(PATIENCE)
        self.sock.close()
        self.client.close()


@pytest.fixture
def far_end() -> Iterator[FarEnd]:
    peer = FarEnd()
    try:
        yield peer
    finally:
        peer.close()


Outcome = tuple[bytes, list[InputEvent]]  # what a call that timed out had sent, and had given


def send_times_out(client: FramedSocket, peer: FarEnd) -> Outcome:
    """``send`` under the socket's own timeout, twice, to a peer that stopped reading."""
    peer.stop_reading()
    client.sock.settimeout(SHORT)
    pushed = numbered_lines(0, 200_002)
    with pytest.raises(TimeoutError):
        client.send(pushed[:1_000_000])
    with pytest.raises(TimeoutError):  # still stopped: these go behind the rest
        client.send(pushed[1_000_000:])
    assert client.sock.gettimeout() == SHORT
    assert client.framer.pending_output > 0
    client.sock.settimeout(PATIENCE)
    peer.resume_reading()
    return pushed, []


def send_given_a_timeout_times_out(client: FramedSocket, peer: FarEnd) -> Outcome:
    """``send(data, timeout=...)`` to a peer that stopped reading."""
    peer.stop_reading()
    pushed = numbered_lines(0, 200_002)
    with pytest.raises(TimeoutError, match=r"not all sent within 0.2 s; \d+ bytes stay queued"):
        client.send(pushed, timeout=SHORT)
    assert client.sock.gettimeout() == PATIENCE
    peer.resume_reading()
    return pushed, []


def next_event_given_a_timeout_times_out(client: FramedSocket, peer: FarEnd) -> Outcome:
    """``next_event(timeout=...)`` on half a frame."""
    events = [client.next_event()]
    with pytest.raises(TimeoutError, match="no complete event within 0.2 s"):
        client.next_event(timeout=SHORT)  # "sec" is not a whole frame
    assert client.sock.gettimeout() == PATIENCE
    return b"", events


def next_event_times_out(client: FramedSocket, peer: FarEnd) -> Outcome:
    """``next_event()`` under the socket's own timeout."""
    events = [client.next_event()]
    client.sock.settimeout(SHORT)
    with pytest.raises(TimeoutError):
        client.next_event()
    assert client.sock.gettimeout() == SHORT
    client.sock.settimeout(PATIENCE)
    return b"", events


def iteration_times_out(client: FramedSocket, peer: FarEnd) -> Outcome:
    """Iteration, under the socket's own timeout."""
    events = [client.next_event()]
    client.sock.settimeout(SHORT)
    with pytest.raises(TimeoutError):
        for event in client:
            events.append(event)
    assert client.sock.gettimeout() == SHORT
    client.sock.settimeout(PATIENCE)
    return b"", events


TIMING_OUT: dict[str, Callable[[FramedSocket, FarEnd], Outcome]] = {
    "send": send_times_out,
    "send(timeout=)": send_given_a_timeout_times_out,
    "next_event(timeout=)": next_event_given_a_timeout_times_out,
    "next_event()": next_event_times_out,
    "iteration": iteration_times_out,
}


@pytest.mark.parametrize("time_out", TIMING_OUT.values(), ids=TIMING_OUT.keys())
def test_after_a_call_times_out_later_calls_carry_every_byte_once_in_order(
    far_end: FarEnd, time_out: Callable[[FramedSocket, FarEnd], Outcome]
) -> None:
    client, peer = far_end.client, far_end
    peer.sock.sendall(b"first\r\nsec")
    pushed, events = time_out(client, peer)

    more = numbered_lines(200_002, 200_000)  # under the socket's own timeout again
    client.send(more)
    peer.sock.sendall(b"ond\r\nthird\r\n")
    peer.sock.shutdown(socket.SHUT_WR)
    events += list(client)
    client.sock.shutdown(socket.SHUT_WR)

    received, sent = peer.everything(), pushed + more
    assert received == sent, f"{len(received.splitlines())} of {len(sent.splitlines())} lines arrived"
    assert events == [Frame(b"first"), Frame(b"second"), Frame(b"third"), EndOfStream(b"")]
    assert client.sock.gettimeout() == PATIENCE


@pytest.mark.parametrize("call", ["send", "next_event"])
def test_a_blocking_socket_stays_blocking_after_a_call_given_a_timeout(far_end: FarEnd, call: str) -> None:
    client, peer = far_end.client, far_end
    client.sock.settimeout(None)
    with pytest.raises(TimeoutError):
        if call == "send":
            peer.stop_reading()
            client.send(numbered_lines(0, 200_000), timeout=SHORT)
        else:
            client.next_event(timeout=SHORT)
    assert client.sock.gettimeout() is None


GEVENT_SCRIPT = """
from gevent import monkey

monkey.patch_all()

import gevent
from sanschat import Handler
from sanschat.examples.chat import ChatUser, Room
from sanschat.socket import open_connection, serve


class Echo(Handler):
    def frame_received(self, data):
        self.framer.push(data.upper() + b"\\r\\n")


server = serve(Echo)


def client(number):
    with open_connection("127.0.0.1", server.port) as sock:
        lines = [b"line %d of %d" % (i, number) for i in range(50)]
        sock.send(b"".join(line + b"\\r\\n" for line in lines))
        return [sock.next_event(timeout=30).data for _ in lines] == [line.upper() for line in lines]


jobs = [gevent.spawn(client, n) for n in range(20)]
gevent.joinall(jobs, timeout=60)
assert all(job.value for job in jobs), [job.value for job in jobs]
server.shutdown(timeout=5)

room = Room()  # a Handler that pushes to other connections, unchanged
chat = serve(lambda: ChatUser(room))
with open_connection("127.0.0.1", chat.port) as ann, open_connection("127.0.0.1", chat.port) as bob:
    for user in (ann, bob):
        assert user.next_event(timeout=30).data.endswith(b"to join")
    ann.send(b"/nick ann\\r\\n")
    assert ann.next_event(timeout=30).data == b"* you are ann; 1 here"
    bob.send(b"/nick bob\\r\\n")
    assert bob.next_event(timeout=30).data == b"* you are bob; 2 here"
    assert ann.next_event(timeout=30).data == b"* bob joined"
chat.shutdown(timeout=5)
print("ok under gevent")
"""


def test_it_works_unchanged_under_gevent_monkey_patching() -> None:
    pytest.importorskip("gevent")
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(GEVENT_SCRIPT)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok under gevent"


@pytest.mark.parametrize("direction", ["data_received", "data_to_send"])
def test_a_fault_in_one_direction_cuts_the_connection_and_shutdown_ends(
    direction: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Not a Handler error (the Driver guards those) but a fault in the
    binding's own machinery: the connection is cut, so its other thread ends
    too, ``connection_lost`` gets the error, and shutdown does not hang."""
    from sanschat import Driver

    lost: list[BaseException | None] = []

    class Recording(Echo):
        def connection_lost(self, error: BaseException | None) -> None:
            lost.append(error)

    def broken(self: Driver, *args: object) -> bytes:
        raise RuntimeError("broken machinery")

    running = serve(Recording)
    with open_connection("127.0.0.1", running.port) as client:
        client.send(b"ping\r\n")
        assert client.next_event(timeout=30) == Frame(b"ping")  # served whole before the break
        monkeypatch.setattr(Driver, direction, broken)
        client.send(b"again\r\n")
        assert client.next_event(timeout=30) == EndOfStream(b"")
    running.shutdown(timeout=5)
    assert not running.connections
    assert [type(error) for error in lost] == [RuntimeError]
    assert "failed; cutting it" in caplog.text


class Rendezvous(Handler):
    """Blocks in its callback until the other connection's Handler arrives too."""

    def __init__(self, barrier: threading.Barrier) -> None:
        self.barrier = barrier

    def frame_received(self, data: bytes) -> None:
        self.barrier.wait()  # a BrokenBarrierError is a Handler error: logged, connection closed
        self.framer.push(b"met\r\n")


@pytest.mark.parametrize("shared_lock", [False, True])
def test_blocking_handlers_run_in_parallel_only_without_the_shared_lock(shared_lock: bool) -> None:
    barrier = threading.Barrier(2, timeout=30 if not shared_lock else 1)
    running = serve(lambda: Rendezvous(barrier), shared_lock=shared_lock)
    try:
        with (
            open_connection("127.0.0.1", running.port) as ann,
            open_connection("127.0.0.1", running.port) as bob,
        ):
            ann.send(b"wait\r\n")
            bob.send(b"wait\r\n")
            replies = [ann.next_event(timeout=30), bob.next_event(timeout=30)]
    finally:
        running.shutdown(timeout=5)
    if shared_lock:  # one callback at a time: the first waits alone, and gives up
        assert replies == [EndOfStream(b""), EndOfStream(b"")]
    else:
        assert replies == [Frame(b"met"), Frame(b"met")]


def test_a_connection_runs_a_handler_on_a_client_socket(server: Server) -> None:
    """The same machinery as the server's, on a socket we connected: a Handler
    as the client, run to the end in this thread."""
    from sanschat.socket import Connection

    replies: list[bytes] = []

    class Client(Handler):
        def connection_made(self, framer: Framer) -> None:
            super().connection_made(framer)
            framer.push(b"one\r\ntwo\r\nQUIT\r\n")

        def frame_received(self, data: bytes) -> None:
            replies.append(data)

        def end_received(self, data: bytes) -> None:
            self.framer.close_when_done()

    Connection(socket.create_connection(("127.0.0.1", server.port), timeout=30), Client()).run()
    assert replies == [b"one", b"two"]


def test_an_ssl_socket_is_refused_with_the_reason() -> None:
    import ssl

    from sanschat.socket import Connection

    context = ssl.create_default_context()
    left, right = socket.socketpair()
    with (
        left,
        right,
        context.wrap_socket(left, server_hostname="localhost", do_handshake_on_connect=False) as tls,
    ):
        with pytest.raises(TypeError, match="plain socket and tls=context"):
            Connection(tls, Echo())
