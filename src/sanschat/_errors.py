"""The few exceptions sanschat raises, besides TypeError/ValueError for bad arguments.

Two families under :class:`FramingError`, as h11 splits its protocol errors:
:class:`PeerError` for what the other side did (catch it around the peer's
input) and :class:`LocalError` for a mistake of the program itself (let it
propagate like any bug).
"""

from __future__ import annotations

__all__ = [
    "FramingError",
    "PeerError",
    "LocalError",
    "FrameTooLarge",
    "MalformedFrame",
    "ProducerError",
    "ClosedError",
    "OutputLimitExceeded",
]


class FramingError(Exception):
    """Base of every sanschat-specific error."""


class PeerError(FramingError):
    """The peer broke the framing rules or the connection's bounds
    (:class:`FrameTooLarge`, :class:`MalformedFrame`, :class:`OutputLimitExceeded`)."""


class LocalError(FramingError):
    """This program used sanschat wrongly or a part of it failed
    (:class:`ClosedError`, :class:`ProducerError`): a bug to fix, not input to reject."""


class FrameTooLarge(PeerError):
    """A frame's payload passed ``max_frame_size``.

    Raised once, by ``next_event`` (or the ``payloads`` iterator), at the frame that
    is too large, as soon as the bytes held prove it, whatever the chunking. The
    frames before it have all been delivered. Afterwards the Framer skips the rest
    of the oversized frame up to and including its terminator, or its announced
    length (counted in ``Framer.bytes_discarded``), and goes on with the next
    frame, so the tail of the oversized frame is never read as a frame of its
    own: a terminator or limit set meanwhile applies after that frame. In streaming mode
    the frame's first ``max_frame_size`` bytes are given as ``Data`` before the
    error, so what was delivered does not depend on the chunking either.
    """

    def __init__(self, limit: int, size: int, *, announced: bool = False) -> None:
        if announced:
            problem = f"a frame of {size} bytes was announced"
        else:
            problem = f"{size} bytes without a terminator"
        super().__init__(f"frame exceeds max_frame_size={limit}: {problem}")
        self.limit = limit
        self.size = size
        #: Whether ``size`` was announced (a length prefix, a count) rather than
        #: counted as it arrived.
        self.announced = announced


class MalformedFrame(PeerError):
    """A frame's header or trailer breaks its kind's rules (a netstring length
    with a non-digit or a leading zero, a missing comma, a varint past 10 bytes).

    Raised once, as soon as the bytes received prove it, whatever the chunking.
    There is no telling where the next frame would start, so the Framer's
    terminator becomes ``None``: the bytes from the bad frame on are delivered
    as ``Data`` (none is lost). Most protocols close the connection.
    """


class ProducerError(LocalError):
    """A producer's ``more()`` raised or returned something that is not bytes-like.

    The producer has been removed from the output queue; what was queued before it
    was already handed out, what was queued after it is still queued. Its remaining
    output is missing from the stream, so the usual answer is to close the channel.
    The original exception, if any, is the ``__cause__``.
    """

    def __init__(self, producer: object, problem: str) -> None:
        super().__init__(f"producer {producer!r} {problem}")
        self.producer = producer


class ClosedError(LocalError):
    """Data was received after the end of the stream."""


class OutputLimitExceeded(PeerError):
    """A connection's unsent output passed its Handler's ``max_output``: the peer
    does not read what it is sent. The connection is aborted; this is the reason
    ``connection_lost`` gets."""

    def __init__(self, limit: int, queued: int) -> None:
        super().__init__(
            f"unsent output of {queued} bytes passed max_output={limit}: the peer is not reading"
        )
        self.limit = limit
        self.queued = queued
