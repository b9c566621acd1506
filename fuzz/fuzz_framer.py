"""Coverage-guided fuzzing of the Framer, both directions.

Each input is decoded into a framing case: a starting terminator, delivery
mode and frame limit, a program of terminator changes (one after each frame),
cut points, and a payload. The payload is framed unsplit and cut at the
points; the two recordings must be equal (split invariance) and the Framer
must account for every byte. The payload is also queued as output, by pushes
and producers, and taken by partial sends; what comes out must be exactly what
went in. Any failure is an AssertionError (or an unexpected exception).

Fuzz (needs ``pip install atheris``; runs until stopped or the time limit)::

    python fuzz/fuzz_framer.py fuzz/corpus -max_total_time=600

Replay inputs without atheris (the test suite does this with the corpus)::

    python fuzz/fuzz_framer.py fuzz/corpus/*

Rewrite the seed corpus: ``python fuzz/fuzz_framer.py --write-seeds fuzz/corpus``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from sanschat import (
    AnyDelimiter,
    Data,
    EndOfStream,
    Frame,
    Framer,
    FrameTooLarge,
    LengthPrefix,
    MalformedFrame,
    Netstring,
    Terminator,
    Varint,
    simple_producer,
)
from sanschat.testing import Recorded, replay

FIXED: tuple[Terminator, ...] = (
    None,
    b"\r\n",
    b"\r\n.\r\n",
    b"\n",
    AnyDelimiter(b"\r\n", b"\n"),
    AnyDelimiter(b"ab", b"b", b"bba"),
    LengthPrefix(1),
    LengthPrefix(2, "little", includes_prefix=True),
    Varint(),
    Netstring(),
)


class Reader:
    """Takes fields from the front of the fuzzer's bytes; zeros once exhausted."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, size: int) -> bytes:
        piece = self.data[self.pos : self.pos + size]
        self.pos += len(piece)
        return piece

    def rest(self) -> bytes:
        return self.take(len(self.data))

    def terminator(self) -> Terminator:
        choice = self.byte() % (2 + len(FIXED))
        if choice == 0:
            return self.take(1 + self.byte() % 4) or b"\n"  # a delimiter of 1-4 bytes
        if choice == 1:
            return self.byte()  # a count, 0 included
        return FIXED[choice - 2]


@dataclass
class Case:
    terminator: Terminator
    stream: bool
    max_frame_size: int | None
    program: list[tuple[Terminator, bool]] = field(default_factory=list)
    cuts: list[int] = field(default_factory=list)
    payload: bytes = b""


def decode(data: bytes) -> Case:
    reader = Reader(data)
    terminator = reader.terminator()
    flags = reader.byte()
    limit = reader.byte() if flags & 2 else None
    case = Case(terminator, bool(flags & 1), limit)
    for _ in range(reader.byte() % 8):
        case.program.append((reader.terminator(), bool(reader.byte() & 1)))
    case.cuts = [reader.byte() for _ in range(reader.byte() % 16)]
    case.payload = reader.rest()
    return case


def encode(case: Case) -> bytes:
    """The inverse of :func:`decode`, to write readable seeds."""

    def term(value: Terminator) -> bytes:
        if value is None or (not isinstance(value, int) and value in FIXED):
            return bytes([FIXED.index(value) + 2])
        if isinstance(value, int):
            return bytes([1, value])
        return bytes([0, len(value) - 1]) + value

    out = term(case.terminator) + bytes([case.stream | (2 if case.max_frame_size is not None else 0)])
    if case.max_frame_size is not None:
        out += bytes([case.max_frame_size])
    out += bytes([len(case.program)])
    for value, stream in case.program:
        out += term(value) + bytes([stream])
    return out + bytes([len(case.cuts), *case.cuts]) + case.payload


def normalised(events: list[Recorded]) -> list[object]:
    return [
        ("too large", e.limit)
        if isinstance(e, FrameTooLarge)
        else ("malformed", str(e))
        if isinstance(e, MalformedFrame)
        else e
        for e in events
    ]


def frame_input(case: Case, chunks: list[bytes]) -> tuple[list[object], Framer]:
    framer = Framer(case.terminator, stream=case.stream, max_frame_size=case.max_frame_size)
    steps = iter(case.program)

    def next_step(framer: Framer, frame: Frame) -> None:
        step = next(steps, None)
        if step is not None:
            framer.set_terminator(step[0], stream=step[1])

    return normalised(replay(framer, chunks, after_frame=next_step)), framer


def check_output(case: Case) -> None:
    """Queue the payload in pieces (pushes and producers), take it by partial sends."""
    payload, framer = case.payload, Framer(b"\n")
    points = sorted({c % (len(payload) + 1) for c in case.cuts} | {0, len(payload)})
    for i, (a, b) in enumerate(zip(points, points[1:])):
        if i % 2:
            framer.push_with_producer(simple_producer(payload[a:b], buffer_size=1 + i))
        else:
            framer.push(bytearray(payload[a:b]))
    framer.close_when_done()
    sent = bytearray()
    sizes = [c % 7 for c in case.cuts] or [3]
    while framer.has_output:
        view = framer.peek_output()
        size = min(len(view), sizes[len(sent) % len(sizes)] or 1)
        sent += view[:size]
        framer.consume_output(size)
    assert bytes(sent) == payload
    assert framer.should_close


def check(data: bytes) -> None:
    """The property every input must satisfy; raises AssertionError if not."""
    case = decode(data)
    payload = case.payload
    whole, framer = frame_input(case, [payload] if payload else [])
    points = sorted({c % (len(payload) + 1) for c in case.cuts} | {0, len(payload)})
    chunks = [payload[a:b] for a, b in zip(points, points[1:]) if b > a]
    split, split_framer = frame_input(case, chunks)
    assert whole == split, (case, whole, split)
    # Conservation: after the end, nothing is held; what was skipped is counted
    # the same way, and the delivered bytes plus the skipped never exceed the input.
    assert framer.pending_input == split_framer.pending_input == 0
    assert framer.bytes_discarded == split_framer.bytes_discarded
    delivered = sum(len(e.data) for e in whole if isinstance(e, (Frame, Data, EndOfStream)))
    assert delivered + framer.bytes_discarded <= len(payload)
    check_output(case)


SEEDS = [
    Case(b"\r\n", False, None, payload=b"HELO a\r\nMAIL FROM:<x>\r\nDATA\r\n"),
    Case(b"\r\n", True, 8, cuts=[3, 9], payload=b"short\r\nthis one is long\r\nok\r\n"),
    Case(
        b"\r\n\r\n",
        False,
        None,
        [(5, True), (b"\r\n\r\n", False)],
        [10, 30],
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n",
    ),
    Case(b"aab", False, None, cuts=[1, 2, 3], payload=b"aaabaabaaab"),
    Case(b"\r\n.\r\n", False, None, cuts=[4], payload=b"line\n.\nstill data\r\n.\r\n"),
    Case(0, False, None, [(None, False), (3, True)], payload=b"abcdef"),
    Case(None, True, None, cuts=[1, 1, 2], payload=b"collect forever"),
    Case(b"\n", False, 2, cuts=list(range(1, 16)), payload=b"\n" * 40 + b"xyz\nab\n"),
    Case(AnyDelimiter(b"\r\n", b"\n"), True, 4, cuts=[2, 5], payload=b"a\r\nbb\nlong line\r\nc\r"),
    Case(Netstring(), False, 8, [(LengthPrefix(1), False)], [3], b"5:hello,3:abc;\x02hi"),
    Case(Varint(), True, None, cuts=[1, 2], payload=Varint().encode(b"x" * 200) + b"\xff" * 11),
]


def main(argv: list[str]) -> int:
    if argv[:1] == ["--write-seeds"]:
        folder = Path(argv[1])
        folder.mkdir(parents=True, exist_ok=True)
        for n, seed in enumerate(SEEDS):
            (folder / f"seed-{n:02d}").write_bytes(encode(seed))
        return 0
    files = [Path(a) for a in argv if not a.startswith("-")]
    if files and all(f.is_file() for f in files):
        for path in files:
            check(path.read_bytes())
        print(f"{len(files)} inputs replayed, all passed")
        return 0
    import atheris  # type: ignore[import-not-found]

    atheris.instrument_all()  # sanschat is imported already: instrument what is loaded
    atheris.Setup([sys.argv[0], *argv], check)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
