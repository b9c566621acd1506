"""Shared test helpers: a driver that turns a Framer's events into comparable
units, a reference model of the framing rules, and chunking strategies."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager

from hypothesis import strategies as st

from sanschat import NEED_DATA, Data, EndOfStream, Frame, Framer, FrameTooLarge, MalformedFrame
from sanschat.testing import chunkings

__all__ = [
    "Step",
    "Unit",
    "chunkings",
    "eventually",
    "settled",
    "drain",
    "normalised",
    "serving",
    "read_all",
    "run",
    "model",
    "small_bytes",
    "delimiters",
    "terminators",
    "programs",
]

# One step of a terminator program: (terminator, stream) set after a frame.
Step = tuple[object, bool]
Unit = tuple[object, ...]  # ("frame", payload) | ("end", remainder) | ("error",)


@contextmanager
def serving(*args: str) -> Iterator[int]:
    """Run ``python ARGS`` (a server given ``--port 0``) until the block ends;
    yield the port it announces with ``listening on 127.0.0.1:PORT``."""
    process = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:"), line
        yield int(line.rsplit(":", 1)[1])
    finally:
        process.terminate()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


async def eventually(
    condition: Callable[[], bool], sleep: Callable[[float], Awaitable[object]], timeout: float = 30.0
) -> None:
    """Wait, on any event loop (``sleep`` is its sleep), until ``condition()``
    holds. The timeout is a backstop for a hang, never what a test asserts."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for a condition"
        await sleep(0.005)


async def settled(
    value: Callable[[], int], sleep: Callable[[float], Awaitable[object]], quiet: float = 0.3
) -> int:
    """Wait until ``value()`` is non-zero and has not changed for ``quiet``
    seconds (a producer that stopped being pulled); return it. A slow machine
    only makes the value smaller, never a test fail."""
    await eventually(lambda: value() > 0, sleep)
    seen, since = value(), time.monotonic()
    while time.monotonic() - since < quiet:
        await sleep(0.02)
        if value() != seen:
            seen, since = value(), time.monotonic()
    return seen


def read_all(sock: socket.socket) -> bytes:
    """Everything the peer sends until it closes."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def drain(framer: Framer) -> list[object]:
    """Every event ready now (up to NEED_DATA or the EndOfStream), with a
    FrameTooLarge or MalformedFrame recorded where it was raised."""
    out: list[object] = []
    while True:
        try:
            event = framer.next_event()
        except (FrameTooLarge, MalformedFrame) as error:
            out.append(error)
            continue
        if event is NEED_DATA:
            return out
        out.append(event)
        if type(event) is EndOfStream:
            return out


def normalised(events: Sequence[object]) -> list[object]:
    """Errors by kind and limit (a size says how much had arrived); Data joined."""
    out: list[object] = []
    for event in events:
        if isinstance(event, FrameTooLarge):
            event = ("too large", event.limit)
        elif isinstance(event, MalformedFrame):
            event = ("malformed",)
        elif out and type(event) is Data and type(out[-1]) is Data:
            event = Data(out.pop().data + event.data)  # type: ignore[attr-defined]
        out.append(event)
    return out


def run(
    framer: Framer,
    chunks: Sequence[bytes],
    program: Sequence[Step] = (),
    *,
    use_payloads: bool = False,
    eof: bool = True,
    tally: list[int] | None = None,
) -> list[Unit]:
    """Feed ``chunks`` (then EOF) and return the normalised units.

    Data events are joined into the frame they belong to, so units do not
    depend on how streaming split a frame. After the k-th frame the k-th step of
    ``program`` is applied with ``set_terminator``. With ``use_payloads`` the
    batch iterator is used first and ``next_event`` only for what it leaves.
    ``tally``, if given, receives the size of every payload delivered.
    """
    units: list[Unit] = []
    pending: list[bytes] = []
    steps = iter(program)

    def frame_done(payload: bytes) -> None:
        if tally is not None:
            tally.append(len(payload))
        units.append(("frame", b"".join(pending) + payload))
        pending.clear()
        step = next(steps, None)
        if step is not None:
            framer.set_terminator(step[0], stream=step[1])  # type: ignore[arg-type]

    for chunk in [*chunks, b""] if eof else chunks:
        framer.receive_data(chunk)
        while True:
            try:
                if use_payloads:
                    for payload in framer.payloads():
                        frame_done(payload)
                event = framer.next_event()
            except FrameTooLarge:
                units.append(("error",))
                pending.clear()
                continue
            if event is NEED_DATA:
                break
            assert isinstance(event, (Frame, Data, EndOfStream))
            if tally is not None and type(event) is not Frame:
                tally.append(len(event.data))
            if type(event) is Data:
                pending.append(event.data)
            elif type(event) is Frame:
                frame_done(event.data)
            else:
                assert type(event) is EndOfStream
                units.append(("end", b"".join(pending) + event.data))
                return units
    if pending:
        units.append(("partial", b"".join(pending)))
    return units


def model(
    data: bytes,
    terminator: object,
    program: Sequence[Step] = (),
    max_frame_size: int | None = None,
) -> list[Unit]:
    """The framing rules, written as plainly as possible over the whole input."""
    units: list[Unit] = []
    steps = iter(program)
    pos = 0
    term = terminator
    while True:
        if isinstance(term, bytes):
            end = data.find(term, pos)
            if max_frame_size is not None:
                # Proven: up to the delimiter, or all but a tail that may begin it.
                tail = data[pos:]
                maybe = max((n for n in range(len(term)) if n and tail.endswith(term[:n])), default=0)
                size = (end if end >= 0 else len(data) - maybe) - pos
                if size > max_frame_size:
                    units.append(("error",))
                    if end < 0:
                        pos = len(data)  # the whole tail is skipped
                        break
                    pos = end + len(term)
                    continue
            if end < 0:
                break
            units.append(("frame", data[pos:end]))
            pos = end + len(term)
        elif isinstance(term, int) and pos + term <= len(data):
            units.append(("frame", data[pos : pos + term]))
            pos += term
            term = None
        else:
            break
        step = next(steps, None)
        if step is not None:
            term = step[0]
    units.append(("end", data[pos:]))
    return units


# Small alphabets make delimiters, overlaps and near-misses frequent.
small_bytes = st.binary(max_size=200).map(lambda b: bytes(x % 3 + 97 for x in b))
delimiters = st.binary(min_size=1, max_size=4).map(lambda b: bytes(x % 3 + 97 for x in b))
terminators = st.one_of(delimiters, st.integers(0, 40), st.none())
programs = st.lists(st.tuples(terminators, st.booleans()), max_size=30)
