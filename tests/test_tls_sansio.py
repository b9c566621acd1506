"""TLS in the sans-IO layer: two Drivers, a server and a client, joined by a
pump that moves wire bytes between them (no socket, no loop), with real
handshakes and verification on. The bindings run the same code over real
sockets (tests/test_tls.py)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
import trustme
from hypothesis import given, settings
from hypothesis import strategies as st

from sanschat import CloseAction, Driver, Handler


class Journaled(Handler):
    """Records what it receives and how it ends."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.lost: list[BaseException | None] = []
        self.tls_started_at: int | None = None

    def frame_received(self, data: bytes) -> None:
        self.frames.append(data)

    def tls_started(self) -> None:
        self.tls_started_at = len(self.frames)

    def connection_lost(self, error: BaseException | None) -> None:
        self.lost.append(error)


class Smtpish(Journaled):
    """A server that upgrades on STARTTLS and echoes the rest."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        self.context = context

    def connection_made(self, framer: object) -> None:
        super().connection_made(framer)  # type: ignore[arg-type]
        self.framer.push(b"220 ready\r\n")

    def frame_received(self, data: bytes) -> None:
        super().frame_received(data)
        if data == b"STARTTLS":
            self.framer.push(b"220 go ahead\r\n")  # in clear: queued before the upgrade
            self.start_tls(self.context)
        elif data == b"QUIT":
            self.framer.push(b"221 bye\r\n")
            self.framer.close_when_done()
        else:
            self.framer.push(b"250 " + data + b"\r\n")


class Client(Journaled):
    """Sends ``first`` on the greeting; upgrades on "220 go ahead", then sends ``then``."""

    def __init__(
        self, context: ssl.SSLContext, first: bytes, then: bytes, hostname: str = "localhost"
    ) -> None:
        super().__init__()
        self.context, self.first, self.then, self.hostname = context, first, then, hostname

    def frame_received(self, data: bytes) -> None:
        super().frame_received(data)
        if data == b"220 ready":
            self.framer.push(self.first)
        elif data == b"220 go ahead":
            self.start_tls(self.context, server_hostname=self.hostname)
            self.framer.push(self.then)


def pump(
    server: Driver, client: Driver, cut: Iterator[int] | None = None, wire: list[bytes] | None = None
) -> None:
    """Move wire bytes both ways until nothing moves; a clean close becomes the
    other side's end of stream. ``cut`` gives the size of each delivery."""
    ended: set[int] = set()
    for _ in range(10_000):
        moved = False
        for source, sink in ((server, client), (client, server)):
            while source.wants_write:
                data = source.data_to_send()
                if not data:
                    break
                moved = True
                if wire is not None and source is client:
                    wire.append(data)
                while data:
                    size = len(data) if cut is None else max(1, next(cut))
                    sink.data_received(data[:size])
                    data = data[size:]
            if source.close_action is not CloseAction.NONE and id(source) not in ended:
                ended.add(id(source))
                sink.eof_received()
                moved = True
        if not moved:
            return
    raise AssertionError("the pump never settled")


def end(*drivers: Driver) -> None:
    for driver in drivers:
        driver.connection_lost()


def test_starttls_upgrades_and_drops_plaintext_pipelined_after_the_request(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    server_handler = Smtpish(server_context)
    # The injection: a command pipelined in clear right behind STARTTLS.
    client_handler = Client(
        client_context, b"EHLO x\r\nSTARTTLS\r\nRCPT TO:<evil>\r\n", b"EHLO y\r\nQUIT\r\n"
    )
    server, client = Driver(server_handler), Driver(client_handler, server_side=False)
    server.start()
    client.start()
    wire: list[bytes] = []
    pump(server, client, wire=wire)
    assert server_handler.frames == [b"EHLO x", b"STARTTLS", b"EHLO y", b"QUIT"]
    assert b"RCPT TO:<evil>" not in server_handler.frames
    info = server_handler.connection_info.tls_info
    assert info is not None and info.plaintext_dropped == len(b"RCPT TO:<evil>\r\n")
    assert server.plaintext_dropped == len(b"RCPT TO:<evil>\r\n")
    assert info.version in ("TLSv1.2", "TLSv1.3") and info.server_name == "localhost"
    assert server_handler.tls_started_at == 2  # after the STARTTLS frame
    assert client_handler.frames == [b"220 ready", b"250 EHLO x", b"220 go ahead", b"250 EHLO y", b"221 bye"]
    # The client's secrets never went out in clear.
    assert not any(b"EHLO y" in chunk for chunk in wire)
    # Both ends closed with close_notify: a clean end, no error.
    end(server, client)
    assert server_handler.lost == [None] and client_handler.lost == [None]


def test_plaintext_injected_after_the_upgrade_began_breaks_the_handshake(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    """Injected bytes that arrive after the STARTTLS frame was handled go to the
    TLS session, not to the Handler: the handshake fails, nothing is delivered."""
    server_handler = Smtpish(server_context)
    server = Driver(server_handler)
    server.start()
    server.data_received(b"STARTTLS\r\n")
    server.data_received(b"RCPT TO:<evil>\r\n")
    assert server.close_action is CloseAction.ABORT
    end(server)
    assert server_handler.frames == [b"STARTTLS"]
    assert isinstance(server_handler.lost[0], ssl.SSLError)


def test_output_queued_before_the_upgrade_goes_out_in_clear_and_after_it_encrypted(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    class Eager(Smtpish):
        def frame_received(self, data: bytes) -> None:
            super().frame_received(data)
            if data == b"STARTTLS":
                self.framer.push(b"SECRET\r\n")  # after the call: encrypted

    server = Driver(Eager(server_context))
    server.start()
    server.data_received(b"STARTTLS\r\n")
    clear = b""
    while server.wants_write:
        clear += server.data_to_send()
    assert clear == b"220 ready\r\n220 go ahead\r\n"  # nothing more until a handshake
    end(server)


@pytest.mark.parametrize("tls_first", [True, False], ids=["tls-first", "starttls"])
def test_a_hostname_mismatch_is_refused_by_the_client(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext, tls_first: bool
) -> None:
    server_handler = Smtpish(server_context)
    client_handler = Client(client_context, b"STARTTLS\r\n", b"QUIT\r\n", hostname="example.org")
    if tls_first:
        server = Driver(server_handler, tls=server_context)
        client = Driver(client_handler, server_side=False, tls=client_context, server_hostname="example.org")
    else:
        server, client = Driver(server_handler), Driver(client_handler, server_side=False)
    server.start()
    client.start()
    pump(server, client)
    end(server, client)
    assert isinstance(client_handler.lost[0], ssl.SSLCertVerificationError)
    assert "example.org" in str(client_handler.lost[0])
    assert isinstance(server_handler.lost[0], (ssl.SSLError, OSError))
    assert b"QUIT" not in server_handler.frames


def test_an_untrusted_certificate_is_refused(server_context: ssl.SSLContext) -> None:
    stranger = ssl.create_default_context()
    trustme.CA().configure_trust(stranger)  # another CA
    client_handler = Journaled()
    server = Driver(Journaled(), tls=server_context)
    client = Driver(client_handler, server_side=False, tls=stranger, server_hostname="localhost")
    server.start()
    client.start()
    pump(server, client)
    end(server, client)
    assert isinstance(client_handler.lost[0], ssl.SSLCertVerificationError)


def test_garbage_instead_of_a_client_hello_ends_the_connection_with_the_error(
    server_context: ssl.SSLContext,
) -> None:
    handler = Journaled()
    server = Driver(handler, tls=server_context)
    server.start()
    server.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 100)
    assert server.close_action is CloseAction.ABORT
    end(server)
    assert isinstance(handler.lost[0], ssl.SSLError) and handler.frames == []


def test_a_stalled_handshake_times_out(server_context: ssl.SSLContext) -> None:
    handler = Journaled()
    server = Driver(handler, tls=server_context, handshake_timeout=5.0)
    server.start()
    deadline = server.deadline
    assert deadline is not None
    server.check_deadline(deadline - 1)
    before = server.close_action
    server.check_deadline(deadline)
    assert (before, server.close_action) == (CloseAction.NONE, CloseAction.ABORT)
    end(server)
    assert isinstance(handler.lost[0], TimeoutError)


def test_the_peer_closing_during_the_handshake_is_an_error(server_context: ssl.SSLContext) -> None:
    handler = Journaled()
    server = Driver(handler, tls=server_context)
    server.start()
    server.data_received(b"\x16\x03\x01")  # the start of a record
    server.eof_received()
    assert server.close_action is CloseAction.ABORT
    end(server)
    assert isinstance(handler.lost[0], ssl.SSLError)


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 300), min_size=1, max_size=50))
def test_any_chunking_of_the_wire_gives_the_same_conversation(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext, sizes: list[int]
) -> None:
    server_handler = Smtpish(server_context)
    client_handler = Client(client_context, b"STARTTLS\r\n", b"A\r\n" * 50 + b"QUIT\r\n")
    server, client = Driver(server_handler), Driver(client_handler, server_side=False)
    server.start()
    client.start()
    cycle = iter(sizes * 10_000)
    pump(server, client, cut=cycle)
    end(server, client)
    assert server_handler.frames == [b"STARTTLS"] + [b"A"] * 50 + [b"QUIT"]
    assert client_handler.frames[-1] == b"221 bye" and len(client_handler.frames) == 53
    assert server_handler.lost == [None] and client_handler.lost == [None]


def test_start_tls_twice_is_a_clear_error(server_context: ssl.SSLContext) -> None:
    handler = Journaled()
    server = Driver(handler, tls=server_context)
    server.start()
    with pytest.raises(RuntimeError, match="runs TLS already"):
        handler.start_tls(server_context)
    end(server)


def test_start_tls_outside_a_connection_is_a_clear_error(server_context: ssl.SSLContext) -> None:
    with pytest.raises(RuntimeError, match="needs a connection"):
        Handler().start_tls(server_context)


class Upgrading(Journaled):
    """A server that answers ``request`` with ``answer`` and upgrades: the shape
    of SMTP's STARTTLS, IMAP's STARTTLS (tagged) and POP3's STLS."""

    def __init__(self, context: ssl.SSLContext, request: bytes, answer: bytes) -> None:
        super().__init__()
        self.context, self.request, self.answer = context, request, answer

    def frame_received(self, data: bytes) -> None:
        super().frame_received(data)
        if data == self.request:
            self.framer.push(self.answer + b"\r\n")
            self.start_tls(self.context)
        else:
            self.framer.push(b"seen " + data + b"\r\n")


@pytest.mark.parametrize(
    ("request_line", "answer", "injected"),
    [
        (b"STARTTLS", b"220 2.0.0 ready", b"MAIL FROM:<evil@example.org>"),
        (b"a001 STARTTLS", b"a001 OK begin TLS negotiation now", b"a002 LOGIN victim password"),
        (b"STLS", b"+OK begin TLS negotiation", b"USER victim"),
    ],
    ids=["smtp", "imap", "pop3"],
)
def test_every_upgrade_shape_drops_what_was_pipelined_in_clear(
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    request_line: bytes,
    answer: bytes,
    injected: bytes,
) -> None:
    server_handler = Upgrading(server_context, request_line, answer)
    server = Driver(server_handler)
    server.start()
    server.data_received(request_line + b"\r\n" + injected + b"\r\n")
    assert server_handler.frames == [request_line]
    assert server.plaintext_dropped == len(injected) + 2
    clear = server.data_to_send()
    assert clear == answer + b"\r\n"  # the answer in clear, and nothing for the injection
    # A real client then upgrades and talks inside TLS: only that is heard.
    client_handler = Journaled()
    client = Driver(client_handler, server_side=False, tls=client_context, server_hostname="localhost")
    client.start()
    client_handler.framer.push(b"inside\r\n")
    pump(server, client)
    assert server_handler.frames == [request_line, b"inside"]
    assert client_handler.frames == [b"seen inside"]
    info = server_handler.connection_info.tls_info
    assert info is not None and info.plaintext_dropped == len(injected) + 2
    end(server, client)


def test_a_send_in_flight_when_the_upgrade_starts_is_consumed_where_it_was_peeked(
    server_context: ssl.SSLContext,
) -> None:
    """Found under trio (a write task and a read task): the writer peeked clear
    output, the reader then ran STARTTLS, and the writer's consume went to the
    TLS wire buffer (ValueError)."""
    server = Driver(Smtpish(server_context))
    server.start()
    in_flight = bytes(server.peek_output())  # the writer is sending the greeting...
    server.data_received(b"STARTTLS\r\n")  # ...while the reader handles the upgrade
    server.consume_output(len(in_flight))
    assert in_flight == b"220 ready\r\n"
    assert server.data_to_send() == b"220 go ahead\r\n"
    end(server)


def test_input_held_for_output_resumes_when_the_output_goes_out_over_tls(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    """Found by the conformance checker over TLS: data_to_send under TLS never
    resumed delivery held by pause_reading_above, so a pipeline of large
    answers stopped after 4 MiB."""

    class Big(Journaled):
        def frame_received(self, data: bytes) -> None:
            super().frame_received(data)
            self.framer.push(b"x" * 1_000_000)

    class Reader(Journaled):
        terminator = None

        def __init__(self) -> None:
            super().__init__()
            self.received = 0

        def data_received(self, data: bytes) -> None:
            self.received += len(data)

    server_handler, client_handler = Big(), Reader()
    server = Driver(server_handler, tls=server_context)
    client = Driver(client_handler, server_side=False, tls=client_context, server_hostname="localhost")
    server.start()
    client.start()
    client_handler.framer.push(b"BIG\r\n" * 8)  # pipelined: 8 MB of answers
    pump(server, client)
    assert server_handler.frames == [b"BIG"] * 8
    assert client_handler.received == 8_000_000
    end(server, client)
