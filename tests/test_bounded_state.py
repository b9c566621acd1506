"""The Framer's state is bounded by its input and its limits, never by how many
operations it has run: a long-lived connection must not grow a counter, a
window or a list per frame, per batch or per push.

Found from outside: the batch window doubled after every batch used up, with
no ceiling, so a connection served for long enough carried a Python int of
millions of bits (and paid for arithmetic on it per batch). These tests walk
every attribute of the Framer and of the objects it owns, so any state that
grows with the number of operations fails here, whatever its name.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from sanschat import (
    NEED_DATA,
    AnyDelimiter,
    Driver,
    Framer,
    Handler,
    HeaderKind,
    LengthPrefix,
    Netstring,
    Terminator,
    Varint,
)

# Far above anything the bytes fed here can count to; far below what a value
# doubled per batch reaches.
BOUND = 1 << 64


def attribute_names(obj: object) -> list[str]:
    """The names of an object's instance state, pure or compiled (mypyc's native
    classes have no __dict__ but list their attributes)."""
    names: list[str] = []
    for cls in type(obj).__mro__:
        names += getattr(cls, "__mypyc_attrs__", ())
        slots = cls.__dict__.get("__slots__", ())
        names += [slots] if isinstance(slots, str) else list(slots)
    names += list(getattr(obj, "__dict__", {}))
    return sorted(set(names) - {"__dict__", "__weakref__"})


def state(obj: object, depth: int = 2) -> Iterator[tuple[str, Any]]:
    """Every attribute of ``obj``, and of the sanschat objects it holds."""
    for name in attribute_names(obj):
        try:
            value = getattr(obj, name)
        except AttributeError:  # an unset slot or native attribute
            continue
        yield name, value
        if depth and type(value).__module__.startswith("sanschat."):
            for inner, inner_value in state(value, depth - 1):
                yield f"{name}.{inner}", inner_value


def check_bounded(obj: object, fed: int) -> list[str]:
    """Fail on any int, buffer or list in ``obj``'s state that grew past what
    ``fed`` bytes can explain; return the names inspected."""
    sized = [(name, value) for name, value in state(obj) if isinstance(value, (int, bytes, bytearray, list))]
    assert sized, "nothing was inspected"
    for name, value in sized:
        if isinstance(value, int):
            assert -BOUND < value < BOUND, (
                f"{name} = an int of {value.bit_length()} bits after {fed} bytes fed"
            )
        else:  # a buffer or a list: at most what was fed and not yet taken
            assert len(value) <= 2 * 65536, f"{name} holds {len(value)} items after {fed} bytes fed"
    return [name for name, _ in sized]


class Echo(Handler):
    """A line echo, a callback and a push per line."""

    terminator = b"\n"

    def frame_received(self, data: bytes) -> None:
        self.framer.push(data + b"\n")


class RunEcho(Echo):
    """The same echo, one push per pipelined run of lines."""

    def frames_received(self, frames: list[bytes]) -> None:
        self.framer.push(b"".join([frame + b"\n" for frame in frames]))


def test_pipelined_batches_leave_no_growing_state() -> None:
    framer = Framer(b"\n")
    rng = random.Random(7)
    fed = 0
    for round_ in range(3000):
        chunk = b"".join(b"x" * rng.randint(0, 40) + b"\n" for _ in range(rng.randint(2, 40)))
        framer.receive_data(chunk)
        fed += len(chunk)
        if round_ % 3 == 0:
            while framer.take_payloads():
                pass
        elif round_ % 3 == 1:
            for _ in framer.payloads():
                pass
        else:
            while framer.next_event() is not NEED_DATA:
                pass
    check_bounded(framer, fed)


def test_batches_cut_short_and_output_leave_no_growing_state() -> None:
    """Terminator changes mid-batch (the window shrinks and is earned back),
    pushes and sends: the other paths that move the window and the counters."""
    framer = Framer(b"\n")
    fed = 0
    for round_ in range(2000):
        chunk = b"head\n" * 8 + b"12345" + b"tail\n" * 8
        framer.receive_data(chunk)
        fed += len(chunk)
        while framer.next_event() is not NEED_DATA:
            framer.set_terminator(5 if framer.get_terminator() == b"\n" and round_ % 2 else b"\n")
            framer.push(b"answer\n")
        framer.set_terminator(b"\n")
        while framer.has_output:
            framer.data_to_send(7)
    check_bounded(framer, fed)


def test_a_long_served_connection_leaves_no_growing_state() -> None:
    """A Driver serving a Handler read after read, with frames_received and
    per-frame delivery, partial sends and a pause above the output bound."""
    for handler in (Echo(), RunEcho()):
        handler.pause_reading_above = 4096
        driver = Driver(handler)
        driver.start()
        fed = 0
        for round_ in range(2000):
            chunk = b"line %d\n" % round_ * 30 + b"half"
            driver.data_received(chunk)
            fed += len(chunk)
            while driver.wants_write:
                driver.consume_output(min(1000, len(driver.peek_output())))
        inspected = check_bounded(driver, fed)
        assert any(name.startswith("framer.") for name in inspected)


# ------------------------------------------------- nothing delivered is kept
#
# Found from outside: once a read's frames were all delivered, the Framer still
# held the read's bytes and the list of its payloads until the connection's
# next read. A server's idle connections so kept their last read alive, and a
# busy one freed it a whole round of other connections later, cold in the
# cache: the line echo spent a quarter of its time there (benchmarks/README.md).


def held_bytes(obj: object) -> int:
    """Bytes of input ``obj``'s state holds: buffers, and lists of payloads."""
    held = 0
    for _, value in state(obj):
        if isinstance(value, (bytes, bytearray, memoryview)):
            held += len(value)
        elif isinstance(value, list):
            held += sum(len(item) for item in value if isinstance(item, (bytes, bytearray)))
    return held


def read(lines: int, tail: bytes = b"") -> bytes:
    return b"".join(b"line %5d of a pipelined read\n" % i for i in range(lines)) + tail


# (The delimiter itself is state: a few bytes.)
DELIMITERS_HELD = 8


def test_a_delivered_read_is_not_kept_by_the_framer() -> None:
    for take in ("take_payloads", "payloads", "next_event"):
        framer = Framer(b"\n")
        for tail in (b"", b"half a li"):
            data = read(200, tail)
            baseline = sys.getrefcount(data)
            framer.receive_data(data)
            if take == "take_payloads":
                while framer.take_payloads():
                    pass
            elif take == "payloads":
                for _ in framer.payloads():
                    pass
            else:
                while framer.next_event() is not NEED_DATA:
                    pass
            assert held_bytes(framer) <= len(tail) + DELIMITERS_HELD, take
            if not tail:
                assert sys.getrefcount(data) == baseline, f"{take}: the Framer still refers to the read"
            framer.receive_data(b"ne\n")  # the tail completes: nothing left over
            while framer.next_event() is not NEED_DATA:
                pass
            assert held_bytes(framer) <= DELIMITERS_HELD, take


def test_a_served_read_is_not_kept_by_the_driver() -> None:
    for handler in (Echo(), RunEcho()):
        driver = Driver(handler)
        driver.start()
        for round_ in range(8):
            data = read(200 if round_ < 4 else 1)  # a pipelined run, then one line a read
            baseline = sys.getrefcount(data)
            driver.data_received(data)
            if round_ % 2:  # as the select binding sends
                sent = 0
                while driver.wants_write:
                    view = driver.peek_output()
                    sent += len(view)
                    driver.consume_output(len(view))
                    del view
                assert sent == len(data)
            else:
                assert len(driver.data_to_send(None)) == len(data)
            assert held_bytes(driver) <= DELIMITERS_HELD, type(handler).__name__
            assert sys.getrefcount(data) == baseline, type(handler).__name__


@pytest.mark.parametrize(
    "terminator",
    [b"\r\n", AnyDelimiter(b"\r\n", b"\n"), LengthPrefix(4), Varint(), Netstring(), 16, None],
    ids=repr,
)
@pytest.mark.parametrize("stream", [False, True])
def test_every_kind_lets_go_of_a_delivered_read(terminator: Terminator, stream: bool) -> None:
    """Drained to NEED_DATA, a Framer of any kind holds none of a read it delivered."""
    if isinstance(terminator, (bytes, AnyDelimiter, HeaderKind)):
        writer = Framer(terminator)
        for i in range(50):
            writer.push_frame(b"payload number %d" % i)
        data = writer.data_to_send()
    else:
        data = bytes(range(256)) * 4
    framer = Framer(terminator, stream=stream)
    for _ in range(3):
        framer.receive_data(data)
        while framer.next_event() is not NEED_DATA:
            if isinstance(terminator, int):
                framer.set_terminator(terminator)  # a count is spent by its frame
        assert held_bytes(framer) <= DELIMITERS_HELD, (terminator, stream)
