"""The policy of bindings whose transport calls them back (asyncio's and
Twisted's protocol classes): after every transport event, do what the
:class:`~sanschat.Driver` says now. They share this one copy, so they cannot
drift apart on when to write, pause reading, half-close or give up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from ._driver import CloseAction, Driver
from ._framer import Framer
from ._handler import ConnectionInfo, Handler

#: The most output handed to the transport in one write.
WRITE_CHUNK = 65536


class Transport(Protocol):
    """What the policy asks of a transport, under asyncio's names (another
    framework's transport gets them from an adapter)."""

    def write(self, data: bytes) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def can_write_eof(self) -> bool: ...

    def write_eof(self) -> None:
        """Send our end of stream once what the transport buffers is sent,
        however its flow control stands (nothing more will be written)."""

    def close(self) -> None:
        """Close once what the transport buffers is sent."""

    def abort(self) -> None: ...

    def is_closing(self) -> bool: ...


class CallbackBinding:
    """One Handler on one connection whose transport calls back.

    The framework's protocol class derives from this one and reports to it:
    :meth:`_connected` once the transport is up, :meth:`_received` and
    :meth:`_eof_received` for input, :meth:`_lost` at the end, and
    :meth:`_pause_writing` / :meth:`_resume_writing` for the transport's flow
    control. ``call_later(delay, callback)`` returns a handle with
    ``cancel()``; ``wake`` runs :meth:`_update` when the Driver's answers
    change outside a transport event (default: at once).
    """

    def __init__(
        self,
        handler: Handler,
        linger: float,
        call_later: Callable[[float, Callable[[], object]], Any],
        wake: Callable[[], None] | None = None,
        **driver_options: Any,
    ) -> None:
        self.handler = handler
        #: Seconds a cleanly closing connection waits for the peer's end of stream.
        self.linger = linger
        self._wake = wake or self._update
        # (driver_options: tls, server_side, server_hostname, handshake_timeout)
        self.driver = Driver(handler, on_wake=self._wake, **driver_options)
        self._call_later = call_later
        self._transport: Transport | None = None  # while connected
        self._write_paused = False
        self._reading = True
        self._lingering: Any = None  # the timer of a clean close under way
        self._handshake_timer: Any = None  # armed while a TLS handshake runs

    @property
    def framer(self) -> Framer:
        """The connection's Framer (the Handler's, once connected)."""
        return self.driver.framer

    def close_when_done(self) -> None:
        """Close once the output queued so far is sent (for a graceful shutdown)."""
        self.driver.framer.close_when_done()  # (wakes the binding through the driver's on_wake)

    def abort(self) -> None:
        """Close at once, dropping unsent output."""
        if self._transport is not None:
            self._transport.abort()

    # ------------------------------------------------- transport events

    def _connected(self, transport: Transport, info: ConnectionInfo) -> None:
        self._transport = transport
        self.driver.info = info
        self.driver.start()
        self._update()

    def _received(self, data: bytes | bytearray | memoryview) -> None:
        self.driver.data_received(data)  # (dropped and counted once closing)
        self._update()

    def _eof_received(self) -> None:
        self.driver.eof_received()
        self._update()

    def _lost(self, error: BaseException | None) -> None:
        self._transport = None
        if self._lingering is not None:
            self._lingering.cancel()
            self._lingering = None
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        if error is not None:
            self.driver.transport_failed(error)
        self.driver.connection_lost()

    def _pause_writing(self) -> None:
        self._write_paused = True

    def _resume_writing(self) -> None:
        self._write_paused = False
        self._update()

    # ------------------------------------------------------------ policy

    def _update(self) -> None:
        """Do what the driver says now: write, pause or resume reading, close."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        driver = self.driver
        if driver.deadline is not None and self._handshake_timer is None:
            self._handshake_timer = self._call_later(driver.deadline - time.monotonic(), self._deadline_due)
        while not self._write_paused and driver.wants_write:
            transport.write(driver.data_to_send(WRITE_CHUNK))  # may pause writing
            if transport.is_closing():
                return  # a failed send closed it: the loss is reported next
        action = driver.close_action
        if action is CloseAction.ABORT:
            transport.abort()
            return
        if action is CloseAction.CLOSE:
            if driver.input_ended or not transport.can_write_eof():
                transport.close()
                return
            if self._lingering is None:
                # Our end of stream; then read and drop what the peer still
                # sends until its own (or the linger), so that the kernel
                # answers it with no reset, which could destroy our answers.
                transport.write_eof()
                self._lingering = self._call_later(self.linger, self._linger_over)
        if driver.wants_read != self._reading:
            self._reading = not self._reading
            (transport.resume_reading if self._reading else transport.pause_reading)()

    def _deadline_due(self) -> None:
        self._handshake_timer = None
        self.driver.check_deadline()
        self._update()

    def _linger_over(self) -> None:
        self._lingering = None
        if self._transport is not None:
            self._transport.close()
