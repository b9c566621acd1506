"""sanschat: asynchat's framing as a sans-IO state machine.

Feed bytes to a :class:`Framer`, get :class:`Frame`, :class:`Data` and
:class:`EndOfStream` events back; queue output with ``push`` and producers and
hand it to whatever I/O you have. Write a protocol once as a :class:`Handler`
and run it under any of six bindings, each in its own module and imported only
when you import it: ``sanschat.select`` (the standard library's selectors),
``sanschat.asyncio``, ``sanschat.trio``, ``sanschat.anyio``, ``sanschat.socket``
(blocking sockets, a thread per connection) and ``sanschat.twisted``.
:func:`serve` runs a Handler as a server under any of them, by name.
"""

from __future__ import annotations

from ._driver import CloseAction, Driver
from ._errors import (
    ClosedError,
    FrameTooLarge,
    FramingError,
    LocalError,
    MalformedFrame,
    OutputLimitExceeded,
    PeerError,
    ProducerError,
)
from ._events import NEED_DATA, Data, EndOfStream, Event, Frame, InputEvent
from ._framer import DEFAULT_MAX_FRAME_SIZE, Framer
from ._handler import ConnectionInfo, Handler, TLSInfo, deliver_events
from ._kinds import AnyDelimiter, HeaderKind, LengthPrefix, Netstring, Varint
from ._output import Producer, simple_producer
from ._serve import serve
from ._shape import ServerShape
from ._terminators import Terminator

__all__ = [
    "Framer",
    "Event",
    "Frame",
    "Data",
    "EndOfStream",
    "NEED_DATA",
    "InputEvent",
    "Terminator",
    "AnyDelimiter",
    "LengthPrefix",
    "Varint",
    "Netstring",
    "HeaderKind",
    "Handler",
    "ConnectionInfo",
    "TLSInfo",
    "deliver_events",
    "serve",
    "ServerShape",
    "Driver",
    "CloseAction",
    "Producer",
    "simple_producer",
    "FramingError",
    "PeerError",
    "LocalError",
    "FrameTooLarge",
    "MalformedFrame",
    "ProducerError",
    "ClosedError",
    "OutputLimitExceeded",
    "DEFAULT_MAX_FRAME_SIZE",
]

#: The version, written here only: setuptools reads it for the metadata, the CLI prints it.
__version__ = "0.1.0"

from ._compiled import is_compiled, restore_class_docstrings  # noqa: E402

#: Whether this installation runs the optional mypyc-compiled Framer (see setup.py).
compiled = is_compiled("sanschat._framer")
if compiled:  # pragma: no cover - only in the compiled build
    restore_class_docstrings(*(value for value in list(globals().values()) if isinstance(value, type)))
