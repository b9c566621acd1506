"""Rules of the sans-IO core that no other test held.

Each test here pins one behaviour that a mutation of the core broke while the
rest of the suite still passed (mutmut 3.8.1, the ``mutation`` profile): the
promises the batch path makes to ``read_exactly``, bytes kept aside while the
receive buffer grows in place, the first bytes of a streamed frame refused at
the end of the stream, the output queue's thresholds at their exact values
when another, lower threshold is also set, takes around a producer whose
``more()`` discards the queue, and the marker of an output switch (the point
where a TLS upgrade's output begins).
"""

from __future__ import annotations

import pytest

from sanschat import (
    NEED_DATA,
    Data,
    EndOfStream,
    Frame,
    Framer,
    FrameTooLarge,
    LengthPrefix,
    MalformedFrame,
    ProducerError,
    simple_producer,
)

from .test_reentrancy import Calling


def ready(f: Framer) -> list[object]:
    """The events ready now, up to (not including) NEED_DATA."""
    events: list[object] = []
    while (event := f.next_event()) is not NEED_DATA:
        events.append(event)
    return events


# ----------------------------------------------------- the batch path's promises


def test_a_batch_used_up_leaves_no_promise_for_the_next_one() -> None:
    f = Framer(b"\n")
    f.receive_data(b"a\nb\nc\n")  # three lines at once: split as one batch
    assert ready(f) == [Frame(b"a"), Frame(b"b"), Frame(b"c")]
    f.receive_data(b"d\ne\nf\n")  # the next batch
    assert f.next_event() == Frame(b"d")
    assert f.get_terminator() == b"\n"  # no read_exactly was asked for
    f.discard_buffers()
    f.receive_data(b"xyz\n")
    assert f.next_event() == Frame(b"xyz")  # a line, not a 1-byte value


def test_a_batch_cut_short_leaves_no_promise_for_the_next_one() -> None:
    f = Framer(b"\n")
    f.receive_data(b"x\n" * 300)
    for _ in range(260):
        assert f.next_event() == Frame(b"x")
    # More input settles the batch; the 260 lines it delivered keep the
    # window wide enough that the rest is split as a new batch.
    f.receive_data(b"y\n" * 300)
    assert f.next_event() == Frame(b"x")
    assert f.get_terminator() == b"\n"
    f.discard_buffers()
    f.receive_data(b"xyz\n")
    assert f.next_event() == Frame(b"xyz")


def test_a_streamed_read_exactly_under_a_pending_batch_is_streamed() -> None:
    f = Framer(b"\n")
    f.receive_data(b"a\nxyz\nb\n")
    assert f.next_event() == Frame(b"a")  # "xyz\n" and "b\n" wait in a batch
    f.read_exactly(3, b"\n", stream=True)
    assert f.stream is True
    assert f.next_event() == Frame(b"xyz")
    assert f.stream is False  # the lines' own mode again
    assert f.next_event() == Frame(b"b")


def test_an_empty_value_promised_from_a_batch_survives_more_input() -> None:
    f = Framer(b"\n")
    f.receive_data(b"a\n\nb\n")
    assert f.next_event() == Frame(b"a")
    f.read_exactly(0, b"\n")  # the next line is empty: it is the value
    f.receive_data(b"c\n")
    assert f.get_terminator() == 0
    assert ready(f) == [Frame(b""), Frame(b"b"), Frame(b"c")]
    assert f.get_terminator() == b"\n"


def test_a_value_promised_from_a_batch_stays_whole_after_more_input() -> None:
    f = Framer(b"\n")
    f.receive_data(b"a\nxyz\nb\n")
    assert f.next_event() == Frame(b"a")
    f.read_exactly(3, b"\n")
    f.receive_data(b"c\n")
    assert f.stream is False
    assert f.get_terminator() == 3
    assert ready(f) == [Frame(b"xyz"), Frame(b"b"), Frame(b"c")]


# ------------------------------------------- bytes kept aside, a growing buffer


def test_a_new_terminator_gets_back_the_bytes_kept_aside_while_the_buffer_grows() -> None:
    f = Framer(b"\n")
    f.read_exactly(10000)
    f.receive_data(b"x" * 5000)
    assert f.next_event() is NEED_DATA  # the 5000 bytes are kept aside
    f.receive_data(b"y" * 100)
    f.receive_data(b"z" * 50)  # more held than this chunk: the buffer grows in place
    f.set_terminator(b"\n")
    assert f.pending_input == 5150
    f.receive_data(b"\n")
    assert f.next_event() == Frame(b"x" * 5000 + b"y" * 100 + b"z" * 50)


def test_a_value_is_kept_aside_from_a_buffer_that_grows_in_place() -> None:
    f = Framer(b"\n")
    f.read_exactly(10000)
    f.receive_data(b"y" * 100)
    assert f.next_event() is NEED_DATA
    f.receive_data(b"z" * 50)  # more held than this chunk: the buffer grows in place
    f.receive_data(b"w" * 5000)
    assert f.next_event() is NEED_DATA  # 5150 bytes now kept aside
    assert f.pending_input == 5150
    f.receive_data(b"v" * 4850)
    assert f.next_event() == Frame(b"y" * 100 + b"z" * 50 + b"w" * 5000 + b"v" * 4850)


# --------------------------------------------------- limits and the end of stream


def test_a_streamed_frame_past_the_limit_is_refused_at_the_end_of_the_stream() -> None:
    f = Framer(b"\n", stream=True, max_frame_size=3)
    f.receive_data(b"ab")
    assert f.next_event() == Data(b"ab")
    f.receive_data(b"cdef")
    f.receive_data(b"")
    assert f.next_event() == Data(b"c")  # up to the limit, as in any chunking
    with pytest.raises(FrameTooLarge):
        f.next_event()
    assert f.next_event() == EndOfStream(b"")


def test_bytes_streamed_before_a_switch_to_whole_mode_count_towards_the_limit() -> None:
    f = Framer(b"\n", stream=True, max_frame_size=4)
    f.receive_data(b"ab")
    assert f.next_event() == Data(b"ab")
    f.set_terminator(b"\n", stream=False)  # the same line goes on, whole
    f.receive_data(b"cde")
    with pytest.raises(FrameTooLarge):
        f.next_event()  # 2 + 3 bytes: past the limit
    f.receive_data(b"f\nok\n")
    assert ready(f) == [Frame(b"ok")]


def test_a_limit_lowered_after_a_header_parsed_refuses_that_frame() -> None:
    f = Framer(LengthPrefix(1))
    f.receive_data(b"\x05ab")  # a 5-byte frame announced, 2 bytes of it here
    assert f.next_event() is NEED_DATA
    f.max_frame_size = 2
    f.receive_data(b"cde\x01z")
    with pytest.raises(FrameTooLarge):
        f.next_event()
    assert f.next_event() == Frame(b"z")  # the refused frame was skipped


def test_a_limit_lowered_below_what_a_streamed_frame_released_refuses_it_in_whole_mode_too() -> None:
    f = Framer(b"\n", stream=True)
    f.receive_data(b"abcde")
    assert f.next_event() == Data(b"abcde")
    f.set_terminator(b"\n", stream=False)  # the rest of this line comes whole
    f.max_frame_size = 3
    with pytest.raises(FrameTooLarge):
        f.next_event()  # 5 bytes of it are out already: no need to wait for more
    f.receive_data(b"fg\nok\n")
    assert ready(f) == [Frame(b"ok")]  # the rest of the refused line was skipped


def test_a_streamed_value_goes_out_before_its_bad_trailer_is_refused() -> None:
    f = Framer(b"\n", stream=True)
    f.read_exactly(3, b"\r\n")
    f.receive_data(b"abc\rX\n")  # the whole value, then a wrong trailer
    assert f.next_event() == Data(b"abc")
    with pytest.raises(MalformedFrame):
        f.next_event()
    assert f.next_event() == Data(b"\rX\n")  # from the bad trailer on: Data


def test_the_end_of_the_stream_is_repeated_after_a_streamed_header_frame_it_cut() -> None:
    f = Framer(LengthPrefix(1), stream=True)
    f.receive_data(b"\x05ab")
    assert f.next_event() == Data(b"ab")
    f.receive_data(b"")
    assert f.next_event() == EndOfStream(b"")
    assert f.next_event() == EndOfStream(b"")


# ------------------------------------------------------------------ the output


def test_output_queued_after_discard_buffers_can_go_out_in_part() -> None:
    f = Framer(b"\n")
    f.push(b"abc")
    assert f.data_to_send(1) == b"a"  # a head partly sent
    f.discard_buffers()
    f.push(b"abcdef")
    assert f.data_to_send(2) == b"ab"
    assert bytes(f.peek_output()) == b"cdef"
    f.consume_output(1)
    assert f.data_to_send() == b"def"


def test_writing_pauses_above_the_high_mark_not_at_it_under_a_lower_hold_bound() -> None:
    f = Framer(b"\n")
    f.set_write_buffer_limits(10, 2)
    f.hold_input_above = 4
    f.push(b"x" * 10)
    assert f.input_hold is True  # above the hold bound
    assert f.writing_paused is False  # at the high mark, not above
    f.push(b"x")
    assert f.writing_paused is True


def test_input_is_held_above_the_bound_not_at_it_under_a_lower_high_mark() -> None:
    f = Framer(b"\n")
    f.set_write_buffer_limits(4, 1)
    f.hold_input_above = 10
    f.push(b"x" * 10)
    assert f.writing_paused is True  # above the high mark
    assert f.input_hold is False  # at the hold bound, not above
    f.push(b"x")
    assert f.input_hold is True


def test_output_at_the_output_limit_is_no_overflow_under_a_lower_high_mark() -> None:
    f = Framer(b"\n")
    calls: list[None] = []
    f.on_output_overflow = lambda: calls.append(None)
    f.set_write_buffer_limits(4, 1)
    f.output_limit = 10
    f.push(b"x" * 10)
    assert f.writing_paused is True
    assert calls == []  # at the limit, not above
    f.push(b"x")
    assert calls == [None]


def test_passing_the_high_mark_is_no_overflow_without_an_output_limit() -> None:
    f = Framer(b"\n")
    calls: list[None] = []
    f.on_output_overflow = lambda: calls.append(None)
    f.set_write_buffer_limits(4, 1)
    f.push(b"x" * 100)
    assert f.writing_paused is True
    assert calls == []


def test_input_stays_held_after_close_when_done_while_output_is_taken() -> None:
    f = Framer(b"\n")
    f.push(b"abc")
    f.close_when_done()
    assert f.data_to_send(1) == b"a"
    assert f.input_hold is True
    assert f.data_to_send() == b"bc"
    assert f.should_close is True
    assert f.input_hold is True


def test_lowering_the_hold_bound_below_what_is_pending_holds_input() -> None:
    f = Framer(b"\n")
    f.push(b"x" * 10)
    assert f.input_hold is False
    f.hold_input_above = 4
    assert f.input_hold is True


class Failing:
    """A producer whose ``more()`` raises."""

    def more(self) -> bytes:
        raise OSError("disk gone")


def test_a_bounded_take_after_a_producer_discarded_the_queue_gives_all_it_asked_for() -> None:
    f = Framer(b"\n")

    def discard_then_answer() -> None:
        f.discard_buffers()
        f.push(b"ERR\n")

    f.push_with_producer(Calling(discard_then_answer))
    assert f.data_to_send(3) == b"ERR"  # all three bytes, from what came after the discard
    assert f.data_to_send() == b"\n"


def test_output_queued_by_more_after_its_discard_survives_a_later_producer_failing() -> None:
    f = Framer(b"\n")

    def discard_answer_then_queue_a_failing_producer() -> None:
        f.discard_buffers()
        f.push(b"ERR\n")
        f.push_with_producer(Failing())

    f.push(b"before,")
    f.push_with_producer(Calling(discard_answer_then_queue_a_failing_producer))
    with pytest.raises(ProducerError):
        f.data_to_send()
    assert f.data_to_send() == b"ERR\n"  # gathered before the failure: put back, not lost


def test_promised_output_keeps_writing_paused_while_part_of_the_output_is_taken() -> None:
    f = Framer(b"\n")
    f.set_write_buffer_limits(64, 16)
    f.push(b"y" * 10)
    f.push_with_producer(simple_producer(b"x" * 100))  # 100 bytes promised
    assert f.writing_paused is True
    assert f.data_to_send(1) == b"y"
    assert f.writing_paused is True  # 9 queued + 100 promised: still above the high mark


# ----------------------------------------- the output switch (a TLS upgrade's)


def test_an_output_switch_marked_on_an_idle_queue_wakes_the_writer_once() -> None:
    f = Framer(b"\n")
    f._mark_switch()  # no on_output_ready set: nothing to call
    calls: list[None] = []
    g = Framer(b"\n")
    g.on_output_ready = lambda: calls.append(None)
    g._mark_switch()
    assert calls == [None]  # idle: the writer must come and pass the switch
    h = Framer(b"\n")
    h.push(b"clear")
    h.on_output_ready = lambda: calls.append(None)
    h._mark_switch()
    assert calls == [None]  # busy: the writer is coming anyway


def test_discard_buffers_keeps_a_pending_output_switch() -> None:
    f = Framer(b"\n")
    f.push(b"clear")
    f._mark_switch()
    f.push(b"secret")
    f.discard_buffers()
    assert f._at_switch is True
    assert f.data_to_send() == b""  # output stops at the switch
    f._pass_switch()
    f.push(b"encrypted")
    assert f.data_to_send() == b"encrypted"


def test_an_output_switch_once_passed_can_be_marked_again() -> None:
    f = Framer(b"\n")
    f._mark_switch()
    f._pass_switch()
    f._mark_switch()  # not "already pending"
    assert f._at_switch is True
