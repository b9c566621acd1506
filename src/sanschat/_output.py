"""The output side: asynchat's producer FIFO, without the socket.

Goals: bytes leave in exactly the order they were queued; cost is linear in the
bytes sent, however the I/O splits them; a lazy producer costs memory for one
chunk, not for all it could make.

Plan. The queue holds bytes (or zero-copy memoryview tails of them), producers
and at most one close marker. ``_head_sent`` counts the bytes of the head item
already sent, so a partial send only moves an offset and a view; nothing is
re-sliced or re-copied per send. Small items are joined into one chunk, at most
``out_buffer_size`` bytes, only when the head is fresh, so a byte is copied by
the queue at most once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from operator import length_hint
from typing import Protocol, Union

from ._errors import ProducerError

__all__ = ["OutputQueue", "Producer", "simple_producer", "BytesLike"]

BytesLike = Union[bytes, bytearray, memoryview]


class Producer(Protocol):
    """Anything with ``more()``: the next chunk of output, ``b""`` when exhausted."""

    def more(self) -> BytesLike: ...


class _Marker:
    """A point in the queue where taking output stops: ``close_when_done``'s
    (the channel should close once it is reached) or a switch of the output's
    encoding (a connection's TLS upgrade: what was queued before goes out as it
    is, what comes after is encrypted)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


_CLOSE = _Marker("close")
_SWITCH = _Marker("switch")
_NO_LIMIT = 1 << 62
_Item = Union[bytes, memoryview, Producer, _Marker]


def _as_bytes(data: object) -> bytes | None:
    """``data`` as bytes (copied unless it is bytes already), or None if it is
    not bytes-like."""
    if type(data) is bytes:
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)  # a copy: the caller may change its buffer later
    if isinstance(data, bytes):  # a bytes subclass
        return bytes(data)
    return None


class OutputQueue:
    """Queue outgoing bytes and producers; hand them out to any kind of I/O.

    Three ways to take output: :meth:`data_to_send` (take bytes, for transports
    that accept everything), :meth:`peek_output` + :meth:`consume_output` (for
    sockets that may send only part), and :attr:`pending_output` with the water
    marks (:meth:`set_write_buffer_limits`, :attr:`writing_paused`) for
    backpressure.
    """

    def __init__(self, *, out_buffer_size: int = 65536) -> None:
        self.out_buffer_size = out_buffer_size
        self._queue: deque[_Item] = deque()
        self._head_sent = 0
        self._known = 0  # bytes queued as bytes, not counting what producers hold
        self._promised = 0  # what sized producers (len()) say they still hold
        self._hints: deque[int] = deque()  # each queued producer's share of _promised
        #: Pushes (bytes or producers) ignored because they came after
        #: :meth:`close_when_done`, as asynchat ignored them.
        self.dropped_after_close = 0
        self._closing = False
        self._switching = False  # a _SWITCH marker is queued
        self._taking = False
        self._discards = 0  # discard_buffers calls so far: a take in progress sees one
        self._peeked: memoryview | None = None
        self._high = 65536
        self._low = 16384
        self._paused = False
        #: Called with no arguments when output becomes available while none was
        #: queued (a push, a producer, or close_when_done), so an event loop can
        #: start writing. Bindings set it; it must not take output itself. It is
        #: called in the pushing thread, from inside the push.
        self.on_output_ready: Callable[[], None] | None = None
        #: Called with no arguments by a push that takes :attr:`pending_output`
        #: plus :attr:`promised_output` past :attr:`output_limit` (a connection
        #: driver aborts the connection then). The push itself is queued.
        self.on_output_overflow: Callable[[], None] | None = None
        self._output_limit: int | None = None
        self._hold_above: int | None = None
        #: True while input should not be delivered: after :meth:`close_when_done`,
        #: or while the unsent output is above :attr:`hold_input_above`.
        #: :func:`~sanschat.deliver_events` stops when it turns true.
        self.input_hold = False
        self._watch = self._high  # the lowest threshold a push can pass (see _grew)

    # ------------------------------------------------------------- settings

    @property
    def out_buffer_size(self) -> int:
        """Most bytes one :meth:`peek_output` shows (asynchat's ``ac_out_buffer_size``)."""
        return self._obs

    @out_buffer_size.setter
    def out_buffer_size(self, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"out_buffer_size must be an int, not {type(size).__name__}")
        if size < 1:
            raise ValueError(f"out_buffer_size must be >= 1, not {size}")
        self._obs = size

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set the water marks, with asyncio's conventions.

        :attr:`writing_paused` turns true when :attr:`pending_output` goes above
        ``high`` and false again when it falls to ``low`` or below. Defaults:
        ``high`` 64 KiB (4 x ``low`` when only ``low`` is given), ``low`` ``high // 4``.
        """
        if high is None:
            high = 65536 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"need high >= low >= 0, got high={high} low={low}")
        self._high, self._low = high, low
        self._set_watch()
        self._update_water()

    @property
    def output_limit(self) -> int | None:
        """The output above which :attr:`on_output_overflow` is called (None: no limit)."""
        return self._output_limit

    @output_limit.setter
    def output_limit(self, limit: int | None) -> None:
        self._output_limit = limit
        self._set_watch()

    @property
    def hold_input_above(self) -> int | None:
        """Unsent output (with :attr:`promised_output`) above which
        :attr:`input_hold` is true (None: only closing holds input)."""
        return self._hold_above

    @hold_input_above.setter
    def hold_input_above(self, bound: int | None) -> None:
        self._hold_above = bound
        self._set_watch()
        self._update_water()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """The water marks as ``(low, high)``, like asyncio's transports."""
        return self._low, self._high

    # ----------------------------------------------------------------- state

    @property
    def pending_output(self) -> int:
        """Bytes queued and not yet taken, not counting what producers will make."""
        return self._known

    @property
    def promised_output(self) -> int:
        """Bytes that queued producers still hold, by their own length hint.

        A producer that keeps its output in memory (like :class:`simple_producer`)
        should define ``__length_hint__`` as the bytes it has left, so that this
        memory counts towards the water marks and a binding's output bounds. A
        producer without a hint (asynchat's never had one; a lazy one reading a
        file) counts as ``out_buffer_size`` bytes until it has made that much: so
        queued producers always count, and a peer that pipelines requests
        answered by producers while it reads nothing is held back by the same
        bounds as one answered by bytes.
        """
        return self._promised

    @property
    def has_output(self) -> bool:
        """Whether anything (bytes or a producer) is queued before any close marker."""
        return bool(self._queue) and type(self._queue[0]) is not _Marker

    @property
    def writing_paused(self) -> bool:
        """True from when :attr:`pending_output` plus :attr:`promised_output`
        passes the high water mark until it falls back to the low one: stop
        pushing until then."""
        return self._paused

    @property
    def should_close(self) -> bool:
        """True once everything queued before :meth:`close_when_done` has been taken:
        the channel should now be closed."""
        return self._closing and self._queue[0] is _CLOSE

    @property
    def closing(self) -> bool:
        """Whether :meth:`close_when_done` has been called (pushes are dropped)."""
        return self._closing

    # ------------------------------------------------------------- queueing

    def push(self, data: BytesLike) -> None:
        """Queue bytes to send. A bytearray or memoryview is copied, so changing it
        later does not change what is sent. After :meth:`close_when_done` the
        bytes are dropped and counted in :attr:`dropped_after_close`, never sent
        (as asynchat did): an answer to input that arrived after the close
        decision cannot raise in the middle of the answers before it."""
        chunk = data if type(data) is bytes else _as_bytes(data)
        if chunk is None:
            raise TypeError(f"push needs a bytes-like object, not {type(data).__name__}")
        if self._closing:
            self.dropped_after_close += 1
            return
        if chunk:
            queue = self._queue
            was_idle = not queue
            queue.append(chunk)
            self._known += len(chunk)
            if self._known + self._promised > self._watch:
                self._grew()
            if was_idle and self.on_output_ready is not None:
                self.on_output_ready()

    def push_with_producer(self, producer: Producer | BytesLike) -> None:
        """Queue a producer: its ``more()`` is called only when output is taken and
        this producer is at the head of the queue. Bytes-like objects are pushed.
        Dropped and counted after :meth:`close_when_done`, like :meth:`push`."""
        if isinstance(producer, (bytes, bytearray, memoryview)):
            self.push(producer)
            return
        if not callable(getattr(producer, "more", None)):
            raise TypeError(f"a producer needs a more() method; {type(producer).__name__} has none")
        if self._closing:
            self.dropped_after_close += 1
            return
        hint = length_hint(producer, -1)
        if hint < 0:  # no hint: count one take's worth, so that queued producers
            hint = self._obs  # bound memory, whatever they hold (see promised_output)
        was_idle = not self._queue
        self._queue.append(producer)
        self._hints.append(hint)
        if hint:
            self._promised += hint
            if self._known + self._promised > self._watch:
                self._grew()
        if was_idle and self.on_output_ready is not None:
            self.on_output_ready()

    def close_when_done(self) -> None:
        """Ask for the channel to close once everything queued so far is sent.

        :attr:`should_close` turns true then; later pushes are dropped (and
        counted in :attr:`dropped_after_close`).
        """
        if not self._closing:
            self._closing = True
            self.input_hold = True
            was_idle = not self._queue
            self._queue.append(_CLOSE)
            if was_idle and self.on_output_ready is not None:
                self.on_output_ready()

    def _mark_switch(self) -> None:
        """Queue the switch marker: output stops there until :meth:`_pass_switch`."""
        if self._switching:
            raise RuntimeError("an output switch (a TLS upgrade) is already pending")
        self._switching = True
        was_idle = not self._queue
        self._queue.append(_SWITCH)
        if was_idle and self.on_output_ready is not None:
            self.on_output_ready()

    @property
    def _at_switch(self) -> bool:
        """Whether everything queued before :meth:`_mark_switch` has been taken."""
        return self._switching and self._queue[0] is _SWITCH

    def _pass_switch(self) -> None:
        """Go past the switch marker (at the head): the output after it follows."""
        assert self._at_switch
        self._queue.popleft()
        self._switching = False

    def _discard_output(self) -> None:
        self._discards += 1
        self._queue.clear()
        self._head_sent = 0
        self._known = 0
        self._promised = 0
        self._hints.clear()
        self._peeked = None
        self._update_water()
        if self._switching:
            self._queue.append(_SWITCH)
        if self._closing:
            self._queue.append(_CLOSE)

    # ---------------------------------------------------------- taking out

    def data_to_send(self, max_bytes: int | None = None) -> bytes:
        """Remove and return up to ``max_bytes`` of output (``b""`` if none).

        ``None`` takes everything, running every queued producer to its end: give
        a bound when a producer may be large or endless. Producers are called only
        while fewer than ``max_bytes`` bytes have been gathered.
        """
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, not {max_bytes}")
        parts = self._take(max_bytes)
        if len(parts) == 1 and type(parts[0]) is bytes:
            return parts[0]
        return b"".join(parts)

    def peek_output(self) -> memoryview:
        """The next bytes to send, at most ``out_buffer_size``, without removing them.

        Report what the socket accepted with :meth:`consume_output`; the rest stays
        first in line. Looking again without consuming shows the same bytes. An
        empty view means there is nothing to send now.
        """
        if self._peeked is not None:
            return self._peeked
        if self._head_sent:  # a partly sent head: show its rest, never re-join it
            head = self._queue[0]
            view = memoryview(head)[self._head_sent : self._head_sent + self._obs]  # type: ignore[arg-type]
        else:
            paused = self._paused
            parts = self._take(self._obs)
            chunk = self._unread(parts) if parts else None
            # Only looked at: the water marks and the hold stay as they were
            # (a producer pulled into view still counts, now as bytes).
            self._paused = paused
            self._update_water()
            if chunk is None:
                return memoryview(b"")
            view = memoryview(chunk)
        self._peeked = view
        return view

    def consume_output(self, sent: int) -> None:
        """Remove ``sent`` bytes from the front: the bytes of the last
        :meth:`peek_output` that really went out."""
        peeked = self._peeked
        available = 0 if peeked is None else len(peeked)
        if isinstance(sent, bool) or not isinstance(sent, int):
            raise TypeError(f"sent must be an int, not {type(sent).__name__}")
        if not 0 <= sent <= available:
            raise ValueError(f"sent={sent} but the last peek_output showed {available} bytes")
        if not sent:
            return
        self._peeked = None
        head = self._queue[0]
        self._head_sent += sent
        self._known -= sent
        if self._head_sent == len(head):  # type: ignore[arg-type]
            self._queue.popleft()
            self._head_sent = 0
        self._update_water()

    def _take(self, limit: int | None) -> list[bytes | memoryview]:
        """Pop up to ``limit`` bytes off the front, pulling producers as needed."""
        if self._taking:
            raise RuntimeError("output is already being taken (re-entrant call)")
        self._peeked = None
        queue = self._queue
        if (
            not self._hints
            and not self._closing
            and not self._switching
            and not self._head_sent
            and (limit is None or self._known <= limit)
        ):
            # Only bytes are queued (no producer, no close marker), and all of
            # them fit: take them in one go, as a line-echo server does per read.
            parts: list[bytes | memoryview] = list(queue)  # type: ignore[arg-type]
            queue.clear()
            self._known = 0
            self._update_water()
            return parts
        self._taking = True
        parts = []
        got = 0
        era = self._discards  # parts gathered since the last discard_buffers
        try:
            while queue and (limit is None or got < limit):
                item = queue[0]
                if type(item) is _Marker:
                    break
                if isinstance(item, (bytes, memoryview)):
                    start = self._head_sent
                    end = len(item)
                    if limit is not None and end - start > limit - got:
                        end = start + limit - got
                        self._head_sent = end
                        parts.append(memoryview(item)[start:end])
                    else:
                        queue.popleft()
                        self._head_sent = 0
                        parts.append(item[start:] if start else item)
                    got += end - start
                    self._known -= end - start
                    continue
                discards = self._discards
                chunk = self._pull(item)  # type: ignore[arg-type]
                if self._discards != discards:
                    # more() called discard_buffers: the output queued before
                    # (what this take gathered, this producer and its chunk) is
                    # gone; what more() queued after the discard stays.
                    parts.clear()
                    got = 0
                    era = self._discards
                    continue
                hints = self._hints
                if chunk:
                    queue.appendleft(chunk)
                    self._known += len(chunk)
                    kept = min(hints[0], len(chunk))  # moved from promised to known
                    hints[0] -= kept
                    self._promised -= kept
                else:
                    queue.popleft()
                    self._promised -= hints.popleft()
        except BaseException:
            # Nothing taken is lost: put it back in front (unless a producer's
            # more() discarded the queue after it was gathered).
            if parts and self._discards == era:
                self._unread(parts)
            raise
        finally:
            self._taking = False
            self._update_water()
        return parts

    def _unread(self, parts: list[bytes | memoryview]) -> bytes | memoryview:
        """Put taken parts back in front, as one item (joined once), and return it."""
        queue = self._queue
        if self._head_sent:  # the head was split: keep its rest as a view
            queue[0] = memoryview(queue[0])[self._head_sent :]  # type: ignore[arg-type]
            self._head_sent = 0
        chunk = parts[0] if len(parts) == 1 else b"".join(parts)
        queue.appendleft(chunk)
        self._known += len(chunk)
        return chunk

    def _pull(self, producer: Producer) -> bytes | memoryview:
        """The head producer's next chunk; a producer that fails is removed
        (unless its ``more()`` discarded the queue already) and reported."""
        discards = self._discards
        # Called as answering an object: the compiled build would check the
        # declared type itself and report a TypeError, not what came back.
        more: Callable[[], object] = producer.more
        try:
            data = more()
        except Exception as exc:
            self._drop_failed(discards)
            error = ProducerError(producer, f"raised {exc!r}")
            error.__cause__ = exc  # spelled out: the compiled core (mypyc) drops "from"
            raise error  # noqa: B904 (the cause is set above)
        chunk = _as_bytes(data)
        if chunk is None:
            self._drop_failed(discards)
            raise ProducerError(producer, f"returned {type(data).__name__}, not bytes")
        return chunk

    def _drop_failed(self, discards: int) -> None:
        """Remove the head producer, which failed: unless the queue was discarded
        meanwhile (by its own ``more()``), which removed it already."""
        if self._discards == discards:
            self._queue.popleft()
            self._promised -= self._hints.popleft()

    def _grew(self) -> None:
        """Queued output passed the lowest of its thresholds (``_watch``): pause
        writing, hold input, or report an overflow, as each threshold says."""
        queued = self._known + self._promised
        if queued > self._high:
            self._paused = True
        hold = self._hold_above
        if hold is not None and queued > hold:
            self.input_hold = True
        limit = self._output_limit
        if limit is not None and queued > limit and self.on_output_overflow is not None:
            self.on_output_overflow()

    def _set_watch(self) -> None:
        """The one number a push compares against: the lowest threshold set."""
        self._watch = min(
            self._high,
            _NO_LIMIT if self._hold_above is None else self._hold_above,
            _NO_LIMIT if self._output_limit is None else self._output_limit,
        )

    def _update_water(self) -> None:
        queued = self._known + self._promised
        if queued > self._high:
            self._paused = True
        elif queued <= self._low:
            self._paused = False
        hold = self._hold_above
        self.input_hold = self._closing or (hold is not None and queued > hold)


class simple_producer:
    """asynchat's producer over a bytes-like object: ``more()`` gives it
    ``buffer_size`` bytes at a time (zero-copy views, so no quadratic re-slicing)."""

    def __init__(self, data: BytesLike, buffer_size: int = 512) -> None:
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, not {buffer_size}")
        self.data = data
        self.buffer_size = buffer_size
        self._view = memoryview(bytes(data) if not isinstance(data, bytes) else data)
        self._sent = 0

    def __length_hint__(self) -> int:
        """The bytes not yet given (so the queue counts them as promised output;
        a hint, not ``__len__``, so that the producer stays true when empty,
        as asynchat's send loop expects)."""
        return len(self._view) - self._sent

    def more(self) -> bytes:
        """The next ``buffer_size`` bytes, or ``b""`` at the end."""
        start = self._sent
        self._sent = min(start + self.buffer_size, len(self._view))
        return bytes(self._view[start : self._sent])
