"""What a terminator may be, and the small searches the delimiter reader needs.

A terminator is checked once, when it is set, and turned into a *kind* that the
Framer uses to pick its reader from a table; nothing on the per-frame path
re-validates it.
"""

from __future__ import annotations

import sys
from enum import Enum
from operator import index
from typing import Union

from ._kinds import AnyDelimiter, HeaderKind

__all__ = [
    "Terminator",
    "Kind",
    "check_terminator",
    "longest_prefix_at_end",
    "MAX_COUNT",
]

#: What ``set_terminator`` accepts: a delimiter, a byte count, ``None``, several
#: alternative delimiters, or a kind of frame that announces its own length.
Terminator = Union[bytes, int, None, AnyDelimiter, HeaderKind]

#: The largest byte count accepted: more than any stream can carry in practice.
MAX_COUNT = sys.maxsize


class Kind(Enum):
    """How the end of a frame is found."""

    DELIMITER = "delimiter"  # a bytes string found anywhere in the stream
    COUNT = "count"  # a number of bytes
    FOREVER = "forever"  # None: no end, everything is Data
    ANY = "any"  # AnyDelimiter: the earliest of several delimiters
    HEADER = "header"  # a HeaderKind: a header gives the payload's length


def check_terminator(term: object) -> tuple[Kind, Terminator]:
    """Validate a terminator and return its kind with its normalised value.

    Raises TypeError for a value of the wrong type (str, float, bool, ...) and
    ValueError for a value of the right type that cannot be a terminator
    (``b""``, a negative count, a count past ``MAX_COUNT``).
    """
    if term is None:
        return Kind.FOREVER, None
    if isinstance(term, AnyDelimiter):
        return Kind.ANY, term
    if isinstance(term, HeaderKind):
        return Kind.HEADER, term
    if isinstance(term, (bytes, bytearray, memoryview)):
        delimiter = bytes(term)
        if not delimiter:
            raise ValueError(
                "an empty terminator would end a frame at every byte; "
                "use None to collect forever or 0 for an empty frame"
            )
        return Kind.DELIMITER, delimiter
    if isinstance(term, str):
        raise TypeError(f"terminator must be bytes, not str ({term!r}); encode it first")
    if isinstance(term, bool):
        raise TypeError(f"terminator must be bytes, int or None, not bool ({term!r})")
    try:
        count = index(term)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"terminator must be bytes, int, None, AnyDelimiter or a HeaderKind, "
            f"not {type(term).__name__} ({term!r})"
        ) from None
    if count < 0:
        raise ValueError(f"a count terminator must be >= 0, not {count}")
    if count > MAX_COUNT:
        raise ValueError(f"a count terminator must be <= {MAX_COUNT}, not {count}")
    return Kind.COUNT, count


def longest_prefix_at_end(buf: bytes | bytearray, start: int, delimiter: bytes) -> int:
    """Length of the longest tail of ``buf[start:]`` that is a proper prefix of
    ``delimiter``: the bytes that might still begin it and must be held back.

    The caller has already checked that ``delimiter`` does not occur in
    ``buf[start:]``. Candidates are tried longest first, each at a position
    holding the delimiter's first byte, so the usual cost is one ``find``.
    """
    end = len(buf)
    pos = max(start, end - len(delimiter) + 1)
    first = delimiter[0]
    while True:
        pos = buf.find(first, pos, end)
        if pos < 0:
            return 0
        if delimiter.startswith(buf[pos:end]):
            return end - pos
        pos += 1
