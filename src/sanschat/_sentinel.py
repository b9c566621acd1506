"""NEED_DATA, the Framer's "nothing until more bytes" answer.

Apart from the events because it is a class whose metaclass is itself, which
the compiled build (mypyc) cannot make native: this module stays pure Python.
"""

from __future__ import annotations

__all__ = ["NEED_DATA"]


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
