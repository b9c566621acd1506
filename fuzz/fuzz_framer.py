"""Coverage-guided fuzzing of the Framer, both directions.

Each input is decoded into a framing case: a starting terminator, delivery
mode and frame limit, a program of terminator changes (one after each frame),
cut points, and a payload. The payload is framed unsplit, cut at the points
and trickled a byte at a time, each through ``next_event`` and through
``payloads()``; all six recordings must be equal (split invariance, both paths
agree), and every byte must be accounted for exactly once: delivered,
consumed as a terminator or header, counted in ``bytes_discarded`` or still
pending (also with a ``discard_buffers()`` in the middle). The payload is
also queued as output, by pushes, sized, lazy and failing producers, under
water marks, and taken by partial sends; what comes out must be exactly what
went in, minus what the failing producer never gave, and a push after
``close_when_done`` is dropped. Any failure is an AssertionError (or an
unexpected exception).

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
    NEED_DATA,
    AnyDelimiter,
    Data,
    Frame,
    Framer,
    FrameTooLarge,
    HeaderKind,
    LengthPrefix,
    MalformedFrame,
    Netstring,
    ProducerError,
    Terminator,
    Varint,
    simple_producer,
)

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


class Run:
    """Frames a case's payload as a protocol would, through ``next_event`` or
    ``payloads()``, and accounts for every byte: delivered, consumed as a
    terminator or header, counted in ``bytes_discarded``, or still pending."""

    def __init__(self, case: Case, bulk: bool) -> None:
        self.framer = Framer(case.terminator, stream=case.stream, max_frame_size=case.max_frame_size)
        self.term: Terminator = case.terminator
        self.steps = iter(case.program)
        self.bulk = bulk
        self.events: list[object] = []
        self.in_frame = b""
        self.delivered = self.framing = 0
        self.wire = bytearray()

    def feed(self, chunk: bytes) -> None:
        self.wire += chunk
        self.framer.receive_data(chunk)
        while self.read_some():
            pass

    def read_some(self) -> bool:
        """Deliver what is ready; False once the Framer needs more input."""
        framer = self.framer
        try:
            if self.bulk and not isinstance(self.term, AnyDelimiter):
                for payload in framer.payloads():
                    self.frame(Frame(payload))
                    if isinstance(self.term, AnyDelimiter):
                        break  # payloads() does not say which delimiter ends a frame
            event = framer.next_event()
        except (FrameTooLarge, MalformedFrame) as error:
            self.fail(error)
            return True
        if event is NEED_DATA:
            return False
        if type(event) is Frame:
            self.frame(event)  # type: ignore[arg-type]
            return True
        self.delivered += len(event.data)  # type: ignore[union-attr]
        if type(event) is Data:
            self.in_frame += event.data  # type: ignore[union-attr]
            return True
        self.events.append(("end", self.in_frame + event.data))  # type: ignore[union-attr]
        self.in_frame = b""
        return False

    def frame(self, event: Frame) -> None:
        # Where this frame began: everything before it is accounted for already.
        framer = self.framer
        start = (
            self.delivered
            - len(self.in_frame)
            + self.framing
            + framer.bytes_discarded
            + framer._abandoned_headers
        )
        payload, self.in_frame = self.in_frame + event.data, b""
        self.delivered += len(event.data)
        self.events.append(("frame", payload))
        term = self.term
        if isinstance(term, bytes):
            self.framing += len(term)
        elif isinstance(term, AnyDelimiter):
            assert event.terminator in term.delimiters, (event, term)
            self.framing += len(event.terminator)  # type: ignore[arg-type]
        elif isinstance(term, HeaderKind):
            # Read the header off the wire: a varint may be longer than it needs.
            header = term.parse_header(bytes(self.wire[start : start + term.max_header]))
            assert header is not None and header[1] == len(payload), (header, payload)
            self.framing += header[0] + len(term.trailer)
        elif term is not None:
            self.term = None  # a count completed
        step = next(self.steps, None)
        if step is not None:
            self.framer.set_terminator(step[0], stream=step[1])
            self.term = step[0]

    def fail(self, error: Exception) -> None:
        # The streamed bytes of the bad frame, given before the error, are its own.
        self.events.append(("data", self.in_frame))
        self.in_frame = b""
        if isinstance(error, FrameTooLarge):
            self.events.append(("too large", error.limit))
            if isinstance(self.term, int):
                self.term = None  # the refused count is over
        else:
            self.events.append(("malformed", str(error)))
            self.term = None

    def unaccounted(self, received: int) -> int:
        """Bytes received minus every byte accounted for: zero when none is lost
        or counted twice."""
        framer = self.framer
        # (a streamed header is framing from when it is consumed, complete frame or not)
        held = framer.pending_input + framer._headers_in_flight
        return received - (self.delivered + self.framing + framer.bytes_discarded + held)


def frame_input(case: Case, chunks: list[bytes], bulk: bool, discard_after: int = -1) -> Run:
    """Feed ``chunks`` then the end; ``discard_buffers()`` after chunk ``discard_after``."""
    run = Run(case, bulk)
    for index, chunk in enumerate(chunks):
        run.feed(chunk)
        if index == discard_after:
            run.framer.discard_buffers()
            run.in_frame = b""
    run.feed(b"")
    assert run.unaccounted(sum(map(len, chunks))) == 0, (case, chunks, bulk)
    return run


class Failing:
    """A producer that gives one chunk, then raises."""

    def __init__(self, chunk: bytes) -> None:
        self.chunk = chunk

    def more(self) -> bytes:
        if self.chunk:
            chunk, self.chunk = self.chunk, b""
            return chunk
        raise OSError("disk gone")


def check_output(case: Case) -> None:
    """Queue the payload in pieces (pushes, sized and lazy producers, perhaps a
    failing one), take it by partial sends under water marks; what comes out
    is exactly what was queued, minus what the failing producer never gave."""
    payload, framer = case.payload, Framer(b"\n")
    cuts = case.cuts or [3]
    high = cuts[0] * 4
    framer.set_write_buffer_limits(high, high // 4)
    points = sorted({c % (len(payload) + 1) for c in cuts} | {0, len(payload)})
    fail_at = cuts[-1] % 5 if len(cuts) > 2 else -1
    expected = bytearray()
    for i, (a, b) in enumerate(zip(points, points[1:])):
        piece = payload[a:b]
        if i == fail_at:
            framer.push_with_producer(Failing(piece[:1]))
            expected += piece[:1]
        elif i % 3 == 1:
            framer.push_with_producer(simple_producer(piece, buffer_size=1 + i))
            expected += piece
        elif i % 3 == 2:
            framer.push_with_producer(iter_producer(piece, 1 + i))
            expected += piece
        else:
            framer.push(bytearray(piece))
            expected += piece
    framer.close_when_done()
    framer.push(b"late")  # dropped, counted
    assert framer.dropped_after_close == 1
    sent = bytearray()
    sizes = [c % 7 for c in cuts]
    while framer.has_output:
        try:
            view = framer.peek_output()
        except ProducerError:
            continue
        size = min(len(view), sizes[len(sent) % len(sizes)] or 1)
        sent += view[:size]
        framer.consume_output(size)
        queued = framer.pending_output + framer.promised_output
        assert not (queued > high and not framer.writing_paused)
        assert not (queued <= high // 4 and framer.writing_paused)
    assert bytes(sent) == bytes(expected)
    assert framer.should_close


class iter_producer:
    """A lazy producer with no len(): pieces of ``size`` bytes."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size = data, size

    def more(self) -> bytes:
        chunk, self.data = self.data[: self.size], self.data[self.size :]
        return chunk


def check(data: bytes) -> None:
    """The property every input must satisfy; raises AssertionError if not."""
    case = decode(data)
    payload = case.payload
    points = sorted({c % (len(payload) + 1) for c in case.cuts} | {0, len(payload)})
    splits = [[payload] if payload else [], [payload[a:b] for a, b in zip(points, points[1:]) if b > a]]
    if len(payload) <= 256:
        splits.append([payload[i : i + 1] for i in range(len(payload))])  # the trickle
    runs = [frame_input(case, chunks, bulk) for chunks in splits for bulk in (False, True)]
    first = runs[0]
    for run in runs[1:]:
        assert run.events == first.events, (case, first.events, run.events)
        assert run.framer.bytes_discarded == first.framer.bytes_discarded
    # discard_buffers in the middle: nothing to compare, but every byte accounted for.
    if case.cuts:
        frame_input(
            case, splits[1], bool(case.cuts[0] & 1), discard_after=case.cuts[0] % len(splits[1] or [b""])
        )
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
