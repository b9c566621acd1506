"""Events the Framer hands out, and the NEED_DATA sentinel.

Events are data: immutable, slotted, compared by type and payload. The Framer
builds thousands of them per second, so construction is kept to one slot store
(a frozen dataclass costs about twice as much here).
"""

from __future__ import annotations

from typing import Union

__all__ = ["Event", "Frame", "Data", "EndOfStream", "NEED_DATA", "InputEvent"]


class Event:
    """Base of the three input events; each carries ``data: bytes``."""

    __slots__ = ("data",)
    data: bytes

    def __init__(self, data: bytes) -> None:
        _set_data(self, data)

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


# The slot's own setter bypasses the immutability guard above; the Framer uses
# it too, together with object.__new__, to build events without a Python frame.
_set_data = Event.__dict__["data"].__set__


class Frame(Event):
    """A frame ended. ``data`` is what arrived since the previous frame, minus the
    terminator and minus what earlier ``Data`` events of this frame carried.

    ``terminator`` is the delimiter that ended it when the Framer's terminator
    was an ``AnyDelimiter``, else ``None`` (the terminator you set is the one).
    """

    __slots__ = ("_terminator",)
    _terminator: bytes

    def __init__(self, data: bytes, terminator: bytes | None = None) -> None:
        _set_data(self, data)
        if terminator is not None:
            _set_terminator(self, terminator)

    @property
    def terminator(self) -> bytes | None:
        try:
            return self._terminator
        except AttributeError:  # the usual case: never set, nothing stored
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


_set_terminator = Frame.__dict__["_terminator"].__set__


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


class _Sentinel(type):
    """Metaclass whose classes are their own type: ``type(NEED_DATA) is NEED_DATA``,
    so a dispatch table keyed by ``type(event)`` can hold the sentinel too."""

    def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, object]) -> _Sentinel:
        cls = super().__new__(mcls, name, bases, namespace)
        cls.__class__ = cls  # type: ignore[assignment]
        return cls

    def __repr__(cls) -> str:
        return cls.__name__


class NEED_DATA(_Sentinel, metaclass=_Sentinel):
    """Returned by ``next_event`` when nothing more can be said until more bytes
    (or the end of the stream) arrive through ``receive_data``."""
