"""``Framer.read_exactly``: a counted value, a checked trailer, then lines again.

The property tests hold the Framer to a plain model of the rule over the whole
input, for any chunking, through ``next_event`` and through ``payloads()`` (whose
batch path answers ``read_exactly`` without leaving the batch when it can).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sanschat
from sanschat import NEED_DATA, Data, EndOfStream, Frame, Framer, FrameTooLarge, LengthPrefix, MalformedFrame

from .helpers import chunkings

# An exact step: (count, trailer); None keeps the line terminator.
Step = tuple[int, bytes] | None
Unit = tuple[object, ...]

LINE = b"\r\n"
# Few symbols, so that values contain the delimiter and trailers near-miss.
wire = st.lists(st.sampled_from([b"a", b"b", b"\r", b"\n", b"\r\n", b"ab", b"xyz"]), max_size=40).map(
    b"".join
)
steps = st.lists(
    st.one_of(st.none(), st.tuples(st.integers(0, 8), st.sampled_from([b"", b"\r\n", b"\n", b"!"]))),
    max_size=20,
)


def model(data: bytes, program: Sequence[Step], value_limit: int | None = None) -> list[Unit]:
    """Lines ended by CRLF; after the k-th frame, the k-th step may ask for a value."""
    units: list[Unit] = []
    plan = iter(program)
    pos = 0
    exact: Step = None
    while True:
        if exact is not None:
            count, trailer = exact
            end = pos + count
            if value_limit is not None and count > value_limit:
                units.append(("too large", count))
                pos = min(len(data), end + len(trailer))
                exact = None
                continue  # no frame: the same step stays due after the next one
            present = data[end : end + len(trailer)]
            if end < len(data) and not trailer.startswith(present):
                units += [("malformed",), ("end", data[pos:])]
                return units
            if end + len(trailer) > len(data):
                break
            units.append(("frame", data[pos:end]))
            pos = end + len(trailer)
        else:
            end = data.find(LINE, pos)
            if end < 0:
                break
            units.append(("frame", data[pos:end]))
            pos = end + len(LINE)
        exact = next(plan, None)
    units.append(("end", data[pos:]))
    return units


def framed(
    framer: Framer,
    chunks: Sequence[bytes],
    program: Sequence[Step],
    *,
    use_payloads: bool,
    settle: bool = False,
) -> list[Unit]:
    """Feed ``chunks`` then EOF; Data joined into the unit it belongs to. With
    ``settle``, ask ``pending_input`` after each read_exactly, which makes a
    pending batch exact again (a value promised from it must survive that)."""
    units: list[Unit] = []
    pending: list[bytes] = []
    plan = iter(program)

    def frame_done(payload: bytes) -> None:
        units.append(("frame", b"".join(pending) + payload))
        pending.clear()
        step = next(plan, None)
        if step is not None:
            framer.read_exactly(*step)
            if settle:
                assert framer.get_terminator() == step[0]
                assert framer.pending_input >= 0
                assert framer.get_terminator() == step[0]

    for chunk in [*chunks, b""]:
        framer.receive_data(chunk)
        while True:
            try:
                if use_payloads:
                    for payload in framer.payloads():
                        frame_done(payload)
                event = framer.next_event()
            except FrameTooLarge as error:
                assert error.announced
                units.append(("too large", error.size))
                continue
            except MalformedFrame:
                units.append(("malformed",))
                continue
            if event is NEED_DATA:
                break
            if type(event) is Data:
                pending.append(event.data)
            elif type(event) is Frame:
                frame_done(event.data)
            else:
                assert type(event) is EndOfStream
                units.append(("end", b"".join(pending) + event.data))
                return units
    raise AssertionError("no EndOfStream after EOF")


@given(st.data(), wire, steps, st.booleans(), st.booleans(), st.sampled_from([1, 2, 4096]))
def test_values_and_lines_match_the_model_under_any_chunking(
    data: st.DataObject,
    payload: bytes,
    program: list[Step],
    use_payloads: bool,
    settle: bool,
    keep_aside: int,
) -> None:
    chunks = data.draw(chunkings(payload))
    framer = Framer(LINE, max_frame_size=None)
    framer._keep_aside_from = keep_aside  # values kept out of the buffer as they come (4096 in use)
    got = framed(framer, chunks, program, use_payloads=use_payloads, settle=settle)
    assert got == model(payload, program)


def test_a_value_promised_from_a_batch_survives_more_input() -> None:
    framer = Framer(b"\r\n")
    framer.receive_data(b"line\r\n" * 100 + b"$3\r\nabc\r\nz\r\n")
    while framer.next_event() != Frame(b"$3"):
        pass
    framer.read_exactly(3, b"\r\n")  # answered from the pending batch
    framer.receive_data(b"more\r\n")  # settles the batch: the value must stay due
    assert framer.get_terminator() == 3
    assert [framer.next_event() for _ in range(3)] == [Frame(b"abc"), Frame(b"z"), Frame(b"more")]


@given(st.data(), wire, steps, st.integers(0, 6), st.booleans())
def test_a_value_over_max_value_size_is_refused_and_skipped(
    data: st.DataObject, payload: bytes, program: list[Step], limit: int, use_payloads: bool
) -> None:
    framer = Framer(LINE, max_frame_size=None, max_value_size=limit)
    framer._keep_aside_from = 1
    got = framed(framer, data.draw(chunkings(payload)), program, use_payloads=use_payloads)
    assert got == model(payload, program, value_limit=limit)


@given(st.data(), wire, steps)
def test_streamed_values_carry_the_same_bytes_whatever_the_chunking(
    data: st.DataObject, payload: bytes, program: list[Step]
) -> None:
    whole = framed(Framer(LINE, stream=True, max_frame_size=None), [payload], program, use_payloads=False)
    chunks = data.draw(chunkings(payload))
    split = framed(Framer(LINE, stream=True, max_frame_size=None), chunks, program, use_payloads=False)
    # Streamed Data is joined into its unit, so only where an error falls may
    # differ: a wrong trailer is judged after the value's bytes have gone out.
    assert split == whole


# ------------------------------------------------------------------ examples


def test_a_resp_command_is_lines_and_counted_values() -> None:
    framer = Framer(b"\r\n")
    framer.receive_data(b"*2\r\n$4\r\nECHO\r\n$7\r\nhi\r\nyou\r\n")
    payloads = []
    for payload in framer.payloads():
        payloads.append(payload)
        if payload.startswith(b"$"):
            framer.read_exactly(int(payload[1:]), b"\r\n")
    # The value keeps its CRLF; the terminator is CRLF again afterwards.
    assert payloads == [b"*2", b"$4", b"ECHO", b"$7", b"hi\r\nyou"]
    assert framer.get_terminator() == b"\r\n"


def test_get_terminator_says_the_count_until_the_value_arrives() -> None:
    framer = Framer(b"\r\n")
    framer.receive_data(b"$3\r\nabc\r\n$5\r\n")
    assert framer.next_event() == Frame(b"$3")
    framer.read_exactly(3, b"\r\n")
    assert framer.get_terminator() == 3
    assert framer.next_event() == Frame(b"abc")
    assert framer.get_terminator() == b"\r\n"


def test_a_wrong_trailer_is_malformed_and_the_rest_comes_as_data() -> None:
    framer = Framer(b"\r\n")
    framer.read_exactly(3, b"\r\n")
    framer.receive_data(b"abcXY*1\r\n")
    with pytest.raises(MalformedFrame, match=r"expected b'\\r\\n' after the counted bytes, got b'XY'"):
        framer.next_event()
    assert framer.get_terminator() is None  # nothing is parsed until the program says how
    assert framer.next_event() == Data(b"abcXY*1\r\n")


def test_a_refused_value_is_skipped_and_lines_go_on() -> None:
    framer = Framer(b"\r\n", max_value_size=4)
    framer.read_exactly(10, b"\r\n")
    framer.receive_data(b"0123456789\r\nPING\r\n")
    with pytest.raises(FrameTooLarge) as caught:
        framer.next_event()
    assert (caught.value.limit, caught.value.size, caught.value.announced) == (4, 10, True)
    assert framer.next_event() == Frame(b"PING")
    assert framer.bytes_discarded == 12


def test_lines_and_values_have_their_own_limits() -> None:
    framer = Framer(b"\r\n", max_frame_size=8, max_value_size=1000)
    framer.receive_data(b"$600\r\n" + b"v" * 600 + b"\r\n")
    assert framer.next_event() == Frame(b"$600")
    framer.read_exactly(600, b"\r\n")
    assert framer.next_event() == Frame(b"v" * 600)


def test_a_streamed_value_goes_out_as_data_then_an_empty_frame() -> None:
    framer = Framer(b"\r\n")
    framer.read_exactly(6, b"\r\n", stream=True)
    framer.receive_data(b"abc")
    assert framer.next_event() == Data(b"abc")
    framer.receive_data(b"def\r")
    assert framer.next_event() == Data(b"def")
    assert framer.next_event() is NEED_DATA  # half a trailer: wait for the rest
    framer.receive_data(b"\nnext\r\n")
    assert framer.next_event() == Frame(b"")
    assert framer.stream is False  # the line terminator's own mode again
    assert framer.next_event() == Frame(b"next")


def test_set_terminator_replaces_a_pending_read_exactly() -> None:
    framer = Framer(b"\r\n")
    framer.receive_data(b"$3\r\nabc\r\n")
    assert framer.next_event() == Frame(b"$3")
    framer.read_exactly(3, b"\r\n")
    framer.set_terminator(b"c")
    assert framer.next_event() == Frame(b"ab")


def test_discard_buffers_keeps_the_value_and_what_comes_after() -> None:
    framer = Framer(b"\n")
    framer.read_exactly(4, b"!")
    framer.receive_data(b"ab")
    framer.discard_buffers()
    framer.receive_data(b"wxyz!line\n")
    assert [framer.next_event(), framer.next_event()] == [Frame(b"wxyz"), Frame(b"line")]
    assert framer.bytes_discarded == 2


def test_read_exactly_after_a_count_returns_to_none() -> None:
    framer = Framer(2)
    framer.receive_data(b"ab")
    assert framer.next_event() == Frame(b"ab")
    framer.read_exactly(1)  # the terminator in force is None now
    framer.receive_data(b"cdef")
    assert [framer.next_event(), framer.next_event()] == [Frame(b"c"), Data(b"def")]


@pytest.mark.parametrize(
    ("count", "trailer", "error", "message"),
    [
        (True, b"", TypeError, "read_exactly needs an int count, not bool"),
        ("3", b"", TypeError, "read_exactly needs an int count, not str"),
        (2.0, b"", TypeError, "read_exactly needs an int count, not float"),
        (-1, b"", ValueError, "read_exactly needs a count from 0 to"),
        (3, "\r\n", TypeError, "trailer must be bytes, not str"),
    ],
)
def test_bad_arguments_are_refused(count: object, trailer: object, error: type, message: str) -> None:
    framer = Framer(b"\r\n")
    if sanschat.compiled and not isinstance(trailer, bytes):  # the compiled core words it itself
        message = "str"
    with pytest.raises(error, match=message):
        framer.read_exactly(count, trailer)  # type: ignore[arg-type]
    assert framer.get_terminator() == b"\r\n"


def test_max_value_size_is_checked_like_max_frame_size() -> None:
    with pytest.raises(ValueError, match="max_value_size must be >= 0"):
        Framer(b"\n", max_value_size=-1)
    with pytest.raises(TypeError, match="max_value_size must be an int or None"):
        Framer(b"\n", max_value_size=True)
    framer = Framer(b"\n", max_value_size=None)
    assert framer.max_value_size is None


# --------------------------------------- a whole-mode count keeps bytes aside


def aside(terminator: object = 10, **options: object) -> Framer:
    """A Framer whose whole-mode counts keep every received byte aside at once
    (in use only from 4096 bytes on), holding 6 bytes of a 10-byte count."""
    framer = Framer(terminator, **options)  # type: ignore[arg-type]
    framer._keep_aside_from = 1
    framer.receive_data(b"abc")
    assert framer.next_event() is NEED_DATA
    framer.receive_data(b"def")
    assert framer.next_event() is NEED_DATA
    assert framer.pending_input == 6
    return framer


def test_counted_bytes_kept_aside_make_one_frame() -> None:
    framer = aside()
    framer.receive_data(b"ghijKL")
    assert [framer.next_event(), framer.next_event()] == [Frame(b"abcdefghij"), Data(b"KL")]


def test_a_new_terminator_applies_to_the_bytes_kept_aside() -> None:
    framer = aside()
    framer.set_terminator(b"d")
    assert framer.next_event() == Frame(b"abc")
    assert framer.pending_input == 2


def test_read_exactly_replacing_a_pending_one_applies_to_the_bytes_kept_aside() -> None:
    framer = Framer(b"\n")
    framer._keep_aside_from = 1
    framer.read_exactly(10)
    framer.receive_data(b"abcdefghi")
    assert framer.next_event() is NEED_DATA
    assert framer.pending_input == 9
    framer.read_exactly(2, b"c")  # replaces the pending one
    assert framer.next_event() == Frame(b"ab")
    assert framer.next_event() is NEED_DATA  # lines again: "defghi" has no newline yet
    framer.receive_data(b"\n")
    assert framer.next_event() == Frame(b"defghi")


def test_the_end_of_the_stream_gives_back_the_bytes_kept_aside() -> None:
    framer = aside()
    framer.receive_data(b"")
    assert framer.next_event() == EndOfStream(b"abcdef")


def test_discard_buffers_counts_the_bytes_kept_aside() -> None:
    framer = aside()
    framer.discard_buffers()
    assert (framer.bytes_discarded, framer.pending_input) == (6, 0)
    framer.receive_data(b"0123456789")
    assert framer.next_event() == Frame(b"0123456789")


def test_a_lowered_limit_refuses_the_count_and_skips_what_was_kept_aside() -> None:
    framer = aside(max_frame_size=None)
    framer.max_frame_size = 4
    with pytest.raises(FrameTooLarge):
        framer.next_event()
    framer.receive_data(b"ghijKL")
    assert framer.next_event() == Data(b"KL")
    assert framer.bytes_discarded == 10


def test_a_wrong_trailer_gives_back_the_value_kept_aside() -> None:
    framer = Framer(b"\n")
    framer._keep_aside_from = 1
    framer.read_exactly(5, b"\r\n")
    framer.receive_data(b"abc")
    assert framer.next_event() is NEED_DATA
    framer.receive_data(b"de!!")
    with pytest.raises(MalformedFrame):
        framer.next_event()
    assert framer.next_event() == Data(b"abcde!!")


def test_a_count_may_be_any_index_and_a_trailer_any_bytes_like() -> None:
    class Three:
        def __index__(self) -> int:
            return 3

    framer = Framer(b"\n")
    framer.read_exactly(Three(), bytearray(b"!"))
    framer.receive_data(b"abc!next\n")
    assert [framer.next_event(), framer.next_event()] == [Frame(b"abc"), Frame(b"next")]


def test_stream_must_be_a_bool_or_none() -> None:
    message = "stream must be a bool or None, not int" if not sanschat.compiled else "int"
    with pytest.raises(TypeError, match=message):
        Framer(b"\n").read_exactly(3, stream=1)  # type: ignore[arg-type]


def test_a_value_promised_from_a_batch_meets_a_lowered_value_limit() -> None:
    framer = Framer(b"\r\n")
    framer.receive_data(b"line\r\n" * 100 + b"$3\r\nabc\r\nz\r\n")
    while framer.next_event() != Frame(b"$3"):
        pass
    framer.read_exactly(3, b"\r\n")  # promised from the batch, under the default limit
    framer.max_value_size = 2  # now too large: refused, skipped with its trailer
    with pytest.raises(FrameTooLarge):
        framer.next_event()
    assert framer.next_event() == Frame(b"z")


# ------------------------------------- cases the mutation run found unpinned


def batch_at(framer: Framer, line: bytes) -> None:
    """Take events until ``line`` (a pending batch of lines is then in use)."""
    while framer.next_event() != Frame(line):
        pass


def test_a_promised_value_over_the_limit_is_refused() -> None:
    framer = Framer(b"\r\n", max_value_size=2)
    framer.receive_data(b"line\r\n" * 100 + b"$3\r\nabc\r\nz\r\n")
    batch_at(framer, b"$3")
    framer.read_exactly(3, b"\r\n")  # the next piece has 3 bytes, but 3 > 2
    with pytest.raises(FrameTooLarge):
        framer.next_event()
    assert framer.next_event() == Frame(b"z")


def test_a_value_without_trailer_in_a_batch_leaves_the_delimiter_to_the_lines() -> None:
    framer = Framer(b"\r\n")
    framer.receive_data(b"line\r\n" * 100 + b"$3\r\nabc\r\nz\r\n")
    batch_at(framer, b"$3")
    framer.read_exactly(3)  # no trailer: the CRLF after the value ends an empty line
    assert [framer.next_event() for _ in range(3)] == [Frame(b"abc"), Frame(b""), Frame(b"z")]


def test_read_exactly_on_the_last_piece_of_a_batch() -> None:
    framer = Framer(b"\r\n")
    framer.receive_data(b"a\r\nb\r\n$3\r\nab")  # "$3" is the batch's last complete line
    taken = []
    for payload in framer.payloads():
        taken.append(payload)
        if payload == b"$3":
            framer.read_exactly(3, b"\r\n")
    framer.receive_data(b"c\r\nz\r\n")
    assert taken == [b"a", b"b", b"$3"]
    assert [framer.next_event(), framer.next_event()] == [Frame(b"abc"), Frame(b"z")]


def test_a_streamed_header_frame_resumes_after_a_value_read_in_its_middle() -> None:
    framer = Framer(LengthPrefix(2), stream=True)
    framer.receive_data(b"\x00\x05ab")
    assert framer.next_event() == Data(b"ab")  # the header is consumed
    framer.read_exactly(2)
    framer.receive_data(b"XYcde")
    assert framer.next_event() == Frame(b"XY")
    assert framer.next_event() == Frame(b"cde")  # the rest of the 5-byte payload
    assert (framer.bytes_discarded, framer.pending_input, framer._headers_in_flight) == (0, 0, 0)


def test_discard_buffers_keeps_a_streamed_value_streamed() -> None:
    framer = Framer(b"\n")
    framer.read_exactly(6, stream=True)
    framer.receive_data(b"ab")
    framer.discard_buffers()
    framer.receive_data(b"cd")
    assert framer.next_event() == Data(b"cd")


def test_two_values_kept_aside_in_a_row() -> None:
    framer = Framer(b"\n")
    framer._keep_aside_from = 1
    events = []
    for chunk in [b"$3\nab", b"c\n$2\nx", b"y\nend\n"]:
        framer.receive_data(chunk)
        while (event := framer.next_event()) is not NEED_DATA:
            events.append(event)
            if type(event) is Frame and event.data.startswith(b"$"):
                framer.read_exactly(int(event.data[1:]), b"\n")
    assert events == [Frame(b"$3"), Frame(b"abc"), Frame(b"$2"), Frame(b"xy"), Frame(b"end")]
    assert framer.pending_input == 0


def test_a_value_kept_aside_with_its_trailer_cut_in_two() -> None:
    framer = Framer(b"\n")
    framer._keep_aside_from = 1
    framer.read_exactly(3, b"\r\n")
    for chunk in [b"ab", b"c\r"]:
        framer.receive_data(chunk)
        assert framer.next_event() is NEED_DATA
    framer.receive_data(b"\nz\n")
    assert [framer.next_event(), framer.next_event()] == [Frame(b"abc"), Frame(b"z")]


def test_a_streamed_value_is_not_kept_aside() -> None:
    framer = Framer(b"\n")
    framer._keep_aside_from = 1
    framer.read_exactly(6, b"\n", stream=True)
    framer.receive_data(b"abc")
    assert framer.next_event() == Data(b"abc")


def test_bytes_kept_aside_after_earlier_lines_are_the_value_only() -> None:
    framer = Framer(b"\n")
    framer._keep_aside_from = 1
    framer.receive_data(b"one\n$4\nab")
    assert [framer.next_event(), framer.next_event()] == [Frame(b"one"), Frame(b"$4")]
    framer.read_exactly(4, b"\n")
    assert framer.next_event() is NEED_DATA
    assert framer.pending_input == 2
    framer.receive_data(b"cd\n")
    assert framer.next_event() == Frame(b"abcd")


def test_the_mode_of_the_lines_comes_back_after_a_value_and_after_a_count() -> None:
    framer = Framer(b"\n", stream=True)
    framer.read_exactly(2, stream=False)
    framer.receive_data(b"ab")
    assert framer.next_event() == Frame(b"ab")
    assert framer.stream is True
    framer.set_terminator(1, stream=True)
    framer.receive_data(b"c")
    assert framer.next_event() == Frame(b"c")
    assert framer.stream is True


def test_a_streaming_framer_streams_values_by_default() -> None:
    framer = Framer(b"\n", stream=True)
    framer.read_exactly(6)
    framer.receive_data(b"abc")
    assert framer.next_event() == Data(b"abc")


@pytest.mark.parametrize(("count", "works"), [(0, True), (sys.maxsize, True), (sys.maxsize + 1, False)])
def test_index_counts_at_the_bounds(count: int, works: bool) -> None:
    class Count:
        def __index__(self) -> int:
            return count

    framer = Framer(b"\n", max_value_size=None)
    if not works:
        with pytest.raises(ValueError, match="read_exactly needs a count from 0 to"):
            framer.read_exactly(Count())
        return
    framer.read_exactly(Count())
    assert framer.get_terminator() == count


def test_the_mode_of_the_lines_comes_back_after_a_refused_value() -> None:
    framer = Framer(b"\n", stream=True, max_value_size=1)
    framer.read_exactly(5, stream=False)
    framer.receive_data(b"abcde")
    with pytest.raises(FrameTooLarge):
        framer.next_event()
    assert framer.stream is True
