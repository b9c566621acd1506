"""The Handler contract, once: a sans-IO driver for one connection.

A binding moves bytes and asks a :class:`Driver` what to do next; the driver
owns everything else a Handler's life needs, so every binding behaves the same:

* lifecycle inputs: :meth:`~Driver.start`, :meth:`~Driver.data_received`,
  :meth:`~Driver.eof_received`, :meth:`~Driver.transport_failed` and
  :meth:`~Driver.connection_lost` (which calls the Handler's exactly once);
* queries, pure and cheap: :attr:`~Driver.wants_read`,
  :attr:`~Driver.wants_write`, :attr:`~Driver.close_action` and
  :attr:`~Driver.close_reason`;
* output through :meth:`~Driver.data_to_send` or :meth:`~Driver.peek_output`
  and :meth:`~Driver.consume_output`;
* ``on_wake``: called when the answers to the queries may have changed because
  of something outside a driver call (a push from a timer or another
  connection). Never called from inside a driver call: the binding asks again
  after each call anyway.

The rules it enforces:

* every Handler callback is guarded: an exception is logged (logger
  ``sanschat``), input stops, the output queued before the error is still sent,
  then the connection closes and ``connection_lost`` gets the error;
* after ``close_when_done`` no more input is delivered, and later pushes are
  dropped (counted in ``framer.dropped_after_close``): what was answered before
  the close decision is always sent, whatever the peer sends afterwards;
* reading pauses while the connection's unsent output (queued bytes and what
  sized producers hold) is above ``Handler.pause_reading_above``, and resumes
  at or below it; above ``Handler.max_output`` the connection is aborted, with
  a log line, and ``connection_lost`` gets an :class:`OutputLimitExceeded`;
* a peer that resets or breaks the connection ends it at once:
  ``connection_lost`` gets the transport's error.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable

from ._errors import OutputLimitExceeded
from ._framer import Framer
from ._handler import ConnectionInfo, Handler, deliver_events

__all__ = ["Driver", "CloseAction", "ConnectionInfo"]

log = logging.getLogger("sanschat")


#: Seconds a server stops accepting after accept() failed for lack of
#: resources (out of descriptors, say), instead of spinning on the error.
ACCEPT_BACKOFF = 0.1


class CloseAction(enum.Enum):
    """What the binding should do with the connection now."""

    #: Keep it open.
    NONE = "none"
    #: Everything is sent: close cleanly (half-close, read and drop what the peer
    #: still sends until its end or a short linger, then close).
    CLOSE = "close"
    #: Close at once, dropping unsent output (a broken or overflowing connection).
    ABORT = "abort"


class Driver:
    """One Handler on one connection, with no I/O: the rules every binding shares."""

    def __init__(
        self, handler: Handler, info: ConnectionInfo | None = None, on_wake: Callable[[], None] | None = None
    ) -> None:
        self.handler = handler
        self.info = info if info is not None else ConnectionInfo()
        #: Called when the queries' answers may have changed outside a driver call.
        self.on_wake = on_wake
        self.framer: Framer = Framer(None)  # replaced by the Handler's in start()
        #: Why the connection ends: None for a clean close, else the error.
        self.close_reason: BaseException | None = None
        #: Whether the end of the peer's input has been seen (or reading stopped for good).
        self.input_ended = False
        #: Bytes received after the driver stopped delivering input (dropped).
        self.input_dropped = 0
        self._aborted = False
        self._lost = False
        self._held = False  # delivery stopped with input perhaps still in the Framer
        self._busy = False  # inside a driver call: no on_wake

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """The connection is up: make the Framer and call ``connection_made``."""
        self._busy = True
        try:
            handler = self.handler
            try:
                handler.connection_info = self.info
                self.framer = handler.new_framer()
                handler.connection_made(self.framer)
            except Exception as error:
                self._handler_failed(error)
            framer = self.framer
            framer.on_output_ready = self._output_ready
            framer.on_output_overflow = self._overflowed
            framer.output_limit = handler.max_output
            framer.hold_input_above = handler.pause_reading_above
            self._check_output()
        finally:
            self._busy = False

    def data_received(self, data: bytes | bytearray | memoryview) -> None:
        """Bytes from the peer: deliver the events they complete."""
        if self.input_ended or self._aborted or self.framer.closing:
            self.input_dropped += len(data)  # a closing connection drains its peer
            return
        self._busy = True
        try:
            self.framer.receive_data(data)
            self._deliver()
            self._check_output()
        finally:
            self._busy = False

    def eof_received(self) -> None:
        """The peer closed its side: deliver what is left, then ``end_received``."""
        if self.input_ended:
            return
        if self._aborted or self.framer.closing:
            self.input_ended = True
            return
        self._busy = True
        try:
            self.framer.receive_data(b"")
            self._deliver()
            self.input_ended = True
            self._check_output()
        finally:
            self._busy = False

    def transport_failed(self, error: BaseException) -> None:
        """The connection broke (a reset, a failed send): abort with ``error``."""
        if self.close_reason is None:
            self.close_reason = error
        self._aborted = True
        self.input_ended = True

    def connection_lost(self) -> None:
        """The transport is closed: call the Handler's ``connection_lost`` once."""
        if self._lost:
            return
        self._lost = True
        self.input_ended = True
        self.framer.on_output_ready = self.framer.on_output_overflow = None
        try:
            self.handler.connection_lost(self.close_reason)
        except Exception:
            log.exception("%r.connection_lost failed", self.handler)

    # -------------------------------------------------------------- queries

    @property
    def wants_read(self) -> bool:
        """Whether the binding should read from the peer now."""
        if self.input_ended or self._aborted or self._lost:
            return False
        framer = self.framer
        if framer.closing:
            # Input is dropped now, but read: a peer blocked sending to us
            # would never read the answers we still have to send.
            return True
        return not self._held

    @property
    def wants_write(self) -> bool:
        """Whether there is output to take now."""
        return not self._aborted and not self._lost and self.framer.has_output

    @property
    def close_action(self) -> CloseAction:
        """What to do with the connection now (see :class:`CloseAction`)."""
        if self._aborted:
            return CloseAction.ABORT
        if self.framer.should_close:
            return CloseAction.CLOSE
        return CloseAction.NONE

    # --------------------------------------------------------------- output

    def data_to_send(self, max_bytes: int | None = 65536) -> bytes:
        """Take up to ``max_bytes`` of output (a producer that fails aborts)."""
        if self._aborted:
            return b""
        self._busy = True
        try:
            data = self.framer.data_to_send(max_bytes)
            self._resume_delivery()
            return data
        except Exception as error:
            self._abort(error)
            return b""
        finally:
            self._busy = False

    def peek_output(self) -> memoryview:
        """The next bytes to send, not removed (see ``Framer.peek_output``)."""
        if self._aborted:
            return memoryview(b"")
        self._busy = True
        try:
            return self.framer.peek_output()
        except Exception as error:
            self._abort(error)
            return memoryview(b"")
        finally:
            self._busy = False

    def consume_output(self, sent: int) -> None:
        """``sent`` bytes of the last :meth:`peek_output` went out."""
        self.framer.consume_output(sent)
        if self._held:
            self._busy = True
            try:
                self._resume_delivery()
            finally:
                self._busy = False

    # -------------------------------------------------------------- private

    def _deliver(self) -> None:
        """Hand the Framer's ready events to the Handler, until input is held
        (the Handler closed, or its unsent output passed the bound)."""
        framer = self.framer
        try:
            deliver_events(framer, self.handler)
        except Exception as error:
            self._handler_failed(error)
        self._held = framer.input_hold and not framer.closing

    def _resume_delivery(self) -> None:
        """Output went out: deliver the input held back, if the bound allows."""
        if self._held and not self.framer.input_hold:
            self._deliver()
            self._check_output()

    def _handler_failed(self, error: Exception) -> None:
        """A callback raised: log it, stop input, send what was queued, close."""
        log.error(
            "closing the connection to %s after an error in %r", self.info.peer, self.handler, exc_info=error
        )
        if self.close_reason is None:
            self.close_reason = error
        self.framer.close_when_done()

    def _abort(self, error: BaseException) -> None:
        log.error("aborting the connection to %s: %s", self.info.peer, error, exc_info=error)
        if self.close_reason is None:
            self.close_reason = error
        self._aborted = True
        self.input_ended = True

    def _check_output(self) -> None:
        """Abort a connection whose unsent output passed ``Handler.max_output``."""
        framer = self.framer
        queued = framer.pending_output + framer.promised_output
        limit = self.handler.max_output
        if limit is not None and queued > limit and not self._aborted:
            self._abort(OutputLimitExceeded(limit, queued))

    def _overflowed(self) -> None:
        """A push took the unsent output past ``Handler.max_output``."""
        self._check_output()
        self._output_ready()

    def _output_ready(self) -> None:
        """The Framer got output while it had none (or overflowed)."""
        if not self._busy and self.on_wake is not None:
            self.on_wake()
