"""Events the Framer hands out (and NEED_DATA, from ``_sentinel``).

Events are data: immutable, slotted, compared by type and payload. The Framer
builds one per frame, so construction is what counts: the compiled build
(setup.py) makes these native classes, built by the compiled Framer without a
Python call; the pure build makes them with one slot store (``NATIVE_EVENTS``
says which; a frozen dataclass would cost about twice as much).
"""

from __future__ import annotations

from typing import Final, Union

from ._sentinel import NEED_DATA

__all__ = ["Event", "Frame", "Data", "EndOfStream", "NEED_DATA", "InputEvent"]


class Event:
    """Base of the three input events; each carries ``data: bytes``."""

    __slots__ = ("data",)
    data: bytes

    def __init__(self, data: bytes) -> None:
        object.__setattr__(self, "data", data)  # (compiled: a plain store)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} events are immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} events are immutable")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.data == other.data

    def __hash__(self) -> int:
        return hash((type(self), self.data))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.data!r})"

    def __reduce__(self) -> tuple[type[Event], tuple[bytes]]:
        return (type(self), (self.data,))


#: Whether these classes are compiled (mypyc marks its native classes). The
#: compiled Framer then calls them as constructors, a C call; the pure one
#: builds its events with object.__new__ and the slot setters below, which
#: bypass the immutability guard and need no Python frame.
NATIVE_EVENTS: Final[bool] = hasattr(Event, "__mypyc_attrs__")
_set_data = vars(Event)["data"].__set__


class Frame(Event):
    """A frame ended. ``data`` is what arrived since the previous frame, minus the
    terminator and minus what earlier ``Data`` events of this frame carried.

    ``terminator`` is the delimiter that ended it when the Framer's terminator
    was an ``AnyDelimiter``, else ``None`` (the terminator you set is the one).
    """

    __slots__ = ("_terminator",)
    _terminator: bytes | None

    def __init__(self, data: bytes, terminator: bytes | None = None) -> None:
        super().__init__(data)
        object.__setattr__(self, "_terminator", terminator)

    @property
    def terminator(self) -> bytes | None:
        try:
            return self._terminator
        except AttributeError:  # built by the pure Framer: never set
            return None

    def __eq__(self, other: object) -> bool:
        if type(other) is not Frame:
            return NotImplemented
        return self.data == other.data and self.terminator == other.terminator

    def __hash__(self) -> int:
        return hash((Frame, self.data, self.terminator))

    def __repr__(self) -> str:
        if self.terminator is None:
            return f"Frame({self.data!r})"
        return f"Frame({self.data!r}, terminator={self.terminator!r})"

    def __reduce__(self) -> tuple[type[Event], tuple[bytes]] | tuple[type[Frame], tuple[bytes, bytes]]:  # type: ignore[override]
        if self.terminator is None:
            return (Frame, (self.data,))
        return (Frame, (self.data, self.terminator))


_set_terminator = vars(Frame)["_terminator"].__set__


class Data(Event):
    """A piece of the frame in progress, released early (streaming mode, or a
    ``None`` terminator). The frame's payload is the concatenation of its ``Data``
    events and the ``Frame`` that ends it."""

    __slots__ = ()


class EndOfStream(Event):
    """The peer closed. ``data`` is the unterminated remainder not delivered yet
    (``b""`` if none). It is the last event; asking again gives ``EndOfStream(b"")``."""

    __slots__ = ()


#: An input event: what a binding's ``receive()`` returns, and what
#: ``Framer.next_event()`` returns when it does not return NEED_DATA.
InputEvent = Union[Frame, Data, EndOfStream]
