"""Terminator kinds beyond asynchat's: alternative delimiters, length prefixes,
varints, netstrings and a header kind of one's own (HTTP chunked coding)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sanschat import (
    NEED_DATA,
    AnyDelimiter,
    Data,
    EndOfStream,
    Frame,
    Framer,
    FrameTooLarge,
    Handler,
    HeaderKind,
    LengthPrefix,
    MalformedFrame,
    Netstring,
    Varint,
)
from sanschat.testing import assert_split_invariant, chunkings, replay

from .helpers import drain, normalised

# ------------------------------------------------------------ helpers


def framed(terminator: object, chunks: list[bytes], **options: object) -> list[object]:
    """Feed chunks then EOF; streamed pieces joined, errors recorded and normalised."""
    return normalised(replay(Framer(terminator, **options), chunks))  # type: ignore[arg-type]


KINDS = [
    AnyDelimiter(b"\r\n", b"\n"),
    AnyDelimiter(b"abc", b"b", b"ca"),
    LengthPrefix(1),
    LengthPrefix(2, "little"),
    LengthPrefix(4, includes_prefix=True),
    LengthPrefix(8, "<"),
    Varint(),
    Netstring(),
]

payload_lists = st.lists(st.binary(max_size=40).map(lambda b: bytes(x % 4 + 97 for x in b)), max_size=8)


# ------------------------------------------------------- AnyDelimiter


def test_any_delimiter_accepts_both_line_endings_and_says_which() -> None:
    framer = Framer(AnyDelimiter(b"\r\n", b"\n"))
    framer.receive_data(b"USER a\r\nPASS b\nQUIT\r\n")
    assert drain(framer) == [
        Frame(b"USER a", b"\r\n"),
        Frame(b"PASS b", b"\n"),
        Frame(b"QUIT", b"\r\n"),
    ]
    assert drain(framer)[-1:] == [] and framer.next_event() is NEED_DATA


def test_the_earliest_match_wins_and_the_longest_at_one_position() -> None:
    framer = Framer(AnyDelimiter(b"\r", b"\r\n", b"END"))
    framer.receive_data(b"one\r\ntwo\rthreeEND")
    assert [(e.data, e.terminator) for e in drain(framer)] == [  # type: ignore[attr-defined]
        (b"one", b"\r\n"),
        (b"two", b"\r"),
        (b"three", b"END"),
    ]


def test_a_match_that_could_still_grow_waits_for_the_next_byte() -> None:
    framer = Framer(AnyDelimiter(b"\r", b"\r\n"))
    framer.receive_data(b"line\r")
    assert framer.next_event() is NEED_DATA  # "\r" or the start of "\r\n"?
    framer.receive_data(b"\nnext")
    assert framer.next_event() == Frame(b"line", b"\r\n")


def test_a_longer_delimiter_beginning_earlier_takes_precedence() -> None:
    framer = Framer(AnyDelimiter(b"abc", b"b"))
    framer.receive_data(b"xab")
    assert framer.next_event() is NEED_DATA  # "abc" may be starting at 'a'
    framer.receive_data(b"c")
    assert framer.next_event() == Frame(b"x", b"abc")


def test_any_delimiter_streams_and_holds_back_what_may_begin_a_delimiter() -> None:
    framer = Framer(AnyDelimiter(b"\r\n", b"\n"), stream=True)
    framer.receive_data(b"partial\r")
    assert drain(framer) == [Data(b"partial")]
    framer.receive_data(b"\nrest")
    assert drain(framer) == [Frame(b"", b"\r\n"), Data(b"rest")]


def test_any_delimiter_limit_and_skip() -> None:
    framer = Framer(AnyDelimiter(b"\r\n", b"\n"), max_frame_size=4)
    framer.receive_data(b"ok\nfar too long\r\nok\n")
    got = drain(framer)
    assert got[0] == Frame(b"ok", b"\n")
    assert isinstance(got[1], FrameTooLarge)
    assert got[2] == Frame(b"ok", b"\n")
    assert framer.bytes_discarded == len(b"far too long\r\n")


@pytest.mark.parametrize(
    "bad, error",
    [((), ValueError), ((b"",), ValueError), (("\n",), TypeError), ((b"\n", 5), TypeError)],
)
def test_any_delimiter_refuses_bad_delimiters(bad: tuple[object, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        AnyDelimiter(*bad)  # type: ignore[arg-type]


# ------------------------------------------------------ length prefixes


def test_length_prefix_examples() -> None:
    framer = Framer(LengthPrefix(4))
    framer.receive_data(b"\x00\x00\x00\x05hello\x00\x00\x00\x00\x00\x00")
    assert drain(framer) == [Frame(b"hello"), Frame(b"")]
    framer.receive_data(b"\x00\x01!")
    assert drain(framer) == [Frame(b"!")]


def test_length_prefix_byte_orders_and_counting_the_prefix() -> None:
    assert LengthPrefix(2, "little").encode(b"ab") == b"\x02\x00ab"
    assert LengthPrefix(2, "!").encode(b"ab") == b"\x00\x02ab"
    assert LengthPrefix(2, includes_prefix=True).encode(b"ab") == b"\x00\x04ab"
    framer = Framer(LengthPrefix(2, includes_prefix=True))
    framer.receive_data(b"\x00\x01")
    with pytest.raises(MalformedFrame, match="shorter than its own 2-byte prefix"):
        framer.next_event()


def test_an_announced_length_over_the_limit_fails_before_any_payload_is_held() -> None:
    framer = Framer(LengthPrefix(4), max_frame_size=1000)
    framer.receive_data(b"\x40\x00\x00\x00" + b"x" * 10)  # announces 1 GiB
    with pytest.raises(FrameTooLarge) as info:
        framer.next_event()
    assert info.value.size == 1 << 30
    framer.receive_data(b"y" * 100)
    assert framer.next_event() is NEED_DATA
    assert framer.pending_input == 0  # skipped as it comes, never held
    assert framer.bytes_discarded == 4 + 110


def test_streamed_length_prefixed_payloads() -> None:
    framer = Framer(LengthPrefix(2), stream=True)
    framer.receive_data(b"\x00\x0aabc")
    assert drain(framer) == [Data(b"abc")]
    framer.receive_data(b"defghij\x00\x01z")
    assert drain(framer) == [Frame(b"defghij"), Frame(b"z")]


@pytest.mark.parametrize("width, byteorder", [(3, "big"), (4, "middle"), (True, "big")])
def test_length_prefix_refuses_bad_shapes(width: int, byteorder: str) -> None:
    with pytest.raises(ValueError):
        LengthPrefix(width, byteorder)  # type: ignore[arg-type]


def test_a_payload_too_long_for_its_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        LengthPrefix(1).encode(b"x" * 256)


# -------------------------------------------------------------- varints


def test_varint_examples_as_protobuf_writes_them() -> None:
    assert Varint().encode(b"x" * 300)[:2] == b"\xac\x02"
    assert Varint().encode(b"") == b"\x00"
    framer = Framer(Varint())
    framer.receive_data(b"\x03abc\x00")
    assert drain(framer) == [Frame(b"abc"), Frame(b"")]


def test_a_varint_past_ten_bytes_is_malformed_and_the_rest_is_data() -> None:
    framer = Framer(Varint())
    framer.receive_data(b"\xff" * 10)
    with pytest.raises(MalformedFrame, match="10 bytes"):
        framer.next_event()
    assert framer.get_terminator() is None
    assert framer.next_event() == Data(b"\xff" * 10)  # nothing lost


# ------------------------------------------------------------ netstrings


def test_netstring_examples() -> None:
    assert Netstring().encode(b"hello") == b"5:hello,"
    framer = Framer(Netstring())
    framer.receive_data(b"5:hello,0:,12:hello world!,")
    assert drain(framer) == [Frame(b"hello"), Frame(b""), Frame(b"hello world!")]


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"5x:hello,", "non-digit"),
        (b"-1:", "non-digit"),
        (b"05:hello,", "leading zero"),
        (b"01x:", "leading zero"),  # the first bad byte is reported, however it arrives
        (b":hello,", "without a length"),
        (b"5:hello;", "expected b','"),
        (b"1" * 21, "longer than 20 digits"),
    ],
)
def test_malformed_netstrings(data: bytes, problem: str) -> None:
    """Under any chunking the error comes as soon as the bytes prove it, and the
    bytes from the bad netstring on are then given as Data."""
    for cut in range(1, len(data)):
        framer = Framer(Netstring())
        got = []
        for chunk in (data[:cut], data[cut:]):
            framer.receive_data(chunk)
            got += drain(framer)
        errors = [e for e in got if isinstance(e, MalformedFrame)]
        assert len(errors) == 1 and problem in str(errors[0])
        assert b"".join(e.data for e in got if type(e) is Data) == data


def test_an_oversized_netstring_is_skipped_with_its_comma() -> None:
    framer = Framer(Netstring(), max_frame_size=3)
    framer.receive_data(b"2:ok,5:hello,2:ok,")
    got = drain(framer)
    assert got[0] == Frame(b"ok") and isinstance(got[1], FrameTooLarge) and got[2] == Frame(b"ok")


# ------------------------------------------------- a header kind of one's own


class Chunked(HeaderKind):
    """HTTP/1.1 chunked transfer coding: ``<hex size>[;ext]\\r\\n<data>\\r\\n``."""

    max_header = 1024
    trailer = b"\r\n"

    def parse_header(self, data: bytes) -> tuple[int, int] | None:
        end = data.find(b"\r\n")
        if end < 0:
            return None
        size = data[:end].split(b";")[0].strip()
        if not size or any(c not in b"0123456789abcdefABCDEF" for c in size):
            raise MalformedFrame(f"bad chunk size {size!r}")
        return end + 2, int(size, 16)

    def encode(self, payload: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(payload), payload)


def test_a_custom_header_kind_reads_http_chunked_coding() -> None:
    framer = Framer(b"\r\n\r\n")
    framer.receive_data(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=v\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    assert framer.next_event() == Frame(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked")
    framer.set_terminator(Chunked())
    body = []
    while (event := framer.next_event()) != Frame(b""):  # the last chunk is empty
        body.append(event.data)  # type: ignore[union-attr]
    assert b"".join(body) == b"hello world"
    # The empty last chunk's CRLF "trailer" is the end of an empty trailer section.
    assert framer.pending_input == 0


# ------------------------------------------------------- every kind


def encodable(kind: AnyDelimiter, payload: bytes) -> bool:
    try:
        kind.encode(payload)
    except ValueError:
        return False
    return True


def test_any_delimiter_encode_refuses_payloads_a_reader_would_cut_elsewhere() -> None:
    kind = AnyDelimiter(b"abc", b"b", b"ca")
    assert kind.encode(b"xx") == b"xxabc"
    for bad in (b"b", b"c", b"ab"):  # a delimiter inside, "c"+"abc" has "ca", "ab"+"abc" begins "abc" early
        with pytest.raises(ValueError):
            kind.encode(bad)
    with pytest.raises(ValueError, match="longer delimiter"):
        AnyDelimiter(b"\r", b"\r\n").encode(b"x")  # "\r" then a next frame starting "\n"
    assert AnyDelimiter(b"\r\n", b"\r").encode(b"x") == b"x\r\n"


@pytest.mark.parametrize("kind", KINDS, ids=repr)
@given(payloads=payload_lists, data=st.data(), stream=st.booleans())
def test_encode_then_frame_gives_back_the_payloads_under_any_chunking(
    kind: object, payloads: list[bytes], data: st.DataObject, stream: bool
) -> None:
    if isinstance(kind, AnyDelimiter):
        payloads = [p for p in payloads if encodable(kind, p)]
    wire = b"".join(kind.encode(p) for p in payloads)  # type: ignore[attr-defined]
    chunks = data.draw(chunkings(wire))
    got = framed(kind, chunks, stream=stream, max_frame_size=None)
    assert [e.data for e in got[:-1]] == payloads  # type: ignore[attr-defined]
    assert got[-1] == EndOfStream(b"")


@pytest.mark.parametrize("kind", KINDS, ids=repr)
@given(wire=st.binary(max_size=80), data=st.data(), stream=st.booleans(), limit=st.integers(0, 12))
def test_any_bytes_frame_the_same_under_every_chunking(
    kind: object, wire: bytes, data: st.DataObject, stream: bool, limit: int
) -> None:
    """Hostile or random input: the same frames, errors and data whatever the
    split, and every byte accounted for."""
    chunks = data.draw(chunkings(wire))
    whole = framed(kind, [wire] if wire else [], stream=stream, max_frame_size=limit)
    assert framed(kind, chunks, stream=stream, max_frame_size=limit) == whole


@pytest.mark.parametrize("kind", KINDS, ids=repr)
def test_payloads_iterates_the_new_kinds_too(kind: object) -> None:
    wire = b"".join(kind.encode(p) for p in (b"x", b"yy", b""))  # type: ignore[attr-defined]
    framer = Framer(kind)  # type: ignore[arg-type]
    framer.receive_data(wire + wire[:1])
    assert list(framer.payloads()) == [b"x", b"yy", b""]
    framer.receive_data(wire[1:])
    assert list(framer.payloads()) == [b"x", b"yy", b""]
    framer.receive_data(b"")
    assert framer.next_event() == EndOfStream(b"")


def test_push_frame_frames_output_the_way_input_is_read() -> None:
    for kind in KINDS:
        framer = Framer(kind)  # type: ignore[arg-type]
        framer.push_frame(b"xx")
        framer.push_frame(b"")
        reader = Framer(kind)  # type: ignore[arg-type]
        assert [e.data for e in replay(reader, [framer.data_to_send()])] == [b"xx", b"", b""]  # type: ignore[union-attr]
    plain = Framer(b"\r\n")
    plain.push_frame(b"HELO")
    assert plain.data_to_send() == b"HELO\r\n"
    with pytest.raises(ValueError, match="contains the delimiter"):
        plain.push_frame(b"a\r\nb")
    with pytest.raises(TypeError, match="use push"):
        Framer(5).push_frame(b"abc")


def test_switching_kinds_mid_stream_applies_to_bytes_already_received() -> None:
    framer = Framer(b"\n")
    framer.receive_data(b"BINARY\n\x00\x03abc\x00\x01zTEXT\n")
    assert framer.next_event() == Frame(b"BINARY")
    framer.set_terminator(LengthPrefix(2))
    assert [framer.next_event(), framer.next_event()] == [Frame(b"abc"), Frame(b"z")]
    framer.set_terminator(AnyDelimiter(b"\n"))
    assert framer.next_event() == Frame(b"TEXT", b"\n")


def test_eof_in_a_header_or_a_payload_gives_the_raw_remainder() -> None:
    framer = Framer(LengthPrefix(4))
    framer.receive_data(b"\x00\x00")
    framer.receive_data(b"")
    assert framer.next_event() == EndOfStream(b"\x00\x00")
    framer = Framer(Netstring())
    framer.receive_data(b"5:hel")
    framer.receive_data(b"")
    assert framer.next_event() == EndOfStream(b"5:hel")


def test_frame_terminator_in_equality_repr_and_pickle() -> None:
    import pickle

    frame = Frame(b"x", b"\n")
    assert frame != Frame(b"x") and frame == Frame(b"x", terminator=b"\n")
    assert repr(frame) == "Frame(b'x', terminator=b'\\n')"
    assert pickle.loads(pickle.dumps(frame)) == frame
    assert Frame(b"x").terminator is None


def test_a_streamed_announced_frame_does_not_count_toward_the_next_frames_limit() -> None:
    """Found by the fuzz target: bytes of a streamed LengthPrefix frame were
    still counted when the next, delimited frame was checked against the limit."""
    framer = Framer(LengthPrefix(1), stream=True, max_frame_size=4)
    framer.receive_data(b"\x03ab")
    assert drain(framer) == [Data(b"ab")]
    framer.receive_data(b"c")
    assert drain(framer) == [Frame(b"c")]
    framer.set_terminator(b"\n", stream=True)
    framer.receive_data(b"123456\n")
    got = drain(framer)
    assert got[0] == Data(b"1234") and isinstance(got[1], FrameTooLarge)


class NetstringEcho(Handler):
    """Echo netstrings; answer a malformed one with an error netstring and close."""

    terminator = Netstring()

    def frame_received(self, data: bytes) -> None:
        self.framer.push_frame(data.upper())

    def frame_malformed(self, error: MalformedFrame) -> None:
        self.framer.set_terminator(None)  # no resync: ignore the rest
        self.framer.push(Netstring().encode(b"ERR " + str(error).encode()))
        self.framer.close_when_done()

    def data_received(self, data: bytes) -> None:
        pass  # what follows a malformed frame

    def end_received(self, data: bytes) -> None:
        self.framer.close_when_done()


def test_a_handler_answers_a_malformed_frame_the_same_under_every_split() -> None:
    transcript = assert_split_invariant(NetstringEcho, b"2:ok,3:abc;5:hello,")
    assert transcript.output == b"2:OK," + Netstring().encode(
        b"ERR expected b',' after the payload, got b';'"
    )
    assert ("frame_malformed", "expected b',' after the payload, got b';'") in transcript.calls
    assert transcript.closed and transcript.error is None


def test_a_malformed_frame_over_loopback_with_the_select_binding() -> None:
    import socket

    from sanschat.select import Loop

    with Loop() as loop:
        listener = loop.listen(NetstringEcho, "127.0.0.1", 0)
        client = socket.create_connection(("127.0.0.1", listener.address[1]), timeout=10)
        client.sendall(b"5:hello,x:")
        client.setblocking(False)
        received = b""
        while not received.endswith(b","):
            loop.run(timeout=0.05)
            try:
                received += client.recv(4096)
            except BlockingIOError:
                pass
        client.close()
    assert received.startswith(b"5:HELLO,")
    assert b"ERR netstring length has a non-digit b'x' at 0" in received


@pytest.mark.parametrize("kind", KINDS, ids=repr)
@given(
    wire=st.binary(max_size=80).map(lambda b: bytes(x % 5 + 96 for x in b)),
    data=st.data(),
    limit=st.integers(0, 12),
)
def test_payloads_and_next_event_agree(kind: object, wire: bytes, data: st.DataObject, limit: int) -> None:
    """The batch paths give exactly the frames next_event gives, errors included."""
    if isinstance(kind, (LengthPrefix, Varint, Netstring)):
        wire = data.draw(st.binary(max_size=80))
    chunks = data.draw(chunkings(wire))

    def feed(use_payloads: bool) -> list[object]:
        framer = Framer(kind, max_frame_size=limit)  # type: ignore[arg-type]
        got: list[object] = []
        for chunk in [*chunks, b""]:
            framer.receive_data(chunk)
            if use_payloads:  # it may raise what next_event would, once
                try:
                    for payload in framer.payloads():
                        got.append(Frame(payload))
                except (FrameTooLarge, MalformedFrame) as error:
                    got.append(error)
            for event in drain(framer):
                got.append(Frame(event.data) if type(event) is Frame else event)
        return normalised(got)

    assert feed(True) == feed(False)
