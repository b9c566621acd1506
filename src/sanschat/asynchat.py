"""Drop-in ``asynchat`` for Python 3.12+, built on the sanschat Framer.

Change ``import asynchat`` to ``from sanschat import asynchat`` (or
``from sanschat.asynchat import async_chat, simple_producer, find_prefix_at_end``)
and legacy code runs unchanged: :class:`async_chat` is a real
``asyncore.dispatcher``, driven by ``asyncore.loop()``, with asynchat's methods,
attributes and callbacks. ``asyncore`` comes from the standard library on 3.10
and 3.11 and from the ``pyasyncore`` distribution on 3.12+
(``pip install sanschat[asyncore]``).

Every attribute and method a subclass of CPython 3.11's ``async_chat`` can
see is here and behaves as there: ``producer_fifo`` is a real
``collections.deque`` of bytes, producers and the ``None`` close marker whose
contents drive sending (append to it and the bytes go out), ``ac_in_buffer``
is the input received and not yet framed, and ``readable``, ``writable``,
``initiate_send``, ``handle_write``, ``handle_read`` and ``handle_close`` call
one another in the same order, so overriding any of them works as it did.

What differs from CPython's asynchat, on purpose:

- input is framed by the Framer, in time linear in the bytes received (the
  original re-sliced its buffer for every frame);
- when the peer closes, the bytes still held (the start of a terminator that
  never completed) go to ``collect_incoming_data`` before ``handle_close``;
  the original dropped them;
- ``set_terminator`` refuses a ``str`` terminator unless ``use_encoding`` is
  set, and ``push_with_producer`` an object without ``more()``, at the call
  instead of failing later inside the loop.

Kept as it was: an integer terminator of 0 (or any false value) collects
forever, ``get_terminator()`` counts down while a count is read and is 0 once it
completes, data pushed after ``close_when_done`` is never sent, and
``find_prefix_at_end`` works on ``str`` as on ``bytes``.
"""

from __future__ import annotations

import socket
import warnings
from collections import deque
from typing import Any, AnyStr

from ._events import NEED_DATA, Data, Frame
from ._framer import Framer
from ._output import Producer, simple_producer

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import asyncore
    except ImportError:  # pragma: no cover - depends on the interpreter
        raise ImportError(
            "sanschat.asynchat needs asyncore, which Python 3.12 removed: "
            "install the extra with 'pip install sanschat[asyncore]' (it brings pyasyncore)"
        ) from None

__all__ = ["async_chat", "simple_producer", "find_prefix_at_end"]

_DISCONNECTED: frozenset[int] = getattr(asyncore, "_DISCONNECTED", frozenset())


class async_chat(asyncore.dispatcher):
    """asynchat's channel: subclass it and provide :meth:`collect_incoming_data`
    and :meth:`found_terminator`."""

    #: Bytes asked of one ``recv`` call.
    ac_in_buffer_size = 65536
    #: Most bytes handed to one ``send`` call.
    ac_out_buffer_size = 65536
    #: Encode ``str`` terminators (and producers' ``str`` output) with ``encoding``.
    use_encoding = 0
    encoding = "latin-1"

    def __init__(self, sock: socket.socket | None = None, map: dict[int, Any] | None = None):
        self.incoming: list[bytes] = []
        #: What is still to send, in order: bytes, producers, and ``None`` (queued by
        #: :meth:`close_when_done`: close when it is reached).
        self.producer_fifo: deque[Any] = deque()
        self.terminator: Any = None
        self._framer = Framer(None, stream=True, max_frame_size=None)
        self._applied: Any = None  # the terminator value the Framer was last given
        asyncore.dispatcher.__init__(self, sock, map)

    @property
    def ac_in_buffer(self) -> bytes:
        """The bytes received and not yet handed to ``collect_incoming_data``
        (the start of a terminator that may still complete)."""
        framer = self._framer
        if framer._batch is not None:
            framer._settle_batch()
        rx = framer._rx
        return bytes(rx.buf[rx.pos :])

    @ac_in_buffer.setter
    def ac_in_buffer(self, data: bytes) -> None:
        framer = self._framer
        eof = framer.eof_received
        framer.discard_buffers()
        framer._eof = False
        if data:
            framer.receive_data(bytes(data))
        framer._eof = eof
        self._applied = _UNSET  # the frame in progress restarts: apply the terminator afresh

    # ----------------------------------------------------------------- input

    def collect_incoming_data(self, data: bytes) -> None:
        """Called with received data; override it (the default raises)."""
        raise NotImplementedError("must be implemented in subclass")

    def _collect_incoming_data(self, data: bytes) -> None:
        self.incoming.append(data)

    def _get_data(self) -> bytes:
        data = b"".join(self.incoming)
        del self.incoming[:]
        return data

    def found_terminator(self) -> None:
        """Called when the terminator is found; override it (the default raises)."""
        raise NotImplementedError("must be implemented in subclass")

    def set_terminator(self, term: Any) -> None:
        """Set the terminator: bytes, an int count (0 collects forever) or None."""
        if isinstance(term, str) and self.use_encoding:
            term = term.encode(self.encoding)
        elif isinstance(term, int) and term < 0:
            raise ValueError("the number of received bytes must be positive")
        self._apply(term)
        self.terminator = term

    def get_terminator(self) -> Any:
        """The current terminator (for a count, the bytes still to come)."""
        return self.terminator

    def _apply(self, term: Any) -> None:
        """Give the Framer the terminator asynchat's rules mean by ``term``."""
        if not term:
            self._framer.set_terminator(None)  # None, 0, b"": collect forever
        elif isinstance(term, str):
            raise TypeError(f"terminator must be bytes, not str ({term!r}); encode it or set use_encoding")
        else:
            self._framer.set_terminator(term)
        self._applied = term

    def recv(self, buffer_size: int) -> bytes:
        """Like ``asyncore.dispatcher.recv``, but a closing peer first gets the
        bytes still held delivered, then ``handle_close``."""
        assert self.socket is not None, "recv on a channel without a socket"
        try:
            data: bytes = self.socket.recv(buffer_size)
        except OSError as why:
            if why.errno in _DISCONNECTED:
                self._peer_closed()
                return b""
            raise
        if not data:
            self._peer_closed()
        return data

    def _peer_closed(self) -> None:
        self._framer.receive_data(b"")
        self._dispatch_input()
        self.handle_close()

    def handle_read(self) -> None:
        try:
            data = self.recv(self.ac_in_buffer_size)
        except BlockingIOError:
            return
        except OSError:
            self.handle_error()
            return
        if isinstance(data, str) and self.use_encoding:
            data = data.encode(self.encoding)
        if data and not self._framer.eof_received:
            self._framer.receive_data(data)
            self._dispatch_input()

    def _dispatch_input(self) -> None:
        framer = self._framer
        while True:
            term = self.get_terminator()
            applied = self._applied
            if term is not applied and (applied is _UNSET or term != applied):
                self._apply(term)  # changed behind set_terminator's back
            event = framer.next_event()
            if event is NEED_DATA:
                return
            kind = type(event)
            data = event.data  # type: ignore[union-attr]
            if data:
                self.collect_incoming_data(data)
            counting = isinstance(self._applied, int) and self._applied > 0
            if kind is Data:
                if counting:  # a count counts down, as it did
                    self.terminator = self._applied = framer.get_terminator()
            elif kind is Frame:
                if counting:  # and is 0 once complete
                    self.terminator = self._applied = 0
                self.found_terminator()
            else:  # EndOfStream: what was held is delivered above
                return

    # ---------------------------------------------------------------- output

    def push(self, data: bytes | bytearray | memoryview) -> None:
        """Queue data to send (in ``ac_out_buffer_size`` pieces) and try to send."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be byte-ish ({type(data)!r})")
        size = self.ac_out_buffer_size
        if len(data) > size:
            for start in range(0, len(data), size):
                self.producer_fifo.append(data[start : start + size])
        else:
            self.producer_fifo.append(data)
        self.initiate_send()

    def push_with_producer(self, producer: Producer | bytes) -> None:
        """Queue a producer (anything with ``more()``); it is pulled when its turn comes."""
        if not isinstance(producer, (bytes, bytearray, memoryview)) and not callable(
            getattr(producer, "more", None)
        ):
            raise TypeError(f"a producer needs a more() method; {type(producer).__name__} has none")
        self.producer_fifo.append(producer)
        self.initiate_send()

    def readable(self) -> bool:
        """Always ready to read, as asynchat was."""
        return True

    def writable(self) -> bool:
        """Whether there is output to send (or a close to carry out)."""
        return bool(self.producer_fifo) or not self.connected

    def close_when_done(self) -> None:
        """Close the channel once everything queued so far is sent."""
        self.producer_fifo.append(None)

    def handle_write(self) -> None:
        self.initiate_send()

    def handle_close(self) -> None:
        self.close()

    def initiate_send(self) -> None:
        """Send what one ``send`` call takes from the head of ``producer_fifo``;
        an empty entry is dropped, a producer is pulled, ``None`` closes."""
        fifo = self.producer_fifo
        while fifo and self.connected:
            first = fifo[0]
            if not first:  # None is the close marker; b"" falls through, as it did
                del fifo[0]
                if first is None:
                    self.handle_close()
                    return
            limit = self.ac_out_buffer_size
            try:
                data = first[:limit]  # bytes (or str, with use_encoding)
            except TypeError:  # a producer
                more = first.more()
                if more:
                    fifo.appendleft(more)
                else:
                    del fifo[0]
                continue
            if isinstance(data, str) and self.use_encoding:
                data = data.encode(self.encoding)
            try:
                sent = self.send(data)
            except OSError:
                self.handle_error()
                return
            if sent:
                if sent < len(data) or limit < len(first):
                    fifo[0] = first[sent:]
                else:
                    del fifo[0]
            return  # one send per call, as asynchat did

    def discard_buffers(self) -> None:
        """Emergencies only: drop input held, data collected and output queued
        (a pending close included, as in asynchat)."""
        self.ac_in_buffer = b""
        del self.incoming[:]
        self.producer_fifo.clear()


_UNSET: Any = object()


def find_prefix_at_end(haystack: AnyStr, needle: AnyStr) -> int:
    """How many characters at the end of ``haystack`` begin ``needle`` (the
    longest such proper prefix); works on ``bytes`` and ``str``."""
    for size in range(min(len(needle) - 1, len(haystack)), 0, -1):
        if haystack.endswith(needle[:size]):
            return size
    return 0
