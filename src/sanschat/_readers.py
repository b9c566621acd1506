"""One reader per terminator kind, looked up in :data:`READERS` by kind.

A reader knows how one kind of frame ends, and nothing else: ``frame(framer)``
finds the next complete frame in the framer's receive buffer, the ONE way both
``next_event()`` and ``payloads()`` find frames; ``partial(framer)`` gives the
event when there is none. What the limit allows, what a refused frame's rest
is, and what the end of the stream gives are the Framer's policy
(``_check_limit``, ``_over_limit``, ``_refuse``, ``_malformed``, ``_wait``); a
reader only reports sizes to it. A reader that refuses a frame hands the Framer a *skipper*
(``skip(framer) -> done``) that knows where that frame ends, so the skip goes
on whatever terminator is set afterwards.

Readers hold only the state of the frame in progress; the buffer, the limit
and the frame's size so far belong to the Framer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol, Union

from ._errors import FrameTooLarge, MalformedFrame
from ._events import NATIVE_EVENTS, NEED_DATA, Data, EndOfStream, Frame, _set_data, _set_terminator
from ._kinds import AnyDelimiter, HeaderKind, LengthPrefix
from ._output import _as_bytes
from ._terminators import Kind, Terminator, longest_prefix_at_end

if TYPE_CHECKING:  # annotations only: at run time readers never import the Framer
    from ._framer import Framer

__all__ = [
    "NextEvent",
    "Reader",
    "DelimiterReader",
    "CountReader",
    "ForeverReader",
    "AnyDelimiterReader",
    "HeaderReader",
    "ByteSkipper",
    "Skipper",
    "READERS",
    "delimiter_reader",
]

#: What ``Framer.next_event`` returns: an event, or NEED_DATA.
NextEvent = Union[Frame, Data, EndOfStream, type[NEED_DATA]]
#: What ``Reader.frame`` finds: a payload, a Frame, or no frame (None, NEED_DATA).
Found = Union[bytes, Frame, type[NEED_DATA], None]

_new = object.__new__


class Skipper(Protocol):
    """Knows where a refused frame ends."""

    def skip(self, f: Framer) -> bool:
        """Drop what is held of the refused frame; True once all of it is gone."""
        ...


class ByteSkipper:
    """Skips the rest of a refused frame whose length was announced (a count
    or a header kind): a number of bytes, whatever they are."""

    def __init__(self, count: int) -> None:
        self.left = count

    def skip(self, f: Framer) -> bool:
        """Drop what is held of the refused frame; True once all of it is gone."""
        rx = f._rx
        dropped = min(self.left, len(rx.buf) - rx.pos)
        f.bytes_discarded += dropped
        rx.drop(dropped)
        self.left -= dropped
        return not self.left


class Reader:
    """Base of the readers: how frames of one kind end.

    Two steps, so that ``payloads()`` can ask for frames only: :meth:`frame`
    returns the next frame if one is complete (its payload as bytes, or a
    ``Frame`` event when it carries more, as an AnyDelimiter's does), with no
    other effect than raising the error that is the next event (and dropping
    a delivered buffer, see :attr:`lets_go`); :meth:`partial`, asked only
    after ``frame`` said None, gives the event that is not a frame (Data,
    the end of the stream, NEED_DATA)."""

    def terminator(self) -> Terminator:
        """What ``Framer.get_terminator()`` says while this reader is in force."""
        return None

    #: Framing bytes the frame in progress has consumed (a streamed header);
    #: ``Framer._abandon_header`` accounts for them if that frame never ends.
    header_consumed = 0
    #: Received bytes the reader keeps aside, out of the buffer (a whole-mode
    #: count); ``Framer._give_back`` returns them when the frame will not end.
    held = 0

    def frame(self, f: Framer) -> Found:
        """The next frame's payload (or Frame) if it is complete, else None (or
        NEED_DATA when :meth:`partial` would only say that)."""
        return None

    def partial(self, f: Framer) -> NextEvent:
        """The next event when :meth:`frame` has just said None."""
        return f._wait()

    #: Whether :meth:`bulk` has a fast path worth calling from ``payloads()``.
    has_bulk = False
    #: Whether :meth:`frame` drops the buffer itself once every byte of it is
    #: delivered (``Framer._let_go``, where it costs least); else the Framer
    #: does, when it answers something other than a frame.
    lets_go = False

    def bulk(self, f: Framer) -> Iterator[bytes]:
        """The payloads of the frames :meth:`frame` would give, found faster;
        returns at anything unusual, for :meth:`frame` to decide."""
        return iter(())

    def encode(self, payload: bytes) -> bytes:
        """``payload`` framed the way this reader reads it (``push_frame``)."""
        raise TypeError(f"the terminator {self.terminator()!r} adds no framing to output; use push")


class DelimiterReader(Reader):
    """A frame ends at the first occurrence of a bytes delimiter. Stateless:
    one per delimiter is shared (see :func:`delimiter_reader`)."""

    lets_go = True

    def __init__(self, delimiter: bytes) -> None:
        self.delimiter = delimiter

    def terminator(self) -> Terminator:
        return self.delimiter

    def frame(self, f: Framer) -> Found:
        rx = f._rx
        buf = rx.buf
        delimiter = self.delimiter
        end = buf.find(delimiter, rx.scan)
        pos = rx.pos
        if end >= 0:
            size = end - pos + f._frame_size
            if size > f._limit:
                f._check_limit(size, self)
                return None
            if f._window >= f._BATCH_FROM:
                if buf.find(delimiter, end + len(delimiter)) >= 0:  # two frames at least
                    first = f._start_batch(delimiter, end)
                    if first is not None:
                        return first
            else:  # batches were cut short: earn the window back by frames delivered
                f._window += (end + len(delimiter) - pos) >> f._misses
            rx.pos = rx.scan = end + len(delimiter)
            f._frame_size = 0
            return buf[pos:end] if type(buf) is bytes else rx.take(pos, end)
        # No delimiter yet: no later search needs to look before ``scan``.
        received = len(buf)
        scan = received - len(delimiter) + 1
        if scan > pos:
            rx.scan = scan
        size = received - pos + f._frame_size
        if size > f._limit:
            # Proven too large once the bytes that cannot begin the delimiter
            # pass the limit (exact, as AnyDelimiter; worked out only near it).
            # The same at the end of the stream, whenever it became known.
            size -= longest_prefix_at_end(buf, pos, delimiter)
            if size > f._limit:
                f._check_limit(size, self)
                return None
        if pos == received and pos:
            f._let_go()  # every byte received is delivered: hold none of them
        if f._stream or f._eof:
            return None
        return NEED_DATA  # the trickle path: a whole frame still incomplete

    def partial(self, f: Framer) -> NextEvent:
        if not f._stream:  # whole mode: frame() has raised if the frame is too large
            return f._wait()
        rx = f._rx
        buf = rx.buf
        pos = rx.pos
        delimiter = self.delimiter
        end = buf.find(delimiter, rx.scan)
        if end >= 0:
            size = end - pos + f._frame_size
        else:  # the bytes proven to be this frame's (as in frame())
            held = len(buf) - pos
            size = held - longest_prefix_at_end(buf, pos, delimiter) + f._frame_size
        if size > f._limit:  # its first bytes go out before the error; refused if none
            return f._over_limit(size, self)  # are left (a limit lowered mid-frame)
        if f._eof:
            return f._wait()
        release = len(buf) - pos - longest_prefix_at_end(buf, pos, delimiter)
        release = min(release, f._limit - f._frame_size)  # never past the limit
        return f._release(release) if release > 0 else NEED_DATA

    def skip(self, f: Framer) -> bool:
        """Drop a refused frame's bytes through its delimiter; True once found."""
        rx = f._rx
        buf = rx.buf
        pos = rx.pos
        end = buf.find(self.delimiter, rx.scan)
        if end >= 0:
            after = end + len(self.delimiter)
        elif f._eof:  # no delimiter can come: all of it goes
            after = len(buf)
        else:  # all but what may begin the delimiter
            after = len(buf) - longest_prefix_at_end(buf, pos, self.delimiter)
        f.bytes_discarded += after - pos
        rx.pos = rx.scan = after
        return end >= 0

    def encode(self, payload: bytes) -> bytes:
        framed = payload + self.delimiter
        if framed.find(self.delimiter) != len(payload):  # (a self-overlapping one, too)
            raise ValueError(
                f"payload contains the delimiter {self.delimiter!r}, or the start of it at its end"
            )
        return framed


SHARED_DELIMITER_READERS: dict[bytes, DelimiterReader] = {}


def delimiter_reader(delimiter: bytes) -> DelimiterReader:
    """The shared reader for ``delimiter`` (setting a terminator allocates nothing)."""
    reader = SHARED_DELIMITER_READERS.get(delimiter)
    if reader is None:
        if len(SHARED_DELIMITER_READERS) >= 256:  # bounded, whatever a program sets
            SHARED_DELIMITER_READERS.clear()
        reader = SHARED_DELIMITER_READERS[delimiter] = DelimiterReader(delimiter)
    return reader


class CountReader(Reader):
    """A frame of a fixed number of bytes, then an optional fixed trailer.

    Afterwards ``after`` is in force again, in the mode it had: for
    ``set_terminator(count)`` that is ``None`` (asynchat's rule); for
    ``Framer.read_exactly`` it is the terminator that was in force before.
    A trailer that differs is a :class:`MalformedFrame`; in streaming mode
    payload bytes go out first, so that the error comes at the same place
    whatever the chunking.

    In whole mode, a payload that spans chunks is kept as the chunks themselves
    (``parts``; whole chunks are not copied) and joined once when it is
    complete, instead of growing one buffer: one copy of a large body, as
    asynchat's collected list gives.
    """

    def __init__(self, count: int, *, exact: bool = False) -> None:
        self.remaining = count
        self.trailer = b""
        self.after: Reader = FOREVER
        self.after_stream = False
        #: A read_exactly value (bounded by max_value_size), not a plain count.
        self.exact = exact
        self.parts: list[bytes] = []  # ``held`` bytes of the payload, kept aside

    def terminator(self) -> Terminator:
        return self.remaining

    def frame(self, f: Framer) -> bytes | None:
        remaining = self.remaining
        trailer = self.trailer
        limit = f._value_limit if self.exact else f._limit
        if remaining > limit and not f._stream:
            # Announced by the peer, as a rule (a Content-Length): refused before
            # any of it is held, and skipped, like an announced header length.
            if self.held:  # (a limit lowered meanwhile)
                f._give_back()
            self._done(f)
            f._refuse(
                ByteSkipper(remaining + len(trailer)),
                FrameTooLarge(limit, remaining, announced=True),
                frame_over=not self.exact,
            )
        rx = f._rx
        buf = rx.buf
        pos = rx.pos
        end = pos + remaining - self.held
        after = end + len(trailer)
        if after <= len(buf) and (not trailer or buf[end:after] == trailer):
            # _done and Framer._frame, inlined: two calls per value cost the
            # value-heavy workloads 3-5% (benchmarks W5, W6).
            f._reader = self.after
            f._stream = self.after_stream
            rx.pos = rx.scan = after
            if not self.exact:  # (a value is a frame of its own: the one it interrupted resumes)
                f._frame_size = 0
            payload = buf[pos:end] if type(buf) is bytes else rx.take(pos, end)
            if self.held:
                self.parts.append(payload)
                payload = b"".join(self.parts)
                self.parts.clear()
                self.held = 0
            return payload
        if trailer and end < len(buf) and not (f._stream and remaining):
            # No payload byte is left to go out first: judge the trailer.
            present = buf[end:after]
            if not trailer.startswith(present):
                if self.held:
                    f._give_back()  # the bytes from the value on come as Data
                f._malformed(
                    MalformedFrame(f"expected {trailer!r} after the counted bytes, got {bytes(present)!r}")
                )
        elif end > len(buf) and len(buf) - pos >= f._keep_aside_from and not f._stream:
            self.parts.append(rx.take(pos, len(buf)))
            self.held += len(buf) - pos
            rx.pos = rx.scan = len(buf)
        return None

    def _done(self, f: Framer) -> None:
        """The frame is over (or refused): what comes after is in force."""
        f._reader = self.after
        f._stream = self.after_stream

    def partial(self, f: Framer) -> NextEvent:
        rx = f._rx
        pos = rx.pos
        size = len(rx.buf)
        remaining = self.remaining
        if not f._stream or size == pos or not remaining:
            return f._wait()
        # A streamed count is its own bound: what is here goes out at once,
        # even at the end of the stream (as a header kind's payload does): what
        # is delivered, and a bad trailer's error, must not depend on when the
        # end became known.
        end = min(size, pos + remaining)
        self.remaining = remaining - (end - pos)
        rx.pos = rx.scan = end
        if NATIVE_EVENTS:
            return Data(rx.take(pos, end))
        piece = _new(Data)
        _set_data(piece, rx.take(pos, end))
        return piece


class ForeverReader(Reader):
    """``None``: no frame ever ends; every byte is Data as it arrives."""

    def partial(self, f: Framer) -> NextEvent:
        rx = f._rx
        pos = rx.pos
        size = len(rx.buf)
        if f._eof or size == pos:
            return f._wait()
        rx.pos = rx.scan = size
        if NATIVE_EVENTS:
            return Data(rx.take(pos, size))
        piece = _new(Data)
        _set_data(piece, rx.take(pos, size))
        return piece


#: The one reader for ``None`` (it holds no state).
FOREVER = ForeverReader()


class AnyDelimiterReader(Reader):
    """A frame ends at the earliest of several delimiters (the longest at one
    position); ``Frame.terminator`` says which."""

    def __init__(self, kind: AnyDelimiter) -> None:
        self.kind = kind

    def terminator(self) -> Terminator:
        return self.kind

    def _find(self, f: Framer) -> tuple[int, int]:
        """The earliest match that more input cannot change, as ``(start, end)``;
        else ``(-1, hold)``: no frame ends before ``hold``, and a delimiter may
        still begin there."""
        rx = f._rx
        buf = rx.buf
        kind = self.kind
        size = len(buf)
        match = kind.pattern.search(buf, rx.scan)
        limit = match.start() if match else size
        if not f._eof:
            # Near the end, a longer delimiter may still begin at or before the
            # match: then the answer waits for more bytes, whatever the split.
            for start in range(max(rx.scan, size - kind.longest + 1), min(limit + 1, size)):
                if kind.could_begin(bytes(buf[start:])):
                    return -1, start
        if match is not None:
            return match.start(), match.end()
        return -1, size

    def _proven(self, f: Framer) -> int:
        """Where the bytes that might still begin a delimiter start (the end
        of the stream or not: the limit must not depend on when it is known)."""
        rx = f._rx
        buf = rx.buf
        size = len(buf)
        for start in range(max(rx.scan, rx.pos, size - self.kind.longest + 1), size):
            if self.kind.could_begin(bytes(buf[start:])):
                return start
        return size

    def frame(self, f: Framer) -> Found:
        start, end = self._find(f)
        rx = f._rx
        pos = rx.pos
        if start < 0 and f._eof:
            end = self._proven(f)
        size = (start if start >= 0 else end) - pos + f._frame_size
        if size > f._limit:
            f._check_limit(size, self)
            return None
        if start < 0:
            return None
        if NATIVE_EVENTS:
            return Frame(f._frame(pos, start, end), bytes(rx.buf[start:end]))
        frame = _new(Frame)
        _set_data(frame, f._frame(pos, start, end))
        _set_terminator(frame, bytes(rx.buf[start:end]))
        return frame

    def partial(self, f: Framer) -> NextEvent:
        start, end = self._find(f)
        hold = start if start >= 0 else end  # no frame ends before it
        rx = f._rx
        pos = rx.pos
        size = (self._proven(f) if start < 0 and f._eof else hold) - pos + f._frame_size
        if size > f._limit:  # streamed: its first bytes go out before the error
            return f._over_limit(size, self)
        if f._stream and hold > pos and not f._eof:
            return f._release(hold - pos)
        return f._wait()

    has_bulk = True

    def bulk(self, f: Framer) -> Iterator[bytes]:
        """One search and one slice per frame, while the match lies far enough
        from the end that no longer delimiter could still begin before it."""
        kind = self.kind
        search = kind.pattern.search
        longest = kind.longest
        rx = f._rx
        while f._reader is self and f._skipper is None:
            buf = rx.buf
            pos = rx.pos
            match = search(buf, rx.scan)
            if match is None:
                return
            start = match.start()
            if start > len(buf) - longest or start - pos + f._frame_size > f._limit:
                return
            rx.pos = rx.scan = match.end()
            f._frame_size = 0
            yield buf[pos:start] if type(buf) is bytes else rx.take(pos, start)

    def skip(self, f: Framer) -> bool:
        """Drop a refused frame through its delimiter; True once found."""
        start, end = self._find(f)
        rx = f._rx
        f.bytes_discarded += end - rx.pos
        rx.pos = rx.scan = end
        return start >= 0

    def encode(self, payload: bytes) -> bytes:
        return self.kind.encode(payload)


class HeaderReader(Reader):
    """A header announces the payload's length; a fixed trailer may follow.

    In whole mode the frame is held until complete; streamed, the header is
    consumed as framing as soon as it parses and the payload goes out as
    Data, the trailer judged after it. A streamed frame abandoned part way (a
    bad trailer, a new terminator, the end of the stream) keeps that account:
    its header was framing, its payload was delivered, nothing is counted twice.
    """

    def __init__(self, kind: HeaderKind) -> None:
        self.kind = kind
        self.header: tuple[int, int] | None = None  # parsed, not consumed (whole mode)
        self.payload_left = -1  # streaming a payload whose header is consumed
        self.header_consumed = 0  # that header's size
        self.has_bulk = type(kind) is LengthPrefix and not kind.includes_prefix

    def terminator(self) -> Terminator:
        return self.kind

    def frame(self, f: Framer) -> bytes | None:
        kind = self.kind
        trailer = kind.trailer
        rx = f._rx
        buf = rx.buf
        pos = rx.pos
        held = len(buf) - pos
        if self.payload_left >= 0:  # streaming a payload, header consumed
            left = self.payload_left
            end = pos + left
            if held >= left + len(trailer) and buf[end : end + len(trailer)] == trailer:
                self.payload_left = -1
                self.header_consumed = 0
                return f._frame(pos, end, end + len(trailer))
            if not (left and held):  # no payload byte to go out first: judge the trailer
                self._check_trailer(f, end)
            return None
        header = self.header
        if header is None:
            if not held:
                return None
            head = buf[pos : pos + kind.max_header]
            # Called as answering an object: a user's kind may answer anything,
            # and the compiled build checks a call's declared return type itself
            # (its own TypeError), before _checked could name the kind.
            parse_header: Callable[[bytes], object] = kind.parse_header
            answer: object = None
            try:
                answer = parse_header(head if type(head) is bytes else bytes(head))
            except MalformedFrame as error:
                f._malformed(error)
            if answer is None:
                if held >= kind.max_header:
                    f._malformed(MalformedFrame(f"no complete header within {kind.max_header} bytes"))
                return None
            header = self._checked(answer, len(head))
            header_size, payload_size = header
            if payload_size > f._limit:  # before any of it is held
                skipper = ByteSkipper(header_size + payload_size + len(trailer))
                f._refuse(skipper, FrameTooLarge(f._limit, payload_size, announced=True))
            if f._stream:
                rx.drop(header_size)
                self.payload_left = payload_size
                self.header_consumed = header_size
                return self.frame(f)
            self.header = header
        header_size, payload_size = header
        if payload_size > f._limit:  # (a limit lowered since the header parsed)
            self.header = None
            f._refuse(
                ByteSkipper(header_size + payload_size + len(trailer)),
                FrameTooLarge(f._limit, payload_size, announced=True),
            )
        end = pos + header_size + payload_size
        if trailer:
            self._check_trailer(f, end)
        if end + len(trailer) > len(buf):
            return None
        self.header = None
        return f._frame(pos + header_size, end, end + len(trailer))

    def partial(self, f: Framer) -> NextEvent:
        rx = f._rx
        held = len(rx.buf) - rx.pos
        left = self.payload_left
        if left > 0 and held:  # payload bytes go out before the trailer is judged
            release = min(left, held)
            self.payload_left = left - release
            return f._release(release)
        if f._eof and left >= 0:  # the frame never ends
            f._abandon_header()
        return f._wait()

    def bulk(self, f: Framer) -> Iterator[bytes]:
        """A plain LengthPrefix in whole mode, the common binary protocol: one
        int.from_bytes and one slice per frame, no parse_header call."""
        kind = self.kind
        assert isinstance(kind, LengthPrefix)
        width = kind.width
        byteorder = kind.byteorder
        from_bytes = int.from_bytes
        rx = f._rx
        while f._reader is self and not f._stream and self.header is None and f._skipper is None:
            buf = rx.buf
            pos = rx.pos
            start = pos + width
            if start > len(buf):
                return
            end = start + from_bytes(buf[pos:start], byteorder)
            if end > len(buf) or end - start > f._limit:
                return
            rx.pos = rx.scan = end
            f._frame_size = 0
            yield buf[start:end] if type(buf) is bytes else rx.take(start, end)

    def _checked(self, header: object, shown: int) -> tuple[int, int]:
        """``parse_header``'s answer, or a ValueError naming the kind and the value:
        a user's kind is checked, so that a wrong answer cannot make the Framer
        consume bytes that never arrived or lose count of them."""
        if (
            type(header) is tuple
            and len(header) == 2
            and type(header[0]) is int
            and type(header[1]) is int
            and 1 <= header[0] <= shown
            and header[1] >= 0
        ):
            return header
        raise ValueError(
            f"{self.kind!r}.parse_header returned {header!r} for {shown} bytes; it must return None "
            f"or (header_length, payload_length) with 1 <= header_length <= {shown} (the bytes it "
            "was shown, at most max_header) and payload_length >= 0"
        )

    def _check_trailer(self, f: Framer, at: int) -> None:
        """MalformedFrame if the bytes from ``at`` already contradict the trailer."""
        trailer = self.kind.trailer
        buf = f._rx.buf
        if trailer and at < len(buf):
            present = buf[at : at + len(trailer)]
            if not trailer.startswith(present):
                f._abandon_header()
                f._malformed(
                    MalformedFrame(f"expected {trailer!r} after the payload, got {bytes(present)!r}")
                )

    def encode(self, payload: bytes) -> bytes:
        encode: Callable[[bytes], object] = self.kind.encode  # (answering an object: see frame())
        answer = encode(payload)
        encoded = _as_bytes(answer)
        if encoded is None:
            raise TypeError(f"{self.kind!r}.encode returned {type(answer).__name__}, not a bytes-like object")
        return encoded


def _forever(_: object) -> Reader:
    return FOREVER


#: The reader for each kind of terminator, built from the terminator's value.
READERS: dict[Kind, Callable[..., Reader]] = {
    Kind.DELIMITER: delimiter_reader,
    Kind.COUNT: CountReader,
    Kind.FOREVER: _forever,
    Kind.ANY: AnyDelimiterReader,
    Kind.HEADER: HeaderReader,
}
