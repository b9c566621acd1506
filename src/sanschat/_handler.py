"""Protocol logic written once, run by any binding (select, asyncio, trio,
anyio, socket, twisted).

A :class:`Handler` gets callbacks in asynchat's spirit and talks back through
its Framer (``push``, ``set_terminator``, ``close_when_done``); it never sees a
socket. :func:`deliver_events` is the one loop every binding uses to hand a
Framer's events to a Handler, so bindings only move bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import FrameTooLarge, MalformedFrame
from ._events import NEED_DATA, Data, Frame
from ._framer import DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_VALUE_SIZE, Framer
from ._terminators import Terminator

if TYPE_CHECKING:
    import ssl

__all__ = ["Handler", "ConnectionInfo", "TLSInfo", "deliver_events"]


@dataclass(frozen=True)
class TLSInfo:
    """A TLS session as a server logs it or decides on it, once its handshake is
    done (``Handler.connection_info.tls_info``)."""

    #: ``"TLSv1.3"``, ``"TLSv1.2"``...
    version: str | None
    #: The cipher suite's name.
    cipher: str | None
    #: The protocol agreed by ALPN, if any.
    alpn_protocol: str | None
    #: The name the client asked for (SNI) on a server; the name verified on a client.
    server_name: str | None
    #: The peer's certificate as ``ssl.SSLSocket.getpeercert()`` gives it (None
    #: when none was asked for or given).
    peer_certificate: dict[str, Any] | None
    #: Bytes the peer sent in clear after the frame that asked for the upgrade,
    #: dropped unread (a command injection, RFC 3207 section 4.2).
    plaintext_dropped: int = 0


@dataclass(frozen=True)
class ConnectionInfo:
    """What a binding knows about a connection, given to the Handler as
    ``handler.connection_info`` before ``new_framer`` and ``connection_made``.

    ``peer`` and ``local`` are socket addresses as the socket module gives them
    (None where there is no socket, as in memory); ``tls`` is the TLS object
    (an ``ssl.SSLObject`` or ``ssl.SSLSocket``, a ``trio.SSLStream``) where the
    connection is encrypted, else None; ``tls_info`` says what a TLS handshake
    agreed (version, cipher, ALPN, SNI, the peer's certificate), once it is done.
    """

    peer: Any = None
    local: Any = None
    tls: Any = None
    tls_info: TLSInfo | None = None


class Handler:
    """Base class for a connection's protocol logic; override what you need.

    The class attributes ``terminator``, ``stream``, ``max_frame_size`` and
    ``max_value_size`` give the Framer each new connection starts with (see
    :meth:`new_framer`).
    """

    terminator: Terminator = b"\r\n"
    stream: bool = False
    max_frame_size: int | None = DEFAULT_MAX_FRAME_SIZE
    max_value_size: int | None = DEFAULT_MAX_VALUE_SIZE
    #: Reading from the peer pauses while the unsent output (queued bytes and
    #: what sized producers hold) is above this, and resumes at or below it.
    #: Generous, so that a client that pipelines requests before reading the
    #: answers is served, not deadlocked.
    pause_reading_above: int = 4 * 1024 * 1024
    #: Unsent output above this aborts the connection (logged; ``connection_lost``
    #: gets an :class:`~sanschat.OutputLimitExceeded`): the peer is not reading.
    #: None: no limit.
    max_output: int | None = 64 * 1024 * 1024

    #: The connection's Framer, set by :meth:`connection_made`.
    framer: Framer
    #: Who the connection is with, set by the binding before :meth:`connection_made`.
    connection_info: ConnectionInfo
    # Set by the connection's Driver: what start_tls calls.
    _tls_starter: Callable[[ssl.SSLContext, str | None], None] | None = None

    def new_framer(self) -> Framer:
        """The Framer for a new connection of this handler."""
        return Framer(
            self.terminator,
            stream=self.stream,
            max_frame_size=self.max_frame_size,
            max_value_size=self.max_value_size,
        )

    def connection_made(self, framer: Framer) -> None:
        """The connection is up; ``framer`` carries both directions."""
        self.framer = framer

    def frame_received(self, data: bytes) -> None:
        """A whole frame's payload (or the end of a streamed one)."""

    def frames_received(self, frames: list[bytes]) -> None:
        """Whole frames that arrived together, as a list of payloads: override
        it instead of :meth:`frame_received` to answer a pipelined run in one
        go (an echo, one ``push`` for the lot). The frames of one call were
        all split under the terminator in force when the run began: a
        ``set_terminator``, ``read_exactly`` or ``close_when_done`` made here
        applies from the byte after the last of them. Unless it is
        overridden, frames go to :meth:`frame_received` one by one, each
        change applying from the next frame."""
        for data in frames:
            self.frame_received(data)

    def data_received(self, data: bytes) -> None:
        """A piece of the frame in progress (streaming mode or a None terminator)."""

    def end_received(self, data: bytes) -> None:
        """The peer closed its side; ``data`` is the unterminated remainder.

        The default closes the connection once queued output is sent.
        """
        self.framer.close_when_done()

    def frame_too_large(self, error: FrameTooLarge) -> None:
        """A frame passed ``max_frame_size``. The default re-raises, which makes
        the binding log the error and close this connection; override it to
        answer and go on (the Framer skips the rest of the frame)."""
        raise error

    def frame_malformed(self, error: MalformedFrame) -> None:
        """A length-announcing frame broke its kind's rules (see MalformedFrame).
        The default re-raises, which makes the binding log the error and close
        this connection; override it to answer first, or to set a terminator
        that resynchronises (the bytes from the bad frame on come as Data)."""
        raise error

    def connection_lost(self, error: BaseException | None) -> None:
        """The connection is closed: ``None`` after a normal close, else why."""

    def start_tls(self, context: ssl.SSLContext, *, server_hostname: str | None = None) -> None:
        """Upgrade this connection to TLS (SMTP's STARTTLS, IMAP's and POP3's STLS,
        FTP's AUTH TLS), in the role this end has (the server's, on a server).

        What was pushed before this call goes out in clear (the "go ahead"
        answer); what is pushed after it is encrypted, once the handshake is
        done. Bytes the peer sent in clear after the frame that asked for the
        upgrade are dropped and counted (``connection_info.tls_info.
        plaintext_dropped``), never delivered: a command pipelined in clear
        cannot be injected into the secure session. :meth:`tls_started` says when
        the handshake is done; a failed or stalled handshake ends the connection
        (``connection_lost`` gets the ``ssl.SSLError`` or a ``TimeoutError``).
        ``server_hostname`` (a client's) is the name the certificate must match.
        """
        starter = self._tls_starter
        if starter is None:
            raise RuntimeError("start_tls needs a connection run by a binding (a Driver)")
        starter(context, server_hostname)

    def tls_started(self) -> None:
        """The TLS handshake is done (from the first byte, or after
        :meth:`start_tls`); ``connection_info.tls_info`` says what it agreed."""


def deliver_events(framer: Framer, handler: Handler) -> bool:
    """Hand every event ready in ``framer`` to ``handler``, until input is held.

    Returns True once the end of the stream has been delivered. Stops as soon
    as ``framer.input_hold`` turns true: after the handler's
    ``close_when_done`` (input after the close decision is never delivered),
    or while its unsent output is above ``framer.hold_input_above`` (call
    again once it has gone out). After a ``Frame``, the rest of a pipelined
    run goes through ``payloads()`` in bulk; ``set_terminator`` from inside a
    callback stays exact. A Handler that overrides ``frames_received`` gets
    each run of whole frames in one call instead.
    """
    runs = type(handler).frames_received is not Handler.frames_received
    while not framer.input_hold:
        try:
            if runs and (frames := framer.take_payloads()):
                handler.frames_received(frames)
                if framer._needs_data():  # (spares asking twice per read to learn it)
                    return False
                continue
            event = framer.next_event()
            kind = type(event)
            if kind is Frame and runs:
                handler.frames_received([event.data])  # type: ignore[union-attr]
            elif kind is Frame:
                frame_received = handler.frame_received
                frame_received(event.data)  # type: ignore[union-attr]
                if framer.input_hold:  # checked before the next payload is taken
                    return False
                for payload in framer.payloads():
                    frame_received(payload)
                    if framer.input_hold:
                        return False
                if framer._needs_data():
                    return False
            elif event is NEED_DATA:
                return False
            elif kind is Data:
                handler.data_received(event.data)  # type: ignore[union-attr]
            else:
                handler.end_received(event.data)  # type: ignore[union-attr]
                return True
        except FrameTooLarge as error:
            handler.frame_too_large(error)
        except MalformedFrame as error:
            handler.frame_malformed(error)
    return False
