"""The receive buffer: the bytes received and not yet delivered.

Goals: worst case linear in the bytes fed, however they are chunked; no copy at
all in the usual case, where each chunk is framed before the next arrives.

Plan. Undelivered input is ``buf[pos:]``. ``buf`` is the caller's bytes object
itself while that can be (nothing held when a chunk arrives), a joined bytes
object while the held tail is no longer than the new chunk (copying at most
twice the new bytes), and a bytearray that grows in place while one long frame
outgrows the chunks that bring it (no quadratic concatenation; dropping the
delivered front does not move the rest in CPython). ``scan`` is where the next
search for a terminator resumes, so no byte is searched twice while a long
frame trickles in; readers keep it, the buffer only shifts it with the data.
"""

from __future__ import annotations

__all__ = ["ReceiveBuffer"]


class ReceiveBuffer:
    """Bytes received and not yet delivered: ``buf[pos:]``."""

    def __init__(self) -> None:
        self.buf: bytes | bytearray = b""
        self.pos = 0
        self.scan = 0

    @property
    def held(self) -> int:
        """Bytes received and not yet delivered."""
        return len(self.buf) - self.pos

    def feed(self, data: bytes) -> None:
        """Append ``data`` (non-empty bytes): zero-copy when nothing is held."""
        buf = self.buf
        pos = self.pos
        held = len(buf) - pos
        if not held:
            self.buf = data
            self.pos = self.scan = 0
            return
        if type(buf) is bytes and held <= len(data):
            # Joining costs at most twice the new bytes: linear overall.
            self.buf = buf[pos:] + data if pos else buf + data
        else:
            # A long frame is accumulating: a bytearray appends in place.
            if isinstance(buf, bytes):
                buf = self.buf = bytearray(memoryview(buf)[pos:])
            elif pos:
                del buf[:pos]  # drops the front without moving the rest
            buf += data
        if pos:
            self.scan -= pos
            self.pos = 0

    def take(self, start: int, end: int) -> bytes:
        """``buf[start:end]`` as bytes, copied at most once."""
        buf = self.buf
        if type(buf) is bytes:
            if start == 0 and end == len(buf):
                return buf  # the whole of it: no copy (said outright, as compiled code would copy)
            return buf[start:end]
        if end - start > 4096:  # a bytearray slice would copy twice
            with memoryview(buf) as view:
                return view[start:end].tobytes()
        return bytes(buf[start:end])

    def drop(self, count: int) -> None:
        """Advance past ``count`` bytes without delivering them."""
        self.pos = self.scan = self.pos + count
