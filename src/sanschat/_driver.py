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
  ``connection_lost`` gets the transport's error;
* TLS, from the first byte (``tls=``) or by an upgrade (``Handler.start_tls``),
  is the driver's too (:mod:`sanschat._tls`): the binding moves wire bytes and
  the driver encrypts, decrypts and closes with ``close_notify``. At an upgrade,
  output queued before it goes out in clear, and input the peer sent in clear
  after the frame that asked for it is dropped and reported, never delivered.
  A handshake not done by :attr:`~Driver.deadline` ends the connection with a
  ``TimeoutError`` (the binding calls :meth:`~Driver.check_deadline` then).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._errors import OutputLimitExceeded
from ._framer import Framer
from ._handler import ConnectionInfo, Handler, deliver_events

if TYPE_CHECKING:  # ssl and the TLS layer load only when a connection uses TLS
    import ssl

    from ._tls import TLSLayer

__all__ = ["Driver", "CloseAction", "ConnectionInfo"]

log = logging.getLogger("sanschat")


#: Seconds a server stops accepting after accept() failed for lack of
#: resources (out of descriptors, say), instead of spinning on the error.
ACCEPT_BACKOFF = 0.1

#: Seconds a TLS handshake may take before the connection is ended with a
#: ``TimeoutError`` (a peer that stalls or trickles its handshake).
DEFAULT_HANDSHAKE_TIMEOUT = 30.0

#: Most plaintext encrypted at a time: bounds the wire bytes a driver holds.
_TLS_CHUNK = 65536


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
        self,
        handler: Handler,
        info: ConnectionInfo | None = None,
        on_wake: Callable[[], None] | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        server_side: bool = True,
        server_hostname: str | None = None,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    ) -> None:
        self.handler = handler
        #: Whether this end accepted the connection (the TLS role it takes).
        self.server_side = server_side
        #: Seconds a TLS handshake may take (see :attr:`deadline`).
        self.handshake_timeout = handshake_timeout
        self._tls: TLSLayer | None = None
        if tls is not None:
            from ._tls import TLSLayer

            self._tls = TLSLayer(tls, server_side=server_side, server_hostname=server_hostname)
        self._switching = False  # an upgrade's clear output is still going out
        self._wire = b""  # encrypted bytes (or an upgrade's clear ones) ready to send
        self._wire_at = 0
        # Whether the last peek_output showed wire bytes (else the Framer's):
        # a send in flight when an upgrade starts is consumed where it was peeked.
        self._peeked_wire = False
        #: When the TLS handshake under way must be done (``time.monotonic()``), or None.
        self.deadline: float | None = None
        #: Bytes the peer sent in clear after the frame that asked for a TLS
        #: upgrade: dropped, never delivered.
        self.plaintext_dropped = 0
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
            handler._tls_starter = self._start_tls
            tls = self._tls
            if tls is not None:
                self._begin_handshake(tls)
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
        if self._tls is not None and not (self.input_ended or self._aborted):
            self._busy = True
            try:
                self._tls_received(data)
            finally:
                self._busy = False
            return
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
        tls = self._tls
        if tls is not None and not self._aborted:
            if not tls.established:
                import ssl

                self._abort(ssl.SSLEOFError("the peer closed the connection during the TLS handshake"))
                return
            rest = tls.receive_eof()
            if rest:
                self.data_received_plain(rest)
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
        if self._aborted or self._lost:
            return False
        if self._tls is None:
            return self.framer.has_output
        return self._tls_wants_write()

    @property
    def close_action(self) -> CloseAction:
        """What to do with the connection now (see :class:`CloseAction`)."""
        if self._aborted:
            return CloseAction.ABORT
        if self.framer.should_close:
            tls = self._tls
            if tls is not None and (
                (tls.established and not tls.closed) or self._wire_at < len(self._wire) or tls.wire_pending
            ):
                return CloseAction.NONE  # our close_notify first (wants_write says so)
            return CloseAction.CLOSE
        return CloseAction.NONE

    @property
    def tls(self) -> TLSLayer | None:
        """The connection's TLS session (None in clear)."""
        return self._tls

    def check_deadline(self, now: float | None = None) -> None:
        """End the connection (``TimeoutError``) if its TLS handshake is not
        done by :attr:`deadline`. Bindings call it when that time comes."""
        deadline = self.deadline
        if deadline is None or self._aborted:
            return
        if (time.monotonic() if now is None else now) >= deadline:
            self.deadline = None
            self._abort(TimeoutError(f"the TLS handshake took more than {self.handshake_timeout} s"))

    # --------------------------------------------------------------- output

    def data_to_send(self, max_bytes: int | None = 65536) -> bytes:
        """Take up to ``max_bytes`` of output (a producer that fails aborts)."""
        if self._aborted:
            return b""
        self._busy = True
        try:
            if self._tls is not None:
                view = self._peek_wire()
                data = bytes(view if max_bytes is None else view[:max_bytes])
                self._consume_wire(len(data))
            else:
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
            self._peeked_wire = self._tls is not None
            if self._peeked_wire:
                return self._peek_wire()
            return self.framer.peek_output()
        except Exception as error:
            self._abort(error)
            return memoryview(b"")
        finally:
            self._busy = False

    def consume_output(self, sent: int) -> None:
        """``sent`` bytes of the last :meth:`peek_output` went out."""
        if self._peeked_wire:
            self._consume_wire(sent)
        else:
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

    def _abort(self, error: BaseException, quiet: bool = False) -> None:
        if quiet:  # a failed TLS handshake: scanners make many, the reason says it
            log.info("closing the connection to %s: %s", self.info.peer, error)
        else:
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

    # ------------------------------------------------------------------ TLS

    def _start_tls(self, context: ssl.SSLContext, server_hostname: str | None) -> None:
        """``Handler.start_tls``: upgrade the connection (see the module docstring)."""
        if self._tls is not None:
            raise RuntimeError("this connection runs TLS already")
        if self._lost or self._aborted:
            raise RuntimeError("this connection is over")
        from ._tls import TLSLayer

        tls = TLSLayer(context, server_side=self.server_side, server_hostname=server_hostname)
        framer = self.framer
        # The peer's bytes after the frame that asked for the upgrade came in
        # clear: an injection (RFC 3207 4.2) whatever they say. Never delivered.
        dropped = framer._discard_input()
        if dropped:
            self.plaintext_dropped += dropped
            log.warning(
                "dropped %d bytes that %s sent in clear after asking for TLS", dropped, self.info.peer
            )
        framer._mark_switch()  # what is queued now goes out in clear
        self._switching = True
        self._tls = tls
        self.deadline = time.monotonic() + self.handshake_timeout

    def _begin_handshake(self, tls: TLSLayer) -> None:
        self.deadline = time.monotonic() + self.handshake_timeout
        if not tls.server_side:
            tls.start()  # the client speaks first

    def _tls_received(self, data: bytes | bytearray | memoryview) -> None:
        """Wire bytes under TLS: decrypt, then deliver as in clear."""
        tls = self._tls
        assert tls is not None
        was_established = tls.established
        try:
            plaintext = tls.receive(data)
        except tls.Error as error:
            self._abort(error, quiet=not tls.established)
            return
        if tls.established and not was_established:
            self._established(tls)
        if plaintext:
            self.data_received_plain(plaintext)
        if tls.peer_closed and not self.input_ended:  # its close_notify: the end of its stream
            self._eof_plain()

    def data_received_plain(self, data: bytes) -> None:
        """Decrypted bytes: as :meth:`data_received` in clear."""
        if self.input_ended or self._aborted or self.framer.closing:
            self.input_dropped += len(data)
            return
        self.framer.receive_data(data)
        self._deliver()
        self._check_output()

    def _eof_plain(self) -> None:
        if self._aborted or self.framer.closing:
            self.input_ended = True
            return
        self.framer.receive_data(b"")
        self._deliver()
        self.input_ended = True
        self._check_output()

    def _established(self, tls: TLSLayer) -> None:
        """The handshake is done: say so to the Handler, with what it agreed."""
        self.deadline = None
        self.info = dataclasses.replace(
            self.info, tls=tls.object, tls_info=tls.info(plaintext_dropped=self.plaintext_dropped)
        )
        handler = self.handler
        handler.connection_info = self.info
        try:
            handler.tls_started()
        except Exception as error:
            self._handler_failed(error)

    def _tls_wants_write(self) -> bool:
        tls = self._tls
        assert tls is not None
        if self._wire_at < len(self._wire) or tls.wire_pending:
            return True
        framer = self.framer
        if self._switching:
            return framer.has_output or framer._at_switch
        if not tls.established or tls.closed:
            return False
        return framer.has_output or framer.should_close

    def _peek_wire(self) -> memoryview:
        """The wire bytes to send next: an upgrade's clear output first, then
        what the TLS session wrote, encrypting more output when it has none."""
        if self._wire_at >= len(self._wire):
            self._wire, self._wire_at = self._fill_wire(), 0
        return memoryview(self._wire)[self._wire_at :]

    def _consume_wire(self, sent: int) -> None:
        available = len(self._wire) - self._wire_at
        if not 0 <= sent <= available:
            raise ValueError(f"sent={sent} but the last peek_output showed {available} bytes")
        self._wire_at += sent
        if self._wire_at >= len(self._wire):
            self._wire, self._wire_at = b"", 0

    def _fill_wire(self) -> bytes:
        tls = self._tls
        assert tls is not None
        framer = self.framer
        if self._switching:
            clear = framer.data_to_send(_TLS_CHUNK)  # stops at the switch
            if clear or not framer._at_switch:
                return clear
            framer._pass_switch()
            self._switching = False
            if not tls.server_side:
                tls.start()  # the client's hello, right after its clear output
        if not tls.wire_pending and tls.established and not tls.closed:
            plaintext = framer.data_to_send(_TLS_CHUNK)
            if plaintext:
                tls.send(plaintext)
            elif framer.should_close:
                tls.close()
        return tls.take_wire()

    def _output_ready(self) -> None:
        """The Framer got output while it had none (or overflowed)."""
        if not self._busy and self.on_wake is not None:
            self.on_wake()
