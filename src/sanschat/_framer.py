"""The Framer: bytes in, events out, with asynchat's terminator semantics.

Goals: every byte received is delivered exactly once, in order, or counted
(``bytes_discarded``; terminators and headers are the framing); time is linear
in the bytes fed however they are chunked; memory is bounded by
``max_frame_size`` in whole mode and by one ``receive_data`` chunk streamed.

Plan. The bytes live in a :class:`~sanschat._buffer.ReceiveBuffer`; the
current terminator's reader (``_readers.READERS``) finds frames in it. The
Framer keeps the policy, in one place: the limit (``_over_limit``), the skip of
a refused frame (``_skipper``, which no terminator change cancels), a malformed
frame (``_malformed``), and the end of the stream (``_wait``).

The batch path: when a delimiter reader finds a frame with more bytes behind
it, it splits a window of the buffer in one C call (``_start_batch``); the
payloads are then handed out one per call with no search at all. If the
terminator changes mid-batch, ``_settle_batch`` works out how far the consumer
got and puts the rest back. The window doubles while batches are used up (up to
``_MAX_WINDOW``: an int doubled per batch forever would grow, and cost time,
without end) and shrinks to what was used when one is cut short, so the bytes
split in vain never outnumber the bytes delivered (plus a small constant per
batch). Frames found one by one earn the window back (a burst of pipelining
after a phase of terminator changes batches again), more slowly after each
batch in a row that was cut short after a few pieces.

``payloads()`` and ``next_event()`` find frames through the same reader method
(``frame``), so they agree by construction; ``next_event()`` alone goes on to
the reader's ``partial`` for an event that is not a frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from operator import index, length_hint
from typing import NoReturn, SupportsIndex

from ._buffer import ReceiveBuffer
from ._errors import ClosedError, FrameTooLarge, MalformedFrame
from ._events import NATIVE_EVENTS, NEED_DATA, Data, EndOfStream, Frame, _set_data
from ._output import OutputQueue
from ._readers import (
    FOREVER,
    READERS,
    SHARED_DELIMITER_READERS,
    CountReader,
    DelimiterReader,
    HeaderReader,
    NextEvent,
    Reader,
    Skipper,
    delimiter_reader,
)
from ._terminators import MAX_COUNT, Terminator, check_terminator

__all__ = ["Framer", "DEFAULT_MAX_FRAME_SIZE", "DEFAULT_MAX_VALUE_SIZE"]

#: Default bound on one frame's payload, in bytes.
DEFAULT_MAX_FRAME_SIZE = 65536
#: Default bound on a value read with ``read_exactly``, in bytes.
DEFAULT_MAX_VALUE_SIZE = 16 * 1024 * 1024

# The batch window (see the module docstring): its first size, its smallest,
# and the size from which splitting beats one search per frame.
_FIRST_WINDOW = 65536
_MIN_WINDOW = 64
_BATCH_FROM = 512
_MAX_WINDOW = 1 << 20

_new = object.__new__
_NO_PIECES: list[bytes] = []  # the batch list when none is pending (never changed)
_UNLIMITED = MAX_COUNT  # the internal limit when max_frame_size is None


def _check_limit_value(name: str, limit: object) -> None:
    """TypeError or ValueError unless ``limit`` is a size in bytes or None."""
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise TypeError(f"{name} must be an int or None, not {type(limit).__name__}")
        if limit < 0:
            raise ValueError(f"{name} must be >= 0, not {limit}")


def _checked_count(count: object) -> int:
    """``count`` as an int byte count, or TypeError / ValueError saying why not."""
    try:
        if isinstance(count, bool):
            raise TypeError
        value = index(count)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"read_exactly needs an int count, not {type(count).__name__} ({count!r})") from None
    if not 0 <= value <= MAX_COUNT:
        raise ValueError(f"read_exactly needs a count from 0 to {MAX_COUNT}, not {value}")
    return value


class Framer(OutputQueue):
    """A sans-IO framing state machine in the spirit of asynchat.

    Feed received bytes with :meth:`receive_data` (``b""`` for the end of the
    stream) and pull events with :meth:`next_event` until it returns
    :data:`NEED_DATA`; or iterate :meth:`payloads` for the payloads of whole
    frames in bulk. The output side (``push``, producers, ``data_to_send``...) is
    inherited from :class:`~sanschat._output.OutputQueue`.

    ``terminator`` is a non-empty bytes string, a count of bytes (``0`` is an
    immediate empty frame), ``None`` (no frames: everything is ``Data``), an
    :class:`AnyDelimiter` or a :class:`HeaderKind`. ``stream`` selects streaming
    delivery by default (see :meth:`set_terminator`). ``max_frame_size`` bounds
    a frame's payload (``None``: unlimited); ``max_value_size`` bounds a value
    read with :meth:`read_exactly`, so that a protocol's lines and its values
    have limits of their own.
    """

    _BATCH_FROM = _BATCH_FROM

    def __init__(
        self,
        terminator: Terminator,
        *,
        stream: bool = False,
        max_frame_size: int | None = DEFAULT_MAX_FRAME_SIZE,
        max_value_size: int | None = DEFAULT_MAX_VALUE_SIZE,
        out_buffer_size: int = 65536,
    ) -> None:
        super().__init__(out_buffer_size=out_buffer_size)
        if not isinstance(stream, bool):
            raise TypeError(f"stream must be a bool, not {type(stream).__name__}")
        self._stream_default = stream
        self._stream = stream
        self._rx = ReceiveBuffer()
        self._eof = False
        self._eos_sent = False
        self._frame_size = 0  # bytes of the frame in progress already released as Data
        self._reader: Reader = FOREVER
        self._count_reader = CountReader(0)  # reused: setting a count allocates nothing
        self._exact_reader = CountReader(0, exact=True)  # read_exactly's, reused too
        # The rest of a refused frame still to drop, whatever is set meanwhile.
        self._skipper: Skipper | None = None
        # A pending batch of payloads; see the module docstring.
        self._batch: Iterator[bytes] | None = None
        self._batch_list: list[bytes] = _NO_PIECES
        self._batch_end = self._batch_scan = 0
        self._batch_tail: bytes | None = None  # the rest of the buffer after it, if split
        self._batch_delimiter = b""
        # read_exactly answered from a batch: the index of the piece that is
        # the value (-1: none). See read_exactly.
        self._promise = -1
        self._window = _FIRST_WINDOW
        self._misses = 0  # batches cut short in a row, after a few pieces (see _settle_batch)
        # A whole-mode count keeps received bytes aside (CountReader) from this
        # many at a time, which bounds the overhead of its list of parts.
        self._keep_aside_from = 4096
        #: Bytes dropped unseen: the rest of a frame after FrameTooLarge, input
        #: thrown away by ``discard_buffers``.
        self.bytes_discarded = 0
        # Headers consumed as framing by streamed frames that never completed
        # (their payload went out as Data): the tests' byte ledger reads it.
        self._abandoned_headers = 0
        self._max: int | None = None
        self._limit = _UNLIMITED
        self.max_frame_size = max_frame_size
        self._value_max: int | None = None
        self._value_limit = _UNLIMITED
        self.max_value_size = max_value_size
        self.set_terminator(terminator)

    # ------------------------------------------------------------------ setup

    def set_terminator(self, terminator: Terminator, *, stream: bool | None = None) -> None:
        """Set how the next frame ends; applies to bytes already received.

        ``terminator`` is a non-empty bytes string (the frame ends where it is
        found), a byte count (``0``: an empty frame at once; when a count frame
        completes the terminator becomes ``None``), ``None`` (collect forever:
        every byte is released as ``Data``), an :class:`AnyDelimiter` or a
        :class:`HeaderKind`. ``stream`` chooses the delivery for this
        terminator: ``False`` holds a frame until it is complete and gives it as
        one ``Frame``; ``True`` releases as ``Data`` every byte that cannot begin
        the delimiter, and ends with a ``Frame`` of what is left. ``None`` (the
        default) uses the Framer's own ``stream`` setting.

        A whole-mode count larger than ``max_frame_size`` is refused like any
        oversized frame (``FrameTooLarge`` from ``next_event``, its bytes
        skipped); streamed, a count is its own bound. While the rest of a
        refused frame is being skipped, a terminator set now applies to the
        bytes after that frame: no change of terminator cuts a skip short.
        """
        if stream is None:
            stream = self._stream_default
        elif type(stream) is not bool:
            raise TypeError(f"stream must be a bool or None, not {type(stream).__name__}")
        # Checked before any state changes (the usual values skip the full
        # validation of check_terminator).
        reader: Reader
        if type(terminator) is bytes and terminator:
            reader = SHARED_DELIMITER_READERS.get(terminator) or delimiter_reader(terminator)
            count = -1
        elif type(terminator) is int and 0 <= terminator <= MAX_COUNT:
            reader, count = self._count_reader, terminator
        else:
            kind, value = check_terminator(terminator)
            if type(value) is int:  # an int subclass or an __index__ object
                reader, count = self._count_reader, value
            else:
                reader, count = READERS[kind](value), -1
        if self._batch is not None:
            self._settle_batch()
        if self._reader.held:
            self._give_back()
        # A streamed header frame given up part way (one a pending value had
        # interrupted, too): its consumed header stays framing.
        if self._reader is self._exact_reader:
            self._abandon_header(self._exact_reader.after)
        self._abandon_header()
        if count >= 0:
            self._set_count(count, stream)
        else:
            self._reader = reader
        self._stream = stream
        self._rx.scan = self._rx.pos

    def _set_count(self, count: int, stream: bool) -> None:
        reader = self._count_reader
        reader.remaining = count
        reader.trailer = b""
        reader.after = FOREVER
        reader.after_stream = stream
        self._reader = reader

    def read_exactly(
        self,
        count: SupportsIndex,
        trailer: bytes | bytearray | memoryview = b"",
        *,
        stream: bool | None = None,
    ) -> None:
        """The next frame is exactly ``count`` bytes, followed by ``trailer``;
        after it, the terminator in force now applies again, in its mode.

        This is the shape of a value in most text protocols: a counted payload,
        then a fixed trailer, then lines again (RESP bulk strings, memcached
        data blocks, HTTP chunks with ``b"\\r\\n"``; IMAP literals with none). The
        trailer is checked: a different one is a :class:`MalformedFrame` from
        ``next_event`` (the bytes from the value on then come as Data, as after
        any malformed frame). ``count`` is bounded by ``max_value_size`` in whole
        mode (``FrameTooLarge``, announced; the value and trailer are skipped and
        the terminator after it applies). ``stream`` as in :meth:`set_terminator`.
        Like ``set_terminator``, it applies to bytes already received, and a
        later ``set_terminator`` replaces it.
        """
        # (Annotations wide enough that a compiled build leaves these checks to us.)
        size = count if type(count) is int and 0 <= count <= MAX_COUNT else _checked_count(count)
        if type(trailer) is not bytes:
            if not isinstance(trailer, (bytearray, memoryview)):
                raise TypeError(f"trailer must be bytes, not {type(trailer).__name__}")
            trailer = bytes(trailer)
        if stream is None:
            stream = self._stream_default
        elif type(stream) is not bool:
            raise TypeError(f"stream must be a bool or None, not {type(stream).__name__}")
        batch = self._batch
        if batch is not None:
            # Under a pending batch of lines split by the same delimiter, the
            # next piece IS the value when it has exactly ``count`` bytes: the
            # first trailer in the stream is then right after them. Promise it
            # and leave the batch running (settling it keeps the promise).
            if trailer == self._batch_delimiter and not stream and size <= self._value_limit:
                pieces = self._batch_list
                index = self._batch_taken()
                if index < len(pieces) and len(pieces[index]) == size:
                    self._promise = index
                    return
            self._settle_batch()
        self._expect(size, trailer, stream)

    def _expect(self, count: int, trailer: bytes, stream: bool) -> None:
        """Put read_exactly's reader in force (its arguments checked)."""
        if self._reader.held:
            self._give_back()
        reader = self._exact_reader
        if self._reader is not reader:  # else a new read_exactly replaces the pending one
            # (a streamed header frame in progress resumes after the value)
            reader.after = self._reader
            reader.after_stream = self._stream
        reader.remaining = count
        reader.trailer = trailer
        self._reader = reader
        self._stream = stream
        self._rx.scan = self._rx.pos

    def get_terminator(self) -> Terminator:
        """The current terminator. For a count, the bytes still needed to end the
        frame; ``None`` once a count frame has completed."""
        if self._batch is not None and self._promise == self._batch_taken():
            return len(self._batch_list[self._promise])  # read_exactly answered from the batch
        return self._reader.terminator()

    @property
    def stream(self) -> bool:
        """Whether the current frame is delivered in streaming mode."""
        return self._stream

    @property
    def max_frame_size(self) -> int | None:
        """Bound on a frame's payload in bytes, or ``None``."""
        return self._max

    @max_frame_size.setter
    def max_frame_size(self, limit: int | None) -> None:
        _check_limit_value("max_frame_size", limit)
        if self._batch is not None:
            self._settle_batch()  # its payloads were checked against the old limit
        self._max = limit
        self._limit = _UNLIMITED if limit is None else limit

    @property
    def max_value_size(self) -> int | None:
        """Bound on a value read with :meth:`read_exactly`, in bytes, or ``None``."""
        return self._value_max

    @max_value_size.setter
    def max_value_size(self, limit: int | None) -> None:
        _check_limit_value("max_value_size", limit)
        if self._batch is not None:
            self._settle_batch()  # a promised value was checked against the old limit
        self._value_max = limit
        self._value_limit = _UNLIMITED if limit is None else limit

    @property
    def eof_received(self) -> bool:
        """Whether ``receive_data(b"")`` has been called."""
        return self._eof

    @property
    def pending_input(self) -> int:
        """Bytes received and not yet delivered in an event."""
        if self._batch is not None:
            self._settle_batch()
        return self._rx.held + self._reader.held

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes; an empty bytes-like object means the peer closed.

        A bytes object is kept as it is; a bytearray or memoryview is copied, so
        the caller may reuse its buffer. After the end of the stream, more bytes
        raise :class:`ClosedError`.
        """
        rx = self._rx
        if type(data) is bytes and data and not self._eof and self._batch is None:
            # ReceiveBuffer.feed's two usual cases, inlined: a call per chunk
            # costs a trickle (1-7 byte chunks) 12-17% (benchmarks W2).
            buf = rx.buf
            pos = rx.pos
            if pos == len(buf):  # all earlier input delivered: keep the caller's bytes
                rx.buf = data
                rx.pos = rx.scan = 0
                return
            if type(buf) is bytearray:  # a frame still growing: append in place
                if pos:
                    del buf[:pos]  # drops the front without moving the rest
                    rx.scan -= pos
                    rx.pos = 0
                buf += data
                return
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"receive_data needs a bytes-like object, not {type(data).__name__}")
            data = bytes(data)
        if not data:
            self._eof = True
            return
        if self._eof:
            raise ClosedError("receive_data after the end of the stream")
        if self._batch is not None:
            self._settle_batch()
        rx.feed(data)

    def next_event(self) -> NextEvent:
        """Return the next event: ``Frame``, ``Data``, ``EndOfStream`` or ``NEED_DATA``.

        Raises :class:`FrameTooLarge` once at a frame past ``max_frame_size``,
        and :class:`MalformedFrame` once at a frame that breaks its kind's rules.
        """
        batch = self._batch
        if batch is not None:
            for payload in batch:  # one step (compiled: no call of next())
                if NATIVE_EVENTS:
                    return Frame(payload)
                event = _new(Frame)
                _set_data(event, payload)
                return event
            self._finish_batch()
        if self._skipper is not None and not self._skip():
            return self._wait()
        if self._eos_sent:  # the last event was the end: it stays the last
            return EndOfStream(b"")
        reader = self._reader
        found = reader.frame(self)
        if type(found) is bytes:
            if NATIVE_EVENTS:
                return Frame(found)
            event = _new(Frame)
            _set_data(event, found)
            return event
        answer = found or reader.partial(self)
        if not reader.lets_go:
            self._let_go()  # whatever the answer: it may have delivered the last bytes
        return answer  # type: ignore[return-value]

    def payloads(self) -> Iterator[bytes]:
        """Yield the payloads of the whole frames that can be completed now.

        Stops where the next event would not be a ``Frame`` (it then is a
        ``Data``, ``EndOfStream`` or ``NEED_DATA``: ask :meth:`next_event`), and
        raises its errors at the same point: both find frames the same way, so
        they agree on every input. This is the fast path for pipelined frames:
        runs of delimited frames are split in bulk.

        Nothing is read before the generator is asked for a payload, and each
        payload is taken from the buffer only when asked for, so calls to
        ``next_event``, ``set_terminator`` (or any other method), another
        generator or ``receive_data`` between two payloads are exact, as with
        ``next_event`` alone.
        """
        while True:
            batch = self._batch
            if batch is not None:
                yield from batch
                if self._batch is batch:  # not settled from outside meanwhile
                    self._finish_batch()
                continue
            if (self._skipper is not None and not self._skip()) or self._eos_sent:
                return
            reader = self._reader
            if reader.has_bulk:
                yield from reader.bulk(self)
                if self._reader is not reader or self._batch is not None:
                    continue  # changed by the consumer meanwhile
            found = reader.frame(self)
            if type(found) is bytes:
                yield found
            elif type(found) is Frame:
                yield found.data
            else:
                if not reader.lets_go:
                    self._let_go()
                return

    def take_payloads(self) -> list[bytes]:
        """Take the payloads of whole frames that can be completed now, in one
        list: what ``payloads()`` would yield, in fewer steps (a pipelined run
        is split once and handed over whole). An empty list means the next
        event is not a ``Frame``: ask :meth:`next_event`.

        It may stop before every whole frame is taken (call again), and it
        raises ``FrameTooLarge`` or ``MalformedFrame`` only with nothing taken,
        so no payload is ever lost to an error: the error comes at the next
        call. A terminator set afterwards applies from the byte after the last
        payload taken.
        """
        taken: list[bytes] = []
        while True:
            batch = self._batch
            if batch is not None:
                taken.extend(batch)  # (runs no code of the caller's: the batch ends whole)
                self._finish_batch()
                continue
            if taken or (self._skipper is not None and not self._skip()) or self._eos_sent:
                return taken
            reader = self._reader
            if reader.has_bulk:
                taken.extend(reader.bulk(self))
                if taken:
                    return taken
            found = reader.frame(self)
            if type(found) is bytes:
                taken.append(found)
            elif type(found) is Frame:
                taken.append(found.data)
            else:
                if not taken and not reader.lets_go:
                    self._let_go()
                return taken

    def _needs_data(self) -> bool:
        """True when, known without a search, the next event is ``NEED_DATA``:
        the buffer is empty (every byte received delivered, and let go) and a
        delimiter is awaited from its first byte. (False: ask ``next_event``.)"""
        return (
            not self._rx.buf
            and self._batch is None
            and self._frame_size == 0
            and not self._eof
            and self._skipper is None
            and type(self._reader) is DelimiterReader
        )

    def _let_go(self) -> None:
        """If every byte received has been delivered, drop the buffer, so that
        a connection waiting for input holds none of it (a server's idle
        connections keep no read alive). Not under a pending batch, whose
        offsets point into the buffer."""
        rx = self._rx
        if rx.pos == len(rx.buf) and rx.buf and self._batch is None:
            rx.buf = b""
            rx.pos = rx.scan = 0

    def _skip(self) -> bool:
        """Go on dropping a refused frame; True once all of it is gone."""
        assert self._skipper is not None
        if self._skipper.skip(self):
            self._skipper = None
            return True
        return False

    # ------------------------------------------------- policy, for the readers

    def _frame(self, start: int, end: int, after: int) -> bytes:
        """The payload ``[start, end)`` of a frame; the next begins at ``after``."""
        rx = self._rx
        payload = rx.take(start, end)
        rx.pos = rx.scan = after
        self._frame_size = 0
        return payload

    def _release(self, count: int) -> Data:
        """The next ``count`` bytes of the frame in progress, as Data."""
        rx = self._rx
        pos = rx.pos
        self._frame_size += count
        rx.pos = rx.scan = pos + count
        if NATIVE_EVENTS:
            return Data(rx.take(pos, pos + count))
        event = _new(Data)
        _set_data(event, rx.take(pos, pos + count))
        return event

    def _wait(self) -> NextEvent:
        """No frame can be completed: NEED_DATA, or at the end of the stream
        the remainder (once; ``EndOfStream(b"")`` after that)."""
        if not self._eof:
            return NEED_DATA
        if self._eos_sent:
            return EndOfStream(b"")
        self._eos_sent = True
        if self._reader.held:
            self._give_back()
        rx = self._rx
        if self._skipper is not None:  # the tail of a refused frame
            self.bytes_discarded += rx.held
            rx.pos = len(rx.buf)
            self._skipper = None
        remainder = rx.take(rx.pos, len(rx.buf))
        rx.pos = rx.scan = len(rx.buf)
        self._frame_size = 0
        return EndOfStream(remainder)

    def _give_back(self) -> None:
        """The bytes a count reader kept aside go back in front of the buffer:
        its frame will not be completed as such (a new terminator, the end of
        the stream, a discard, a refusal or a malformed trailer)."""
        reader = self._reader
        assert isinstance(reader, CountReader)
        rx = self._rx
        reader.parts.append(rx.take(rx.pos, len(rx.buf)))
        rx.buf = b"".join(reader.parts)
        rx.pos = rx.scan = 0
        reader.parts.clear()
        reader.held = 0

    @property
    def _headers_in_flight(self) -> int:
        """Header bytes consumed by streamed frames not over yet, or never to be
        (framing all the same): the tests' byte ledger reads it."""
        reader = self._reader
        in_flight = reader.header_consumed
        if reader is self._exact_reader:  # a value read in the middle of one
            in_flight += reader.after.header_consumed
        return in_flight + self._abandoned_headers

    def _abandon_header(self, reader: Reader | None = None) -> None:
        """The streamed frame in progress (``reader``'s, by default the current
        one's) will not complete: the header it consumed stays framing (it is
        not discarded: its payload was delivered)."""
        if reader is None:
            reader = self._reader
        consumed = reader.header_consumed
        if consumed:
            self._abandoned_headers += consumed
            reader.header_consumed = 0
            self._frame_size = 0  # that frame is over: the next one starts afresh
            if isinstance(reader, HeaderReader):
                reader.payload_left = -1

    def _check_limit(self, size: int, skipper: Skipper) -> None:
        """A frame's size passed the limit while looking for frames: the error
        now, unless (streamed) some of its bytes must go out as Data first."""
        if not (self._stream and self._frame_size < self._limit):
            self._refuse(skipper, FrameTooLarge(self._limit, size))

    def _over_limit(self, size: int, skipper: Skipper) -> Data:
        """The frame in progress passed the limit (``size`` bytes so far).
        Streamed, its first ``max_frame_size`` bytes go out as Data first, so
        what is delivered before the error does not depend on the chunking."""
        if self._stream and self._frame_size < self._limit:
            return self._release(self._limit - self._frame_size)
        self._refuse(skipper, FrameTooLarge(self._limit, size))

    def _refuse(self, skipper: Skipper, error: FrameTooLarge, frame_over: bool = True) -> NoReturn:
        """Raise ``error``; ``skipper`` drops the rest of that frame afterwards
        (a refused value, ``frame_over`` false, leaves the frame it interrupted)."""
        if frame_over:
            self._frame_size = 0
        # What is held of the refused frame goes now (counted at the error);
        # the skipper drops the rest as it comes, whatever is set meanwhile.
        self._skipper = None if skipper.skip(self) else skipper
        raise error

    def _malformed(self, error: MalformedFrame) -> NoReturn:
        """Raise ``error``; the bytes from the bad frame on become Data."""
        self._reader = FOREVER
        self._frame_size = 0
        raise error

    # ----------------------------------------------------------- batch path

    def _start_batch(self, delimiter: bytes, first_end: int) -> bytes | None:
        """Split the frames complete within the window into a pending batch and
        return the first. None (nothing changed) when the first frame alone
        passes the window, when only one frame is complete, or when one of them
        passes the limit: the exact path then takes it."""
        rx = self._rx
        pos = rx.pos
        stop = min(len(rx.buf), pos + self._window)
        if first_end + len(delimiter) > stop:
            return None
        pieces = rx.take(pos, stop).split(delimiter)
        tail = pieces.pop()  # incomplete: not a frame (yet)
        if len(pieces) < 2:
            return None
        # Bytes of the first frame already released as Data count too. No
        # other piece can pass the limit when the whole window does not.
        limit = self._limit
        if self._frame_size + len(pieces[0]) > limit or (
            stop - pos > limit and max(map(len, pieces)) > limit
        ):
            return None
        batch = iter(pieces)
        self._batch_list = pieces
        self._batch_tail = tail if stop == len(rx.buf) else None
        self._batch = batch
        self._batch_end = stop - len(tail)
        # split saw no delimiter start in the tail, short of the window's edge.
        self._batch_scan = max(self._batch_end, stop - len(delimiter) + 1)
        self._batch_delimiter = delimiter
        self._frame_size = 0
        return next(batch)

    def _batch_taken(self) -> int:
        """Payloads of the pending batch handed out so far (the next one's index)."""
        return len(self._batch_list) - length_hint(self._batch)

    def _finish_batch(self) -> None:
        """The consumer took every payload of the batch."""
        rx = self._rx
        tail = self._batch_tail
        if tail is not None:
            # The batch reached the end of the buffer: keep only its incomplete
            # tail (split made it already), so the read's bytes go now, as they
            # would from a hand-split server, not at the connection's next read.
            rx.buf = tail
            rx.scan = self._batch_scan - self._batch_end
            rx.pos = 0
            self._batch_tail = None
        else:
            rx.pos = self._batch_end
            rx.scan = self._batch_scan
        self._window = min(2 * self._window, _MAX_WINDOW)
        self._misses = 0
        self._batch = None
        self._batch_list = _NO_PIECES  # (the payloads are the consumer's now)
        self._promise = -1

    def _settle_batch(self) -> None:
        """Make the buffer state exact again in the middle of a batch."""
        pieces = self._batch_list
        taken = self._batch_taken()
        if taken == len(pieces):
            self._finish_batch()
            return
        used = sum(map(len, islice(pieces, taken))) + taken * len(self._batch_delimiter)
        rx = self._rx
        rx.pos = rx.scan = rx.pos + used
        self._window = max(_MIN_WINDOW, 2 * used)
        # A batch cut after a few pieces did more harm than good (a terminator
        # change per frame, as in HTTP): the exact path then earns the window
        # back ever more slowly (DelimiterReader.frame). A batch well used
        # restores the pace.
        self._misses = min(self._misses + 1, 30) if taken < 4 else 0
        promised = len(pieces[taken]) if self._promise == taken else -1
        pieces.clear()  # ends the iteration of a payloads() generator still on it
        self._batch = None
        self._batch_tail = None
        self._promise = -1
        if promised >= 0:  # read_exactly's value is the next piece: read it exactly
            self._expect(promised, self._batch_delimiter, False)

    # ----------------------------------------------------------------- output

    def push_frame(self, payload: bytes | bytearray | memoryview) -> None:
        """Queue ``payload`` framed the way this Framer reads frames: followed by
        the delimiter (the first of an AnyDelimiter), or wrapped by a HeaderKind's
        ``encode`` (length prefix, varint, netstring). A payload that contains
        its delimiter is refused (ValueError); under a count or ``None`` there is
        no framing to add (TypeError: use ``push``)."""
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise TypeError(f"push_frame needs a bytes-like object, not {type(payload).__name__}")
        self.push(self._reader.encode(bytes(payload)))

    # ------------------------------------------------------------- emergency

    def discard_buffers(self) -> None:
        """Drop all input held and all output queued (asynchat's emergency exit).

        Dropped input is counted in ``bytes_discarded``, and the frame in
        progress starts afresh under the same terminator. A pending
        ``close_when_done`` stays, and is then due at once.
        """
        self._discard_input()
        self._discard_output()

    def _discard_input(self) -> int:
        """Drop all input held (counted in ``bytes_discarded``); the frame in
        progress starts afresh under the same terminator. Returns the count."""
        if self._reader.held:
            self._give_back()
        dropped = self.pending_input  # settles a batch
        self.bytes_discarded += dropped
        rx = self._rx
        rx.pos = rx.scan = len(rx.buf)
        self._frame_size = 0
        reader = self._reader
        if reader is self._exact_reader:  # the value starts afresh; what comes after stays,
            self._abandon_header(reader.after)  # a streamed header frame it interrupted afresh too
            self._expect(reader.remaining, reader.trailer, self._stream)
        else:  # a fresh reader, the same terminator
            self.set_terminator(self.get_terminator(), stream=self._stream)
        return dropped
