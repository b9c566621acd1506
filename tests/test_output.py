"""The output side: pushes, producers, partial sends, water marks, closing."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from operator import length_hint
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sanschat
from sanschat import Frame, Framer, ProducerError, simple_producer


def framer(**kwargs: int) -> Framer:
    return Framer(b"\r\n", **kwargs)  # type: ignore[arg-type]


class Chunks:
    """A producer over a list of chunks that records each call to more()."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)
        self.calls = 0

    def more(self) -> bytes:
        self.calls += 1
        return self.chunks.pop(0) if self.chunks else b""


class Endless:
    """A lazy producer of ``size`` bytes (or forever) that never holds them all."""

    def __init__(self, chunk: int = 4096, size: int | None = None) -> None:
        self.block = b"x" * chunk
        self.left = size
        self.calls = 0

    def more(self) -> bytes:
        self.calls += 1
        if self.left is None:
            return self.block
        out = self.block[: self.left]
        self.left -= len(out)
        return out


def drain_by_peeking(f: Framer, step: int) -> bytes:
    out = bytearray()
    while True:
        view = f.peek_output()
        if not view:
            return bytes(out)
        sent = min(step, len(view))
        out += view[:sent]
        f.consume_output(sent)


# ------------------------------------------------------------------- push


def test_push_then_take_everything() -> None:
    f = framer()
    f.push(b"220 ready\r\n")
    f.push(bytearray(b"250 ok\r\n"))
    assert f.pending_output == 19
    assert f.data_to_send() == b"220 ready\r\n250 ok\r\n"
    assert f.pending_output == 0
    assert f.data_to_send() == b""


@pytest.mark.parametrize("bad", ["text", 5, None, [b"x"], 1.0])
def test_push_refuses_non_bytes_naming_the_type(bad: object) -> None:
    f = framer()
    with pytest.raises(TypeError, match=type(bad).__name__):
        f.push(bad)  # type: ignore[arg-type]
    assert f.pending_output == 0


def test_a_mutable_buffer_is_protected_after_push() -> None:
    f = framer()
    buf = bytearray(b"original")
    f.push(buf)
    buf[:] = b"CHANGED!"
    view_source = bytearray(b"view")
    f.push(memoryview(view_source))
    view_source[0] = ord("X")
    assert f.data_to_send() == b"originalview"


def test_data_to_send_takes_at_most_max_bytes() -> None:
    f = framer()
    f.push(b"abcdef")
    f.push(b"ghij")
    assert f.data_to_send(4) == b"abcd"
    assert f.data_to_send(4) == b"efgh"
    assert f.data_to_send(4) == b"ij"
    assert f.data_to_send(0) == b""


# -------------------------------------------------------------- producers


def test_producers_are_pulled_only_when_output_is_asked_for() -> None:
    f = framer()
    p = Chunks(b"one", b"two")
    f.push_with_producer(p)
    assert p.calls == 0
    assert f.data_to_send() == b"onetwo"
    assert p.calls == 3  # the third call said it was exhausted


def test_a_producer_is_never_pulled_before_its_turn() -> None:
    f = framer()
    f.push(b"x" * 100)
    p = Chunks(b"late")
    f.push_with_producer(p)
    assert f.data_to_send(100) == b"x" * 100
    assert p.calls == 0
    assert f.data_to_send(2) == b"la"
    assert f.data_to_send() == b"te"


def test_pulls_stop_once_enough_is_gathered() -> None:
    f = framer()
    p = Endless(chunk=1000)
    f.push_with_producer(p)
    assert len(f.data_to_send(2500)) == 2500
    assert p.calls == 3  # never more than asked for plus one more() call
    assert f.pending_output == 500  # the rest of the third chunk, still queued


def test_push_with_producer_accepts_bytes_as_asynchat_did() -> None:
    f = framer()
    f.push_with_producer(b"plain")
    assert f.data_to_send() == b"plain"


def test_push_with_producer_refuses_objects_without_more() -> None:
    with pytest.raises(TypeError, match="more"):
        framer().push_with_producer(object())  # type: ignore[arg-type]


def test_simple_producer_gives_buffer_size_pieces() -> None:
    p = simple_producer(b"abcdefg", buffer_size=3)
    assert [p.more(), p.more(), p.more(), p.more()] == [b"abc", b"def", b"g", b""]


class Raises:
    def more(self) -> bytes:
        raise OSError("disk gone")


class ReturnsStr:
    def more(self) -> str:
        return "text"


class ReturnsNone:
    def more(self) -> None:
        return None


@pytest.mark.parametrize("bad", [Raises(), ReturnsStr(), ReturnsNone()])
def test_a_broken_producer_is_named_and_nothing_before_it_is_lost(bad: object) -> None:
    f = framer()
    f.push(b"before")
    f.push_with_producer(bad)  # type: ignore[arg-type]
    f.push(b"after")
    with pytest.raises(ProducerError) as info:
        f.data_to_send()
    assert repr(bad) in str(info.value)
    assert f.data_to_send() == b"beforeafter"


def test_a_producer_error_chains_the_original_exception() -> None:
    f = framer()
    f.push_with_producer(Raises())
    with pytest.raises(ProducerError) as info:
        f.data_to_send()
    assert isinstance(info.value.__cause__, OSError)


# ---------------------------------------------------------- partial sends


def test_peek_then_consume_models_a_partial_send() -> None:
    f = framer()
    f.push(b"hello world")
    view = f.peek_output()
    assert bytes(view) == b"hello world"
    f.consume_output(5)  # the socket took 5 bytes
    assert bytes(f.peek_output()) == b" world"
    assert f.pending_output == 6


def test_peek_is_idempotent_until_consume() -> None:
    f = framer()
    f.push(b"a")
    f.push(b"b")
    first = f.peek_output()
    assert f.peek_output() is first
    assert bytes(first) == b"ab"  # small pushes are joined into one send


def test_peek_shows_at_most_the_out_buffer_size() -> None:
    f = framer(out_buffer_size=4)
    f.push(b"0123456789")
    assert bytes(f.peek_output()) == b"0123"


def test_consuming_more_than_was_peeked_is_an_error() -> None:
    f = framer()
    f.push(b"abc")
    f.peek_output()
    with pytest.raises(ValueError):
        f.consume_output(4)
    with pytest.raises(ValueError):
        f.consume_output(-1)


def test_a_big_buffer_sent_in_many_partial_sends_is_not_copied() -> None:
    f = framer(out_buffer_size=1 << 20)
    payload = bytes(100 << 20)  # 100 MiB
    f.push(payload)
    tracemalloc.start()
    try:
        sent = 0
        for _ in range(1000):
            view = f.peek_output()
            f.consume_output(len(view) // 10 or len(view))
            sent += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # views only: no slice of the 100 MiB was copied
    assert f.pending_output < len(payload)


@given(
    st.lists(
        st.one_of(
            st.binary(max_size=50).map(lambda b: ("push", b)),
            st.lists(st.binary(min_size=1, max_size=30), max_size=5).map(lambda c: ("prod", c)),
        ),
        max_size=20,
    ),
    st.lists(st.tuples(st.booleans(), st.integers(0, 80)), min_size=1, max_size=60),
    st.integers(1, 64),
)
def test_any_interleaving_sends_exactly_what_was_queued(
    ops: list[Any], takes: list[tuple[bool, int]], obs: int
) -> None:
    f = framer(out_buffer_size=obs)
    expected = bytearray()
    for kind, value in ops:
        if kind == "push":
            f.push(value)
            expected += value
        else:
            f.push_with_producer(Chunks(*value))
            expected += b"".join(value)
    out = bytearray()
    for use_peek, size in takes:
        if use_peek:
            view = f.peek_output()
            n = min(size, len(view))
            out += view[:n]
            f.consume_output(n)
        else:
            out += f.data_to_send(size)
    out += f.data_to_send()
    assert bytes(out) == bytes(expected)
    assert f.pending_output == 0


def test_a_huge_lazy_producer_costs_one_chunk_of_memory() -> None:
    f = framer(out_buffer_size=1)
    f.push_with_producer(Endless(chunk=4096, size=10 << 20))
    tracemalloc.start()
    try:
        for _ in range(20000):
            view = f.peek_output()
            f.consume_output(len(view))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024
    assert f.pending_output < 4096


# ------------------------------------------------------------ water marks


def test_writing_pauses_above_high_water_and_resumes_at_low() -> None:
    f = framer()
    f.set_write_buffer_limits(high=100, low=20)
    assert f.get_write_buffer_limits() == (20, 100)
    f.push(b"x" * 100)
    assert not f.writing_paused
    f.push(b"x")
    assert f.writing_paused
    f.data_to_send(60)
    assert f.writing_paused  # 41 left: still above low
    f.data_to_send(21)
    assert not f.writing_paused


def test_bad_water_marks_are_refused() -> None:
    with pytest.raises(ValueError):
        framer().set_write_buffer_limits(high=10, low=20)


# -------------------------------------------------------- closing, discard


def test_close_when_done_waits_for_queued_output() -> None:
    f = framer()
    f.push(b"221 bye\r\n")
    f.push_with_producer(Chunks(b"tail"))
    f.close_when_done()
    assert f.closing and not f.should_close
    assert f.data_to_send(5) == b"221 b"
    assert not f.should_close
    assert f.data_to_send() == b"ye\r\ntail"
    assert f.should_close


def test_pushes_after_close_when_done_are_dropped_and_counted() -> None:
    f = framer()
    f.push(b"answer")
    f.close_when_done()
    f.push(b"late")
    late = Chunks(b"late")
    f.push_with_producer(late)
    assert f.dropped_after_close == 2
    assert f.data_to_send() == b"answer"
    assert f.should_close
    assert late.calls == 0


def test_sized_producers_count_towards_the_water_marks() -> None:
    f = framer()
    f.set_write_buffer_limits(100, 10)
    f.push_with_producer(simple_producer(b"x" * 150, 40))
    assert (f.pending_output, f.promised_output) == (0, 150)
    assert f.writing_paused
    assert f.data_to_send(40) == b"x" * 40
    assert (f.pending_output, f.promised_output) == (0, 110)
    assert f.data_to_send(100) == b"x" * 100  # the last pull made 30, 20 taken
    assert (f.pending_output, f.promised_output) == (10, 0)
    assert not f.writing_paused
    assert f.data_to_send() == b"x" * 10
    assert (f.pending_output, f.promised_output) == (0, 0)


def test_a_producer_without_a_hint_counts_as_one_take_until_it_has_made_that_much() -> None:
    f = Framer(b"\n", out_buffer_size=100)
    f.set_write_buffer_limits(150, 10)
    f.push_with_producer(Chunks(b"a" * 60, b"b" * 60, b"c"))
    assert (f.pending_output, f.promised_output) == (0, 100)
    assert not f.writing_paused
    f.push_with_producer(Chunks(b"unsized"))
    assert f.promised_output == 200 and f.writing_paused  # two queued: over the high mark
    assert f.data_to_send(60) == b"a" * 60
    assert (f.pending_output, f.promised_output) == (0, 140)  # 60 made of its 100
    assert f.data_to_send(61) == b"b" * 60 + b"c"
    assert (f.pending_output, f.promised_output) == (0, 100)  # it made 121 > 100: only the other counts
    assert f.data_to_send() == b"unsized"
    assert (f.pending_output, f.promised_output) == (0, 0)
    assert not f.writing_paused


def test_a_flood_of_unhinted_producers_holds_input_like_bytes_would() -> None:
    """A peer that pipelines requests answered by producers without a hint, and
    reads nothing: the queue's count reaches the hold bound, as bytes would."""
    f = Framer(b"\n", out_buffer_size=1024)
    f.hold_input_above = 64 * 1024
    queued = 0
    while not f.input_hold:
        f.push_with_producer(Chunks(b"answer"))
        queued += 1
    assert queued == 65  # 64 KiB of nominal cost, then one more passes the bound


def test_a_failing_sized_producer_takes_its_promise_with_it() -> None:
    class Broken:
        def __length_hint__(self) -> int:
            return 50

        def more(self) -> bytes:
            raise OSError("disk gone")

    f = framer()
    f.push_with_producer(Broken())
    f.push_with_producer(simple_producer(b"y" * 5))
    assert f.promised_output == 55
    with pytest.raises(ProducerError):
        f.data_to_send()
    assert f.promised_output == 5
    f.discard_buffers()
    assert f.promised_output == 0


def test_discard_buffers_drops_output_but_keeps_a_close_request() -> None:
    f = framer()
    f.push(b"abc")
    f.push_with_producer(Endless())
    f.discard_buffers()
    assert f.pending_output == 0 and f.data_to_send() == b""
    f.push(b"again")
    f.close_when_done()
    f.discard_buffers()
    assert f.should_close


def test_discard_buffers_mid_send() -> None:
    f = framer()
    f.push(b"0123456789")
    f.peek_output()
    f.consume_output(3)
    f.discard_buffers()
    assert f.peek_output().nbytes == 0
    f.push(b"new")
    assert f.data_to_send() == b"new"


class Reentrant:
    def __init__(self, f: Framer) -> None:
        self.f = f
        self.done = False

    def more(self) -> bytes:
        if self.done:
            return b""
        self.done = True
        self.f.push(b"[pushed during more]")
        return b"produced"


def test_pushes_from_inside_a_producer_go_after_it() -> None:
    f = framer()
    f.push_with_producer(Reentrant(f))
    assert f.data_to_send() == b"produced[pushed during more]"


def test_taking_output_from_inside_a_producer_is_refused() -> None:
    f = framer()

    class Grabby:
        def more(self) -> bytes:
            return f.data_to_send()

    f.push_with_producer(Grabby())
    with pytest.raises(ProducerError):
        f.data_to_send()


def iter_drain(f: Framer, step: int) -> Iterator[bytes]:
    while f.has_output:
        yield f.data_to_send(step)


def test_has_output_counts_producers_not_yet_pulled() -> None:
    f = framer()
    f.push_with_producer(Chunks(b"a", b"b"))
    assert f.pending_output == 0 and f.has_output
    assert b"".join(iter_drain(f, 1)) == b"ab"


# ------------------------------------------------------------------ wake-ups


@pytest.mark.parametrize(
    "queue_something",
    [
        lambda f: f.push(b"x"),
        lambda f: f.push_with_producer(Chunks(b"x")),
        lambda f: f.close_when_done(),
    ],
    ids=["push", "producer", "close_when_done"],
)
def test_on_output_ready_fires_once_when_an_idle_queue_gets_output(queue_something: object) -> None:
    f = framer()
    calls: list[None] = []
    f.on_output_ready = lambda: calls.append(None)
    queue_something(f)  # type: ignore[operator]
    assert calls == [None]
    if not f.closing:
        f.push_with_producer(Chunks(b"y"))
        f.push(b"z")
    f.close_when_done()
    assert calls == [None]  # busy already: no second wake-up


def test_on_output_ready_fires_again_once_the_queue_was_emptied() -> None:
    f = framer()
    calls: list[None] = []
    f.on_output_ready = lambda: calls.append(None)
    f.push(b"ab")
    assert f.data_to_send() == b"ab"
    f.push(b"cd")
    assert len(calls) == 2


# ---------------------------------------------------------------- taking out


def test_taking_exactly_what_was_queued_reaches_the_close() -> None:
    f = framer()
    f.push(b"ab")
    f.close_when_done()
    out = f.data_to_send(2)
    assert out == b"ab"
    assert type(out) is bytes
    assert not f.has_output
    assert f.should_close


def test_part_of_one_push_is_returned_as_bytes() -> None:
    f = framer()
    f.push(b"abcdef")
    out = f.data_to_send(2)
    assert type(out) is bytes and out == b"ab"


def test_a_bytes_subclass_is_queued_as_plain_bytes() -> None:
    class Tagged(bytes):
        pass

    f = framer()
    f.push(Tagged(b"ab"))
    out = f.data_to_send()
    assert out == b"ab" and type(out) is bytes


def test_consume_output_checks_its_argument() -> None:
    f = framer()
    f.push(b"abc")
    with pytest.raises(ValueError, match="showed 0 bytes"):
        f.consume_output(1)  # nothing was peeked
    f.peek_output()
    if not sanschat.compiled:  # the compiled core takes a bool as the int it is
        with pytest.raises(TypeError):
            f.consume_output(True)
    f.consume_output(0)
    assert f.pending_output == 3


# --------------------------------------------------------------- water marks


def test_the_default_water_marks_are_asyncios() -> None:
    f = framer()
    assert f.get_write_buffer_limits() == (16384, 65536)
    f.set_write_buffer_limits(low=100)
    assert f.get_write_buffer_limits() == (100, 400)
    f.set_write_buffer_limits(high=100)
    assert f.get_write_buffer_limits() == (25, 100)
    f.set_write_buffer_limits()
    assert f.get_write_buffer_limits() == (16384, 65536)


def test_equal_and_zero_water_marks_are_allowed() -> None:
    f = framer()
    f.set_write_buffer_limits(10, 10)
    assert f.get_write_buffer_limits() == (10, 10)
    f.set_write_buffer_limits(0, 0)
    f.push(b"x")
    assert f.writing_paused is True
    f.data_to_send()
    assert f.writing_paused is False


def test_writing_pauses_only_above_the_high_mark() -> None:
    f = framer()
    f.set_write_buffer_limits(4, 1)
    f.push(b"abcd")
    assert f.writing_paused is False  # at the mark, not above
    f.push(b"e")
    assert f.writing_paused is True


def test_lowering_the_high_mark_below_what_is_pending_pauses() -> None:
    f = framer()
    f.push(b"x" * 10)
    assert not f.writing_paused
    f.set_write_buffer_limits(4, 1)
    assert f.writing_paused is True


# ------------------------------------------------------------ simple_producer


def test_simple_producer_copies_a_mutable_buffer() -> None:
    data = bytearray(b"abc")
    p = simple_producer(data)
    data[0:1] = b"X"
    assert p.more() == b"abc"


def test_simple_producer_defaults_to_512_byte_pieces_and_accepts_one() -> None:
    assert len(simple_producer(b"x" * 600).more()) == 512
    one = simple_producer(b"ab", 1)
    assert [one.more(), one.more(), one.more()] == [b"a", b"b", b""]


# ------------------------------------------------------- holding input, bounds


class Hinted:
    """A producer that says it holds ``hint`` bytes and gives ``chunks``."""

    def __init__(self, hint: int, *chunks: bytes) -> None:
        self.hint = hint
        self.chunks = list(chunks)

    def __length_hint__(self) -> int:
        return self.hint

    def more(self) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


def test_input_is_held_only_above_the_bound_and_released_at_it() -> None:
    f = framer()
    f.hold_input_above = 10
    f.push(b"x" * 11)
    assert f.input_hold is True  # a push past the bound
    f.data_to_send(1)
    assert f.input_hold is False
    f.data_to_send()
    f.push(b"x" * 10)
    assert f.input_hold is False  # at the bound, not above
    f.push_with_producer(Hinted(5, b"12345"))
    assert f.input_hold is True  # 10 queued + 5 promised
    assert f.data_to_send(5) == b"x" * 5
    assert f.input_hold is False  # back to 10
    f.hold_input_above = None
    f.push(b"y" * 100)
    assert f.input_hold is False
    f.close_when_done()
    assert f.input_hold is True  # closing always holds input


def test_the_output_limit_calls_back_only_above_it() -> None:
    f = framer()
    calls: list[None] = []
    f.output_limit = 10
    f.on_output_overflow = lambda: calls.append(None)
    f.push(b"x" * 5)
    f.push_with_producer(Hinted(4))  # 9: under the limit
    f.push_with_producer(Hinted(1))  # 10: exactly at it
    f.push_with_producer(Hinted(0))
    assert calls == []
    f.push_with_producer(Hinted(1))  # 11
    assert calls == [None]
    f.push(b"z")
    assert calls == [None, None]
    assert f.output_limit == 10


def test_promised_output_is_returned_when_a_producer_ends_early_or_fails() -> None:
    f = framer()
    f.push_with_producer(Hinted(100, b"only ten b"))
    f.push_with_producer(Hinted(7, b"seven b"))
    assert f.promised_output == 107
    assert f.data_to_send(10) == b"only ten b"
    assert f.promised_output == 97
    assert f.data_to_send(1) == b"s"  # the first ends (90 promised, never made); the second is pulled
    assert (f.pending_output, f.promised_output) == (6, 0)
    assert f.data_to_send() == b"even b"
    assert f.promised_output == 0

    class ReturnsText(Hinted):
        def more(self) -> bytes:
            return "text"  # type: ignore[return-value]

    f.push_with_producer(ReturnsText(30))
    f.push_with_producer(Hinted(4, b"four"))
    with pytest.raises(ProducerError, match=r"returned str, not bytes$"):
        f.data_to_send()
    assert f.promised_output == 4


def test_every_dropped_push_is_counted() -> None:
    f = framer()
    f.close_when_done()
    f.push(b"a")
    f.push(b"b")
    f.push_with_producer(Chunks(b"c"))
    assert f.dropped_after_close == 3


def test_the_default_low_mark_is_an_int() -> None:
    f = framer()
    f.set_write_buffer_limits(high=101)
    low, high = f.get_write_buffer_limits()
    assert (low, high) == (25, 101) and type(low) is int
    with pytest.raises(ValueError, match="^need high >= low >= 0, got high=1 low=2$"):
        f.set_write_buffer_limits(1, 2)


def test_output_error_messages() -> None:
    f = framer()
    f.push(b"abc")
    f.peek_output()
    with pytest.raises(TypeError, match="^sent must be an int, not str$" if not sanschat.compiled else "int"):
        f.consume_output("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^a producer needs a more\\(\\) method; int has none$"):
        f.push_with_producer(5)  # type: ignore[arg-type]

    class Boom:
        def more(self) -> bytes:
            raise OSError("disk gone")

    f.push_with_producer(Boom())
    with pytest.raises(ProducerError, match=r"raised OSError\('disk gone'\)$"):
        f.data_to_send()

    class Greedy:
        def more(self) -> bytes:
            return f.data_to_send()

    f.push_with_producer(Greedy())
    with pytest.raises(ProducerError) as caught:
        f.data_to_send()
    assert "output is already being taken (re-entrant call)" in str(caught.value.__cause__)


def test_simple_producer_keeps_its_data_attribute_and_hints_what_is_left() -> None:
    data = b"abcdef"
    producer = simple_producer(data, 2)
    assert producer.data is data
    assert producer.more() == b"ab"
    assert length_hint(producer) == 4


def test_a_peek_leaves_the_water_marks_and_the_hold_as_they_were() -> None:
    """Found by the reference model: peek_output cleared writing_paused and
    input_hold although nothing was sent."""
    f = Framer(None)
    f.set_write_buffer_limits(high=8, low=2)
    f.hold_input_above = 2
    f.push(b"x" * 10)
    assert f.writing_paused and f.input_hold
    assert bytes(f.peek_output()) == b"x" * 10
    assert f.writing_paused and f.input_hold and f.pending_output == 10
    f.consume_output(9)
    assert not f.writing_paused and not f.input_hold


def test_push_frame_refuses_a_payload_that_would_not_read_back() -> None:
    """Found by the reference model: under a self-overlapping delimiter, b"ab"
    + b"aba" reads back as an empty frame."""
    f = Framer(b"aba")
    with pytest.raises(ValueError, match="delimiter"):
        f.push_frame(b"ab")
    f.push_frame(b"b")
    assert f.data_to_send() == b"baba"
    f.receive_data(b"baba")
    assert f.next_event() == Frame(b"b")
