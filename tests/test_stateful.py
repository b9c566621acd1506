"""A hypothesis state machine that interleaves every Framer operation, input
and output, and checks after each step that no byte was lost, duplicated or
reordered: the reference model is the plain concatenation of what went in."""

from __future__ import annotations

from itertools import islice

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sanschat import NEED_DATA, Data, EndOfStream, Frame, Framer
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


FramerMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
test_framer_state_machine = FramerMachine.TestCase
