"""The Driver: the Handler contract every binding shares, with no I/O."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sanschat import CloseAction, ConnectionInfo, Driver, Framer, Handler, OutputLimitExceeded
from sanschat.testing import chunkings


class Lines(Handler):
    """Answers each line with ``size`` bytes, where the line says the size."""

    terminator = b"\n"

    def __init__(self, bound: int) -> None:
        self.pause_reading_above = bound
        self.frames: list[bytes] = []
        self.ended = False

    def frame_received(self, data: bytes) -> None:
        self.frames.append(data)
        self.framer.push(data + b":" + b"x" * int(data.split(b"-")[1]) + b";")

    def end_received(self, data: bytes) -> None:
        self.ended = True
        super().end_received(data)


@given(
    st.lists(st.integers(0, 300), min_size=1, max_size=30),
    st.integers(0, 1000),
    st.lists(st.integers(1, 500), min_size=1, max_size=10),
    st.data(),
)
def test_held_input_is_delivered_once_in_order_however_output_is_taken(
    sizes: list[int], bound: int, takes: list[int], data: st.DataObject
) -> None:
    """Delivery pauses while the answers are above the bound and resumes as
    they go out: every frame is delivered exactly once, in order, whatever
    the chunking and however the output is taken."""
    lines = [b"%d-%d" % (i, size) for i, size in enumerate(sizes)]
    wire = b"".join(line + b"\n" for line in lines)
    handler = Lines(bound)
    driver = Driver(handler)
    driver.start()
    out: list[bytes] = []
    take = itertools.cycle(takes)
    for chunk in data.draw(chunkings(wire)):
        while not driver.wants_read:
            out.append(driver.data_to_send(next(take)))
        driver.data_received(chunk)
        queued = driver.framer.pending_output + driver.framer.promised_output
        assert queued <= bound + max(sizes) + 10 or not driver.wants_read
    driver.eof_received()
    while driver.close_action is CloseAction.NONE:
        view = driver.peek_output()
        sent = min(len(view), next(take))
        out.append(bytes(view[:sent]))
        driver.consume_output(sent)
    assert handler.frames == lines
    assert handler.ended
    assert b"".join(out) == b"".join(line + b":" + b"x" * s + b";" for line, s in zip(lines, sizes))


def test_a_push_from_outside_wakes_the_binding_and_one_from_inside_does_not() -> None:
    woken: list[None] = []

    class Echo(Handler):
        def frame_received(self, data: bytes) -> None:
            self.framer.push(data)

    driver = Driver(Echo(), on_wake=lambda: woken.append(None))
    driver.start()
    driver.data_received(b"in\r\n")
    assert woken == []  # the binding asks again after each driver call
    assert driver.data_to_send() == b"in"
    driver.framer.push(b"from a timer")
    assert woken == [None]


def test_output_past_max_output_aborts_with_the_reason() -> None:
    reasons: list[BaseException | None] = []

    class Flood(Handler):
        max_output = 100

        def connection_lost(self, error: BaseException | None) -> None:
            reasons.append(error)

    handler = Flood()
    driver = Driver(handler, on_wake=lambda: None)
    driver.start()
    handler.framer.push(b"x" * 60)
    assert driver.close_action is CloseAction.NONE
    handler.framer.push(b"x" * 60)  # from outside any driver call
    assert driver.close_action is CloseAction.ABORT  # type: ignore[comparison-overlap]
    assert not driver.wants_read and not driver.wants_write
    driver.connection_lost()
    driver.connection_lost()  # once only
    assert len(reasons) == 1 and isinstance(reasons[0], OutputLimitExceeded)
    assert (reasons[0].limit, reasons[0].queued) == (100, 120)


def test_a_failing_new_framer_closes_the_connection_with_its_error() -> None:
    reasons: list[BaseException | None] = []

    class Broken(Handler):
        def new_framer(self) -> Framer:
            raise RuntimeError("no framer")

        def connection_lost(self, error: BaseException | None) -> None:
            reasons.append(error)

    driver = Driver(Broken())
    driver.start()
    assert driver.close_action is CloseAction.CLOSE
    driver.connection_lost()
    assert isinstance(reasons[0], RuntimeError)


def test_the_handler_learns_who_it_talks_to_before_connection_made() -> None:
    seen: list[ConnectionInfo] = []

    class Logs(Handler):
        def connection_made(self, framer: Framer) -> None:
            seen.append(self.connection_info)
            super().connection_made(framer)

    info = ConnectionInfo(peer=("127.0.0.1", 5000), local=("127.0.0.1", 25))
    Driver(Logs(), info).start()
    assert seen == [info]
    assert ConnectionInfo().peer is None


def test_a_reset_is_the_reason_and_stops_everything() -> None:
    reasons: list[BaseException | None] = []

    class Quiet(Handler):
        def connection_lost(self, error: BaseException | None) -> None:
            reasons.append(error)

    driver = Driver(Quiet())
    driver.start()
    driver.framer.push(b"unsent")
    error = ConnectionResetError("peer reset")
    driver.transport_failed(error)
    assert driver.close_action is CloseAction.ABORT
    assert driver.data_to_send() == b""
    driver.data_received(b"late")
    assert driver.input_dropped == 4
    driver.connection_lost()
    assert reasons == [error]


@pytest.mark.parametrize("closing", ["handler", "error"])
def test_input_after_the_close_decision_is_dropped_and_counted(closing: str) -> None:
    class Once(Handler):
        def frame_received(self, data: bytes) -> None:
            self.framer.push(b"ok")
            if closing == "error":
                raise RuntimeError("bug")
            self.framer.close_when_done()

    driver = Driver(Once())
    driver.start()
    driver.data_received(b"a\r\nb\r\n")
    driver.data_received(b"c\r\n")
    assert driver.wants_read  # still read, so a peer blocked sending can get our answers
    assert driver.data_to_send() == b"ok"
    assert driver.close_action is CloseAction.CLOSE
    assert driver.input_dropped == 3
