"""A slow, independent reference model of sanschat's Framer, from its documentation.

Written from README.md, docs/*.md and the public docstrings only: it shares no
code with ``src/sanschat`` and does not import it. It is meant to be obviously
correct rather than fast: it keeps every byte ever received in one buffer with
an index, searches from scratch on every call, and snapshots its whole input
state when it needs to look ahead. ``tests/test_model.py`` runs it side by side
with the real Framer.

Where the documentation is silent or ambiguous the model picks what an h11 or
asyncio user would expect; each such choice is marked ``DOC GAP`` below.

Byte accounting: every byte received is, at any moment, in exactly one of

- ``delivered``: payload given in ``Frame``/``Data``, or ``EndOfStream`` data;
- ``framing``: delimiters, headers and trailers consumed;
- ``discarded``: skipped after ``FrameTooLarge`` or dropped by ``discard_buffers``;
- ``pending_input``: received and not yet accounted for,

so ``received == delivered + framing + discarded + pending_input`` always
(:meth:`ModelFramer.conservation_holds`).
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, Union

# ---------------------------------------------------------------------------
# Events (plain tuples-like dataclasses; the test converts the real ones)


@dataclass(frozen=True)
class MFrame:
    data: bytes
    terminator: bytes | None = None


@dataclass(frozen=True)
class MData:
    data: bytes


@dataclass(frozen=True)
class MEnd:
    data: bytes


class _NeedData:
    def __repr__(self) -> str:
        return "NEED"


NEED = _NeedData()

MEvent = Union[MFrame, MData, MEnd, _NeedData]


# ---------------------------------------------------------------------------
# Errors


class ModelError(Exception):
    """Base of the model's own errors."""


class MTooLarge(ModelError):
    def __init__(self, announced: bool) -> None:
        super().__init__(f"frame too large (announced={announced})")
        self.announced = announced


class MMalformed(ModelError):
    pass


class MClosed(ModelError):
    pass


class MProducerFailed(ModelError):
    pass


class MKindError(ModelError):
    """A user HeaderKind broke parse_header's contract (the real Framer should
    raise a clear error naming the kind and change nothing)."""

    def __init__(self, kind: object, cause: BaseException | None = None) -> None:
        super().__init__(f"bad HeaderKind {type(kind).__name__}")
        self.kind = kind
        self.cause = cause


# ---------------------------------------------------------------------------
# Terminators


@dataclass(frozen=True)
class Delimiters:
    """A bytes delimiter (``tagged=False``) or an AnyDelimiter (``tagged=True``:
    ``Frame.terminator`` names the delimiter that ended the frame)."""

    options: tuple[bytes, ...]
    tagged: bool


class HeaderSpec:
    """A length-announcing kind: ``parse`` returns (header_length,
    payload_length), None (more bytes needed) or raises MMalformed."""

    max_header: int = 64
    trailer: bytes = b""

    def parse(self, data: bytes) -> tuple[int, int] | None:
        raise NotImplementedError

    def encode(self, payload: bytes) -> bytes:
        raise NotImplementedError


class LengthPrefixSpec(HeaderSpec):
    def __init__(self, width: int, order: str, includes_prefix: bool) -> None:
        self.width = width
        self.order = order
        self.includes_prefix = includes_prefix
        self.max_header = width

    def parse(self, data: bytes) -> tuple[int, int] | None:
        if len(data) < self.width:
            return None
        value = int.from_bytes(data[: self.width], "little" if self.order == "little" else "big")
        if self.includes_prefix:
            if value < self.width:
                raise MMalformed("length smaller than its own prefix")
            value -= self.width
        return self.width, value

    def encode(self, payload: bytes) -> bytes:
        value = len(payload) + (self.width if self.includes_prefix else 0)
        if self.order == "little":
            return value.to_bytes(self.width, "little") + payload
        return value.to_bytes(self.width, "big") + payload


class VarintSpec(HeaderSpec):
    max_header = 10

    def parse(self, data: bytes) -> tuple[int, int] | None:
        value = 0
        for index, byte in enumerate(data[:10]):
            value |= (byte & 0x7F) << (7 * index)
            if not byte & 0x80:
                # DOC GAP: "at most 10 bytes: a 64-bit length"; a tenth byte
                # that carries bits past 2**64 is taken as malformed.
                if value >= 1 << 64:
                    raise MMalformed("varint past 64 bits")
                return index + 1, value
            if index == 9:
                raise MMalformed("varint past 10 bytes")
        return None

    def encode(self, payload: bytes) -> bytes:
        value = len(payload)
        out = bytearray()
        while True:
            low = value & 0x7F
            value >>= 7
            if value:
                out.append(low | 0x80)
            else:
                out.append(low)
                return bytes(out) + payload


class NetstringSpec(HeaderSpec):
    max_header = 21
    trailer = b","

    def parse(self, data: bytes) -> tuple[int, int] | None:
        for index, byte in enumerate(data):
            if byte == ord(":"):
                if index == 0:
                    raise MMalformed("empty length")
                return index + 1, int(data[:index])
            if not ord("0") <= byte <= ord("9"):
                raise MMalformed("non-digit in length")
            if index == 1 and data[0] == ord("0"):
                raise MMalformed("leading zero")
            if index >= 20:
                raise MMalformed("more than 20 digits")
        return None

    def encode(self, payload: bytes) -> bytes:
        return b"%d:%s," % (len(payload), payload)


class UserKindLike(Protocol):
    max_header: int
    trailer: bytes

    def parse_header(self, data: bytes) -> Any: ...

    def encode(self, payload: bytes) -> bytes: ...


class UserSpec(HeaderSpec):
    """A user's HeaderKind object, called as the real Framer calls it. Its
    contract, from the parse_header docstring: return None or
    ``(header_length, payload_length)``; raise the library's MalformedFrame
    (``malformed``) as soon as the bytes prove the header bad."""

    def __init__(self, kind: UserKindLike, malformed: type[BaseException]) -> None:
        self.kind = kind
        self.malformed = malformed
        self.max_header = kind.max_header
        self.trailer = bytes(kind.trailer)

    def parse(self, data: bytes) -> tuple[int, int] | None:
        try:
            result = self.kind.parse_header(data)
        except self.malformed as error:
            raise MMalformed(str(error)) from error
        except Exception as error:  # propagated as it is, nothing changes
            raise MKindError(self.kind, error) from error
        if result is None:
            return None
        # DOC GAP: the docstring does not say what a kind that breaks its
        # contract gets. The model wants a clear error, nothing consumed: a
        # 2-tuple of ints, 1 <= header_length <= bytes shown (a header of 0
        # bytes could make empty frames forever), payload_length >= 0.
        if (
            not isinstance(result, tuple)
            or len(result) != 2
            or not all(type(item) is int for item in result)
            or not 1 <= result[0] <= len(data)
            or result[1] < 0
        ):
            raise MKindError(self.kind)
        return result[0], result[1]

    def encode(self, payload: bytes) -> bytes:
        return bytes(self.kind.encode(payload))


Term = Union[bytes, int, None, Delimiters, HeaderSpec]


# ---------------------------------------------------------------------------
# The delimiter search, from scratch each time


@dataclass(frozen=True)
class Scan:
    """``found``: a delimiter ``delimiter`` ends the frame at ``at``.
    Otherwise ``at`` is the first position where a delimiter could still
    begin (every byte before it is surely payload)."""

    found: bool
    at: int
    delimiter: bytes = b""


def scan(data: bytes, options: tuple[bytes, ...], eof: bool) -> Scan:
    """The earliest delimiter in ``data``, the longest at one position; but
    never a decision that more bytes could change (a longer delimiter, or an
    earlier one, still possible), unless the stream has ended."""
    for at in range(len(data) + 1):
        tail = data[at:]
        if not eof and any(len(d) > len(tail) and d.startswith(tail) for d in options):
            return Scan(False, at)
        complete = [d for d in options if tail.startswith(d)]
        if complete:
            return Scan(True, at, max(complete, key=len))
    return Scan(False, len(data))


# ---------------------------------------------------------------------------
# The output queue


class ProducerLike(Protocol):
    def more(self) -> Any: ...


_CLOSE = object()  # the close_when_done marker


def _is_bytes_like(value: object) -> bool:
    return isinstance(value, (bytes, bytearray, memoryview))


@dataclass
class _Exact:
    left: int
    trailer: bytes
    stream: bool
    whole: int  # the count asked for (what a refusal skips, with the trailer)


class ModelFramer:
    """The model. Method names mirror the real Framer's public API."""

    DEFAULT_MAX_FRAME = 65536
    DEFAULT_MAX_VALUE = 16 * 1024 * 1024

    def __init__(
        self,
        terminator: Term,
        *,
        stream: bool = False,
        max_frame_size: int | None = DEFAULT_MAX_FRAME,
        max_value_size: int | None = DEFAULT_MAX_VALUE,
        out_buffer_size: int = 65536,
    ) -> None:
        self._rx = bytearray()
        self._pos = 0
        self._eof = False
        self._eos_given = False
        self._stream_default = stream
        self._term: Term = None
        self._term_stream = stream
        self._count_left = 0
        self._exact: _Exact | None = None
        self._released = 0  # payload of the frame in progress given as Data
        self._header_left: int | None = None  # streamed header frame: payload to come
        self._skip: tuple[str, Any] | None = None
        self._cut = False  # the stream ended inside a refused frame
        self._max_frame: int | None = None
        self._max_value: int | None = None
        self.max_frame_size = max_frame_size
        self.max_value_size = max_value_size
        self.received = 0
        self.delivered = 0
        self.framing = 0
        self.bytes_discarded = 0
        self.set_terminator(terminator)
        # output
        self.out_buffer_size = out_buffer_size
        self._queue: list[Any] = []  # bytes, producers and _CLOSE
        self._closing = False
        self._peeked = 0  # what consume_output may remove (the last peek)
        self._shown: bytes | None = None  # the last peek, until something is taken
        self._head_sent = 0  # bytes of the first chunk already out
        # Bytes each producer has made, by id, holding the producer: an id is
        # unique only while its object lives, and a later producer must not
        # inherit what a dropped one made.
        self._made: dict[int, tuple[object, int]] = {}
        self.dropped_after_close = 0
        self._high = 65536
        self._low = 16384
        self.writing_paused = False
        self.hold_input_above: int | None = None

    # -- limits ---------------------------------------------------------

    @property
    def max_frame_size(self) -> int | None:
        return self._max_frame

    @max_frame_size.setter
    def max_frame_size(self, value: int | None) -> None:
        self._max_frame = _check_limit(value)

    @property
    def max_value_size(self) -> int | None:
        return self._max_value

    @max_value_size.setter
    def max_value_size(self, value: int | None) -> None:
        self._max_value = _check_limit(value)

    # -- input: configuration ---------------------------------------------

    def set_terminator(self, terminator: Term, *, stream: bool | None = None) -> None:
        _check_terminator(terminator)
        if isinstance(terminator, bytes):
            terminator = bytes_term(terminator)
        self._term = terminator
        self._term_stream = self._stream_default if stream is None else stream
        self._count_left = terminator if isinstance(terminator, int) else 0
        self._exact = None
        # A streamed header frame in progress is abandoned: its header stays
        # counted as framing (consumed), its payload so far was delivered.
        self._header_left = None

    def read_exactly(self, count: int, trailer: bytes = b"", *, stream: bool | None = None) -> None:
        count = operator.index(count)
        if count < 0:
            raise ValueError("negative count")
        if not _is_bytes_like(trailer):
            raise TypeError("trailer must be bytes-like")
        mode = self._stream_default if stream is None else stream
        self._exact = _Exact(count, bytes(trailer), mode, count)

    def get_terminator(self) -> Term:
        if self._exact is not None:
            return self._exact.left
        if isinstance(self._term, int):
            return self._count_left
        return self._term

    @property
    def stream(self) -> bool:
        if self._exact is not None:
            return self._exact.stream
        return self._term_stream

    @property
    def eof_received(self) -> bool:
        return self._eof

    @property
    def pending_input(self) -> int:
        return len(self._rx) - self._pos

    def conservation_holds(self) -> bool:
        return self.received == self.delivered + self.framing + self.bytes_discarded + self.pending_input

    # -- input: bytes -----------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        if not _is_bytes_like(data):
            raise TypeError("data must be bytes-like")
        data = bytes(data)
        if self._eof:
            if data:
                raise MClosed("receive_data after the end of the stream")
            return  # DOC GAP: a second b"" is taken as harmless
        if not data:
            self._eof = True
            return
        self._rx += data
        self.received += len(data)

    def discard_buffers(self) -> None:
        """Drop input held and output queued. The frame in progress starts
        afresh (its released count too) under the same terminator; a count's
        remaining bytes, a pending read_exactly and the skip of a refused
        frame all stay (the tail of a refused frame is never read as a frame)."""
        self._drop(self.pending_input)
        self._released = 0
        self._header_left = None
        self._queue = [item for item in self._queue if item is _CLOSE][:1]
        self._peeked = 0
        self._shown = None
        self._head_sent = 0
        self._update_paused(grew=False)

    # -- input: events ----------------------------------------------------

    def next_event(self) -> MEvent:
        self._settle()
        return self._produce()

    def payloads(self) -> Iterator[bytes]:
        """Lazy: nothing is looked at until the first ``next()``; each step
        takes the next event only if it is a Frame."""
        while True:
            self._settle()
            saved = self._snapshot()
            event = self._produce()  # errors propagate, as from next_event
            if not isinstance(event, MFrame):
                self._restore(saved)
                return
            yield event.data

    def deliver_events(self, handler: Any) -> bool:
        """What ``sanschat.deliver_events`` documents: every ready event to the
        handler's callbacks, stopping as soon as input is held."""
        while True:
            if self.input_hold:
                return False
            try:
                event = self.next_event()
            except MTooLarge as error:
                handler.frame_too_large(error)
                continue
            except MMalformed as error:
                handler.frame_malformed(error)
                continue
            if isinstance(event, MFrame):
                handler.frame_received(event.data)
            elif isinstance(event, MData):
                handler.data_received(event.data)
            elif isinstance(event, MEnd):
                handler.end_received(event.data)
                return True
            else:
                return False

    # -- the state machine ------------------------------------------------

    def _held(self) -> bytes:
        return bytes(self._rx[self._pos :])

    def _drop(self, count: int) -> None:
        self._pos += count
        self.bytes_discarded += count

    def _give(self, count: int) -> bytes:
        data = bytes(self._rx[self._pos : self._pos + count])
        self._pos += count
        self.delivered += count
        return data

    def _consume(self, count: int) -> None:
        self._pos += count
        self.framing += count

    def _snapshot(self) -> dict[str, Any]:
        keys = [k for k in vars(self) if not k.startswith("_queue")]
        return {k: copy.copy(vars(self)[k]) for k in keys}

    def _restore(self, saved: dict[str, Any]) -> None:
        vars(self).update(saved)

    def _settle(self) -> None:
        """The work that produces no event: skipping the rest of a refused
        frame, and reading the header of a streamed header frame."""
        if self._eos_given:
            return
        if self._skip is not None:
            self._advance_skip()
            if self._skip is not None and self._eof:
                # The stream ended inside the refused frame: nothing can come
                # after it, whatever terminator was set meanwhile.
                self._drop(self.pending_input)
                self._skip = None
                self._cut = True
            if self._skip is not None:
                return
        if (
            self._exact is None
            and isinstance(self._term, HeaderSpec)
            and self._term_stream
            and self._header_left is None
        ):
            parsed = self._parse_header(self._term)
            if parsed is not None:
                header, payload = parsed
                self._consume(header)
                self._header_left = payload

    def _advance_skip(self) -> None:
        assert self._skip is not None
        how, what = self._skip
        held = self._held()
        if how == "count":
            step = min(what, len(held))
            self._drop(step)
            self._skip = ("count", what - step) if what - step else None
            return
        found = scan(held, what, self._eof)
        if found.found:
            self._drop(found.at + len(found.delimiter))
            self._skip = None
        else:
            self._drop(found.at)

    def _refuse(self, announced: bool, skip: tuple[str, Any], value: bool = False) -> MTooLarge:
        """``value``: a read_exactly value, a frame of its own; the frame it
        interrupted (a streamed header frame) goes on after it, as after a
        value read."""
        self._skip = skip
        if not value:
            self._released = 0
            self._header_left = None
        # What is held of the refused frame is dropped at the error (counted
        # then); the rest as it comes.
        self._advance_skip()
        return MTooLarge(announced)

    def _malformed(self, message: str) -> MMalformed:
        # The terminator becomes None: the bytes from the bad frame on (what
        # was not yet delivered) come as Data.
        if self._exact is not None:  # None goes on in the mode of the bad value
            self._term_stream = self._exact.stream
        self._term = None
        self._exact = None
        self._header_left = None
        self._released = 0
        return MMalformed(message)

    def _parse_header(self, kind: HeaderSpec) -> tuple[int, int] | None:
        """Parse a header at the front of the held bytes; raise what the
        frame earns (malformed, too large); None when more bytes are needed."""
        held = self._held()
        try:
            parsed = kind.parse(held[: kind.max_header])
        except MMalformed as error:
            raise self._malformed(str(error)) from None
        if parsed is None:
            if len(held) >= kind.max_header:
                raise self._malformed("no header within max_header bytes")
            return None
        header, payload = parsed
        if self._max_frame is not None and payload > self._max_frame:
            raise self._refuse(True, ("count", header + payload + len(kind.trailer)))
        return parsed

    def _produce(self) -> MEvent:
        if self._eos_given:  # the last event, for good
            return MEnd(b"")
        if self._skip is not None:
            return NEED
        if self._cut:
            return self._end(b"")
        held = self._held()
        if self._exact is not None:
            return self._read_exact(held, self._exact)
        term = self._term
        if term is None:
            return self._read_none(held)
        if isinstance(term, int):
            return self._read_count(held)
        if isinstance(term, Delimiters):
            return self._read_delimited(held, term)
        assert isinstance(term, HeaderSpec)
        if self._term_stream:
            return self._read_streamed_header(held, term)
        return self._read_whole_header(held, term)

    def _end(self, held: bytes) -> MEvent:
        self._eos_given = True
        return MEnd(self._give(len(held)))

    def _read_none(self, held: bytes) -> MEvent:
        if self._eof:
            return self._end(held)
        if held:
            return MData(self._give(len(held)))
        return NEED

    def _frame(self, payload_length: int, framing: int, terminator: bytes | None = None) -> MFrame:
        data = self._give(payload_length)
        self._consume(framing)
        self._released = 0
        return MFrame(data, terminator)

    def _read_count(self, held: bytes) -> MEvent:
        left = self._count_left
        if left == 0:  # "an empty frame at once", EOF or not
            self._term = None
            return self._frame(0, 0)
        if not self._term_stream and self._max_frame is not None and left > self._max_frame:
            self._term = None
            raise self._refuse(True, ("count", left))
        if len(held) >= left:
            self._term = None
            self._count_left = 0
            return self._frame(left, 0)
        # Streamed, the bytes held go out as Data, the end known or not (so
        # that when the end became known changes nothing); then the end.
        if self._term_stream and held:
            self._count_left -= len(held)
            return MData(self._give(len(held)))
        if self._eof:
            return self._end(held)
        return NEED

    def _read_delimited(self, held: bytes, term: Delimiters) -> MEvent:
        limit = self._max_frame
        found = scan(held, term.options, self._eof)
        if found.found:
            if limit is not None and self._released + found.at > limit:
                return self._oversized(term)
            return self._frame(found.at, len(found.delimiter), found.delimiter if term.tagged else None)
        # The bytes held prove the payload at least this long, whatever comes
        # (DOC GAP: "as soon as the bytes held prove it" read literally: a
        # byte that cannot begin the delimiter is surely payload).
        surely = scan(held, term.options, eof=False).at
        if limit is not None and self._released + surely > limit:
            return self._oversized(term)
        if self._eof:
            return self._end(held)
        if self._term_stream and surely:
            self._released += surely
            return MData(self._give(surely))
        return NEED

    def _oversized(self, term: Delimiters) -> MEvent:
        limit = self._max_frame
        assert limit is not None
        if self._term_stream and limit > self._released:
            room = limit - self._released
            self._released = limit
            return MData(self._give(room))
        raise self._refuse(False, ("delimiters", term.options))

    def _read_whole_header(self, held: bytes, kind: HeaderSpec) -> MEvent:
        parsed = self._parse_header(kind)
        if parsed is None:
            if self._eof:
                return self._end(held)
            return NEED
        header, payload = parsed
        return self._complete(held[header:], payload, kind.trailer, header, stream=False)

    def _read_streamed_header(self, held: bytes, kind: HeaderSpec) -> MEvent:
        if self._header_left is None:  # header not complete (settled before)
            if self._eof:
                return self._end(held)
            return NEED
        left = self._header_left
        event = self._complete(held, left, kind.trailer, 0, stream=True)
        if isinstance(event, MData):
            self._header_left = left - len(event.data)
        elif isinstance(event, (MFrame, MEnd)):
            self._header_left = None
        return event

    def _read_exact(self, held: bytes, exact: _Exact) -> MEvent:
        if not exact.stream and self._max_value is not None and exact.left > self._max_value:
            self._exact = None
            raise self._refuse(True, ("count", exact.whole + len(exact.trailer)), value=True)
        released = self._released
        self._released = 0  # a value is a frame of its own
        try:
            event = self._complete(held, exact.left, exact.trailer, 0, stream=exact.stream)
        finally:
            self._released = released
        if isinstance(event, MData):
            exact.left -= len(event.data)
        elif isinstance(event, MFrame):
            self._exact = None
        return event

    def _complete(self, held: bytes, left: int, trailer: bytes, header: int, *, stream: bool) -> MEvent:
        """A counted payload of ``left`` bytes then ``trailer``, starting
        ``header`` bytes into the held input (a whole header frame's header,
        still held). Streamed, payload bytes go out as Data at once, and before
        the error of a bad trailer."""
        body = held[left : left + len(trailer)]
        if not trailer.startswith(body):
            if stream and left:
                return MData(self._give(left))
            raise self._malformed("bad trailer")
        if len(held) >= left + len(trailer):
            self._consume(header)
            return self._frame(left, len(trailer))
        if stream and held[:left]:  # (the end known or not, as for a count)
            return MData(self._give(len(held[:left])))
        if self._eof:
            return self._end(self._held())
        return NEED

    # -- output -----------------------------------------------------------

    def push(self, data: bytes | bytearray | memoryview) -> None:
        if not _is_bytes_like(data):
            raise TypeError("push needs bytes")
        data = bytes(data)
        if self._closing:
            # DOC GAP: "dropped and counted": the real count is of pushes
            # (an empty one too), not of bytes.
            self.dropped_after_close += 1
            return
        if data:
            self._queue.append(data)
            self._update_paused(grew=True)

    def push_with_producer(self, producer: Any) -> None:
        if _is_bytes_like(producer):
            self.push(producer)
            return
        if not callable(getattr(producer, "more", None)):
            raise TypeError("a producer needs more()")
        if self._closing:
            self.dropped_after_close += 1
            return
        self._queue.append(producer)
        self._update_paused(grew=True)

    def push_frame(self, payload: bytes) -> None:
        # DOC GAP: "framed the way this Framer reads frames": while a
        # read_exactly value is due, that is a count (no framing to add).
        term = self._term if self._exact is None else self._exact.left
        if term is None or isinstance(term, int):
            raise TypeError("no framing to add under a count or None")
        if isinstance(term, Delimiters):
            first = term.options[0]
            wire = bytes(payload) + first
            # Refused unless reading it back ends the frame exactly there,
            # whatever bytes come next.
            if scan(wire, term.options, eof=False) != Scan(True, len(payload), first):
                raise ValueError("the payload would not read back as one frame")
            self.push(wire)
            return
        assert isinstance(term, HeaderSpec)
        self.push(term.encode(bytes(payload)))

    def close_when_done(self) -> None:
        if not self._closing:
            self._closing = True
            self._queue.append(_CLOSE)

    # The queue holds chunks (bytes), producers and the close marker;
    # ``_head_sent`` bytes of the first chunk are already out. DOC GAP: the
    # docs say only that a peek shows "at most out_buffer_size" and that
    # "looking again without consuming shows the same bytes". The model takes
    # the zero-copy reading: a chunk partly sent shows its rest; otherwise a
    # peek joins up to out_buffer_size bytes (pulling producers to fill them)
    # into one chunk and shows it.

    def data_to_send(self, max_bytes: int | None = None) -> bytes:
        if max_bytes is not None and max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self._peeked = 0
        self._shown = None
        try:
            self._fill(max_bytes)
        except MProducerFailed:
            # What the take had gathered before the failing producer stays
            # first in line, as one chunk.
            paused = self.writing_paused
            gathered = self._take(self._front_length())
            if gathered:
                self._queue.insert(0, gathered)
            self.writing_paused = paused  # nothing left the queue
            raise
        front = self._front_length()
        return self._take(front if max_bytes is None else min(front, max_bytes))

    def _front_length(self) -> int:
        """Bytes queued before the first producer or close marker."""
        total = -self._head_sent
        for item in self._queue:
            if not isinstance(item, bytes):
                break
            total += len(item)
        return max(total, 0)

    def _fill(self, wanted: int | None) -> None:
        """Pull producers, in order, while fewer than ``wanted`` bytes are
        ready at the front (producers are pulled only when output is taken or
        shown). A failing producer is removed; what is before it stays first."""
        while wanted is None or self._front_length() < wanted:
            first = next((item for item in self._queue if not isinstance(item, bytes)), None)
            if first is None or first is _CLOSE:
                return
            queue, count = self._queue, self._index(first) or 0
            try:
                self._pull(first)
            except MProducerFailed:
                # The bytes gathered for this take (all before the failed
                # producer) go back in front as one chunk, the rest of a
                # partly sent head included (the implementation's choice; the
                # docs say only that nothing taken is lost). Not if more()
                # discarded them (discard_buffers makes a new queue): gone.
                if count and self._queue is queue:
                    queue[:count] = [b"".join(queue[:count])[self._head_sent :]]
                    self._head_sent = 0
                raise

    def _take(self, count: int) -> bytes:
        out = bytearray()
        while len(out) < count:
            head = self._queue[0]
            assert isinstance(head, bytes)
            part = head[self._head_sent : self._head_sent + count - len(out)]
            out += part
            self._head_sent += len(part)
            if self._head_sent == len(head):
                self._queue.pop(0)
                self._head_sent = 0
        # The marks are judged on what is left once the take is over (a
        # producer pulled during it does not pause writing by itself).
        self._update_paused()
        return bytes(out)

    def _pull(self, producer: Any) -> None:
        """Call a producer's more() once; its chunk goes before it."""
        try:
            chunk = producer.more()
        except Exception as error:
            self._remove(producer)
            self._update_paused()
            raise MProducerFailed(f"{producer!r} raised {error!r}") from error
        if not _is_bytes_like(chunk):
            self._remove(producer)
            self._update_paused()
            raise MProducerFailed(f"{producer!r} returned {type(chunk).__name__}")
        chunk = bytes(chunk)
        self._made[id(producer)] = (producer, self._made_by(producer) + len(chunk))
        where = self._index(producer)
        if where is None:
            # DOC GAP: discard_buffers() inside more() dropped the producer;
            # the chunk it returned goes with it.
            return
        if chunk:
            self._queue.insert(where, chunk)
        else:
            self._queue.pop(where)

    def _index(self, item: object) -> int | None:
        for index, queued in enumerate(self._queue):
            if queued is item:
                return index
        return None

    def _remove(self, item: object) -> None:
        where = self._index(item)
        if where is not None:
            self._queue.pop(where)

    def peek_output(self) -> bytes:
        if self._shown is not None:  # "looking again without consuming shows the same bytes"
            return self._shown
        size = self.out_buffer_size
        if self._head_sent:
            head: bytes = self._queue[0]
            shown = head[self._head_sent : self._head_sent + size]
        else:
            self._fill(size)
            count = min(size, self._front_length())
            if count:
                joined = bytearray()
                while len(joined) < count:
                    chunk = self._queue.pop(0)
                    joined += chunk
                if len(joined) > count:
                    self._queue.insert(0, bytes(joined[count:]))
                self._queue.insert(0, bytes(joined[:count]))
            shown = bytes(self._queue[0]) if count else b""
        self._peeked = len(shown)
        self._shown = shown if shown else None
        self._update_paused()  # (a producer pulled into view counts, now as bytes)
        return shown

    def consume_output(self, sent: int) -> None:
        if not 0 <= sent <= self._peeked:
            raise ValueError("sent out of range of the last peek")
        if not sent:
            return  # nothing went out: the same bytes are shown again
        self._peeked = 0
        self._shown = None
        self._take(sent)

    @property
    def pending_output(self) -> int:
        return sum(len(item) for item in self._queue if isinstance(item, bytes)) - self._head_sent

    def _made_by(self, producer: object) -> int:
        entry = self._made.get(id(producer))
        return entry[1] if entry is not None and entry[0] is producer else 0

    @property
    def promised_output(self) -> int:
        """By each producer's length hint; one without a hint counts as
        out_buffer_size until it has made that much (the promised_output
        docstring)."""
        total = 0
        for item in self.producers_queued():
            hint = operator.length_hint(item, -1)
            if hint < 0:
                hint = max(0, self.out_buffer_size - self._made_by(item))
            total += hint
        return total

    def producers_queued(self) -> list[Any]:
        return [item for item in self._queue if item is not _CLOSE and not isinstance(item, bytes)]

    @property
    def has_output(self) -> bool:
        return bool(self._queue) and self._queue[0] is not _CLOSE

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def should_close(self) -> bool:
        return self._closing and bool(self._queue) and self._queue[0] is _CLOSE

    @property
    def input_hold(self) -> bool:
        if self._closing:
            return True
        above = self.hold_input_above
        return above is not None and self.pending_output + self.promised_output > above

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = 65536 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError("need high >= low >= 0")
        self._high, self._low = high, low
        self._update_paused()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def _update_paused(self, grew: bool | None = None) -> None:
        # asyncio's convention: pause when the unsent output passes high,
        # resume when it falls to low; checked as it grows (pause) or shrinks
        # (resume), both when the marks change or a producer is pulled.
        total = self.pending_output + self.promised_output
        if total > self._high and grew is not False:
            self.writing_paused = True
        elif total <= self._low and grew is not True:
            self.writing_paused = False


def _check_limit(value: int | None) -> int | None:
    if value is None:
        return None
    value = operator.index(value)
    if value < 0:
        raise ValueError("a limit must be >= 0")
    return value


def _check_terminator(terminator: object) -> None:
    if terminator is None or isinstance(terminator, (Delimiters, HeaderSpec)):
        return
    if isinstance(terminator, bool) or not isinstance(terminator, (bytes, int)):
        raise TypeError(f"bad terminator {terminator!r}")
    if isinstance(terminator, bytes) and not terminator:
        raise ValueError("empty delimiter")
    if isinstance(terminator, int) and terminator < 0:
        raise ValueError("negative count")


def bytes_term(delimiter: bytes) -> Delimiters:
    """A plain bytes terminator, in the model's terms."""
    return Delimiters((delimiter,), tagged=False)


ProducerFactory = Callable[[], ProducerLike]
