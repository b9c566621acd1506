"""A hypothesis state machine that interleaves every Framer operation, input
and output, and checks after each step that no byte was lost, duplicated or
reordered: the reference model is the plain concatenation of what went in."""

from __future__ import annotations

from itertools import islice

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

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
)
from sanschat._terminators import Terminator

chunks = st.lists(st.sampled_from([b"a", b"b", b"\r", b"\n"]), min_size=1, max_size=12).map(b"".join)
terminators = st.one_of(
    st.sampled_from([b"\n", b"\r\n", b"ab", b"aab", b"\r\n\r\n"]),
    st.integers(0, 9),
    st.none(),
)


class PartsProducer:
    def __init__(self, parts: list[bytes]) -> None:
        self.parts = list(parts)

    def more(self) -> bytes:
        return self.parts.pop(0) if self.parts else b""


class FramerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.framer = Framer(b"\n", max_frame_size=None)
        self.term: Terminator = b"\n"
        self.received = b""
        self.rebuilt = b""  # what the events account for, terminators included
        self.ended = False
        self.pushed = b""
        self.sent = b""

    # ------------------------------------------------------------ input

    @precondition(lambda self: not self.framer.eof_received)
    @rule(chunk=chunks)
    def receive(self, chunk: bytes) -> None:
        self.framer.receive_data(chunk)
        self.received += chunk

    # The end comes late, so that most runs exercise the framing before it.
    @precondition(lambda self: not self.framer.eof_received and len(self.received) > 60)
    @rule()
    def eof(self) -> None:
        self.framer.receive_data(b"")

    @rule(terminator=terminators, stream=st.booleans())
    def set_terminator(self, terminator: Terminator, stream: bool) -> None:
        self.framer.set_terminator(terminator, stream=stream)
        self.term = terminator

    def account(self, event: object) -> None:
        if type(event) is Frame:
            self.rebuilt += event.data
            if isinstance(self.term, bytes):
                assert self.term not in event.data
                self.rebuilt += self.term
            else:
                # A count frame holds exactly what the count had left.
                assert isinstance(self.term, int) and len(event.data) == self.term
                self.term = None  # a count completed
        elif type(event) is Data:
            self.rebuilt += event.data
            if isinstance(self.term, int):
                assert 0 < len(event.data) < self.term or self.framer.eof_received
                self.term -= len(event.data)
        else:
            assert type(event) is EndOfStream
            assert not self.ended or event.data == b""
            self.rebuilt += event.data
            self.ended = True

    @rule(limit=st.integers(1, 6))
    def next_events(self, limit: int) -> None:
        for _ in range(limit):
            event = self.framer.next_event()
            if event is NEED_DATA:
                return
            self.account(event)

    @precondition(lambda self: not self.framer.eof_received)
    @rule(chunk=chunks, limit=st.integers(1, 6))
    def receive_and_read(self, chunk: bytes, limit: int) -> None:
        self.receive(chunk)
        self.next_events(limit)

    @rule(limit=st.integers(1, 6), then_change=st.one_of(st.none(), terminators))
    def payloads(self, limit: int, then_change: Terminator | None) -> None:
        for payload in islice(self.framer.payloads(), limit):
            self.account(Frame(payload))
            if then_change is not None:  # inside the iteration: must stay exact
                self.set_terminator(then_change, False)

    # ----------------------------------------------------------- output

    @precondition(lambda self: not self.framer.closing)
    @rule(data=st.binary(max_size=20))
    def push(self, data: bytes) -> None:
        self.framer.push(data)
        self.pushed += data

    @precondition(lambda self: not self.framer.closing)
    @rule(parts=st.lists(st.binary(min_size=1, max_size=10), max_size=4))
    def push_producer(self, parts: list[bytes]) -> None:
        self.framer.push_with_producer(PartsProducer(parts))
        self.pushed += b"".join(parts)

    @rule(limit=st.integers(0, 30))
    def take(self, limit: int) -> None:
        self.sent += self.framer.data_to_send(limit)

    @rule(fraction=st.floats(0, 1))
    def partial_send(self, fraction: float) -> None:
        view = self.framer.peek_output()
        sent = int(len(view) * fraction)
        self.sent += bytes(view[:sent])
        self.framer.consume_output(sent)

    @rule()
    def close_when_done(self) -> None:
        self.framer.close_when_done()

    # ------------------------------------------------------- invariants

    @invariant()
    def input_is_conserved(self) -> None:
        assert self.received.startswith(self.rebuilt)
        assert len(self.rebuilt) + self.framer.pending_input == len(self.received)
        assert self.framer.bytes_discarded == 0

    @invariant()
    def output_is_a_prefix_of_what_was_queued(self) -> None:
        assert self.pushed.startswith(self.sent)
        assert self.framer.pending_output <= len(self.pushed) - len(self.sent)

    def teardown(self) -> None:
        rest = self.framer.data_to_send()
        assert self.sent + rest == self.pushed
        if self.framer.closing:
            assert self.framer.should_close


FramerMachine.TestCase.settings = settings(
    max_examples=min(300, 3 * settings().max_examples), stateful_step_count=40, deadline=None
)
test_framer_state_machine = FramerMachine.TestCase


# ------------------------------------------------------------------ recovery

# Every kind, with a small limit, so refusals and malformed frames are common.
recovery_terminators = st.one_of(
    st.sampled_from([b"\n", b"ab", b"aab"]),
    st.integers(0, 9),
    st.none(),
    st.sampled_from([AnyDelimiter(b"\n", b"ab"), LengthPrefix(1), Netstring(), Varint()]),
)
recovery_chunks = st.lists(
    st.sampled_from([b"a", b"b", b"\n", b"\x03", b"\x09", b"1", b"3", b":", b","]), min_size=1, max_size=12
).map(b"".join)


class RecoveryMachine(RuleBasedStateMachine):
    """Errors, then any terminator, limit or discard, then more input: after
    every step each byte received is delivered, consumed as framing, counted
    in ``bytes_discarded`` or still pending, exactly once."""

    def __init__(self) -> None:
        super().__init__()
        self.framer = Framer(b"\n", max_frame_size=4)
        self.term: object = b"\n"
        self.received = 0
        self.delivered = 0
        self.framing = 0
        self.in_frame = b""  # payload released as Data in the frame in progress
        self.ended = False
        # A read_exactly in force: its trailer, and the terminator after it.
        self.exact: tuple[bytes, object] | None = None

    @precondition(lambda self: not self.framer.eof_received)
    @rule(chunk=recovery_chunks)
    def receive(self, chunk: bytes) -> None:
        self.framer.receive_data(chunk)
        self.received += len(chunk)

    @precondition(lambda self: not self.framer.eof_received and self.received > 40)
    @rule()
    def eof(self) -> None:
        self.framer.receive_data(b"")

    @rule(terminator=recovery_terminators, stream=st.booleans())
    def set_terminator(self, terminator: Terminator, stream: bool) -> None:
        self.framer.set_terminator(terminator, stream=stream)
        self.term = terminator
        self.exact = None

    @rule(count=st.integers(0, 8), trailer=st.sampled_from([b"", b"\n", b"ab"]), stream=st.booleans())
    def read_exactly(self, count: int, trailer: bytes, stream: bool) -> None:
        self.framer.read_exactly(count, trailer, stream=stream)
        after = self.exact[1] if self.exact is not None else self.term
        self.exact = (trailer, after)
        self.term = count

    @rule(limit=st.one_of(st.none(), st.integers(0, 12)))
    def set_limit(self, limit: int | None) -> None:
        self.framer.max_frame_size = limit

    @rule(threshold=st.integers(1, 6))
    def keep_counted_bytes_aside(self, threshold: int) -> None:
        # The threshold is 4096 in use; small here, so that a whole-mode count
        # keeps parts aside across every other step.
        self.framer._keep_aside_from = threshold

    @rule()
    def discard(self) -> None:
        self.framer.discard_buffers()
        self.in_frame = b""

    def account(self, event: object) -> None:
        self.delivered += len(event.data)  # type: ignore[attr-defined]
        if type(event) is Data:
            self.in_frame += event.data
        elif type(event) is Frame:
            payload, self.in_frame = self.in_frame + event.data, b""
            if self.exact is not None:
                self.framing += len(self.exact[0])
                self.term, self.exact = self.exact[1], None
            elif isinstance(self.term, bytes):
                self.framing += len(self.term)
            elif isinstance(self.term, AnyDelimiter):
                assert event.terminator in self.term.delimiters
                self.framing += len(event.terminator)
            elif isinstance(self.term, HeaderKind):
                self.framing += len(self.term.encode(payload)) - len(payload)
            else:
                self.term = None  # a count completed
        else:
            assert type(event) is EndOfStream
            assert not self.ended or event.data == b""
            self.ended = True

    def failed(self, error: Exception) -> None:
        self.in_frame = b""
        if self.exact is not None:
            self.term = None if isinstance(error, MalformedFrame) else self.exact[1]
            self.exact = None
        elif isinstance(error, MalformedFrame) or (
            isinstance(error, FrameTooLarge) and isinstance(self.term, int)
        ):
            self.term = None  # the rest is Data / the refused count is over

    @rule(limit=st.integers(1, 6), use_payloads=st.booleans())
    def read(self, limit: int, use_payloads: bool) -> None:
        for _ in range(limit):
            try:
                # (payloads() does not say which of an AnyDelimiter's ended a frame)
                if use_payloads and not isinstance(self.term, AnyDelimiter):
                    for taken, payload in enumerate(self.framer.payloads(), 1):
                        self.account(Frame(payload))
                        if taken == limit or isinstance(self.term, AnyDelimiter):
                            break  # (a value read, an AnyDelimiter is in force again)
                event = self.framer.next_event()
            except (FrameTooLarge, MalformedFrame) as error:
                self.failed(error)
                continue
            if event is NEED_DATA:
                return
            self.account(event)

    @invariant()
    def every_byte_is_accounted_for_once(self) -> None:
        framer = self.framer
        # a streamed header consumed: framing, whether or not its frame is over yet
        in_flight = framer._headers_in_flight
        assert (
            self.delivered + self.framing + framer.bytes_discarded + framer.pending_input + in_flight
            == self.received
        )


RecoveryMachine.TestCase.settings = settings(
    max_examples=min(300, 3 * settings().max_examples), stateful_step_count=40, deadline=None
)
test_recovery_state_machine = RecoveryMachine.TestCase
