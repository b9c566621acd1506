"""The Handler contract as scenarios that any binding must pass.

A binding is given to :func:`check_binding` as a ``serve(factory)`` context
manager that runs Handlers from ``factory`` and yields a :class:`Served`: a way
to open client connections (:class:`Peer`) and to shut the server down
gracefully. Nothing in the scenarios knows which binding runs them; each runs
on a fresh server and checks, from the client's side and from the Handler's
own journal, what the contract in :mod:`sanschat._driver` promises.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from ._driver import CloseAction, Driver
from ._framer import Framer
from ._handler import Handler
from ._output import simple_producer

__all__ = [
    "Peer",
    "Served",
    "Serve",
    "check_binding",
    "SCENARIOS",
    "TLS_SCENARIOS",
    "TcpPeer",
    "TlsPeer",
    "memory_server",
]

#: How long a scenario waits for something that should happen at once: a
#: backstop against hangs, never what a scenario asserts.
PATIENCE = 30.0


class Peer(Protocol):
    """The client's end of one connection."""

    def send(self, data: bytes) -> None:
        """Send all of ``data``."""

    def shutdown_write(self) -> None:
        """Send our end of stream (half-close)."""

    def reset(self) -> None:
        """Break the connection (a TCP reset)."""

    def read_to_end(self) -> bytes:
        """Everything the server sends until its end of stream (a reset raises)."""

    def close(self) -> None:
        """Close our end (after the scenario)."""


class Served(Protocol):
    """A running server, as a scenario sees it."""

    def connect(self) -> Peer:
        """A new client connection."""

    def connections(self) -> frozenset[Driver]:
        """The open connections, as the server's ``connections`` gives them."""

    def shutdown(self, timeout: float) -> None:
        """Begin a graceful stop (each binding's shutdown) and return at once:
        no new connections; each open one closes once its answers are out,
        or after ``timeout`` seconds."""


Serve = Callable[[Callable[[], Handler]], AbstractContextManager[Served]]


# ---------------------------------------------------------------- peers


class TcpPeer:
    """A blocking TCP client (what real clients are)."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=PATIENCE)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def shutdown_write(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)

    def reset(self) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def read_to_end(self) -> bytes:
        chunks = []
        while chunk := self.sock.recv(1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.sock.close()


class TlsPeer(TcpPeer):
    """A blocking TLS client over TCP, verification on. TLS has no half-close:
    :meth:`shutdown_write` sends ``close_notify``, after which the server's
    answers are still read (TLS 1.3 allows it; the server treats our
    ``close_notify`` as our end of stream). :meth:`read_to_end` insists on the
    server's own ``close_notify``: a bare TCP end is an error here (a
    truncation), as a strict client sees it."""

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext, server_hostname: str) -> None:
        super().__init__(address)
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_hostname)
        while not self._step(self.tls.do_handshake):
            pass

    def _flush(self) -> None:
        if self._outgoing.pending:
            self.sock.sendall(self._outgoing.read())

    def _step(self, operation: Callable[[], object]) -> bool:
        """Run a TLS operation; False (after feeding it wire bytes) while it wants more."""
        try:
            operation()
        except ssl.SSLWantReadError:
            self._flush()
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("the server ended the TCP stream during the handshake") from None
            self._incoming.write(data)
            return False
        self._flush()
        return True

    def send(self, data: bytes) -> None:
        self.tls.write(data)
        self._flush()

    def shutdown_write(self) -> None:
        try:
            self.tls.unwrap()
        except ssl.SSLWantReadError:
            pass  # the server's close_notify comes after its answers
        self._flush()

    def read_to_end(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self.tls.read(1 << 20)
            except ssl.SSLWantReadError:
                data = self.sock.recv(1 << 20)
                if not data:
                    raise ConnectionError("the server ended the TCP stream without close_notify") from None
                self._incoming.write(data)
                continue
            except ssl.SSLZeroReturnError:
                return b"".join(chunks)  # its close_notify: a clean end
            if not chunk:  # (as some versions say close_notify)
                return b"".join(chunks)
            chunks.append(chunk)


class _MemoryPeer:
    """A client wired straight to a Driver: the binding is the driver itself."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.received: list[bytes] = []
        driver.start()

    def pump(self) -> None:
        """Take all the output there is, as a peer that reads at once would."""
        while data := self.driver.data_to_send(65536):
            self.received.append(data)
        if self.driver.close_action is not CloseAction.NONE:
            self.driver.connection_lost()

    def send(self, data: bytes) -> None:
        if self.driver.close_action is not CloseAction.NONE:
            return  # the server closed: the bytes go nowhere
        self.driver.data_received(data)

    def shutdown_write(self) -> None:
        self.driver.eof_received()

    def reset(self) -> None:
        self.driver.transport_failed(ConnectionResetError("reset by the peer"))
        self.driver.connection_lost()

    def read_to_end(self) -> bytes:
        self.pump()
        action = self.driver.close_action
        if action is CloseAction.ABORT:
            raise ConnectionResetError("the connection was aborted")
        if action is CloseAction.NONE:
            raise AssertionError("the server neither sends nor closes: a blocking read would hang")
        return b"".join(self.received)

    def close(self) -> None:
        if self.driver.close_action is not CloseAction.NONE:
            self.driver.connection_lost()


class _MemoryServed:
    def __init__(self, factory: Callable[[], Handler]) -> None:
        self.factory = factory
        self.peers: list[_MemoryPeer] = []

    def connect(self) -> Peer:
        peer = _MemoryPeer(Driver(self.factory()))
        self.peers.append(peer)
        return peer

    def connections(self) -> frozenset[Driver]:
        return frozenset(peer.driver for peer in self.peers if not peer.driver._lost)

    def shutdown(self, timeout: float) -> None:
        for peer in self.peers:
            peer.driver.framer.close_when_done()


@contextmanager
def memory_server(factory: Callable[[], Handler]) -> Iterator[Served]:
    """The in-memory "binding": each peer drives a :class:`~sanschat.Driver`
    directly, with no I/O; what every real binding must agree with."""
    yield _MemoryServed(factory)


# ------------------------------------------------------------ the probe


class Journal:
    """What the Handlers of one scenario saw, shared through the factory."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.reasons: list[BaseException | None] = []
        self.most_queued = 0
        #: Python memory the server held, measured by a flood scenario.
        self.held = 0
        self.lock = threading.Lock()

    def add(self, name: str, argument: Any) -> None:
        with self.lock:
            self.calls.append((name, argument))

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + PATIENCE
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the handlers saw {self.calls!r}")
            time.sleep(0.002)

    def settle(self, value: Callable[[], int], quiet: float = 0.3) -> int:
        """Wait until ``value()`` stops changing (a server that stopped reading)."""
        seen, since = value(), time.monotonic()
        while time.monotonic() - since < quiet:
            time.sleep(0.01)
            if value() != seen:
                seen, since = value(), time.monotonic()
        return seen


class _Unhinted:
    """An asynchat-style producer: it holds its answer and gives no length hint."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.sent = 0

    def more(self) -> bytes:
        chunk = self.data[self.sent : self.sent + 4096]
        self.sent += len(chunk)
        return chunk


#: How a Probe answers ``<COMMAND> n`` with n bytes: pushed, through a producer
#: that gives a length hint, through one that does not.
ANSWERS: dict[bytes, Callable[[Framer, int], None]] = {
    b"BYTES": lambda framer, size: framer.push(b"x" * size),
    b"BIG": lambda framer, size: framer.push_with_producer(simple_producer(b"x" * size, 65536)),
    b"LAZY": lambda framer, size: framer.push_with_producer(_Unhinted(b"x" * size)),
}


class Probe(Handler):
    """A line protocol whose every move is journaled.

    ``QUIT`` answers ``bye`` and closes; ``BOOM`` answers and then raises;
    ``BIG n``, ``LAZY n`` and ``BYTES n`` answer n bytes (see :data:`ANSWERS`);
    anything else is echoed in upper case; the peer's end is answered
    ``end:<rest>`` and closes.
    """

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def connection_made(self, framer: Framer) -> None:
        super().connection_made(framer)
        self.journal.add("connection_made", None)

    def frame_received(self, data: bytes) -> None:
        self.journal.add("frame_received", data)
        framer = self.framer
        if data == b"QUIT":
            framer.push(b"bye\r\n")
            framer.close_when_done()
        elif data == b"BOOM":
            framer.push(b"boom!\r\n")
            raise RuntimeError("a planted handler bug")
        elif data.split(b" ", 1)[0] in ANSWERS:
            command, size = data.split(b" ", 1)
            ANSWERS[command](framer, int(size))
        else:
            framer.push(data.upper() + b"\r\n")
        queued = framer.pending_output + framer.promised_output
        self.journal.most_queued = max(self.journal.most_queued, queued)

    def end_received(self, data: bytes) -> None:
        self.journal.add("end_received", data)
        self.framer.push(b"end:" + data + b"\r\n")
        self.framer.close_when_done()

    def connection_lost(self, error: BaseException | None) -> None:
        with self.journal.lock:
            self.journal.reasons.append(error)
        self.journal.add("connection_lost", None if error is None else type(error).__name__)


# ------------------------------------------------------------ scenarios


@contextmanager
def _session(serve: Serve) -> Iterator[tuple[Served, Journal]]:
    journal = Journal()
    with serve(lambda: Probe(journal)) as served:
        yield served, journal


def _lost(journal: Journal, count: int = 1) -> None:
    journal.wait_for(lambda: len(journal.reasons) >= count, "connection_lost")


def callbacks_in_order(serve: Serve) -> None:
    """Echo, then QUIT: callbacks from connection_made to connection_lost(None)."""
    with _session(serve) as (served, journal):
        peer = served.connect()
        peer.send(b"a\r\nb\r\nQUIT\r\n")
        assert peer.read_to_end() == b"A\r\nB\r\nbye\r\n"
        peer.close()
        _lost(journal)
        assert journal.calls == [
            ("connection_made", None),
            ("frame_received", b"a"),
            ("frame_received", b"b"),
            ("frame_received", b"QUIT"),
            ("connection_lost", None),
        ], journal.calls
        assert journal.reasons == [None]


def the_server_lists_its_open_connections(serve: Serve) -> None:
    """``server.connections``: a Driver per open connection, with the
    factory's Handler, gone once the connection is over."""
    with _session(serve) as (served, journal):
        assert served.connections() == frozenset()
        first, second = served.connect(), served.connect()
        first.send(b"a\r\n")
        second.send(b"b\r\n")
        journal.wait_for(
            lambda: len([c for c in journal.calls if c[0] == "frame_received"]) == 2, "two frames"
        )
        listed = served.connections()
        assert len(listed) == 2, listed
        assert all(isinstance(driver, Driver) and isinstance(driver.handler, Probe) for driver in listed)
        first.send(b"QUIT\r\n")
        assert first.read_to_end() == b"A\r\nbye\r\n"
        first.close()
        journal.wait_for(lambda: len(served.connections()) == 1, "the closed connection to leave the list")
        assert served.connections() < listed
        second.send(b"QUIT\r\n")
        assert second.read_to_end() == b"B\r\nbye\r\n"
        second.close()
        journal.wait_for(lambda: not served.connections(), "an empty list")


def answers_survive_a_peer_that_keeps_talking(serve: Serve) -> None:
    """Input after the close decision is neither delivered nor fatal: every
    answer queued before it is sent (the README's Echo, ``hello QUIT bye``)."""
    with _session(serve) as (served, journal):
        peer = served.connect()
        peer.send(b"hello\r\nQUIT\r\nbye\r\n" + b"more\r\n" * 1000)
        assert peer.read_to_end() == b"HELLO\r\nbye\r\n"
        peer.close()
        _lost(journal)
        assert [c for c in journal.calls if c[0] == "frame_received"] == [
            ("frame_received", b"hello"),
            ("frame_received", b"QUIT"),
        ]
        assert journal.reasons == [None]


def half_close_delivers_the_rest(serve: Serve) -> None:
    """The peer's end of stream: end_received gets the unterminated rest, and
    the answer to it still reaches the half-closed peer."""
    with _session(serve) as (served, journal):
        peer = served.connect()
        peer.send(b"one\r\npartial")
        peer.shutdown_write()
        assert peer.read_to_end() == b"ONE\r\nend:partial\r\n"
        peer.close()
        _lost(journal)
        assert journal.calls[-2:] == [("end_received", b"partial"), ("connection_lost", None)]


def a_handler_error_keeps_earlier_answers(serve: Serve) -> None:
    """A callback raises: what it and earlier callbacks queued is sent, the
    connection ends with a clean end of stream, connection_lost gets the error."""
    with _session(serve) as (served, journal):
        peer = served.connect()
        peer.send(b"a\r\nBOOM\r\nb\r\n")
        assert peer.read_to_end() == b"A\r\nboom!\r\n"
        peer.close()
        _lost(journal)
        assert isinstance(journal.reasons[0], RuntimeError)
        assert ("frame_received", b"b") not in journal.calls


def a_reset_mid_frame_is_the_reason(serve: Serve) -> None:
    """The peer resets in the middle of a frame: connection_lost gets an error."""
    with _session(serve) as (served, journal):
        peer = served.connect()
        peer.send(b"ok\r\nhalf a fra")
        journal.wait_for(lambda: ("frame_received", b"ok") in journal.calls, "the first frame")
        peer.reset()
        _lost(journal)
        assert isinstance(journal.reasons[0], Exception), journal.reasons


def a_pipeline_of_large_replies_is_served(serve: Serve) -> None:
    """A client writes a whole pipeline before reading (40 MB of answers):
    served in full, while the server holds at most its bound plus one answer."""
    count, size = 40, 1_000_000
    with _session(serve) as (served, journal):
        peer = served.connect()
        peer.send(b"BIG %d\r\n" % size * count)
        peer.shutdown_write()
        reply = peer.read_to_end()
        assert len(reply) == count * size + len(b"end:\r\n"), len(reply)
        assert reply.endswith(b"x" * 1000 + b"end:\r\n")
        peer.close()
        _lost(journal)
        assert journal.reasons == [None]
        assert journal.most_queued <= Handler.pause_reading_above + size, journal.most_queued


def a_peer_that_never_reads_costs_bounded_memory(serve: Serve) -> None:
    """Requests answered by producers from a peer that never reads: delivery
    stops at the bound, so the server holds no more than the bound plus one answer."""
    count, size = 200, 1_000_000
    with _session(serve) as (served, journal):
        peer = served.connect()
        peer.send(b"BIG %d\r\n" % size * count)
        delivered = journal.settle(lambda: len(journal.calls))
        assert 0 < delivered < count, delivered
        assert journal.most_queued <= Handler.pause_reading_above + size, journal.most_queued
        peer.reset()
        _lost(journal)


def _flood_from_a_peer_that_never_reads(serve: Serve, command: bytes) -> int:
    """1,000 pipelined requests for 16 KiB answers each, from a peer that reads
    nothing until the server has stopped delivering: the server's Python memory
    (tracemalloc, from before the flood) stays within ``pause_reading_above``
    plus one answer and a margin for the loop's own buffers, whatever the
    answers are; then every answer is read, in full."""
    count, size, margin = 1000, 16384, 2 << 20
    with _session(serve) as (served, journal):
        peer = served.connect()
        tracing = tracemalloc.is_tracing()
        if not tracing:
            tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            peer.send(b"%s %d\r\n" % (command, size) * count + b"QUIT\r\n")
            delivered = journal.settle(lambda: len(journal.calls))
            journal.held = tracemalloc.get_traced_memory()[0] - base
        finally:
            if not tracing:
                tracemalloc.stop()
        bound = Handler.pause_reading_above + size + margin
        assert journal.held <= bound, f"the server held {journal.held} bytes (bound {bound})"
        assert 0 < delivered < count, delivered
        assert peer.read_to_end() == b"x" * (count * size) + b"bye\r\n"
        peer.close()
        _lost(journal)
        assert journal.reasons == [None]
        return journal.held


def a_flood_answered_by_bytes_costs_bounded_memory(serve: Serve) -> None:
    """Answers pushed as bytes: see :func:`_flood_from_a_peer_that_never_reads`."""
    _flood_from_a_peer_that_never_reads(serve, b"BYTES")


def a_flood_answered_by_hinted_producers_costs_bounded_memory(serve: Serve) -> None:
    """Answers from producers with a length hint (``simple_producer``)."""
    _flood_from_a_peer_that_never_reads(serve, b"BIG")


def a_flood_answered_by_unhinted_producers_costs_bounded_memory(serve: Serve) -> None:
    """Answers from asynchat-style producers that give no length hint (each
    counts as ``out_buffer_size`` while queued)."""
    _flood_from_a_peer_that_never_reads(serve, b"LAZY")


def many_connections_at_once(serve: Serve) -> None:
    """200 connections open together, each served its own answers."""
    with _session(serve) as (served, journal):
        peers = [served.connect() for _ in range(200)]
        for i, peer in enumerate(peers):
            peer.send(b"n%d\r\nQUIT\r\n" % i)
        for i, peer in enumerate(peers):
            assert peer.read_to_end() == b"N%d\r\nbye\r\n" % i
            peer.close()
        _lost(journal, 200)
        assert journal.reasons == [None] * 200


def shutdown_lets_connections_finish(serve: Serve) -> None:
    """A graceful shutdown closes idle and busy connections after their answers."""
    with _session(serve) as (served, journal):
        idle, busy = served.connect(), served.connect()
        idle.send(b"hi\r\n")
        busy.send(b"BIG 3000000\r\n")
        journal.wait_for(lambda: len(journal.calls) >= 4, "both requests")
        served.shutdown(10.0)
        assert idle.read_to_end() == b"HI\r\n"
        assert len(busy.read_to_end()) == 3_000_000
        idle.close()
        busy.close()
        _lost(journal, 2)
        assert journal.reasons == [None, None], journal.reasons


SCENARIOS: dict[str, Callable[[Serve], None]] = {
    scenario.__name__: scenario
    for scenario in (
        callbacks_in_order,
        the_server_lists_its_open_connections,
        answers_survive_a_peer_that_keeps_talking,
        half_close_delivers_the_rest,
        a_handler_error_keeps_earlier_answers,
        a_reset_mid_frame_is_the_reason,
        a_pipeline_of_large_replies_is_served,
        a_peer_that_never_reads_costs_bounded_memory,
        a_flood_answered_by_bytes_costs_bounded_memory,
        a_flood_answered_by_hinted_producers_costs_bounded_memory,
        a_flood_answered_by_unhinted_producers_costs_bounded_memory,
        many_connections_at_once,
        shutdown_lets_connections_finish,
    )
}


# ------------------------------------------------ hostile peers, over TLS
# For a ``serve`` whose connections run TLS from the first byte: its Served
# has an ``address`` (for plain TCP attackers) and a ``handshake_timeout``
# (seconds), and its ``connect()`` gives verifying TLS peers.


def _attacker(served: Served) -> TcpPeer:
    return TcpPeer(served.address)  # type: ignore[attr-defined]


def _still_serves(served: Served, journal: Journal, count: int) -> None:
    """A well-behaved TLS client is served, as the ``count``-th connection."""
    peer = served.connect()
    peer.send(b"fine\r\n")
    peer.shutdown_write()
    assert peer.read_to_end() == b"FINE\r\nend:\r\n"
    peer.close()
    _lost(journal, count)


def tls_garbage_instead_of_a_client_hello(serve: Serve) -> None:
    """A peer speaks plain HTTP to the TLS port: its connection ends with the
    ``ssl.SSLError``, no frame is delivered, others are served."""
    with _session(serve) as (served, journal):
        attacker = _attacker(served)
        attacker.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 100)
        try:
            attacker.read_to_end()  # the server's end (or a reset)
        except OSError:
            pass
        attacker.close()
        _lost(journal)
        assert isinstance(journal.reasons[0], ssl.SSLError), journal.reasons
        assert not any(name == "frame_received" for name, _ in journal.calls)
        _still_serves(served, journal, 2)


def tls_a_stalled_handshake_times_out(serve: Serve) -> None:
    """A peer sends the start of a record and stops: after the handshake
    timeout its connection ends with a ``TimeoutError``; others are served
    meanwhile."""
    with _session(serve) as (served, journal):
        attacker = _attacker(served)
        attacker.send(b"\x16\x03\x01\x02")  # a handshake record's header, cut short
        _still_serves(served, journal, 1)  # (not held up by the stalled one)
        try:
            attacker.read_to_end()  # the server gives up on it
        except OSError:
            pass
        attacker.close()
        _lost(journal, 2)
        assert isinstance(journal.reasons[1], TimeoutError), journal.reasons


def tls_a_trickled_handshake_does_not_delay_others(serve: Serve, context: ssl.SSLContext) -> None:
    """A real ClientHello sent a byte at a time: while its last byte is held
    back, a well-behaved client that comes later is served in full; then the
    trickler's hello is answered too."""
    with _session(serve) as (served, journal):
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        session = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
        try:
            session.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = outgoing.read()
        attacker = _attacker(served)
        for index in range(len(hello) - 1):  # all of it but the last byte, a byte at a time
            attacker.send(hello[index : index + 1])
            time.sleep(0.001)
        # Its handshake cannot be done yet: another client is served meanwhile.
        _still_serves(served, journal, 1)
        attacker.send(hello[-1:])
        # The trickler's hello was whole in the end: the server answered it.
        attacker.sock.settimeout(PATIENCE)
        answer = attacker.sock.recv(1 << 16)
        assert answer[:1] == b"\x16", answer[:16]  # a handshake record: its ServerHello
        attacker.reset()
        _lost(journal, 2)


def tls_a_reset_mid_handshake_is_the_reason(serve: Serve) -> None:
    """A peer resets in the middle of its handshake: ``connection_lost`` gets an error."""
    with _session(serve) as (served, journal):
        attacker = _attacker(served)
        attacker.send(b"\x16\x03\x01\x02\x00\x01")
        journal.wait_for(lambda: ("connection_made", None) in journal.calls, "the connection")
        attacker.reset()
        _lost(journal)
        assert isinstance(journal.reasons[0], Exception), journal.reasons
        _still_serves(served, journal, 2)


TLS_SCENARIOS: dict[str, Callable[..., None]] = {
    scenario.__name__: scenario
    for scenario in (
        tls_garbage_instead_of_a_client_hello,
        tls_a_stalled_handshake_times_out,
        tls_a_trickled_handshake_does_not_delay_others,
        tls_a_reset_mid_handshake_is_the_reason,
    )
}


def check_binding(serve: Serve) -> None:
    """Run every scenario of the Handler contract against ``serve``; an
    AssertionError names the first that fails."""
    for name, scenario in SCENARIOS.items():
        try:
            scenario(serve)
        except AssertionError as error:
            raise AssertionError(f"{name}: {error}") from error
