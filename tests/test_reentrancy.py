"""Calls made at awkward moments: from inside a producer's ``more()``, between
creating a ``payloads()`` generator and iterating it, with two generators at
once; and user kinds that answer wrongly. Each either works, with every byte
accounted for, or raises a clear error and leaves the Framer consistent."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sanschat import NEED_DATA, Data, EndOfStream, Frame, Framer, HeaderKind, ProducerError

# ------------------------------------------------------- payloads() is lazy


def test_a_payloads_generator_reads_nothing_until_it_is_iterated() -> None:
    framer = Framer(b"\n")
    framer.receive_data(b"a\nb\nc\n")
    payloads = framer.payloads()
    assert framer.next_event() == Frame(b"a")  # the generator has taken nothing
    assert list(payloads) == [b"b", b"c"]


def test_a_terminator_set_after_creating_a_generator_applies_to_its_first_payload() -> None:
    framer = Framer(b"\n")
    framer.receive_data(b"ab,cd\n")
    payloads = framer.payloads()
    framer.set_terminator(b",")
    assert next(payloads) == b"ab"


def test_two_generators_and_next_event_share_one_sequence_of_frames() -> None:
    framer = Framer(b"\n")
    framer.receive_data(b"".join(b"%d\n" % i for i in range(2000)))
    first, second = framer.payloads(), framer.payloads()
    got = []
    for turn in range(2000):
        if turn % 3 == 0:
            got.append(next(first))
        elif turn % 3 == 1:
            got.append(next(second))
        else:
            event = framer.next_event()
            assert type(event) is Frame
            got.append(event.data)
    assert got == [b"%d" % i for i in range(2000)]
    assert next(first, None) is None and framer.next_event() is NEED_DATA


# Any interleaving of next_event() and of several payloads() generators gives
# the frames of next_event() alone, in order, for every kind with a bulk path.
@given(
    terminator=st.sampled_from([b"\n", b"\r\n"]),
    lines=st.lists(st.binary(max_size=6).map(lambda b: b.replace(b"\n", b"")), max_size=60),
    choices=st.lists(st.integers(0, 3), max_size=80),
)
def test_any_interleaving_of_generators_and_next_event_keeps_the_order(
    terminator: bytes, lines: list[bytes], choices: list[int]
) -> None:
    lines = [line.replace(b"\r", b"") for line in lines]
    framer = Framer(terminator)
    framer.receive_data(b"".join(line + terminator for line in lines))
    generators = [framer.payloads() for _ in range(3)]
    got: list[bytes] = []
    for choice in choices:
        if choice == 3:
            event = framer.next_event()
            if type(event) is Frame:
                got.append(event.data)
        else:
            payload = next(generators[choice], None)
            if payload is not None:
                got.append(payload)
    got += list(framer.payloads())
    assert got == lines


# ------------------------------------------ calls from inside a producer


class Calling:
    """A producer whose first ``more()`` makes a call on the Framer, then gives ``chunk``."""

    def __init__(self, call: Callable[[], object], chunk: bytes = b"mine") -> None:
        self.call = call
        self.chunk = chunk
        self.calls = 0

    def more(self) -> bytes:
        self.calls += 1
        if self.calls == 1:
            self.call()
            return self.chunk
        return b""


def queue_around(framer: Framer, producer: Calling) -> None:
    framer.push(b"before,")
    framer.push_with_producer(producer)
    framer.push(b",after")


@pytest.mark.parametrize("take", ["data_to_send", "bounded", "peek"])
def test_discard_buffers_from_inside_more_drops_what_was_queued_and_keeps_what_came_after(take: str) -> None:
    framer = Framer(b"\n")

    def discard_then_answer() -> None:
        framer.discard_buffers()
        framer.push(b"ERR\n")

    queue_around(framer, Calling(discard_then_answer))
    expected = b"ERR\n"
    if take == "data_to_send":
        out = framer.data_to_send()
    elif take == "bounded":  # "before" went out in earlier takes; "," was still queued
        out = b"".join(iter(lambda: framer.data_to_send(3), b""))
        expected = b"before" + expected
    else:
        out = b""
        while view := framer.peek_output():
            out += bytes(view)
            framer.consume_output(len(view))
    assert out == expected
    assert (framer.pending_output, framer.promised_output, framer.has_output) == (0, 0, False)


def test_a_producer_that_discards_then_raises_is_reported_and_nothing_is_put_back() -> None:
    framer = Framer(b"\n")

    def discard_then_fail() -> None:
        framer.discard_buffers()
        raise OSError("disk gone")

    queue_around(framer, Calling(discard_then_fail))
    with pytest.raises(ProducerError):
        framer.data_to_send()
    assert framer.data_to_send() == b""
    assert (framer.pending_output, framer.promised_output) == (0, 0)


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda f: f.push(b"[pushed]"), b"before,mine,after[pushed]"),
        (
            lambda f: f.push_with_producer(Calling(lambda: None, b"[produced]")),
            b"before,mine,after[produced]",
        ),
        (lambda f: f.close_when_done(), b"before,mine,after"),
        (lambda f: f.set_terminator(b";"), b"before,mine,after"),
        (lambda f: f.read_exactly(2, b"\n"), b"before,mine,after"),
        (lambda f: f.receive_data(b"x\n"), b"before,mine,after"),
    ],
    ids=["push", "producer", "close", "terminator", "read_exactly", "receive"],
)
def test_calls_from_inside_more_keep_the_queue_in_order(
    call: Callable[[Framer], object], expected: bytes
) -> None:
    framer = Framer(b"\n")
    queue_around(framer, Calling(lambda: call(framer)))
    assert framer.data_to_send() == expected
    assert (framer.pending_output, framer.promised_output) == (0, 0)


@pytest.mark.parametrize("take", ["data_to_send", "peek_output"])
def test_taking_output_from_inside_more_is_a_clear_error(take: str) -> None:
    framer = Framer(b"\n")
    producer = Calling(lambda: getattr(framer, take)())
    queue_around(framer, producer)
    with pytest.raises(ProducerError, match="re-entrant") as raised:
        framer.data_to_send()
    assert isinstance(raised.value.__cause__, RuntimeError)
    # What came before the producer was handed out or stays queued; nothing twice.
    assert framer.data_to_send() in (b",after", b"before,,after")


# ------------------------------------------------ user kinds that lie


class Lying(HeaderKind):
    """Claims a header of ``header`` bytes, whatever it was shown."""

    max_header = 8

    def __init__(self, header: int, payload: int) -> None:
        self.header = header
        self.payload = payload

    def parse_header(self, data: bytes) -> tuple[int, int] | None:
        return (self.header, self.payload)

    def encode(self, payload: bytes) -> bytes:
        return payload


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("header", "payload"),
    [(5, 1), (9, 0), (0, 1), (2, -1)],
    ids=["past-shown", "past-max", "empty", "negative"],
)
def test_a_kind_that_reports_an_impossible_header_is_named_and_nothing_is_consumed(
    stream: bool, header: int, payload: int
) -> None:
    kind = Lying(header, payload)
    framer = Framer(kind, stream=stream)
    framer.receive_data(b"abc")
    with pytest.raises(ValueError, match=r"Lying\(header=.*\)\.parse_header returned"):
        framer.next_event()
    assert (framer.pending_input, framer.bytes_discarded) == (3, 0)
    framer.set_terminator(b"\n")  # recovery: the bytes are all still there
    framer.receive_data(b"\n")
    assert framer.next_event() == Frame(b"abc")


def test_a_streamed_frame_cut_by_the_end_counts_each_byte_once() -> None:
    from sanschat import LengthPrefix

    framer = Framer(LengthPrefix(1), stream=True)
    framer.receive_data(b"\x02\x00")
    framer.receive_data(b"")
    events: list[object] = []
    while (event := framer.next_event()) != EndOfStream(b""):
        events.append(event)
    # 2 bytes: a header of 1 (framing) and 1 delivered; nothing discarded, nothing held
    assert events == [Data(b"\x00")]
    assert (framer.bytes_discarded, framer.pending_input) == (0, 0)
