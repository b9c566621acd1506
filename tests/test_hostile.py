"""The hostile-input catalogue: what a peer (or a careless caller) can throw at
the Framer, and what must happen. Each test names its input and the required
behaviour: a named exception or event, bounded memory, and every byte
delivered exactly once (or counted in ``bytes_discarded``).
"""

from __future__ import annotations

import sys
import tracemalloc
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sanschat import (
    NEED_DATA,
    ClosedError,
    Data,
    EndOfStream,
    Frame,
    Framer,
    FrameTooLarge,
    ProducerError,
)
from sanschat.testing import replay

from .helpers import chunkings, drain, model, normalised, run


def peak_bytes(job: Callable[[], object]) -> int:
    """Peak memory that ``job`` allocates, by tracemalloc."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        job()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


# ------------------------------------------------------------- terminators


@pytest.mark.parametrize("terminator", [b"\r\n", b"\r\n.\r\n", b"END-OF-MESSAGE"])
def test_terminator_split_at_every_boundary(terminator: bytes) -> None:
    """Input: two frames, cut in two at every offset. Required: the same two frames."""
    data = b"first" + terminator + b"second" + terminator
    for cut in range(len(data) + 1):
        framer = Framer(terminator)
        halves = [half for half in (data[:cut], data[cut:]) if half]  # b"" would be EOF
        assert run(framer, halves) == [
            ("frame", b"first"),
            ("frame", b"second"),
            ("end", b""),
        ]


@pytest.mark.parametrize(
    "terminator, data, frames, rest",
    [
        (b"aab", b"aaab", [b"a"], b""),
        (b"abab", b"ababab", [b""], b"ab"),
        (b"aaa", b"aaaaaaa", [b"", b""], b"a"),
    ],
)
def test_overlapping_self_similar_terminators(
    terminator: bytes, data: bytes, frames: list[bytes], rest: bytes
) -> None:
    """Input: a terminator that overlaps itself, one byte at a time.
    Required: the leftmost match wins, as with ``bytes.find``, streamed or not."""
    expected = [*(("frame", f) for f in frames), ("end", rest)]
    for stream in (False, True):
        trickle = [data[i : i + 1] for i in range(len(data))]
        assert run(Framer(terminator, stream=stream), trickle) == expected


def test_ten_mib_one_byte_at_a_time_is_linear() -> None:
    """Input: 10 MiB with no terminator, fed one byte at a time, then the terminator.
    Required: the held bytes are appended in place (the buffer object is never
    re-made), the search resumes where it stopped (never re-scans), memory is
    one buffer of about the frame's size; then one Frame of exactly those bytes."""
    size = 10 << 20
    framer = Framer(b"\r\n.\r\n", max_frame_size=None)
    byte = b"x"
    framer.receive_data(b"xx")
    framer.receive_data(byte)  # a bytearray from here on
    assert framer.next_event() is NEED_DATA
    buffer_id = id(framer._rx.buf)

    receive = framer.receive_data
    next_event = framer.next_event
    for i in range(3, size):
        receive(byte)
        if not i & 0xFFFF:
            assert next_event() is NEED_DATA
            assert framer._rx.scan >= framer.pending_input - 4  # resumes at the end
            assert id(framer._rx.buf) == buffer_id
    # One buffer, grown in place (amortised), is all the memory held.
    assert sys.getsizeof(framer._rx.buf) < 1.25 * size
    framer.receive_data(b"\r\n.\r\n")
    (frame,) = drain(framer)
    assert frame == Frame(b"x" * size)


def test_terminators_of_wrong_type_or_value_are_refused_at_the_call() -> None:
    """Input: str, negative, bool, float, b"", a huge int, a list.
    Required: TypeError or ValueError from set_terminator naming the value; the
    Framer keeps its terminator and its input."""
    framer = Framer(b"\n")
    framer.receive_data(b"kept")
    for bad, error in [
        ("\n", TypeError),
        (-1, ValueError),
        (True, TypeError),
        (1.5, TypeError),
        (b"", ValueError),
        (1 << 80, ValueError),
        ([b"\n"], TypeError),
    ]:
        with pytest.raises(error):
            framer.set_terminator(bad)  # type: ignore[arg-type]
    assert framer.get_terminator() == b"\n"
    framer.receive_data(b"\n")
    assert drain(framer) == [Frame(b"kept")]


def test_bare_lf_and_lf_dot_lf_are_data_under_crlf_terminators() -> None:
    """Input: ``\\n`` under ``\\r\\n`` and ``\\n.\\n`` under ``\\r\\n.\\r\\n``
    (the SMTP-smuggling shapes). Required: bytes of the frame, never an end."""
    lines = Framer(b"\r\n")
    lines.receive_data(b"MAIL FROM:<a>\nRCPT TO:<b>\r\n")
    assert drain(lines) == [Frame(b"MAIL FROM:<a>\nRCPT TO:<b>")]
    data = Framer(b"\r\n.\r\n")
    data.receive_data(b"body\n.\nMAIL FROM:<evil>\r\n.\r\n")
    assert drain(data) == [Frame(b"body\n.\nMAIL FROM:<evil>")]
    mixed = Framer(b"\r\n.\r\n")
    mixed.receive_data(b"a\r\n.\nb\n.\r\nc\r\n.\r\n")
    assert drain(mixed) == [Frame(b"a\r\n.\nb\n.\r\nc")]


def test_a_million_empty_frames_in_one_read() -> None:
    """Input: ``b"\\n" * 2**20`` in one receive_data. Required: 2**20 empty
    frames, by next_event and by payloads(), without recursion."""
    data = b"\n" * (1 << 20)
    framer = Framer(b"\n")
    framer.receive_data(data)
    assert sum(1 for _ in framer.payloads()) == 1 << 20
    framer = Framer(b"\n")
    framer.receive_data(data)
    count = 0
    while framer.next_event() is not NEED_DATA:
        count += 1
    assert count == 1 << 20


# ----------------------------------------------------------------- limits


def test_a_frame_exactly_at_the_limit_and_one_byte_over() -> None:
    """Input: frames of max_frame_size and max_frame_size + 1 bytes.
    Required: the first is a Frame; the second raises FrameTooLarge once."""
    framer = Framer(b"\n", max_frame_size=8)
    framer.receive_data(b"x" * 8 + b"\n" + b"y" * 9 + b"\nok\n")
    got = drain(framer)
    assert got[0] == Frame(b"x" * 8)
    assert isinstance(got[1], FrameTooLarge) and got[1].size == 9
    assert got[2:] == [Frame(b"ok")]
    assert framer.bytes_discarded == 10


def test_an_oversized_frame_with_no_terminator_trips_as_soon_as_it_passes() -> None:
    """Input: bytes with no terminator, past the limit. Required: FrameTooLarge
    as soon as the held payload passes max_frame_size, not when a terminator
    comes; held memory stays bounded however much more arrives."""
    framer = Framer(b"\r\n", max_frame_size=1000)
    framer.receive_data(b"x" * 1000)
    assert framer.next_event() is NEED_DATA  # 999 could still be the payload
    framer.receive_data(b"x" * 2)
    with pytest.raises(FrameTooLarge):
        framer.next_event()
    for _ in range(1000):  # 1 MB more, still no terminator
        framer.receive_data(b"x" * 1000)
        assert framer.next_event() is NEED_DATA
        assert framer.pending_input <= 2
    assert framer.bytes_discarded + framer.pending_input == 1_001_002


def test_after_an_oversized_frame_the_tail_is_never_a_new_frame() -> None:
    """Input: an oversized frame then a valid command. Required: the error is
    raised once, the rest of the oversized frame is discarded up to its
    terminator, and the next command is the next Frame."""
    framer = Framer(b"\r\n", max_frame_size=10)
    framer.receive_data(b"A" * 30 + b"QUIT\r\nNOOP\r\n")
    got = drain(framer)
    assert [type(e) for e in got] == [FrameTooLarge, Frame]
    assert got[1] == Frame(b"NOOP")
    assert framer.bytes_discarded == 36


@given(st.data())
def test_an_oversized_frame_errs_at_the_same_frame_under_any_chunking(data: st.DataObject) -> None:
    """Input: frames of various sizes around the limit, any chunking.
    Required: the same units as the model (errors at the same frames)."""
    sizes = data.draw(st.lists(st.integers(0, 24), min_size=1, max_size=8))
    stream = b"".join(b"z" * n + b"\r\n" for n in sizes) + b"tail"
    chunks = data.draw(chunkings(stream))
    for streaming in (False, True):
        framer = Framer(b"\r\n", max_frame_size=12, stream=streaming)
        assert run(framer, chunks) == model(stream, b"\r\n", max_frame_size=12)


@given(st.data())
def test_a_streamed_oversized_frame_gives_the_same_data_before_the_error(data: st.DataObject) -> None:
    """Input: streamed frames around the limit, any chunking, the end known early or late.
    Required: an oversized frame first gives exactly its first max_frame_size
    bytes as Data, then FrameTooLarge, whatever the chunking: nothing that was
    delivered depends on how TCP split the bytes."""
    sizes = data.draw(st.lists(st.integers(0, 24), min_size=1, max_size=6))
    stream = b"".join(bytes([97 + n]) * n + b"\r\n" for n in sizes) + b"t" * data.draw(st.integers(0, 20))
    expected = replay(Framer(b"\r\n", max_frame_size=12, stream=True), [stream])
    for big in sizes:
        if big > 12:
            assert Data(bytes([97 + big]) * 12) in expected
    chunks = data.draw(chunkings(stream))
    got = replay(Framer(b"\r\n", max_frame_size=12, stream=True), chunks)
    assert normalised(got) == normalised(expected)
    # The end already known when reading starts changes nothing either.
    framer = Framer(b"\r\n", max_frame_size=12, stream=True)
    framer.receive_data(stream)
    framer.receive_data(b"")
    assert normalised(drain(framer)) == normalised(expected)


def test_a_count_far_beyond_the_data_then_eof() -> None:
    """Input: a count of 1 GiB (streamed), 10 bytes, then EOF. Required: the 10
    bytes as Data, then EndOfStream(b""); nothing is held waiting."""
    framer = Framer(1 << 30, stream=True)
    framer.receive_data(b"0123456789")
    assert drain(framer) == [Data(b"0123456789")]
    framer.receive_data(b"")
    assert drain(framer) == [EndOfStream(b"")]


def test_a_whole_count_beyond_the_limit_is_refused_and_skipped() -> None:
    """Input: set_terminator(10**9) in whole mode with the default limit (a
    peer's Content-Length), then a gigabyte's worth of bytes announced.
    Required: FrameTooLarge at once, before any of it is held; the bytes are
    skipped and counted as they arrive, never buffered."""
    framer = Framer(b"\n")
    framer.set_terminator(10**9)
    with pytest.raises(FrameTooLarge, match="announced"):
        framer.next_event()
    chunk = b"x" * 65536
    for _ in range(64):
        framer.receive_data(chunk)
        assert framer.next_event() is NEED_DATA
        assert framer.pending_input == 0
    assert framer.bytes_discarded == 64 * 65536


def test_eof_in_the_middle_of_a_terminator() -> None:
    """Input: ``data\\r\\n.`` then EOF under ``\\r\\n.\\r\\n``. Required: the
    partial terminator bytes are data of the EndOfStream, not lost."""
    for stream in (False, True):
        framer = Framer(b"\r\n.\r\n", stream=stream)
        assert run(framer, [b"data\r", b"\n."]) == [("end", b"data\r\n.")]


def test_eof_mid_count_gives_what_arrived() -> None:
    """Input: a count of 100, 40 bytes, EOF. Required: EndOfStream of the 40 bytes."""
    framer = Framer(100)
    framer.receive_data(b"q" * 40)
    framer.receive_data(b"")
    assert drain(framer) == [EndOfStream(b"q" * 40)]


def test_receive_data_after_eof_raises() -> None:
    """Input: bytes after EOF. Required: ClosedError; the events are unchanged."""
    framer = Framer(b"\n")
    framer.receive_data(b"a\nb")
    framer.receive_data(b"")
    with pytest.raises(ClosedError):
        framer.receive_data(b"c\n")
    assert drain(framer) == [Frame(b"a"), EndOfStream(b"b")]


def test_input_the_caller_mutates_afterwards_is_unaffected() -> None:
    """Input: a bytearray and a memoryview, changed after receive_data.
    Required: the frames carry the bytes as they were when received."""
    framer = Framer(b"\n")
    buffer = bytearray(b"one\ntw")
    framer.receive_data(buffer)
    buffer[:] = b"XXXXXX"
    backing = bytearray(b"o\n")
    framer.receive_data(memoryview(backing))
    backing[0:1] = b"Z"
    assert drain(framer) == [Frame(b"one"), Frame(b"two")]


# ----------------------------------------------- changes during event handling


def test_terminator_changes_inside_event_handling_to_zero_and_none() -> None:
    """Input: a header line, then the terminator set to a count of 0, then to
    None, from inside the loop over events. Required: an empty frame at once,
    then everything after it as Data; no byte skipped or repeated."""
    framer = Framer(b"\n")
    framer.receive_data(b"HEAD\nrest of it")
    got: list[object] = []
    for payload in framer.payloads():
        got.append(Frame(payload))
        if payload == b"HEAD":
            framer.set_terminator(0)
        elif payload == b"":
            framer.set_terminator(None)
    got += drain(framer)
    assert got == [Frame(b"HEAD"), Frame(b""), Data(b"rest of it")]


def test_receive_data_from_inside_event_handling() -> None:
    """Input: receive_data called while iterating payloads() (a re-entrant feed).
    Required: the new bytes are framed after the held ones, exactly once."""
    framer = Framer(b"\n")
    framer.receive_data(b"a\nb\nc")
    got = []
    for payload in framer.payloads():
        got.append(payload)
        if payload == b"a":
            framer.receive_data(b"\nd\n")
    got += [e.data for e in drain(framer)]  # type: ignore[attr-defined]
    assert got == [b"a", b"b", b"c", b"d"]


def test_discard_buffers_mid_frame_counts_what_it_drops() -> None:
    """Input: half a frame, discard_buffers, then a new frame. Required: the
    dropped bytes are counted in bytes_discarded; the new frame is intact."""
    framer = Framer(b"\n")
    framer.receive_data(b"complete\nhalf a fr")
    assert framer.next_event() == Frame(b"complete")
    framer.discard_buffers()
    assert framer.bytes_discarded == len(b"half a fr")
    framer.receive_data(b"fresh\n")
    assert drain(framer) == [Frame(b"fresh")]


# ------------------------------------------------------------------ output


@pytest.mark.parametrize("bad", ["text", 42, None, [b"x"]])
def test_push_of_non_bytes_is_refused_and_queues_nothing(bad: object) -> None:
    """Input: push(str | int | None | list). Required: TypeError naming the
    type; the queue is unchanged."""
    framer = Framer(b"\n")
    framer.push(b"before")
    with pytest.raises(TypeError, match=type(bad).__name__):
        framer.push(bad)  # type: ignore[arg-type]
    assert framer.data_to_send() == b"before"


class Broken:
    def __init__(self, outcome: object) -> None:
        self.outcome = outcome

    def more(self) -> object:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


@pytest.mark.parametrize("outcome", [RuntimeError("boom"), "text", None])
def test_producers_that_raise_or_return_non_bytes(outcome: object) -> None:
    """Input: a producer whose more() raises, returns str or returns None,
    between two pushes. Required: ProducerError naming the producer; it is
    dropped; the bytes before and after it are all sent."""
    framer = Framer(b"\n")
    framer.push(b"before ")
    framer.push_with_producer(Broken(outcome))  # type: ignore[arg-type]
    framer.push(b"after")
    taken = [framer.data_to_send(7)]
    with pytest.raises(ProducerError, match="Broken"):
        framer.data_to_send()
    taken.append(framer.data_to_send())
    assert b"".join(taken) == b"before after"


def test_a_producer_that_never_ends_is_pulled_only_on_demand() -> None:
    """Input: an endless producer. Required: each bounded take pulls only what
    it needs; memory stays at one chunk however long it runs."""

    class Endless:
        pulls = 0

        def more(self) -> bytes:
            Endless.pulls += 1
            return b"e" * 4096

    framer = Framer(b"\n")
    framer.push_with_producer(Endless())

    def drain() -> None:
        for _ in range(2000):
            assert len(framer.data_to_send(4096)) == 4096

    assert peak_bytes(drain) < 64 * 1024
    assert Endless.pulls == 2000
    assert framer.pending_output == 0


def test_close_when_done_with_producers_pending_then_more_pushes() -> None:
    """Input: a producer queued, close_when_done, then push. Required: the
    producer's output is all sent before should_close; the late push is
    dropped (counted) and not sent."""
    framer = Framer(b"\n")
    framer.push_with_producer(iter_producer([b"a", b"b", b"c"]))
    framer.close_when_done()
    framer.push(b"late")
    assert framer.dropped_after_close == 1
    assert not framer.should_close
    assert framer.data_to_send() == b"abc"
    assert framer.should_close


class iter_producer:
    def __init__(self, parts: list[bytes]) -> None:
        self.parts: Iterator[bytes] = iter(parts)

    def more(self) -> bytes:
        return next(self.parts, b"")


def test_re_entrant_output_taking_is_refused_and_loses_nothing() -> None:
    """Input: a producer that pushes, and one that takes output, from inside
    more(). Required: a push goes after the producer; a take raises
    RuntimeError (as ProducerError) and nothing queued is lost."""
    framer = Framer(b"\n")

    class Pusher:
        done = False

        def more(self) -> bytes:
            if self.done:
                return b""
            self.done = True
            framer.push(b"[pushed inside]")
            return b"[produced]"

    framer.push_with_producer(Pusher())
    assert framer.data_to_send() == b"[produced][pushed inside]"

    class Taker:
        def more(self) -> bytes:
            return framer.data_to_send()

    framer.push(b"x")
    framer.push_with_producer(Taker())
    framer.push(b"y")
    sent = [framer.data_to_send(1)]
    with pytest.raises(ProducerError):
        framer.data_to_send()
    sent.append(framer.data_to_send())
    assert b"".join(sent) == b"xy"


def test_discard_buffers_mid_send() -> None:
    """Input: a partial send (peek, consume part), then discard_buffers.
    Required: nothing more is sent; a later push starts clean."""
    framer = Framer(b"\n")
    framer.push(b"0123456789")
    framer.peek_output()
    framer.consume_output(4)
    framer.discard_buffers()
    assert framer.pending_output == 0 and not framer.has_output
    framer.push(b"new")
    assert framer.data_to_send() == b"new"
