"""sanschat.asynchat behaves as asynchat did: each case in our own words,
over real loopback sockets driven by asyncore.loop()."""

from __future__ import annotations

import socket
import threading
import warnings
from collections.abc import Callable
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    asyncore = pytest.importorskip("asyncore")

from sanschat.asynchat import async_chat, find_prefix_at_end, simple_producer  # noqa: E402

# ------------------------------------------------- a legacy program, verbatim


class SMTPChannel(async_chat):
    """A small SMTP-like server written the way asynchat users wrote them."""

    def __init__(self, server: SMTPServer, sock: socket.socket) -> None:
        async_chat.__init__(self, sock, map=server.channel_map)
        self.server = server
        self.lines: list[bytes] = []
        self.in_data = False
        self.set_terminator(b"\r\n")
        self.push(b"220 sanschat test\r\n")

    def collect_incoming_data(self, data: bytes) -> None:
        self.lines.append(data)

    def found_terminator(self) -> None:
        line = b"".join(self.lines)
        self.lines = []
        if self.in_data:
            self.server.messages.append(line)
            self.in_data = False
            self.set_terminator(b"\r\n")
            self.push(b"250 queued\r\n")
            return
        verb = line.split(b" ", 1)[0].upper()
        if verb in (b"HELO", b"MAIL", b"RCPT"):
            self.push(b"250 ok\r\n")
        elif verb == b"DATA":
            self.in_data = True
            self.set_terminator(b"\r\n.\r\n")
            self.push(b"354 end with <CRLF>.<CRLF>\r\n")
        elif verb == b"QUIT":
            self.push(b"221 bye\r\n")
            self.close_when_done()
        else:
            self.push(b"500 what?\r\n")


class SMTPServer(asyncore.dispatcher):  # type: ignore[misc, name-defined]
    def __init__(self, channel_map: dict[int, Any]) -> None:
        asyncore.dispatcher.__init__(self, map=channel_map)
        self.channel_map = channel_map
        self.messages: list[bytes] = []
        self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
        self.set_reuse_addr()
        self.bind(("127.0.0.1", 0))
        self.listen(64)
        self.port = self.socket.getsockname()[1]

    def handle_accepted(self, sock: socket.socket, addr: Any) -> None:
        SMTPChannel(self, sock)


class LoopThread:
    """Run asyncore.loop() on a map in a thread until stopped."""

    def __init__(self, channel_map: dict[int, Any]) -> None:
        self.map = channel_map
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while self.running and self.map:
            asyncore.loop(timeout=0.01, map=self.map, count=1)

    def __enter__(self) -> LoopThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.running = False
        self.thread.join(timeout=10)
        asyncore.close_all(map=self.map)


def smtp_session(port: int, script: list[bytes], piece: int = 0) -> bytes:
    """Send ``script`` (whole, or ``piece`` bytes at a time) and read until close."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        data = b"".join(script)
        if piece:
            for i in range(0, len(data), piece):
                sock.sendall(data[i : i + piece])
        else:
            sock.sendall(data)
        replies = bytearray()
        while chunk := sock.recv(4096):
            replies += chunk
        return bytes(replies)


SCRIPT = [
    b"HELO client\r\n",
    b"MAIL FROM:<a@example.org>\r\n",
    b"RCPT TO:<b@example.org>\r\n",
    b"DATA\r\n",
    b"Subject: hi\r\n\r\nline one\r\n..dot-stuffed\r\n.\r\n",
    b"QUIT\r\n",
]
REPLIES = b"220 sanschat test\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 end with <CRLF>.<CRLF>\r\n250 queued\r\n221 bye\r\n"


def test_legacy_smtp_server_serves_real_clients_over_loopback() -> None:
    channel_map: dict[int, Any] = {}
    server = SMTPServer(channel_map)
    results: list[bytes] = []
    with LoopThread(channel_map):
        clients = [
            threading.Thread(target=lambda p=p: results.append(smtp_session(server.port, SCRIPT, p)))
            for p in (0, 1, 3, 7, 0, 64, 2, 0)
        ]
        for c in clients:
            c.start()
        for c in clients:
            c.join(timeout=30)
    assert results == [REPLIES] * 8  # one-byte trickles included
    assert server.messages == [b"Subject: hi\r\n\r\nline one\r\n..dot-stuffed"] * 8


def test_bare_lf_dot_lf_does_not_end_data() -> None:
    channel_map: dict[int, Any] = {}
    server = SMTPServer(channel_map)
    smuggle = [b"DATA\r\n", b"real\n.\nMAIL FROM:<evil>\r\n.\r\n", b"QUIT\r\n"]
    with LoopThread(channel_map):
        replies = smtp_session(server.port, smuggle)
    assert server.messages == [b"real\n.\nMAIL FROM:<evil>"]
    assert replies.count(b"250") == 1


# ------------------------------------------------- channel behaviour, no loop


class Recorder(async_chat):
    """A channel fed by hand: recv hands out prepared chunks."""

    def __init__(self, terminator: Any = b"\n", channel_map: dict[int, Any] | None = None) -> None:
        async_chat.__init__(self, map=channel_map)
        self.collected = b""
        self.frames: list[bytes] = []
        self.chunks: list[bytes] = []
        self.on_frame: Callable[[Recorder], None] | None = None
        self.set_terminator(terminator)

    def recv(self, size: int) -> bytes:
        return self.chunks.pop(0)

    def collect_incoming_data(self, data: bytes) -> None:
        self.collected += data

    def found_terminator(self) -> None:
        self.frames.append(self.collected)
        self.collected = b""
        if self.on_frame:
            self.on_frame(self)

    def feed(self, *chunks: bytes) -> None:
        for chunk in chunks:
            self.chunks.append(chunk)
            self.handle_read()


@pytest.mark.parametrize("term", [b"\n", b"\r\n", b"qqq"])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 100])
def test_line_terminators_in_any_chunk_size(term: bytes, size: int) -> None:
    data = b"hello " + b"world" + term + b"I'm not dead yet!" + term + b"QUIT"
    r = Recorder(term)
    r.feed(*[data[i : i + size] for i in range(0, len(data), size)])
    assert r.frames == [b"hello world", b"I'm not dead yet!"]
    assert r.collected == b"QUIT"[: len(r.collected)]


def test_numeric_terminator_then_collects_forever_with_zero() -> None:
    r = Recorder(6)
    r.feed(b"hel", b"lo world")
    assert r.frames == [b"hello "]
    assert r.get_terminator() == 0
    assert r.collected == b"world"


def test_get_terminator_counts_down_during_a_count() -> None:
    r = Recorder(10)
    r.feed(b"abcd")
    assert r.get_terminator() == 6
    assert r.collected == b"abcd"


def test_zero_terminator_collects_forever() -> None:
    r = Recorder(0)
    r.feed(b"a\nb\n")
    assert r.frames == [] and r.collected == b"a\nb\n"


def test_none_terminator_collects_forever() -> None:
    r = Recorder(None)
    r.feed(b"x" * 100)
    assert r.frames == [] and r.collected == b"x" * 100


def test_empty_lines_are_frames() -> None:
    r = Recorder(b"\n")
    r.feed(b"hello world\n\nI'm not dead yet!\n")
    assert r.frames == [b"hello world", b"", b"I'm not dead yet!"]


def test_terminator_changed_in_found_terminator_applies_to_buffered_bytes() -> None:
    r = Recorder(b"\n")

    def switch(rec: Recorder) -> None:
        last = rec.frames[-1]
        rec.set_terminator(int(last[4:]) if last.startswith(b"LEN ") else b"\n")

    r.on_frame = switch
    r.feed(b"LEN 3\nabcLEN 2\nxyend\n")
    assert r.frames == [b"LEN 3", b"abc", b"LEN 2", b"xy", b"end"]


def test_setting_the_terminator_attribute_directly_still_works() -> None:
    r = Recorder(b"\n")
    r.terminator = b";"  # legacy code did this
    r.feed(b"a;b;")
    assert r.frames == [b"a", b"b"]


def test_str_terminator_with_use_encoding() -> None:
    r = Recorder(b"\n")
    r.use_encoding = 1
    r.set_terminator("\r\n")
    assert r.get_terminator() == b"\r\n"


def test_str_terminator_without_encoding_is_refused_at_once() -> None:
    with pytest.raises(TypeError):
        Recorder("\n")


def test_negative_terminator_is_refused() -> None:
    with pytest.raises(ValueError):
        async_chat().set_terminator(-1)


def test_default_callbacks_must_be_overridden() -> None:
    chat = async_chat()
    with pytest.raises(NotImplementedError):
        chat.collect_incoming_data(b"x")
    with pytest.raises(NotImplementedError):
        chat.found_terminator()


def test_find_prefix_at_end_on_str_and_bytes() -> None:
    assert find_prefix_at_end("qwerty\r", "\r\n") == 1
    assert find_prefix_at_end("qwertydkjf", "\r\n") == 0
    assert find_prefix_at_end(b"data\r\n.", b"\r\n.\r\n") == 3
    assert find_prefix_at_end(b"", b"\r\n") == 0


def test_simple_producer_is_exported() -> None:
    assert simple_producer(b"abc", 2).more() == b"ab"


def test_internal_helpers_asynchat_had() -> None:
    chat = async_chat()
    chat._collect_incoming_data(b"ab")
    chat._collect_incoming_data(b"cd")
    assert chat._get_data() == b"abcd"
    assert chat.incoming == []


# ------------------------------------------------------ over a socket pair


def channel_pair(term: Any = b"\n") -> tuple[Recorder, socket.socket, dict[int, Any]]:
    mine, theirs = socket.socketpair()
    channel_map: dict[int, Any] = {}

    class Live(Recorder):
        def recv(self, size: int) -> bytes:  # the real one, not the stub
            return async_chat.recv(self, size)

    chat = Live(term, channel_map)
    chat.set_socket(mine)
    chat.connected = True
    return chat, theirs, channel_map


def pump(channel_map: dict[int, Any], rounds: int = 20) -> None:
    for _ in range(rounds):
        if not channel_map:
            return
        asyncore.loop(timeout=0.01, map=channel_map, count=1)


def test_push_rejects_non_bytes_and_sends_bytes_likes() -> None:
    chat, peer, channel_map = channel_pair()
    chat.push(b"bytes\n")
    chat.push(bytearray(b"bytes\n"))
    chat.push(memoryview(b"bytes\n"))
    with pytest.raises(TypeError):
        chat.push(10)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        chat.push("unicode")  # type: ignore[arg-type]
    pump(channel_map)
    peer.settimeout(5)
    assert peer.recv(100) == b"bytes\n" * 3
    chat.close()
    peer.close()


def test_producers_and_strings_are_sent_in_order() -> None:
    chat, peer, channel_map = channel_pair()
    chat.ac_out_buffer_size = 7
    chat.push(b"head;")
    chat.push_with_producer(simple_producer(b"x" * 50, buffer_size=4))
    chat.push_with_producer(b";tail")  # a string producer, as asynchat allowed
    chat.close_when_done()
    peer.settimeout(5)
    received = bytearray()
    while len(received) < 60:
        pump(channel_map, 5)
        received += peer.recv(1000)
    assert bytes(received) == b"head;" + b"x" * 50 + b";tail"
    pump(channel_map)
    assert not channel_map  # closed once everything was sent
    assert peer.recv(10) == b""
    peer.close()


def test_close_when_done_discards_later_pushes_like_asynchat() -> None:
    chat, peer, channel_map = channel_pair()
    chat.push(b"last words\n")
    chat.close_when_done()
    chat.push(b"never sent\n")  # accepted, never sent, as before
    pump(channel_map)
    peer.settimeout(5)
    data = bytearray()
    while chunk := peer.recv(100):
        data += chunk
    assert bytes(data) == b"last words\n"
    peer.close()


def test_held_bytes_reach_the_channel_before_handle_close() -> None:
    chat, peer, channel_map = channel_pair(b"\r\n.\r\n")
    events: list[str] = []

    def handle_close() -> None:
        events.append(f"close with {chat.collected!r}")
        chat.close()

    chat.handle_close = handle_close  # type: ignore[method-assign]
    peer.sendall(b"body\r\n.")  # ends in the start of the terminator
    peer.close()
    pump(channel_map)
    assert events == ["close with b'body\\r\\n.'"]  # asynchat would have lost '\r\n.'


def test_blocking_io_error_from_recv_is_ignored() -> None:
    chat = async_chat()

    class WouldBlock:
        def recv(self, size: int) -> bytes:
            raise BlockingIOError

        def fileno(self) -> int:
            return -1

    chat.socket = WouldBlock()  # type: ignore[assignment]
    errors: list[object] = []
    chat.handle_error = lambda: errors.append(1)  # type: ignore[method-assign]
    chat.handle_read()
    assert errors == []


def test_discard_buffers_drops_input_and_output() -> None:
    chat, peer, channel_map = channel_pair()
    chat.connected = False  # keep pushes queued
    chat.push(b"queued")
    chat._collect_incoming_data(b"collected")
    chat.discard_buffers()
    assert chat.incoming == []
    chat.connected = True
    assert not chat.writable()
    chat.close()
    peer.close()


def test_a_plain_dispatcher_and_chat_channels_share_one_map() -> None:
    channel_map: dict[int, Any] = {}
    server = SMTPServer(channel_map)  # a plain asyncore.dispatcher
    with LoopThread(channel_map):
        reply = smtp_session(server.port, [b"QUIT\r\n"])
    assert reply == b"220 sanschat test\r\n221 bye\r\n"
