"""Terminator kinds beyond asynchat's three: alternative delimiters and frames
that announce their own length (fixed-width prefixes, varints, netstrings, or
a header kind of your own).

Each is a small value given to ``set_terminator`` like a bytes delimiter; the Framer picks the reader for it once, when it is set. Each also
encodes: ``kind.encode(payload)`` gives the bytes a peer framing with the same
kind reads back as that payload (``Framer.push_frame`` uses it).
"""

from __future__ import annotations

import re
import sys
from typing import Literal

from ._errors import MalformedFrame

__all__ = ["AnyDelimiter", "HeaderKind", "LengthPrefix", "Varint", "Netstring"]


class AnyDelimiter:
    """Frames end at whichever of several delimiters comes first; at the same
    position the longest wins (``AnyDelimiter(b"\\r\\n", b"\\n")`` accepts both line
    endings). ``Frame.terminator`` says which one ended each frame."""

    __slots__ = ("delimiters", "pattern", "longest")

    delimiters: tuple[bytes, ...]
    pattern: re.Pattern[bytes]
    longest: int

    def __init__(self, *delimiters: bytes) -> None:
        if not delimiters:
            raise ValueError("AnyDelimiter needs at least one delimiter")
        for d in delimiters:
            if not isinstance(d, bytes):
                raise TypeError(f"delimiters must be bytes, not {type(d).__name__} ({d!r})")
            if not d:
                raise ValueError("an empty delimiter would end a frame at every byte")
        unique = tuple(dict.fromkeys(delimiters))
        object.__setattr__(self, "delimiters", unique)
        # Longest first: at one position, the regex takes the first alternative that matches.
        by_length = sorted(unique, key=len, reverse=True)
        object.__setattr__(self, "pattern", re.compile(b"|".join(map(re.escape, by_length))))
        object.__setattr__(self, "longest", len(by_length[0]))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("AnyDelimiter is immutable")

    def __eq__(self, other: object) -> bool:
        return type(other) is AnyDelimiter and other.delimiters == self.delimiters

    def __hash__(self) -> int:
        return hash(self.delimiters)

    def __repr__(self) -> str:
        return f"AnyDelimiter({', '.join(map(repr, self.delimiters))})"

    def encode(self, payload: bytes) -> bytes:
        """``payload`` ended by the first delimiter. Refused (ValueError) when a
        reader would end the frame elsewhere: the payload holds a delimiter, its
        end and the delimiter make an earlier one, or the frame's end could run
        into the next frame's bytes (list the longer delimiter first)."""
        first = self.delimiters[0]
        wire = payload + first
        match = self.pattern.search(wire)
        assert match is not None
        if match.start() != len(payload) or match.group() != first:
            raise ValueError(f"payload would be cut at the delimiter {match.group()!r} at {match.start()}")
        for start in range(max(0, len(wire) - self.longest + 1), len(payload) + 1):
            if self.could_begin(wire[start:]):
                raise ValueError(
                    f"the end of this frame could run into the next one: {wire[start:]!r} "
                    "begins a longer delimiter"
                )
        return wire

    def could_begin(self, tail: bytes) -> bool:
        """Whether some delimiter longer than ``tail`` begins with it: more bytes
        could still make a delimiter start where ``tail`` starts."""
        return any(len(d) > len(tail) and d.startswith(tail) for d in self.delimiters)


class HeaderKind:
    """Base class for frames that begin with a header announcing the payload's
    length, optionally followed by a fixed trailer (``b","`` for netstrings).

    Subclasses implement :meth:`parse_header` and :meth:`encode`, and may set
    ``max_header`` (bytes after which a header must be complete) and
    ``trailer``. HTTP/1.1 chunked coding, for example, is a header of hex digits
    and CRLF, then the chunk, then a CRLF trailer (see the README).
    """

    #: A header not complete within this many bytes is malformed.
    max_header: int = 64
    #: Bytes that must follow every payload.
    trailer: bytes = b""

    def parse_header(self, data: bytes) -> tuple[int, int] | None:
        """Read a header from the start of ``data`` (at most ``max_header`` bytes
        of what has arrived). Return ``(header_length, payload_length)``, or
        ``None`` if more bytes are needed; raise :class:`MalformedFrame` as soon
        as ``data`` proves the header is bad (never later, never earlier: the
        answer must not depend on how the bytes were split)."""
        raise NotImplementedError

    def encode(self, payload: bytes) -> bytes:
        """The header, ``payload`` and trailer, as one bytes object."""
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(vars(self).items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


_BYTEORDERS = {
    "big": "big",
    "little": "little",
    ">": "big",
    "!": "big",
    "<": "little",
    "=": sys.byteorder,
    "@": sys.byteorder,
}


class LengthPrefix(HeaderKind):
    """A fixed-width unsigned integer before each payload, as Twisted's
    ``Int32StringReceiver`` or Netty's ``LengthFieldBasedFrameDecoder`` read.

    ``width`` is 1, 2, 4 or 8 bytes; ``byteorder`` is ``"big"`` (network order,
    the default), ``"little"`` or a ``struct`` byte-order character; with
    ``includes_prefix`` the length counts the prefix itself.
    """

    def __init__(
        self,
        width: Literal[1, 2, 4, 8] = 4,
        byteorder: str = "big",
        *,
        includes_prefix: bool = False,
    ) -> None:
        if width not in (1, 2, 4, 8) or isinstance(width, bool):
            raise ValueError(f"width must be 1, 2, 4 or 8 bytes, not {width!r}")
        if byteorder not in _BYTEORDERS:
            raise ValueError(f"byteorder must be 'big', 'little' or one of '<>!=@', not {byteorder!r}")
        self.width = width
        self.byteorder: Literal["big", "little"] = _BYTEORDERS[byteorder]  # type: ignore[assignment]
        self.includes_prefix = bool(includes_prefix)
        self.max_header = width

    def __repr__(self) -> str:
        extra = ", includes_prefix=True" if self.includes_prefix else ""
        return f"LengthPrefix({self.width}, {self.byteorder!r}{extra})"

    def parse_header(self, data: bytes) -> tuple[int, int] | None:
        width = self.width
        if len(data) < width:
            return None
        length = int.from_bytes(data[:width], self.byteorder)
        if self.includes_prefix:
            if length < width:
                raise MalformedFrame(f"length {length} is shorter than its own {width}-byte prefix")
            length -= width
        return width, length

    def encode(self, payload: bytes) -> bytes:
        length = len(payload) + (self.width if self.includes_prefix else 0)
        if length >= 1 << (8 * self.width):
            raise ValueError(f"a payload of {len(payload)} bytes does not fit a {self.width}-byte prefix")
        return length.to_bytes(self.width, self.byteorder) + payload


class Varint(HeaderKind):
    """An unsigned LEB128 varint before each payload, as protobuf's delimited
    streams write it (at most 10 bytes: a 64-bit length)."""

    max_header = 10

    def parse_header(self, data: bytes) -> tuple[int, int] | None:
        length = 0
        for i, byte in enumerate(data[:10]):
            length |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                return i + 1, length
        if len(data) >= 10:
            raise MalformedFrame("a varint length longer than 10 bytes")
        return None

    def encode(self, payload: bytes) -> bytes:
        length = len(payload)
        out = bytearray()
        while True:
            byte = length & 0x7F
            length >>= 7
            if length:
                out.append(byte | 0x80)
            else:
                out.append(byte)
                return bytes(out) + payload


class Netstring(HeaderKind):
    """D. J. Bernstein's netstrings: ``<decimal length>:<payload>,``.

    The length is ASCII digits without leading zeros (``0:,`` is the empty
    string), at most 20 of them; anything else is a :class:`MalformedFrame`.
    """

    max_header = 21
    trailer = b","

    def parse_header(self, data: bytes) -> tuple[int, int] | None:
        # Byte by byte, so the first bad byte is the one reported, however
        # much of the header has arrived.
        for i, byte in enumerate(data[:21]):
            if byte == 58:  # ":"
                if i == 0:
                    raise MalformedFrame("netstring without a length before ':'")
                return i + 1, int(data[:i])
            if not 48 <= byte <= 57:
                raise MalformedFrame(f"netstring length has a non-digit {data[i : i + 1]!r} at {i}")
            if i == 1 and data[0] == 48:
                raise MalformedFrame(f"netstring length {data[:2]!r}... has a leading zero")
            if i == 20:
                raise MalformedFrame("netstring length longer than 20 digits")
        return None

    def encode(self, payload: bytes) -> bytes:
        return b"%d:%s," % (len(payload), payload)
