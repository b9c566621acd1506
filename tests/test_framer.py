"""The Framer's input side, by example: one behaviour per test."""

from __future__ import annotations

import pytest

from sanschat import (
    NEED_DATA,
    AnyDelimiter,
    ClosedError,
    Data,
    EndOfStream,
    Frame,
    Framer,
    FrameTooLarge,
    MalformedFrame,
)


def events(framer: Framer) -> list[object]:
    """Every event up to NEED_DATA or the first EndOfStream."""
    out: list[object] = []
    while True:
        event = framer.next_event()
        out.append(event)
        if event is NEED_DATA or type(event) is EndOfStream:
            return out


# ---------------------------------------------------------------- delimiters


def test_delimiter_ends_a_frame_without_the_delimiter() -> None:
    f = Framer(b"\r\n")
    f.receive_data(b"HELO example.org\r\n")
    assert events(f) == [Frame(b"HELO example.org"), NEED_DATA]


def test_several_frames_in_one_chunk_come_out_in_order() -> None:
    f = Framer(b"\n")
    f.receive_data(b"a\nbb\n\nccc\nrest")
    assert events(f) == [Frame(b"a"), Frame(b"bb"), Frame(b""), Frame(b"ccc"), NEED_DATA]


def test_terminator_split_across_reads_is_found() -> None:
    f = Framer(b"\r\n.\r\n")
    for piece in [b"body\r", b"\n", b".", b"\r", b"\nnext"]:
        f.receive_data(piece)
    assert events(f) == [Frame(b"body"), NEED_DATA]


def test_nothing_is_delivered_before_the_delimiter_in_whole_mode() -> None:
    f = Framer(b"\r\n")
    f.receive_data(b"partial line")
    assert f.next_event() is NEED_DATA
    assert f.pending_input == len(b"partial line")


def test_overlapping_self_similar_delimiter_matches_leftmost() -> None:
    f = Framer(b"aab")
    f.receive_data(b"aaab")
    assert events(f) == [Frame(b"a"), NEED_DATA]
    g = Framer(b"abab")
    g.receive_data(b"ababab")
    g.receive_data(b"")
    assert events(g) == [Frame(b""), EndOfStream(b"ab")]


def test_bare_lf_is_data_under_a_crlf_terminator() -> None:
    f = Framer(b"\r\n.\r\n")
    f.receive_data(b"MAIL\n.\nsmuggled\r\n.\r\n")
    assert events(f) == [Frame(b"MAIL\n.\nsmuggled"), NEED_DATA]


def test_payloads_yields_the_payloads_of_complete_frames() -> None:
    f = Framer(b"\r\n")
    f.receive_data(b"one\r\ntwo\r\nthr")
    assert list(f.payloads()) == [b"one", b"two"]
    assert f.next_event() is NEED_DATA
    f.receive_data(b"ee\r\n")
    assert list(f.payloads()) == [b"three"]


# ------------------------------------------------------------------- counts


def test_count_terminator_takes_exactly_that_many_bytes() -> None:
    f = Framer(5)
    f.receive_data(b"12345678")
    assert f.next_event() == Frame(b"12345")
    assert f.get_terminator() is None
    assert events(f) == [Data(b"678"), NEED_DATA]


def test_count_zero_is_an_immediate_empty_frame() -> None:
    f = Framer(b"\r\n\r\n")
    f.receive_data(b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\nGET")
    assert f.next_event() == Frame(b"POST / HTTP/1.1\r\nContent-Length: 0")
    f.set_terminator(0)
    assert f.next_event() == Frame(b"")
    f.set_terminator(b"\r\n\r\n")
    assert f.next_event() is NEED_DATA
    assert f.pending_input == 3


def test_get_terminator_counts_down_while_a_count_streams() -> None:
    f = Framer(10, stream=True)
    f.receive_data(b"abcd")
    assert f.next_event() == Data(b"abcd")
    assert f.get_terminator() == 6
    f.receive_data(b"efghijXY")
    assert f.next_event() == Frame(b"efghij")
    assert f.get_terminator() is None


def test_whole_count_waits_for_all_its_bytes() -> None:
    f = Framer(6)
    f.receive_data(b"abc")
    assert f.next_event() is NEED_DATA
    f.receive_data(b"def")
    assert f.next_event() == Frame(b"abcdef")


def test_a_whole_mode_count_larger_than_the_limit_is_a_frame_too_large() -> None:
    """A count usually comes from the peer (a Content-Length): past the limit it
    is refused like any oversized frame, its bytes skipped and counted, and
    what follows is read under the terminator set afterwards."""
    f = Framer(b"\n", max_frame_size=100)
    f.set_terminator(101)
    f.receive_data(b"x" * 60)
    with pytest.raises(FrameTooLarge, match="a frame of 101 bytes was announced") as caught:
        f.next_event()
    assert (caught.value.limit, caught.value.size, caught.value.announced) == (100, 101, True)
    assert f.get_terminator() is None  # the count frame is over, as if read
    f.set_terminator(b"\n")
    f.receive_data(b"y" * 41 + b"next\n")
    assert events(f) == [Frame(b"next"), NEED_DATA]
    assert f.bytes_discarded == 101


def test_a_streamed_count_is_its_own_bound() -> None:
    f = Framer(b"\n", max_frame_size=100)
    f.set_terminator(101, stream=True)
    assert f.get_terminator() == 101
    f.receive_data(b"x" * 101)
    assert events(f) == [Frame(b"x" * 101), NEED_DATA]


# --------------------------------------------------------------------- None


def test_none_terminator_releases_everything_as_data() -> None:
    f = Framer(None)
    f.receive_data(b"abc")
    f.receive_data(b"def")
    assert events(f) == [Data(b"abcdef"), NEED_DATA]
    f.receive_data(b"")
    assert events(f) == [EndOfStream(b"")]


# ---------------------------------------------------------------- streaming


def test_streaming_releases_bytes_that_cannot_begin_the_delimiter() -> None:
    f = Framer(b"\r\n", stream=True)
    f.receive_data(b"hello wor")
    assert events(f) == [Data(b"hello wor"), NEED_DATA]
    f.receive_data(b"ld\r")
    assert events(f) == [Data(b"ld"), NEED_DATA]  # the \r might begin \r\n
    f.receive_data(b"\n")
    assert events(f) == [Frame(b""), NEED_DATA]


def test_streaming_holds_only_the_longest_possible_prefix() -> None:
    f = Framer(b"\r\n.\r\n", stream=True)
    f.receive_data(b"x\r\n.\r")
    assert events(f) == [Data(b"x"), NEED_DATA]
    f.receive_data(b"y")  # not the delimiter after all
    assert events(f) == [Data(b"\r\n.\ry"), NEED_DATA]


def test_stream_can_be_chosen_per_terminator() -> None:
    f = Framer(b"\r\n\r\n")
    f.receive_data(b"PUT /x\r\nContent-Length: 6\r\n\r\nabc")
    assert f.next_event() == Frame(b"PUT /x\r\nContent-Length: 6")
    f.set_terminator(6, stream=True)
    assert f.stream is True
    assert events(f) == [Data(b"abc"), NEED_DATA]
    f.receive_data(b"def")
    assert f.next_event() == Frame(b"def")


# ------------------------------------------------------------- changing terms


def test_new_terminator_applies_to_bytes_already_received() -> None:
    f = Framer(b"\r\n")
    f.receive_data(b"SIZE 3\r\nabcQUIT\r\n")
    assert f.next_event() == Frame(b"SIZE 3")
    f.set_terminator(3)
    assert f.next_event() == Frame(b"abc")
    f.set_terminator(b"\r\n")
    assert f.next_event() == Frame(b"QUIT")


def test_changing_the_terminator_inside_payloads_is_exact() -> None:
    f = Framer(b"\n")
    f.receive_data(b"len 4\nabcdlen 2\nxyrest\n")
    seen = []
    for payload in f.payloads():
        seen.append(payload)
        if payload.startswith(b"len "):
            f.set_terminator(int(payload[4:]))
        else:
            f.set_terminator(b"\n")
    assert seen == [b"len 4", b"abcd", b"len 2", b"xy", b"rest"]


def test_next_event_inside_payloads_continues_the_same_stream() -> None:
    f = Framer(b"\n")
    f.receive_data(b"a\nb\nc\nd\n")
    it = f.payloads()
    assert next(it) == b"a"
    assert f.next_event() == Frame(b"b")
    assert list(it) == [b"c", b"d"]


# -------------------------------------------------------------------- limits


def test_frame_exactly_at_the_limit_is_fine() -> None:
    f = Framer(b"\n", max_frame_size=5)
    f.receive_data(b"12345\n")
    assert f.next_event() == Frame(b"12345")


def test_frame_one_byte_over_the_limit_raises() -> None:
    f = Framer(b"\n", max_frame_size=5)
    f.receive_data(b"123456\n")
    with pytest.raises(FrameTooLarge) as info:
        f.next_event()
    assert info.value.limit == 5
    assert "max_frame_size=5" in str(info.value)


def test_limit_trips_without_waiting_for_a_terminator() -> None:
    f = Framer(b"\r\n", max_frame_size=10)
    f.receive_data(b"x" * 10 + b"\r")  # the \r could begin \r\n: 10 proven
    assert f.next_event() is NEED_DATA
    f.receive_data(b"x")
    with pytest.raises(FrameTooLarge):
        f.next_event()


def test_limit_trips_as_soon_as_the_bytes_prove_it_as_for_any_delimiter() -> None:
    """Found by the reference model: a bytes delimiter waited for len(delimiter)
    - 1 more bytes than AnyDelimiter before refusing."""
    for terminator in (b"\r\n", AnyDelimiter(b"\r\n")):
        f = Framer(terminator, max_frame_size=3)
        f.receive_data(b"abcd")  # no byte of it can begin \r\n: 4 proven
        with pytest.raises(FrameTooLarge):
            f.next_event()


def test_after_an_oversized_frame_the_rest_of_it_is_skipped() -> None:
    f = Framer(b"\n", max_frame_size=4)
    f.receive_data(b"ok\ntoo long line\nQUIT\n")
    assert f.next_event() == Frame(b"ok")
    with pytest.raises(FrameTooLarge):
        f.next_event()
    assert events(f) == [Frame(b"QUIT"), NEED_DATA]  # raised once, tail not a frame
    assert f.bytes_discarded == len(b"too long line\n")


def test_skipping_an_oversized_frame_keeps_memory_bounded() -> None:
    f = Framer(b"\n", max_frame_size=16)
    f.receive_data(b"y" * 100)
    with pytest.raises(FrameTooLarge):
        f.next_event()
    for _ in range(100):
        f.receive_data(b"z" * 1000)
        assert f.next_event() is NEED_DATA
        assert f.pending_input == 0
    f.receive_data(b"tail\nnext\n")
    assert events(f) == [Frame(b"next"), NEED_DATA]


def test_streamed_frames_never_release_more_than_the_limit() -> None:
    f = Framer(b"\n", stream=True, max_frame_size=8)
    f.receive_data(b"12345")
    assert f.next_event() == Data(b"12345")
    f.receive_data(b"678")
    assert f.next_event() == Data(b"678")  # 8 bytes: at the limit
    f.receive_data(b"9")
    with pytest.raises(FrameTooLarge):
        f.next_event()


def test_streaming_stops_at_the_limit_while_the_delimiter_may_still_come() -> None:
    f = Framer(b"\r\n", stream=True, max_frame_size=4)
    f.receive_data(b"abcd\r")
    assert f.next_event() == Data(b"abcd")
    assert f.next_event() is NEED_DATA
    f.receive_data(b"\n")
    assert f.next_event() == Frame(b"")


def test_unlimited_frames_with_none() -> None:
    f = Framer(b"\n", max_frame_size=None)
    f.receive_data(b"x" * 1_000_000 + b"\n")
    assert f.next_event() == Frame(b"x" * 1_000_000)


# ---------------------------------------------------------------------- EOF


def test_eof_delivers_the_unterminated_remainder() -> None:
    f = Framer(b"\r\n")
    f.receive_data(b"line\r\nno end")
    f.receive_data(b"")
    assert events(f) == [Frame(b"line"), EndOfStream(b"no end")]
    assert f.next_event() == EndOfStream(b"")


def test_eof_in_the_middle_of_a_terminator_keeps_its_bytes() -> None:
    f = Framer(b"\r\n.\r\n")
    f.receive_data(b"text\r\n.")
    f.receive_data(b"")
    assert events(f) == [EndOfStream(b"text\r\n.")]


def test_eof_mid_count_delivers_what_arrived() -> None:
    # Streamed, the bytes go out as Data whether the end is known yet or not
    # (as a header kind's payload does), then the end; found by the reference model.
    f = Framer(1_000_000, stream=True, max_frame_size=None)
    f.receive_data(b"abc")
    f.receive_data(b"")
    assert events(f) == [Data(b"abc"), EndOfStream(b"")]
    late = Framer(1_000_000, stream=True, max_frame_size=None)
    late.receive_data(b"abc")
    assert late.next_event() == Data(b"abc")
    late.receive_data(b"")
    assert events(late) == [EndOfStream(b"")]


def test_a_streamed_value_with_a_bad_trailer_fails_whenever_the_end_became_known() -> None:
    """Found by the reference model: with the end known first, the value came
    back as EndOfStream and its bad trailer was never judged."""
    for early in (True, False):
        f = Framer(b"\n")
        f.read_exactly(1, b"\r\n", stream=True)
        f.receive_data(b"aa")
        if early:
            f.receive_data(b"")
        assert f.next_event() == Data(b"a")
        with pytest.raises(MalformedFrame):
            f.next_event()


def test_nothing_comes_after_the_end_of_the_stream() -> None:
    """Found by the reference model: a zero count or an announced value after
    EndOfStream gave a Frame or an error."""
    f = Framer(None, max_value_size=0)
    f.receive_data(b"")
    assert f.next_event() == EndOfStream(b"")
    f.read_exactly(0)
    assert f.next_event() == EndOfStream(b"")
    f.read_exactly(1)
    assert f.next_event() == EndOfStream(b"")
    assert list(f.payloads()) == []


def test_eof_after_streamed_data_gives_only_the_rest() -> None:
    f = Framer(b"\n", stream=True)
    f.receive_data(b"abc")
    assert f.next_event() == Data(b"abc")
    f.receive_data(b"")
    assert f.next_event() == EndOfStream(b"")


def test_receive_after_eof_raises() -> None:
    f = Framer(b"\n")
    f.receive_data(b"")
    assert f.eof_received
    with pytest.raises(ClosedError):
        f.receive_data(b"more")
    f.receive_data(b"")  # a second EOF is harmless


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "bad, exc",
    [
        ("\r\n", TypeError),
        (True, TypeError),
        (1.5, TypeError),
        ([b"\n"], TypeError),
        (-1, ValueError),
        (b"", ValueError),
        (2**64, ValueError),
    ],
)
def test_bad_terminators_are_refused_at_the_call(bad: object, exc: type) -> None:
    with pytest.raises(exc):
        Framer(bad)  # type: ignore[arg-type]
    f = Framer(b"\n")
    with pytest.raises(exc):
        f.set_terminator(bad)  # type: ignore[arg-type]
    assert f.get_terminator() == b"\n"  # unchanged


@pytest.mark.parametrize("bad", ["text", 5, None, 1.0, [1, 2]])
def test_receive_data_refuses_non_bytes(bad: object) -> None:
    f = Framer(b"\n")
    with pytest.raises(TypeError, match=type(bad).__name__):
        f.receive_data(bad)  # type: ignore[arg-type]


def test_bytearray_and_memoryview_input_are_copied() -> None:
    f = Framer(b"\n")
    buf = bytearray(b"abc\n")
    f.receive_data(buf)
    buf[:] = b"XYZ\n"
    view = memoryview(bytearray(b"def\n"))
    f.receive_data(view)
    view[0] = ord("Q")
    assert events(f) == [Frame(b"abc"), Frame(b"def"), NEED_DATA]


def test_bytearray_terminator_is_frozen() -> None:
    term = bytearray(b"\n")
    f = Framer(term)  # type: ignore[arg-type]  # accepted at run time, as asynchat did
    term[0] = ord("x")
    assert f.get_terminator() == b"\n"


@pytest.mark.parametrize("bad", [-1, 1.5, "10", True])
def test_bad_max_frame_size_is_refused(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        Framer(b"\n", max_frame_size=bad)  # type: ignore[arg-type]


# ------------------------------------------------------------- discard_buffers


def test_discard_buffers_drops_held_input_and_counts_it() -> None:
    f = Framer(b"\n")
    f.receive_data(b"half a fra")
    f.discard_buffers()
    assert f.bytes_discarded == 10
    f.receive_data(b"new\n")
    assert events(f) == [Frame(b"new"), NEED_DATA]
