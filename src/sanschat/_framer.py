"""The Framer: bytes in, events out, with asynchat's terminator semantics.

Goals: every byte received is delivered exactly once, in order (or counted in
``bytes_discarded`` after a ``FrameTooLarge``); time is linear in the bytes fed
however they are chunked; memory is bounded by ``max_frame_size`` in whole mode
and by one ``receive_data`` chunk in streaming mode.

Plan. Undelivered bytes live in one bytearray from ``_pos`` on; ``receive_data``
drops the delivered front (CPython does that without moving the rest). A
delimiter search starts at ``_scan``, the first offset where the delimiter could
still start, so no byte is searched twice while a long frame trickles in.

``next_event`` takes one frame at a time with ``find``, so ``set_terminator``
between two events is exact for free. ``payloads()`` is the batch path: it
splits a window of the buffer in one C call and yields the payloads; if the
terminator changes mid-batch, ``_settle_batch`` works out how far the consumer
really got and puts the rest back. The window grows while batches are used up
and shrinks to what was used when one is cut short, so the bytes split in vain
never outnumber the bytes delivered (plus a small constant per batch).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from operator import length_hint
from typing import NoReturn, Union

from ._errors import ClosedError, FrameTooLarge, MalformedFrame
from ._events import NEED_DATA, Data, EndOfStream, Frame, _set_data, _set_terminator
from ._kinds import AnyDelimiter, HeaderKind, LengthPrefix
from ._output import OutputQueue
from ._terminators import (
    MAX_COUNT,
    Kind,
    Terminator,
    check_terminator,
    longest_prefix_at_end,
)

__all__ = ["Framer", "DEFAULT_MAX_FRAME_SIZE"]

#: Default bound on one frame's payload, in bytes.
DEFAULT_MAX_FRAME_SIZE = 65536

# Smallest and first window of the batch path (see the module docstring).
_MIN_WINDOW = 256
_FIRST_WINDOW = 65536

_new = object.__new__
_DELIMITER = Kind.DELIMITER
_COUNT = Kind.COUNT
_FOREVER = Kind.FOREVER
_ANY = Kind.ANY
_HEADER = Kind.HEADER
_UNLIMITED = MAX_COUNT  # the internal limit when max_frame_size is None


def _bytes_of(buf: bytes | bytearray, start: int, end: int) -> bytes:
    """``buf[start:end]`` as bytes, copied once (a bytearray slice would copy twice)."""
    if type(buf) is bytes:
        if start == 0 and end == len(buf):
            return buf  # the whole of it: no copy (said outright, as compiled code would copy)
        return buf[start:end]
    if end - start > 4096:
        with memoryview(buf) as view:
            return view[start:end].tobytes()
    return bytes(buf[start:end])


InputEvent = Union[Frame, Data, EndOfStream, type[NEED_DATA]]


class Framer(OutputQueue):
    """A sans-IO framing state machine in the spirit of asynchat.

    Feed received bytes with :meth:`receive_data` (``b""`` for the end of the
    stream) and pull events with :meth:`next_event` until it returns
    :data:`NEED_DATA`; or iterate :meth:`payloads` for the payloads of whole
    frames in bulk. The output side (``push``, producers, ``data_to_send``...) is
    inherited from :class:`~sanschat._output.OutputQueue`.

    ``terminator`` is a non-empty bytes string, a count of bytes (``0`` is an
    immediate empty frame) or ``None`` (no frames: everything is ``Data``).
    ``stream`` selects streaming delivery by default (see :meth:`set_terminator`).
    ``max_frame_size`` bounds a delimited frame's payload (``None``: unlimited).
    """

    def __init__(
        self,
        terminator: Terminator,
        *,
        stream: bool = False,
        max_frame_size: int | None = DEFAULT_MAX_FRAME_SIZE,
        out_buffer_size: int = 65536,
    ) -> None:
        super().__init__(out_buffer_size=out_buffer_size)
        if not isinstance(stream, bool):
            raise TypeError(f"stream must be a bool, not {type(stream).__name__}")
        self._stream_default = stream
        self._max: int | None = None
        self.max_frame_size = max_frame_size
        # Undelivered input is self._buf[self._pos:]. It is the received bytes
        # object itself when that can be (no copy), and a bytearray while a
        # frame larger than the chunks that bring it accumulates (no quadratic
        # concatenation).
        self._buf: bytes | bytearray = b""
        self._pos = 0
        self._scan = 0
        self._frame_size = 0  # bytes of the current frame released as Data
        self._eof = False
        self._eos_sent = False
        #: Bytes dropped unseen: the rest of a frame after FrameTooLarge, and
        #: input thrown away by ``discard_buffers``.
        self.bytes_discarded = 0
        # Pending batch of payloads (see payloads()); None when there is none.
        self._batch: list[bytes] | None = None
        self._batch_it: Iterator[bytes] | None = None
        self._batch_end = self._batch_scan = 0
        self._window = _FIRST_WINDOW
        # Set by set_terminator: _delimiter is read only under a delimiter,
        # _remaining only under a count.
        self._delimiter: bytes = b""
        self._remaining: int = 0
        # Under a HeaderKind: the parsed header of the frame at _pos, not yet
        # consumed; the payload bytes still to stream once it is (-1: none);
        # the bytes still to skip after a FrameTooLarge.
        self._header: tuple[int, int] | None = None
        self._payload_left = -1
        self._skip_left = 0
        self.set_terminator(terminator)

    # ------------------------------------------------------------------ setup

    def set_terminator(self, terminator: Terminator, *, stream: bool | None = None) -> None:
        """Set how the next frame ends; applies to bytes already received.

        ``terminator`` is a non-empty bytes string (the frame ends where it is
        found), a byte count (``0``: an empty frame at once; when a count frame
        completes the terminator becomes ``None``) or ``None`` (collect forever:
        every byte is released as ``Data``). ``stream`` chooses the delivery for
        this terminator: ``False`` holds a frame until it is complete and gives
        it as one ``Frame``; ``True`` releases as ``Data`` every byte that cannot
        begin the delimiter, and ends with a ``Frame`` of what is left. ``None``
        (the default) uses the Framer's own ``stream`` setting.

        A count larger than ``max_frame_size`` is refused in whole mode (it could
        never be held); streamed, a count is its own bound. Calling this also
        ends the skipping that follows a ``FrameTooLarge``.
        """
        if stream is None:
            stream = self._stream_default
        elif type(stream) is not bool:
            raise TypeError(f"stream must be a bool or None, not {type(stream).__name__}")
        # The usual values skip the full validation of check_terminator.
        if type(terminator) is bytes and terminator:
            kind: Kind = _DELIMITER
        elif type(terminator) is int and 0 <= terminator <= MAX_COUNT:
            kind = _COUNT
        else:
            kind, terminator = check_terminator(terminator)
        if kind is _COUNT and not stream and terminator > self._limit:  # type: ignore[operator]
            raise ValueError(
                f"count terminator {terminator!r} exceeds max_frame_size={self._max}; "
                "stream it (stream=True) or raise max_frame_size"
            )
        if self._batch is not None:
            self._settle_batch()
        self._kind = kind
        self._terminator: Terminator = terminator
        if kind is _DELIMITER:
            self._delimiter = terminator  # type: ignore[assignment]
        elif kind is _COUNT:
            self._remaining = terminator  # type: ignore[assignment]
        self._stream = stream
        self._scan = self._pos
        self._skipping = False
        self._header = None
        self._payload_left = -1
        self._skip_left = 0

    def get_terminator(self) -> Terminator:
        """The current terminator. For a count, the bytes still needed to end the
        frame; ``None`` once a count frame has completed."""
        if self._kind is _COUNT:
            return self._remaining
        return self._terminator

    @property
    def stream(self) -> bool:
        """Whether the current frame is delivered in streaming mode."""
        return self._stream

    @property
    def max_frame_size(self) -> int | None:
        """Bound on a delimited frame's payload in bytes, or ``None``."""
        return self._max

    @max_frame_size.setter
    def max_frame_size(self, limit: int | None) -> None:
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int):
                raise TypeError(f"max_frame_size must be an int or None, not {type(limit).__name__}")
            if limit < 0:
                raise ValueError(f"max_frame_size must be >= 0, not {limit}")
        self._max = limit
        self._limit = _UNLIMITED if limit is None else limit

    @property
    def eof_received(self) -> bool:
        """Whether ``receive_data(b"")`` has been called."""
        return self._eof

    @property
    def pending_input(self) -> int:
        """Bytes received and not yet delivered in an event."""
        if self._batch is not None:
            self._settle_batch()
        return len(self._buf) - self._pos

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes; an empty bytes-like object means the peer closed.

        A bytes object is kept as it is; a bytearray or memoryview is copied, so
        the caller may reuse its buffer. After the end of the stream, more bytes
        raise :class:`ClosedError`.
        """
        if type(data) is bytes and data and self._pos == len(self._buf) and not self._eof:
            # The common case: all earlier input was delivered. Keep the
            # caller's bytes as the buffer (no copy, nothing else to adjust:
            # a pending batch always holds undelivered bytes).
            self._buf = data
            self._pos = self._scan = 0
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
        buf = self._buf
        pos = self._pos
        held = len(buf) - pos
        if not held:
            self._buf = data  # nothing held: keep the caller's bytes, no copy
        elif type(buf) is bytes and held <= len(data):
            # Joining costs at most twice the new bytes: linear overall.
            self._buf = buf[pos:] + data if pos else buf + data
        else:
            # A long frame is accumulating: a bytearray appends in place.
            if isinstance(buf, bytes):
                buf = self._buf = bytearray(memoryview(buf)[pos:])
            elif pos:
                del buf[:pos]  # drops the front without moving the rest
            buf += data
        if pos:
            self._pos = 0
            self._scan -= pos
            self._batch_end -= pos
            self._batch_scan -= pos

    def next_event(self) -> InputEvent:
        """Return the next event: ``Frame``, ``Data``, ``EndOfStream`` or ``NEED_DATA``.

        Raises :class:`FrameTooLarge` once at a frame past ``max_frame_size``.
        """
        if self._batch is not None:
            payload = next(self._batch_it, None)  # type: ignore[arg-type]
            if payload is not None:
                event = _new(Frame)
                _set_data(event, payload)
                return event
            self._settle_batch()
        kind = self._kind
        if kind is _DELIMITER:
            buf = self._buf
            end = buf.find(self._delimiter, self._scan)
            pos = self._pos
            if not self._skipping:
                if end >= 0:
                    # The hot path: a delimited frame within its limit.
                    if end - pos + self._frame_size <= self._limit:
                        event = _new(Frame)
                        _set_data(event, buf[pos:end] if type(buf) is bytes else _bytes_of(buf, pos, end))
                        self._pos = self._scan = end + len(self._delimiter)
                        self._frame_size = 0
                        return event
                elif not self._stream and not self._eof:
                    # The trickle path: a whole frame still incomplete.
                    scan = len(buf) - len(self._delimiter) + 1
                    if scan > pos:
                        self._scan = scan
                        if scan - pos + self._frame_size > self._limit:
                            self._oversized(scan - pos + self._frame_size)
                    return NEED_DATA
            payload = self._take_delimited(end)
        elif kind is _COUNT:
            buf = self._buf
            pos = self._pos
            end = pos + self._remaining
            size = len(buf)
            if end > size and not self._eof:
                if size == pos or not self._stream:
                    return NEED_DATA
                # A streamed count: release what is here, zero-copy for bytes.
                self._remaining = end - size
                self._pos = self._scan = size
                piece = _new(Data)
                _set_data(piece, _bytes_of(buf, pos, size))
                return piece
            payload = self._take_counted()
        elif kind is _FOREVER:
            payload = None
        elif kind is _ANY:
            return self._read_any(False) or NEED_DATA
        else:
            return self._read_header(False) or NEED_DATA
        if payload is not None:
            event = _new(Frame)
            _set_data(event, payload)
            return event
        return self._partial_event()

    def payloads(self) -> Iterator[bytes]:
        """Yield the payloads of the whole frames that can be completed now.

        Stops where the next event would not be a ``Frame`` (it then is a
        ``Data``, ``EndOfStream`` or ``NEED_DATA``: ask :meth:`next_event`). This is
        the fast path for pipelined frames: runs of delimited frames are split
        in bulk. Calling ``set_terminator`` (or any other method) between two
        payloads is exact, as with ``next_event``.
        """
        while True:
            if self._batch is None:
                if self._kind is _DELIMITER and not self._skipping:
                    end = self._buf.find(self._delimiter, self._scan)
                    if end < 0 or not self._start_batch(end):
                        payload = self._take_delimited(end)
                        if payload is None:
                            return
                        yield payload
                        continue
                else:
                    if self._kind is _HEADER:
                        yield from self._header_payloads()
                    elif self._kind is _ANY:
                        yield from self._any_payloads()
                    payload = self._take_frame()
                    if payload is None:
                        return
                    yield payload
                    continue
            batch = self._batch
            batch_it = self._batch_it
            assert batch is not None and batch_it is not None
            yield from batch_it
            if self._batch is batch:  # not settled from outside meanwhile
                self._finish_batch()

    # ------------------------------------------------------- frame readers

    def _take_frame(self) -> bytes | None:
        """Remove and return the payload of the next complete frame, if any."""
        if self._kind is _DELIMITER:
            return self._take_delimited(self._buf.find(self._delimiter, self._scan))
        if self._kind is _COUNT:
            return self._take_counted()
        if self._kind is _FOREVER:
            return None
        frame = self._read_any(True) if self._kind is _ANY else self._read_header(True)
        return None if frame is None else frame.data  # type: ignore[union-attr]

    def _take_delimited(self, end: int) -> bytes | None:
        """The delimited frame ending at ``end`` (-1: not found from ``_scan``),
        with the limit checked and an oversized frame's rest skipped."""
        buf = self._buf
        delimiter = self._delimiter
        while self._skipping:
            pos = self._pos
            if end < 0:
                keep_from = max(pos, len(buf) - len(delimiter) + 1)
                self.bytes_discarded += keep_from - pos
                self._pos = self._scan = keep_from
                return None
            after = end + len(delimiter)
            self.bytes_discarded += after - pos
            self._pos = self._scan = after
            self._skipping = False
            end = buf.find(delimiter, after)
        pos = self._pos
        if end >= 0:
            size = end - pos + self._frame_size
            if size > self._limit and not self._release_before_error():
                self._oversized(size)
            if size <= self._limit:
                self._pos = self._scan = end + len(delimiter)
                self._frame_size = 0
                return _bytes_of(buf, pos, end)
            return None
        self._scan = max(pos, len(buf) - len(delimiter) + 1)
        size = self._scan - pos + self._frame_size
        if size > self._limit and not self._release_before_error():
            self._oversized(size)
        return None

    def _release_before_error(self) -> bool:
        """Whether an oversized streamed frame still has bytes to release as
        ``Data`` before its ``FrameTooLarge``: up to the limit, so that what is
        delivered before the error does not depend on the chunking."""
        return self._stream and self._frame_size < self._limit

    def _take_counted(self) -> bytes | None:
        pos = self._pos
        end = pos + self._remaining
        if end > len(self._buf):
            return None
        self._pos = end
        self._frame_size = 0
        self._kind = _FOREVER
        self._terminator = None
        self._remaining = 0
        return _bytes_of(self._buf, pos, end)

    def _oversized(self, size: int) -> None:
        """Raise FrameTooLarge and skip the rest of that frame afterwards."""
        assert self._max is not None
        self._skipping = True
        self._frame_size = 0
        raise FrameTooLarge(self._max, size)

    def _partial_event(self) -> InputEvent:
        """The event to give when no frame is complete."""
        buf = self._buf
        pos = self._pos
        held = len(buf) - pos
        if self._eof:
            if held and self._kind is _DELIMITER and not self._skipping and self._release_before_error():
                # At the end too, an oversized streamed frame gives its first
                # bytes as Data before the error (next call), as it would have
                # had they come earlier.
                end = buf.find(self._delimiter, self._scan)
                known = (end if end >= 0 else max(pos, len(buf) - len(self._delimiter) + 1)) - pos
                if known + self._frame_size > self._limit:
                    return self._release(self._limit - self._frame_size)
            if self._eos_sent:
                return EndOfStream(b"")
            self._eos_sent = True
            if self._skipping:  # the tail of an oversized frame
                self.bytes_discarded += held
                pos = len(buf)
            self._pos = len(buf)
            self._frame_size = 0
            return EndOfStream(_bytes_of(buf, pos, len(buf)))
        if not held:
            return NEED_DATA
        kind = self._kind
        if kind is _FOREVER:
            release = held
        elif not self._stream:
            return NEED_DATA
        elif kind is _COUNT:
            release = held
            self._remaining -= held
        else:  # a streamed delimiter: hold back what may begin it
            if self._skipping:
                return NEED_DATA
            release = held - longest_prefix_at_end(buf, pos, self._delimiter)
            release = min(release, self._limit - self._frame_size)  # never past the limit
            if release <= 0:
                return NEED_DATA
            self._frame_size += release
        self._pos = self._scan = pos + release
        event = _new(Data)
        _set_data(event, _bytes_of(buf, pos, pos + release))
        return event

    # ------------------------------------------- alternative delimiters

    def _find_any(self) -> tuple[int, int]:
        """The earliest delimiter match that more input cannot change, as
        ``(start, end)``; else ``(-1, hold)``: no frame ends before ``hold``,
        and a delimiter may still begin there."""
        buf = self._buf
        kind: AnyDelimiter = self._terminator  # type: ignore[assignment]
        size = len(buf)
        match = kind.pattern.search(buf, self._scan)
        limit = match.start() if match else size
        if not self._eof:
            # Near the end, a longer delimiter may still begin at or before the
            # match: then the answer waits for more bytes, whatever the split.
            for start in range(max(self._scan, size - kind.longest + 1), min(limit + 1, size)):
                if kind.could_begin(bytes(buf[start:])):
                    return -1, start
        if match is not None:
            return match.start(), match.end()
        return -1, size  # no delimiter can begin in what is here

    def _read_any(self, frames_only: bool) -> InputEvent | None:
        """The next event under an AnyDelimiter (None: NEED_DATA, or with
        ``frames_only`` whatever is not a Frame)."""
        while True:
            start, end = self._find_any()
            pos = self._pos
            if not self._skipping:
                break
            # Through the match, or (none yet) up to where one may begin.
            self.bytes_discarded += end - pos
            self._pos = self._scan = end
            if start < 0:
                return None if frames_only else self._tail_event()
            self._skipping = False
        buf = self._buf
        size = (start if start >= 0 else end) - pos + self._frame_size
        if size > self._limit:
            if frames_only:
                return None
            if self._release_before_error():
                return self._release(self._limit - self._frame_size)
            self._oversized(size)
        if start >= 0:
            self._pos = self._scan = end
            self._frame_size = 0
            frame = _new(Frame)
            _set_data(frame, _bytes_of(buf, pos, start))
            _set_terminator(frame, bytes(buf[start:end]))
            return frame
        self._scan = end
        if frames_only:
            return None
        if self._stream and end > pos and not self._eof:
            return self._release(end - pos)
        return self._tail_event()

    def _any_payloads(self) -> Iterator[bytes]:
        """payloads() under an AnyDelimiter: one search and one slice per frame
        while the match lies far enough from the end that no longer delimiter
        could still begin before it. Returns at anything else."""
        kind: AnyDelimiter = self._terminator  # type: ignore[assignment]
        search = kind.pattern.search
        longest = kind.longest
        while self._terminator is kind and self._kind is _ANY and not self._skipping:
            buf = self._buf
            pos = self._pos
            match = search(buf, self._scan)
            if match is None:
                return
            start = match.start()
            if start > len(buf) - longest or start - pos + self._frame_size > self._limit:
                return  # the general reader decides
            self._pos = self._scan = match.end()
            self._frame_size = 0
            yield buf[pos:start] if type(buf) is bytes else _bytes_of(buf, pos, start)

    def _release(self, count: int) -> Data:
        """Give the next ``count`` bytes of the frame in progress as Data."""
        pos = self._pos
        self._frame_size += count
        self._pos = self._scan = pos + count
        return Data(_bytes_of(self._buf, pos, pos + count))

    def _tail_event(self) -> InputEvent | None:
        """No frame is complete: the end of the stream, or None for NEED_DATA."""
        if not self._eof:
            return None
        if self._skip_left:  # the rest of an oversized announced frame
            self.bytes_discarded += len(self._buf) - self._pos
            self._pos = self._scan = len(self._buf)
            self._skip_left = 0
        return self._partial_event()

    # ------------------------------------------ frames that give their length

    def _read_header(self, frames_only: bool) -> InputEvent | None:
        """The next event under a HeaderKind (None: NEED_DATA, or with
        ``frames_only`` whatever is not a Frame)."""
        kind: HeaderKind = self._terminator  # type: ignore[assignment]
        trailer = kind.trailer
        while True:
            buf = self._buf
            pos = self._pos
            held = len(buf) - pos
            if self._skip_left:
                skipped = min(self._skip_left, held)
                self.bytes_discarded += skipped
                self._skip_left -= skipped
                self._pos = self._scan = pos + skipped
                if self._skip_left:
                    return None if frames_only else self._tail_event()
                continue
            if self._payload_left >= 0:  # streaming a payload, header consumed
                left = self._payload_left
                end = pos + left
                if held >= left + len(trailer) and buf[end : end + len(trailer)] == trailer:
                    self._pos = self._scan = end + len(trailer)
                    self._payload_left = -1
                    self._frame_size = 0
                    frame = _new(Frame)
                    _set_data(frame, _bytes_of(buf, pos, end))
                    return frame
                if frames_only:
                    return None
                if left and held:  # payload bytes go out before the trailer is judged
                    self._payload_left -= min(left, held)
                    return self._release(min(left, held))
                self._check_trailer(buf, end, kind)
                return self._tail_event()
            if self._header is None:
                try:
                    head = buf[pos : pos + kind.max_header]
                    header = kind.parse_header(head if type(head) is bytes else bytes(head)) if held else None
                except MalformedFrame as error:
                    self._malformed(error)
                if header is None:
                    if held >= kind.max_header:
                        self._malformed(f"no complete header within {kind.max_header} bytes")
                    return None if frames_only else self._tail_event()
                header_size, payload_size = header
                if header_size < 1 or payload_size < 0:
                    raise ValueError(f"{kind!r}.parse_header returned {header!r}")
                if payload_size > self._limit:  # before any of it is held
                    if frames_only:
                        return None
                    self._skip_left = header_size + payload_size + len(trailer)
                    raise FrameTooLarge(self._limit, payload_size)
                self._header = header
            header_size, payload_size = self._header
            if self._stream and not frames_only:
                self._pos = self._scan = pos + header_size
                self._header = None
                self._payload_left = payload_size
                continue
            end = pos + header_size + payload_size
            if trailer:
                self._check_trailer(buf, end, kind)
            if end + len(trailer) <= len(buf):
                self._pos = self._scan = end + len(trailer)
                self._header = None
                self._frame_size = 0
                frame = _new(Frame)
                _set_data(frame, _bytes_of(buf, pos + header_size, end))
                return frame
            return None if frames_only else self._tail_event()

    def _header_payloads(self) -> Iterator[bytes]:
        """payloads() under a HeaderKind, whole mode: one parse and one slice
        per frame. Returns at anything unusual, for the general reader."""
        kind: HeaderKind = self._terminator  # type: ignore[assignment]
        parse = kind.parse_header
        max_header = kind.max_header
        trailer = kind.trailer
        plain_prefix = type(kind) is LengthPrefix and not kind.includes_prefix
        byteorder = kind.byteorder if type(kind) is LengthPrefix else "big"
        from_bytes = int.from_bytes
        while (
            self._terminator is kind
            and self._kind is _HEADER
            and not self._stream
            and self._header is None
            and not self._skip_left
            and self._payload_left < 0
        ):
            buf = self._buf
            pos = self._pos
            size = len(buf)
            if pos >= size:
                return
            if plain_prefix:  # LengthPrefix inlined: the common binary protocol
                header_size = max_header
                if pos + header_size > size:
                    return
                payload_size = from_bytes(buf[pos : pos + header_size], byteorder)
            else:
                head = buf[pos : pos + max_header]
                try:
                    header = parse(head if type(head) is bytes else bytes(head))
                except MalformedFrame:
                    return  # next_event raises it, with the state change it needs
                if header is None:
                    return
                header_size, payload_size = header
            end = pos + header_size + payload_size
            if header_size < 1 or payload_size < 0 or payload_size > self._limit:
                return
            if end + len(trailer) > size or (trailer and buf[end : end + len(trailer)] != trailer):
                return
            self._pos = self._scan = end + len(trailer)
            self._frame_size = 0
            yield (
                buf[pos + header_size : end] if type(buf) is bytes else _bytes_of(buf, pos + header_size, end)
            )

    def _check_trailer(self, buf: bytes | bytearray, at: int, kind: HeaderKind) -> None:
        """Raise MalformedFrame if the bytes from ``at`` already contradict the trailer."""
        trailer = kind.trailer
        if trailer and at < len(buf):
            present = buf[at : at + len(trailer)]
            if not trailer.startswith(present):
                self._malformed(f"expected {trailer!r} after the payload, got {bytes(present)!r}")

    def _malformed(self, problem: str | MalformedFrame) -> NoReturn:
        """Raise MalformedFrame; the bytes from the bad frame on become Data."""
        self._kind = _FOREVER
        self._terminator = None
        self._header = None
        self._payload_left = -1
        raise problem if isinstance(problem, MalformedFrame) else MalformedFrame(problem)

    # ----------------------------------------------------------- batch path

    def _start_batch(self, first_end: int) -> bool:
        """Split the frames complete within the window into a pending batch.

        ``first_end`` is where the first frame's delimiter was found. Nothing is
        split (False) when that frame alone passes the window or the limit: it
        is then taken singly, by the exact path.
        """
        buf = self._buf
        delimiter = self._delimiter
        pos = self._pos
        stop = min(len(buf), pos + self._window)
        if first_end + len(delimiter) > stop:
            return False
        pieces = _bytes_of(buf, pos, stop).split(delimiter)
        tail = pieces.pop()  # incomplete: not a frame (yet)
        if not pieces:
            return False
        # Bytes of the first frame already released as Data count too.
        if self._frame_size + len(pieces[0]) > self._limit or max(map(len, pieces)) > self._limit:
            return False
        self._batch = pieces
        self._batch_it = iter(pieces)
        self._batch_end = stop - len(tail)
        # split saw no delimiter start in the tail, short of the window's edge.
        self._batch_scan = max(self._batch_end, stop - len(delimiter) + 1)
        return True

    def _finish_batch(self) -> None:
        """The consumer took every payload of the batch."""
        self._pos = self._batch_end
        self._scan = self._batch_scan
        self._frame_size = 0
        self._window *= 2
        self._batch = self._batch_it = None

    def _settle_batch(self) -> None:
        """Make the buffer state exact again in the middle of a batch."""
        batch = self._batch
        assert batch is not None
        taken = len(batch) - length_hint(self._batch_it)
        if taken == len(batch):
            self._finish_batch()
            return
        if taken:
            used = sum(map(len, islice(batch, taken))) + taken * len(self._delimiter)
            self._pos += used
            self._frame_size = 0
            self._window = max(_MIN_WINDOW, 2 * used)
        self._scan = self._pos
        batch.clear()  # ends the iteration of a payloads() generator still on it
        self._batch = self._batch_it = None

    # ----------------------------------------------------------------- output

    def push_frame(self, payload: bytes | bytearray | memoryview) -> None:
        """Queue ``payload`` framed the way this Framer reads frames: followed by
        the delimiter (the first of an AnyDelimiter), or wrapped by a HeaderKind's
        ``encode`` (length prefix, varint, netstring). A payload that contains
        its delimiter is refused (ValueError); under a count or ``None`` there is
        no framing to add (TypeError: use ``push``)."""
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise TypeError(f"push_frame needs a bytes-like object, not {type(payload).__name__}")
        data = bytes(payload)
        kind = self._kind
        if kind is _DELIMITER:
            if self._delimiter in data:
                raise ValueError(f"payload contains the delimiter {self._delimiter!r}")
            self.push(data + self._delimiter)
        elif kind is _ANY or kind is _HEADER:
            self.push(self._terminator.encode(data))  # type: ignore[union-attr]
        else:
            raise TypeError(f"the terminator {self.get_terminator()!r} adds no framing to output; use push")

    # ------------------------------------------------------------- emergency

    def discard_buffers(self) -> None:
        """Drop all input held and all output queued (asynchat's emergency exit).

        Dropped input is counted in ``bytes_discarded``. A pending
        ``close_when_done`` stays, and is then due at once.
        """
        if self._batch is not None:
            self._settle_batch()
        self.bytes_discarded += len(self._buf) - self._pos
        self._pos = self._scan = len(self._buf)
        self._frame_size = 0
        self._discard_output()
