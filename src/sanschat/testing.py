"""Helpers for testing your own protocol code without sockets.

A framing bug usually hides in how TCP happened to split the bytes: a parser
that works when a request arrives in one piece and fails when the terminator is
cut in two. These helpers feed the same input under many splits and check
that your protocol sees, and answers, the same thing every time::

    from sanschat import Handler
    from sanschat.testing import assert_split_invariant

    class Upper(Handler):
        def frame_received(self, data):
            self.framer.push(data.upper() + b"\\r\\n")

    transcript = assert_split_invariant(Upper, b"hello\\r\\nworld\\r\\n")
    assert transcript.output == b"HELLO\\r\\nWORLD\\r\\n"

* :func:`splits` and :func:`sample_splits` list the ways to cut a byte string;
  :func:`chunkings` is the same as a hypothesis strategy (needs hypothesis).
* :func:`replay` feeds a bare :class:`~sanschat.Framer` and records its events.
* :func:`run_handler` drives a :class:`~sanschat.Handler` like a binding does,
  and :func:`assert_split_invariant` compares it across splits.
* :func:`captured` reads the TCP conversations of a packet capture (pcap or
  pcapng; needs dpkt, the ``pcap`` extra), so that traffic recorded from a real
  client becomes a regression test::

      for talk in captured("redis.pcap", port=6379):
          transcript = run_handler(RespServer, talk.client_chunks)
          assert transcript.output == talk.server_bytes

Recordings are normalised so that they do not depend on the split: the
``Data`` pieces of a streamed frame are joined to the ``Frame`` (or
``EndOfStream``) that ends them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import TYPE_CHECKING, Any, Union

from ._conformance import (
    SCENARIOS,
    TLS_SCENARIOS,
    Peer,
    Serve,
    Served,
    TcpPeer,
    TlsPeer,
    check_binding,
    memory_server,
)
from ._driver import CloseAction, Driver
from ._errors import FrameTooLarge, MalformedFrame, PeerError
from ._events import NEED_DATA, Data, EndOfStream, Frame
from ._framer import Framer
from ._handler import Handler
from ._pcap import Conversation, read_conversations

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = [
    "splits",
    "sample_splits",
    "chunkings",
    "Recorded",
    "replay",
    "Transcript",
    "run_handler",
    "assert_split_invariant",
    "fuzz_split",
    "captured",
    "Conversation",
    "check_binding",
    "SCENARIOS",
    "TLS_SCENARIOS",
    "Peer",
    "Served",
    "Serve",
    "TcpPeer",
    "TlsPeer",
    "memory_server",
]

#: One normalised event: a Frame or EndOfStream with its streamed pieces joined
#: in, the FrameTooLarge or MalformedFrame error the Framer raised at that
#: point, or a Data holding bytes given before such an error (or, last, the
#: frame still in progress when the input stops without an end).
Recorded = Union[Frame, EndOfStream, FrameTooLarge, MalformedFrame, Data]


def _cut(data: bytes, points: Iterable[int]) -> list[bytes]:
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def splits(data: bytes) -> Iterator[list[bytes]]:
    """Every way to cut ``data`` into non-empty chunks, the whole first and the
    one-byte trickle last: ``2 ** (len(data) - 1)`` of them, so keep it short."""
    if not data:
        yield []
        return
    inner = range(1, len(data))
    for count in range(len(data)):
        for points in combinations(inner, count):
            yield _cut(data, points)


def sample_splits(data: bytes, count: int = 200, *, seed: int = 0) -> list[list[bytes]]:
    """``count`` splits of ``data``, fewest cuts first: the whole, a cut at
    every single offset while they last, the one-byte trickle, then random
    cuts (reproducible by ``seed``)."""
    if len(data) <= 1:
        return [[data] if data else []]
    chosen: list[list[bytes]] = [[data]]
    chosen += [_cut(data, [i]) for i in range(1, min(len(data), count - 1))]
    chosen.append(_cut(data, range(1, len(data))))
    rng = random.Random(seed)
    while len(chosen) < count:
        many = rng.randint(2, max(2, min(len(data) - 1, 64)))
        chosen.append(_cut(data, sorted(rng.sample(range(1, len(data)), min(many, len(data) - 1)))))
    return chosen[:count]


def chunkings(data: bytes) -> SearchStrategy[list[bytes]]:
    """A hypothesis strategy: ``data`` cut into non-empty chunks, one-byte
    trickles and single cuts included.

    A failing example shrinks towards fewer cuts, down to the unsplit input,
    so a bug that does not depend on the split is reported unsplit and one
    that does is reported with the fewest cuts that show it.
    """
    from hypothesis import strategies as st

    if len(data) <= 1:
        return st.just([data] if data else [])
    trickle = _cut(data, range(1, len(data)))
    points = st.sets(st.integers(1, len(data) - 1), max_size=len(data) - 1)
    # One draw in ten is the one-byte trickle, the split most code forgets. It
    # is chosen after the cuts are drawn, by a selector that shrinks away from
    # it: hypothesis shrinks towards shorter choice sequences, so a trickle
    # drawn on its own would look simpler than any cut.
    return st.tuples(points, st.integers(0, 9)).map(
        lambda drawn: trickle if drawn[1] == 9 else _cut(data, sorted(drawn[0]))
    )


def replay(
    framer: Framer,
    chunks: Iterable[bytes],
    *,
    eof: bool = True,
    after_frame: Callable[[Framer, Frame], object] | None = None,
) -> list[Recorded]:
    """Feed ``chunks`` (then the end of stream, unless ``eof=False``) to
    ``framer`` and return what it delivered, normalised.

    ``after_frame(framer, frame)`` runs after each frame, where a protocol would
    change the terminator. A ``FrameTooLarge`` or ``MalformedFrame`` is recorded
    (after a ``Data`` of what the bad frame gave before it) and framing goes on.
    Bytes of a frame still in progress at the end are returned as a last ``Data``.
    """
    recorded: list[Recorded] = []
    pieces: list[bytes] = []
    for chunk in [*chunks, b""] if eof else chunks:
        framer.receive_data(chunk)
        while True:
            try:
                event = framer.next_event()
            except (FrameTooLarge, MalformedFrame) as error:
                if pieces:  # streamed bytes of the bad frame, given before the error
                    recorded.append(Data(b"".join(pieces)))
                    pieces.clear()
                recorded.append(error)
                continue
            if event is NEED_DATA:
                break
            kind = type(event)
            if kind is Data:
                pieces.append(event.data)  # type: ignore[union-attr]
                continue
            joined = b"".join([*pieces, event.data])  # type: ignore[union-attr]
            pieces.clear()
            if kind is Frame:
                frame = Frame(joined, event.terminator)  # type: ignore[union-attr]
                recorded.append(frame)
                if after_frame is not None:
                    after_frame(framer, frame)
            else:
                recorded.append(EndOfStream(joined))
                return recorded
    if pieces:
        recorded.append(Data(b"".join(pieces)))
    return recorded


@dataclass
class Transcript:
    """What a Handler saw and did over one connection, as a binding runs it.

    ``calls`` lists its callbacks as ``(name, argument)`` pairs, from
    ``("connection_made", None)`` to ``("connection_lost", reason)`` when the
    connection would be closed, with ``data_received`` pieces joined to the
    call that completes them and errors given by a summary (a FrameTooLarge by
    its limit, anything else by its type and message); ``output`` is everything
    it sent; ``closed`` says whether a binding would have closed the connection
    by the end of the input (the Handler's ``close_when_done``, which the
    default ``end_received`` calls after the peer's end of stream, or an
    error); ``error`` is the reason ``connection_lost`` would get, None for a
    clean close.
    """

    calls: list[tuple[str, Any]] = field(default_factory=list)
    output: bytes = b""
    closed: bool = False
    error: BaseException | None = None

    def comparable(self) -> tuple[object, ...]:
        """The parts that must not depend on the split."""
        return (self.calls, self.output, self.closed, _summary(self.error))


def _summary(error: BaseException | None) -> object:
    """An error as a split-independent value (a FrameTooLarge's size says how
    much had arrived when it was found, so only its limit counts)."""
    if isinstance(error, FrameTooLarge):
        return (FrameTooLarge, error.limit)
    if error is not None:
        return (type(error), str(error))
    return None


class _Recorder:
    """Wraps a Handler's callbacks to record them in a Transcript."""

    def __init__(self, handler: Handler, transcript: Transcript) -> None:
        self.pieces: list[bytes] = []
        self.transcript = transcript
        for name in ("frame_received", "end_received"):
            self._wrap(handler, name)
        if type(handler).frames_received is not Handler.frames_received:
            self._wrap_runs(handler)
        original_made = handler.connection_made
        original_lost = handler.connection_lost

        def connection_made(framer: Framer) -> None:
            transcript.calls.append(("connection_made", None))
            original_made(framer)

        def connection_lost(error: BaseException | None) -> None:
            self.flush()
            transcript.calls.append(("connection_lost", _summary(error)))
            original_lost(error)

        handler.connection_made = connection_made  # type: ignore[method-assign]
        handler.connection_lost = connection_lost  # type: ignore[method-assign]
        self._wrap_error(handler, "frame_too_large", lambda error: error.limit)  # type: ignore[attr-defined]
        self._wrap_error(handler, "frame_malformed", str)
        original_data = handler.data_received

        def data_received(data: bytes) -> None:
            self.pieces.append(data)
            original_data(data)

        handler.data_received = data_received  # type: ignore[method-assign]

    def _wrap_error(self, handler: Handler, name: str, describe: Callable[[Exception], object]) -> None:
        """Record an error callback, after the streamed bytes the bad frame gave."""
        original = getattr(handler, name)

        def recorded(error: Exception) -> None:
            self.flush()
            self.transcript.calls.append((name, describe(error)))
            original(error)

        setattr(handler, name, recorded)

    def flush(self) -> None:
        """Record the streamed pieces no callback has completed."""
        if self.pieces:
            self.transcript.calls.append(("data_received", b"".join(self.pieces)))
            self.pieces.clear()

    def _wrap_runs(self, handler: Handler) -> None:
        """Record each frame of a ``frames_received`` run on its own, so that
        a transcript does not depend on how the input was split into runs."""
        original = handler.frames_received
        calls = self.transcript.calls

        def recorded(frames: list[bytes]) -> None:
            if frames:  # the first completes the streamed pieces before it, if any
                calls.append(("frame_received", b"".join([*self.pieces, frames[0]])))
                self.pieces.clear()
                calls.extend(("frame_received", data) for data in frames[1:])
            original(frames)

        handler.frames_received = recorded  # type: ignore[method-assign]

    def _wrap(self, handler: Handler, name: str) -> None:
        original = getattr(handler, name)

        def recorded(data: bytes) -> None:
            self.transcript.calls.append((name, b"".join([*self.pieces, data])))
            self.pieces.clear()
            original(data)

        setattr(handler, name, recorded)


def run_handler(factory: Callable[[], Handler], chunks: Iterable[bytes], *, eof: bool = True) -> Transcript:
    """Drive a Handler from ``factory`` as every binding does, with no socket.

    The Handler runs on the same :class:`~sanschat.Driver` the bindings use:
    each chunk is received, its events delivered and all output taken; the
    end of the stream follows unless ``eof=False``. Input after the Handler's
    ``close_when_done`` is not delivered; a callback that raises stops input,
    its earlier output is still sent, and the error is the transcript's
    ``error``. If the connection would be closed, ``connection_lost`` is
    called and recorded last.
    """
    transcript = Transcript()
    handler = factory()
    recorder = _Recorder(handler, transcript)
    driver = Driver(handler)
    driver.start()
    out = [driver.data_to_send(None)]
    for chunk in [*chunks, b""] if eof else chunks:
        if driver.close_action is not CloseAction.NONE:
            break
        if chunk:
            driver.data_received(chunk)
        else:
            driver.eof_received()
        out.append(driver.data_to_send(None))
    recorder.flush()
    transcript.output = b"".join(out)
    transcript.closed = driver.close_action is not CloseAction.NONE
    transcript.error = driver.close_reason
    if transcript.closed:
        driver.connection_lost()
    return transcript


def assert_split_invariant(
    factory: Callable[[], Handler],
    data: bytes,
    *,
    eof: bool = True,
    max_splits: int = 500,
    seed: int = 0,
) -> Transcript:
    """Check that a Handler behaves the same however ``data`` is split.

    Every split is tried, fewest cuts first, when there are at most
    ``max_splits`` of them (inputs up to about 9 bytes at the default); longer
    inputs get a sample of ``max_splits`` (:func:`sample_splits`: every single
    cut, the trickle, then random cuts), costing one Handler run each. On a
    difference, cuts that do not matter are removed one by one, and the
    AssertionError names the smallest split found and the first callback or
    output byte that differs. Returns the unsplit transcript.
    """
    expected = run_handler(factory, [data] if data else [], eof=eof)
    if len(data) <= 1 or 2 ** (len(data) - 1) <= max_splits:
        candidates: Sequence[list[bytes]] | Iterator[list[bytes]] = splits(data)
    else:
        candidates = sample_splits(data, max_splits, seed=seed)
    want = expected.comparable()
    for chunks in candidates:
        if run_handler(factory, chunks, eof=eof).comparable() != want:
            points = _fewest_cuts(factory, data, _points(chunks), want, eof)
            got = run_handler(factory, _cut(data, points), eof=eof)
            raise AssertionError(_difference(data, points, got, expected))
    return expected


def fuzz_split(factory: Callable[[], Handler], data: bytes, *, eof: bool = True) -> None:
    """One fuzzing run of your Handler, for atheris (or any fuzzer): ``data``'s
    first two bytes choose up to 8 cuts in the rest, and the Handler must
    behave the same cut as unsplit. Raises AssertionError on a difference
    (smallest split, first differing callback or byte), and re-raises an
    exception a callback raised that is not a :class:`~sanschat.PeerError`
    (a parser that crashes on hostile input, a broken producer). See ``fuzz/fuzz_handler.py``."""
    if len(data) < 2:
        return
    rng = random.Random(int.from_bytes(data[:2], "big"))
    payload = data[2:]
    inner = range(1, len(payload))
    points = sorted(rng.sample(inner, min(len(inner), rng.randint(0, 8))))
    expected = run_handler(factory, [payload] if payload else [], eof=eof)
    if expected.error is not None and not isinstance(expected.error, PeerError):
        raise expected.error
    want = expected.comparable()
    if run_handler(factory, _cut(payload, points), eof=eof).comparable() != want:
        points = _fewest_cuts(factory, payload, points, want, eof)
        raise AssertionError(
            _difference(payload, points, run_handler(factory, _cut(payload, points), eof=eof), expected)
        )


def _points(chunks: list[bytes]) -> list[int]:
    """The offsets where ``chunks`` cut their bytes."""
    points, at = [], 0
    for chunk in chunks[:-1]:
        at += len(chunk)
        points.append(at)
    return points


def _fewest_cuts(
    factory: Callable[[], Handler], data: bytes, points: list[int], want: tuple[object, ...], eof: bool
) -> list[int]:
    """Drop each cut that the difference does not need (one pass per cut kept)."""
    changed = True
    while changed:
        changed = False
        for point in list(points):
            fewer = [p for p in points if p != point]
            if run_handler(factory, _cut(data, fewer), eof=eof).comparable() != want:
                points, changed = fewer, True
    return points


def _difference(data: bytes, points: list[int], got: Transcript, expected: Transcript) -> str:
    """Say where a split's transcript first departs from the unsplit one."""
    chunks = _cut(data, points)
    head = f"cut at {points} into {chunks!r}, the Handler differs from the unsplit input"
    for i, (mine, theirs) in enumerate(zip(got.calls, expected.calls)):
        if mine != theirs:
            return f"{head}: callback #{i} is {mine!r}, unsplit it is {theirs!r}"
    if len(got.calls) != len(expected.calls):
        shorter = min(len(got.calls), len(expected.calls))
        extra = (got.calls if len(got.calls) > shorter else expected.calls)[shorter]
        who = "only this split" if len(got.calls) > shorter else "only the unsplit input"
        return f"{head}: callback #{shorter} {extra!r} is made by {who}"
    if got.output != expected.output:
        at = next(
            (i for i, (a, b) in enumerate(zip(got.output, expected.output)) if a != b),
            min(len(got.output), len(expected.output)),
        )
        return (
            f"{head}: output byte {at} differs: {got.output[at : at + 20]!r}... "
            f"against {expected.output[at : at + 20]!r}... unsplit "
            f"({len(got.output)} and {len(expected.output)} bytes in all)"
        )
    return f"{head}:\n  {got}\nagainst\n  {expected}"


def captured(path: str, port: int | None = None) -> list[Conversation]:
    """The TCP conversations in the packet capture at ``path`` (pcap or pcapng),
    only those on ``port`` if given, in order of their first packet.

    Each :class:`Conversation` has the client's and the server's bytes, one
    chunk per TCP segment in stream order (retransmissions and reordering
    undone), so ``run_handler(factory, talk.client_chunks)`` replays what a
    server read, split as it was. A stream the capture has a hole in stops
    before it (``client_gap`` / ``server_gap``). Needs dpkt
    (``pip install 'sanschat[pcap]'``).
    """
    return read_conversations(path, port)
