"""Edges of the core that only a targeted input reaches.

Each test here pins a behaviour that mutation testing
(``../shared/reports/mutation-core.md``) found no other test pinning: a long
varint, a little-endian prefix in the bulk path, the 64 KiB batch window's edge,
the frame-size count after every way a frame can end, the end of the stream
while an oversized frame is skipped, and the streamed hold-back of a delimiter
that overlaps itself.
"""

from __future__ import annotations

from collections.abc import Callable

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
    HeaderKind,
    LengthPrefix,
    MalformedFrame,
    Netstring,
    Varint,
    simple_producer,
)
from sanschat.testing import chunkings

from .helpers import drain


def all_payloads(framer: Framer) -> list[bytes]:
    """Every payload payloads() gives now."""
    return [*framer.payloads()]


# ---------------------------------------------------------------- varints


@pytest.mark.parametrize("size", [127, 128, 129, 300, 16383, 16384, 70000])
def test_a_varint_of_several_bytes_round_trips_through_both_paths(size: int) -> None:
    kind = Varint()
    body = bytes(range(256)) * (size // 256) + bytes(size % 256)
    wire = kind.encode(body) + kind.encode(b"")
    assert kind.parse_header(kind.encode(body)[:-size]) == (len(kind.encode(body)) - size, size)

    by_events = Framer(Varint(), max_frame_size=None)
    by_events.receive_data(wire)
    assert drain(by_events) == [Frame(body), Frame(b"")]

    by_payloads = Framer(Varint(), max_frame_size=None)
    by_payloads.receive_data(wire)
    assert all_payloads(by_payloads) == [body, b""]


def test_a_varint_longer_than_ten_bytes_is_malformed() -> None:
    framer = Framer(Varint())
    framer.receive_data(b"\x80" * 10 + b"\x01")
    with pytest.raises(MalformedFrame):
        framer.next_event()


# ------------------------------------------------- the header kinds' bulk path


def test_payloads_reads_a_little_endian_prefix_as_little_endian() -> None:
    kind = LengthPrefix(2, "little")
    framer = Framer(kind, max_frame_size=None)
    framer.receive_data(kind.encode(b"a") + kind.encode(b"b" * 300))
    assert all_payloads(framer) == [b"a", b"b" * 300]


def test_the_default_length_prefix_is_four_bytes_big_endian() -> None:
    assert LengthPrefix().encode(b"ab") == b"\x00\x00\x00\x02ab"


def test_payloads_enforces_the_limit_for_header_kinds() -> None:
    kind = LengthPrefix(1)
    framer = Framer(kind, max_frame_size=3)
    framer.receive_data(kind.encode(b"abc") + kind.encode(b"abcdef") + kind.encode(b"xyz"))
    got: list[bytes] = []
    with pytest.raises(FrameTooLarge) as caught:
        got.extend(framer.payloads())
    assert got == [b"abc"]
    assert (caught.value.limit, caught.value.size, caught.value.announced) == (3, 6, True)
    assert drain(framer) == [Frame(b"xyz")]


def test_payloads_of_a_frame_that_outgrew_its_chunks() -> None:
    """Held bytes grow into a bytearray; the bulk path must still give bytes."""
    framer = Framer(LengthPrefix(1))
    for chunk in (b"\x05a", b"b", b"cde"):
        framer.receive_data(chunk)
    payloads = all_payloads(framer)
    assert payloads == [b"abcde"]
    assert type(payloads[0]) is bytes


def test_payloads_does_not_reuse_a_header_already_read() -> None:
    framer = Framer(Netstring())
    framer.receive_data(b"3:ab")
    assert all_payloads(framer) == []  # the header is read, the body incomplete
    framer.receive_data(b"c,1:x,!")
    got: list[bytes] = []
    with pytest.raises(MalformedFrame):
        got.extend(framer.payloads())
    assert got == [b"abc", b"x"]


def test_payloads_after_the_end_inside_a_header_frame_stops() -> None:
    framer = Framer(LengthPrefix(1))
    framer.receive_data(b"\x05ab")
    framer.receive_data(b"")
    assert all_payloads(framer) == []
    assert framer.next_event() == EndOfStream(b"\x05ab")


def test_a_header_frame_of_exactly_the_limit_passes() -> None:
    kind = LengthPrefix(1)
    framer = Framer(kind, max_frame_size=3)
    framer.receive_data(kind.encode(b"abc"))
    assert framer.next_event() == Frame(b"abc")


# ------------------------------------------------------ the batch window


def test_a_frame_ending_just_past_the_first_batch_window_is_delivered() -> None:
    framer = Framer(b"\n", max_frame_size=None)
    framer.receive_data(b"\n" + b"a\n" * 32768)  # 65537 bytes; the last \n is past 64 KiB
    payloads = all_payloads(framer)
    assert payloads == [b""] + [b"a"] * 32768
    assert framer.next_event() is NEED_DATA
    assert framer.pending_input == 0


def test_a_first_frame_longer_than_the_batch_window_is_delivered() -> None:
    framer = Framer(b"\n", max_frame_size=None)
    framer.receive_data(b"x" * 70000 + b"\nshort\n")
    assert all_payloads(framer) == [b"x" * 70000, b"short"]


def test_an_empty_first_frame_before_an_oversized_one_is_delivered() -> None:
    framer = Framer(b"\n", max_frame_size=2)
    framer.receive_data(b"\nabc\nok\n")
    got: list[bytes] = []
    with pytest.raises(FrameTooLarge) as caught:
        got.extend(framer.payloads())
    assert got == [b""]
    assert caught.value.size == 3
    assert drain(framer) == [Frame(b"ok")]


def test_payloads_reports_the_size_of_an_unterminated_oversized_frame() -> None:
    framer = Framer(b"\n", max_frame_size=3)
    framer.receive_data(b"ok\nabcdef")
    got: list[bytes] = []
    with pytest.raises(FrameTooLarge) as caught:
        got.extend(framer.payloads())
    assert got == [b"ok"]
    assert (caught.value.limit, caught.value.size) == (3, 6)


# ------------------------------- a frame of exactly the limit passes after anything


def count_frame(f: Framer) -> None:
    f.set_terminator(3)
    f.receive_data(b"abc")
    assert drain(f) == [Frame(b"abc")]


def header_frame(f: Framer) -> None:
    f.set_terminator(LengthPrefix(1))
    f.receive_data(b"\x03abc")
    assert drain(f) == [Frame(b"abc")]


def header_frame_in_bulk(f: Framer) -> None:
    f.set_terminator(LengthPrefix(1))
    f.receive_data(b"\x03abc\x01x")
    assert all_payloads(f) == [b"abc", b"x"]


def whole_batch(f: Framer) -> None:
    f.receive_data(b"a\nb\nab")
    assert all_payloads(f) == [b"a", b"b"]
    f.receive_data(b"c\n")
    assert drain(f) == [Frame(b"abc")]


def batch_cut_short(f: Framer) -> None:
    f.receive_data(b"a\nab")
    batch = f.payloads()
    assert next(batch) == b"a"
    assert f.pending_input == 2
    f.receive_data(b"c\n")
    assert drain(f) == [Frame(b"abc")]


def discarded_partial_frame(f: Framer) -> None:
    f.receive_data(b"ab")
    f.discard_buffers()


def refused_frame(f: Framer) -> None:
    f.receive_data(b"abcd\n")
    assert [type(e) for e in drain(f)] == [FrameTooLarge]


BEFORE: list[Callable[[Framer], None]] = [
    count_frame,
    header_frame,
    header_frame_in_bulk,
    whole_batch,
    batch_cut_short,
    discarded_partial_frame,
    refused_frame,
]


@pytest.mark.parametrize("before", BEFORE, ids=lambda f: f.__name__)
@pytest.mark.parametrize("then", [b"\n", LengthPrefix(1), 3], ids=["delimiter", "header", "count"])
def test_a_frame_of_exactly_the_limit_passes_after(before: Callable[[Framer], None], then: object) -> None:
    framer = Framer(b"\n", max_frame_size=3)
    before(framer)
    framer.set_terminator(then)  # type: ignore[arg-type]
    wire = {b"\n": b"xyz\n", 3: b"xyz"}.get(then, b"\x03xyz")
    framer.receive_data(wire)
    assert drain(framer) == [Frame(b"xyz")]
    framer.set_terminator(then)  # type: ignore[arg-type]
    framer.receive_data(wire)
    assert all_payloads(framer) == [b"xyz"]


@given(
    st.lists(st.binary(max_size=6), max_size=6),
    st.integers(0, 6),
    st.data(),
)
def test_frames_of_exactly_the_limit_always_pass(lines: list[bytes], limit: int, data: st.DataObject) -> None:
    lines = [line.replace(b"\n", b"") for line in lines]
    wire = b"".join(line + b"\n" for line in lines)
    framer = Framer(b"\n", max_frame_size=limit)
    got: list[object] = []
    for chunk in data.draw(chunkings(wire)):
        framer.receive_data(chunk)
        if data.draw(st.booleans()):
            try:
                got.extend(framer.payloads())
            except FrameTooLarge:
                got.append(FrameTooLarge)
        got += [e.data if type(e) is Frame else type(e) for e in drain(framer)]
    assert got == [line if len(line) <= limit else FrameTooLarge for line in lines]


# ------------------------------------------ the end of the stream while skipping


def test_the_end_of_the_stream_while_skipping_an_announced_frame_is_reported() -> None:
    framer = Framer(LengthPrefix(1), max_frame_size=2)
    framer.receive_data(b"\x05ab")
    assert [type(e) for e in drain(framer)] == [FrameTooLarge]
    framer.receive_data(b"")
    assert drain(framer) == [EndOfStream(b"")]
    assert framer.bytes_discarded == 3  # the header and the two bytes that came


def test_the_end_of_the_stream_while_skipping_a_long_line_is_reported() -> None:
    framer = Framer(b"\n", max_frame_size=2)
    framer.receive_data(b"abcdef")
    assert [type(e) for e in drain(framer)] == [FrameTooLarge]
    framer.receive_data(b"")
    assert drain(framer) == [EndOfStream(b"")]


def test_discard_buffers_adds_to_the_bytes_already_discarded() -> None:
    framer = Framer(b"\n", max_frame_size=2)
    framer.receive_data(b"abcd\nxy")
    drain(framer)
    assert framer.bytes_discarded == 5  # the refused line and its terminator
    framer.discard_buffers()
    assert framer.bytes_discarded == 7


# ------------------------------------ streamed hold-back of an overlapping delimiter


def test_a_streamed_delimiter_that_overlaps_itself_is_still_found() -> None:
    framer = Framer(b"\r\n.\r\n", stream=True)
    framer.receive_data(b"x\r\r\n.")
    events = drain(framer)
    framer.receive_data(b"\r\n")
    events += drain(framer)
    assert events == [Data(b"x\r"), Frame(b"")]


def test_a_byte_that_cannot_begin_the_delimiter_is_not_held_back() -> None:
    framer = Framer(b"\r\n.\r\n", stream=True)
    framer.receive_data(b"x\r\n.\r\n.")
    assert drain(framer) == [Frame(b"x"), Data(b".")]


# --------------------------------------------------------------- kinds as values


def test_kinds_compare_and_hash_by_value() -> None:
    assert AnyDelimiter(b"\r\n", b"\n") == AnyDelimiter(b"\r\n", b"\n")
    assert AnyDelimiter(b"\r\n", b"\n") != AnyDelimiter(b"\n")
    assert LengthPrefix(2, "little") == LengthPrefix(2, "little") != LengthPrefix(2)
    assert len({Varint(), Varint(), Netstring(), Netstring(), AnyDelimiter(b"\n"), AnyDelimiter(b"\n")}) == 3
    assert hash(LengthPrefix(2, "little")) == hash(LengthPrefix(2, "little"))


def test_events_survive_pickling() -> None:
    import pickle

    for event in (Frame(b"ab", b"\n"), Data(b"x"), EndOfStream(b"")):
        assert pickle.loads(pickle.dumps(event)) == event


# ------------------------------------------------------------- custom header kinds


class Silent(HeaderKind):
    """A kind whose header never completes: the Framer must give up at max_header."""

    max_header = 4

    def parse_header(self, data: bytes) -> tuple[int, int] | None:
        return None

    def encode(self, payload: bytes) -> bytes:
        return payload


class Nonsense(HeaderKind):
    """A kind whose parse_header breaks its contract."""

    def parse_header(self, data: bytes) -> tuple[int, int] | None:
        return (0, 1)

    def encode(self, payload: bytes) -> bytes:
        return payload


def test_a_header_that_never_completes_is_malformed_at_max_header() -> None:
    framer = Framer(Silent())
    framer.receive_data(b"abc")
    assert framer.next_event() is NEED_DATA
    framer.receive_data(b"d")
    with pytest.raises(MalformedFrame, match="within 4 bytes"):
        framer.next_event()


def test_a_parse_header_that_returns_nonsense_is_named() -> None:
    framer = Framer(Nonsense())
    framer.receive_data(b"abc")
    with pytest.raises(ValueError, match=r"Nonsense.*parse_header returned \(0, 1\)"):
        framer.next_event()


def test_the_header_kind_base_class_is_abstract() -> None:
    with pytest.raises(NotImplementedError):
        HeaderKind().parse_header(b"x")
    with pytest.raises(NotImplementedError):
        HeaderKind().encode(b"x")


# ------------------------------------------------------------ argument checking


class Index:
    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


def test_a_count_may_be_any_integer_like_object() -> None:
    framer = Framer(Index(2))  # type: ignore[arg-type]
    framer.receive_data(b"abc")
    assert framer.next_event() == Frame(b"ab")
    framer.set_terminator(Index(1))  # type: ignore[arg-type]
    assert framer.next_event() == Frame(b"c")


def test_arguments_of_the_wrong_type_or_range_are_refused() -> None:
    with pytest.raises(TypeError, match="bool"):  # the compiled core words it its own way
        Framer(b"\n", stream=1)  # type: ignore[arg-type]
    framer = Framer(b"\n", max_frame_size=7)
    assert framer.max_frame_size == 7
    with pytest.raises(TypeError, match="bool or None"):
        framer.set_terminator(b"\n", stream="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="push_frame needs a bytes-like"):
        framer.push_frame("text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_bytes"):
        framer.data_to_send(-1)
    with pytest.raises(TypeError, match="int"):  # the compiled core words it its own way
        framer.out_buffer_size = 1.5  # type: ignore[assignment]
    with pytest.raises(ValueError, match="out_buffer_size must be >= 1"):
        framer.out_buffer_size = 0
    framer.out_buffer_size = 3
    assert framer.out_buffer_size == 3
    with pytest.raises(ValueError, match="buffer_size"):
        simple_producer(b"x", 0)
    with pytest.raises(AttributeError, match="immutable"):
        AnyDelimiter(b"\n").delimiters = (b"x",)


def test_reprs_say_what_they_are() -> None:
    assert repr(Frame(b"a")) == "Frame(b'a')"
    assert repr(Frame(b"a", b"\n")) == "Frame(b'a', terminator=b'\\n')"
    assert repr(NEED_DATA) == "NEED_DATA"


def test_any_number_of_distinct_delimiters_can_be_set() -> None:
    """Readers for delimiters are shared, in a bounded cache."""
    framer = Framer(b"\n")
    for i in range(600):
        delimiter = b"<%d>" % i
        framer.set_terminator(delimiter)
        framer.receive_data(b"x" + delimiter)
        assert framer.next_event() == Frame(b"x")


def test_a_limit_lowered_between_two_payloads_applies_to_the_next_frame() -> None:
    framer = Framer(b"\n", max_frame_size=10)
    framer.receive_data(b"a\nbcdef\ng\n")
    got: list[bytes] = []
    with pytest.raises(FrameTooLarge) as caught:
        for payload in framer.payloads():
            got.append(payload)
            framer.max_frame_size = 2
    assert got == [b"a"]
    assert caught.value.limit == 2
    assert drain(framer) == [Frame(b"g")]


# ---------------------------------------------- streamed limits, across chunks


def test_a_streamed_line_over_the_limit_across_chunks_gives_the_limit_then_the_error() -> None:
    framer = Framer(b"\n", stream=True, max_frame_size=5)
    framer.receive_data(b"abc")
    assert drain(framer) == [Data(b"abc")]
    framer.receive_data(b"defgh")
    events = drain(framer)
    assert events[0] == Data(b"de")
    assert isinstance(events[1], FrameTooLarge) and (events[1].limit, events[1].size) == (5, 8)
    framer.receive_data(b"ij\nok\n")  # the rest of the refused line is skipped, never a frame
    assert drain(framer) == [Frame(b"ok")]
    assert framer.bytes_discarded == 6  # fgh, ij and the newline


@pytest.mark.parametrize("stream", [False, True])
def test_after_a_malformed_frame_a_line_of_exactly_the_limit_passes(stream: bool) -> None:
    framer = Framer(Netstring(), max_frame_size=3, stream=stream)
    framer.receive_data(b"2:ab!")
    assert any(isinstance(e, MalformedFrame) for e in drain(framer))
    framer.set_terminator(b"\n", stream=stream)
    framer.receive_data(b"xyz\n")
    assert drain(framer) == [Frame(b"xyz")]


def test_discard_buffers_keeps_the_delivery_mode_of_the_current_terminator() -> None:
    framer = Framer(b"\n")
    framer.set_terminator(b"\n", stream=True)
    framer.discard_buffers()
    assert framer.stream is True


# ----------------------------------------------------- streamed header kinds


def test_streamed_netstrings_with_a_bad_trailer_count_each_header_once() -> None:
    framer = Framer(Netstring(), stream=True)
    framer.receive_data(b"junk")
    framer.discard_buffers()  # 4 bytes discarded
    framer.receive_data(b"3:ab")
    assert drain(framer) == [Data(b"ab")]
    framer.receive_data(b"c!")
    events = drain(framer)
    assert events[0] == Data(b"c") and isinstance(events[1], MalformedFrame)
    # The header "3:" of the abandoned frame was consumed as framing: not discarded too.
    assert framer.bytes_discarded == 4 and framer._abandoned_headers == 2
    framer.set_terminator(Netstring(), stream=True)
    framer.receive_data(b"1:x,")
    assert drain(framer) == [Frame(b"x")]
    framer.receive_data(b"")
    assert drain(framer) == [EndOfStream(b"")]
    assert framer.bytes_discarded == 4 and framer._abandoned_headers == 2


def test_a_streamed_header_frame_cut_by_the_end_counts_its_header_once() -> None:
    framer = Framer(Netstring(), stream=True)
    framer.discard_buffers()  # some bytes were discarded before: the count adds up
    framer.receive_data(b"x")
    framer.discard_buffers()
    assert framer.bytes_discarded == 1
    framer.receive_data(b"2:ab")
    assert drain(framer) == [Data(b"ab")]  # the payload is out; the comma never comes
    framer.receive_data(b"")
    assert drain(framer) == [EndOfStream(b"")]
    # 1 discarded before; the header "2:" is framing, counted once, never discarded
    assert framer.bytes_discarded == 1 and framer._abandoned_headers == 2


def test_a_streamed_length_prefix_cut_by_the_end_counts_every_byte_once() -> None:
    framer = Framer(LengthPrefix(1), stream=True)
    framer.receive_data(b"\x02\x00")
    framer.receive_data(b"")
    assert drain(framer) == [Data(b"\x00"), EndOfStream(b"")]
    # 2 bytes received: 1 of header (framing), 1 delivered, none discarded
    assert framer.bytes_discarded == 0 and framer.pending_input == 0


class FloatHeader(HeaderKind):
    def parse_header(self, data: bytes) -> tuple[int, int] | None:
        return (1.5, 2)  # type: ignore[return-value]

    def encode(self, payload: bytes) -> bytes:
        return payload


def test_a_header_length_that_is_not_an_int_is_named() -> None:
    framer = Framer(FloatHeader())
    framer.receive_data(b"abc")
    with pytest.raises(
        ValueError, match=r"returned \(1\.5, 2\) for 3 bytes; it must return None or \(header_length"
    ):
        framer.next_event()


class AnswersAnything(HeaderKind):
    """A kind whose parse_header and encode answer whatever it is given."""

    def __init__(self, answer: object, encoded: object = b"") -> None:
        super().__init__()
        self.answer, self.encoded = answer, encoded

    def parse_header(self, data: bytes) -> tuple[int, int] | None:
        return self.answer  # type: ignore[return-value]

    def encode(self, payload: bytes) -> bytes:
        return self.encoded  # type: ignore[return-value]

    def __repr__(self) -> str:
        return "AnswersAnything()"


@pytest.mark.parametrize("answer", [[1, 1], "11", (1,), (1, 1, 1), (1.0, 1), (True, 1), 7])
def test_a_kind_that_answers_a_wrong_type_gets_the_same_named_error_in_both_builds(answer: object) -> None:
    """The compiled core must not answer with a type check of its own (mypyc's
    TypeError) where the pure one names the kind: the same error in both."""
    framer = Framer(AnswersAnything(answer))
    framer.receive_data(b"abc")
    with pytest.raises(
        ValueError, match=r"AnswersAnything\(\)\.parse_header returned .* it must return None"
    ):
        framer.next_event()
    assert framer.pending_input == 3  # nothing consumed


@pytest.mark.parametrize("encoded", ["text", None, 7, [b"x"]])
def test_a_kind_whose_encode_answers_a_wrong_type_is_named(encoded: object) -> None:
    framer = Framer(AnswersAnything(None, encoded))
    with pytest.raises(TypeError, match=r"AnswersAnything\(\)\.encode returned"):
        framer.push_frame(b"payload")
    assert not framer.has_output


# ---------------------------------------------------------- varint's edge


def test_a_varint_of_ten_continuation_bytes_is_malformed_and_nine_are_not_yet() -> None:
    assert Varint().parse_header(b"\x80" * 9) is None
    with pytest.raises(MalformedFrame, match="^a varint length longer than 10 bytes$"):
        Varint().parse_header(b"\x80" * 10)


@pytest.mark.parametrize("at_once", [True, False])
def test_an_eleven_byte_varint_is_malformed_however_it_arrives(at_once: bool) -> None:
    """Its eleventh byte would end it, but a length never takes more than ten:
    arriving whole, it must not be read as a (huge) length either."""
    header = b"\x80" * 10 + b"\x01"
    with pytest.raises(MalformedFrame, match="^a varint length longer than 10 bytes$"):
        Varint().parse_header(header)  # the kind alone, given more than its longest header
    framer = Framer(Varint())
    pieces = [header + b"payload"] if at_once else [bytes([byte]) for byte in header]
    with pytest.raises(MalformedFrame, match="^a varint length longer than 10 bytes$"):
        for piece in pieces:
            framer.receive_data(piece)
            assert framer.next_event() is NEED_DATA


# ------------------------------------------------ messages and reprs are API


def test_error_messages_say_what_was_wrong() -> None:
    with pytest.raises(ValueError, match="^AnyDelimiter needs at least one delimiter$"):
        AnyDelimiter()
    with pytest.raises(TypeError, match=r"^delimiters must be bytes, not str \('x'\)$"):
        AnyDelimiter("x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^an empty delimiter would end a frame at every byte$"):
        AnyDelimiter(b"")
    with pytest.raises(ValueError, match="^width must be 1, 2, 4 or 8 bytes, not 3$"):
        LengthPrefix(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^byteorder must be 'big', 'little' or one of '<>!=@', not 'x'$"):
        LengthPrefix(2, "x")
    with pytest.raises(MalformedFrame, match="^netstring without a length before ':'$"):
        Netstring().parse_header(b":")
    with pytest.raises(MalformedFrame, match=r"^netstring length b'01'\.\.\. has a leading zero$"):
        Netstring().parse_header(b"012:")
    with pytest.raises(MalformedFrame, match="^netstring length longer than 20 digits$"):
        Netstring().parse_header(b"1" * 21)
    with pytest.raises(TypeError, match="^push_frame needs a bytes-like object, not str$"):
        Framer(b"\n").push_frame("x")  # type: ignore[arg-type]
    with pytest.raises(AttributeError, match="^Frame events are immutable$"):
        del Frame(b"x").data


def test_kinds_say_what_they_are() -> None:
    assert repr(AnyDelimiter(b"\r\n", b"\n")) == "AnyDelimiter(b'\\r\\n', b'\\n')"
    assert repr(LengthPrefix(2, "little")) == "LengthPrefix(2, 'little')"
    assert repr(LengthPrefix(4, includes_prefix=True)) == "LengthPrefix(4, 'big', includes_prefix=True)"
    assert repr(Netstring()) == "Netstring()"
    assert repr(FloatHeader()) == "FloatHeader()"


class Chunked(HeaderKind):
    """HTTP/1.1 chunked coding's chunks: a hex size line, the data, CRLF."""

    trailer = b"\r\n"

    def parse_header(self, data: bytes) -> tuple[int, int] | None:
        end = data.find(b"\r\n")
        return None if end < 0 else (end + 2, int(data[:end], 16))

    def encode(self, payload: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(payload), payload)


def test_a_streamed_two_byte_trailer_cut_in_half_waits_for_its_second_byte() -> None:
    framer = Framer(Chunked(), stream=True)
    framer.receive_data(b"3\r\nabc\r")
    assert drain(framer) == [Data(b"abc")]  # and no empty Data while the trailer is half here
    framer.receive_data(b"\n0\r\n\r\n")
    assert drain(framer) == [Frame(b""), Frame(b"")]


def test_an_eight_byte_length_prefix_is_allowed() -> None:
    kind = LengthPrefix(8)
    framer = Framer(kind)
    framer.receive_data(kind.encode(b"eight"))
    assert drain(framer) == [Frame(b"eight")]


def test_a_custom_kinds_repr_lists_its_settings() -> None:
    class Tagged(HeaderKind):
        def __init__(self, tag: int, width: int) -> None:
            self.tag, self.width = tag, width

    assert repr(Tagged(1, 2)) == "Tagged(tag=1, width=2)"
