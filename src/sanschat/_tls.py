"""TLS as a sans-IO layer: wire bytes in, plaintext out, and back.

One :class:`TLSLayer` is one TLS session over two ``ssl.MemoryBIO`` (the
standard library's ``ssl.SSLObject``, as trio's ``SSLStream`` and asyncio's
``sslproto`` use it). It never touches a socket: the :class:`~sanschat.Driver`
feeds it what the binding received and takes from it what the binding must
send, so every binding runs TLS the same way without learning TLS.

Plan: ``receive`` writes wire bytes into the incoming buffer, drives the
handshake while it is not done, then decrypts everything it can; ``send``
encrypts; ``take_wire`` hands out whatever the session wrote (handshake
records, tickets, data, ``close_notify``). Memory per connection is the two
buffers: the incoming one holds at most one partial record (OpenSSL reads
records whole as they complete), the outgoing one what one ``send`` made.
"""

from __future__ import annotations

import ssl
import weakref
from typing import Any

from ._handler import TLSInfo

__all__ = ["TLSLayer"]

_READ_SIZE = 65536

# The name each server-side session was asked for (SNI), recorded by the
# callback that _record_server_names installs on a context.
_server_names: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_recording: weakref.WeakSet[ssl.SSLContext] = weakref.WeakSet()


def _record_server_names(context: ssl.SSLContext) -> None:
    """Make ``context`` note the server name each client asks for (SNI), for
    :attr:`TLSInfo.server_name`, keeping any ``sni_callback`` set before."""
    if context in _recording:
        return
    chained = context.sni_callback

    def note_server_name(obj: Any, name: str | None, ctx: ssl.SSLContext) -> int | None:
        if name is not None:
            _server_names[obj] = name
        return chained(obj, name, ctx) if chained is not None else None  # type: ignore[arg-type]

    context.sni_callback = note_server_name
    _recording.add(context)


class TLSLayer:
    """One TLS session, client or server, with no I/O."""

    #: What a failed session raises (the Driver catches it without importing ssl).
    Error = ssl.SSLError

    def __init__(
        self, context: ssl.SSLContext, *, server_side: bool, server_hostname: str | None = None
    ) -> None:
        if not isinstance(context, ssl.SSLContext):
            raise TypeError(f"tls needs an ssl.SSLContext, not {type(context).__name__}")
        if server_side:
            _record_server_names(context)
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.object = context.wrap_bio(
            self._incoming, self._outgoing, server_side=server_side, server_hostname=server_hostname
        )
        self.server_side = server_side
        #: Whether the handshake is complete.
        self.established = False
        #: Whether the peer has said its end (``close_notify``) or the stream ended.
        self.peer_closed = False
        #: Whether our ``close_notify`` has been written.
        self.closed = False

    def start(self) -> None:
        """Begin the handshake (a client writes its hello now)."""
        self._handshake()

    def receive(self, data: bytes | bytearray | memoryview) -> bytes:
        """Wire bytes in; the plaintext they complete out (``b""`` if none yet).

        Raises ``ssl.SSLError`` (a failed handshake, a bad record, a failed
        verification: ``ssl.SSLCertVerificationError``)."""
        if data:
            self._incoming.write(data)
        if not self.established and not self._handshake():
            return b""
        return self._read()

    def receive_eof(self) -> bytes:
        """The transport ended: the plaintext still to read, and the peer is done
        (a TLS stream that ends without ``close_notify`` is taken as ended too,
        as the standard library's ``suppress_ragged_eofs`` does)."""
        self._incoming.write_eof()
        data = b""
        if self.established:
            try:
                data = self._read()
            except ssl.SSLError:
                pass  # a ragged end: what was complete has been read
        self.peer_closed = True
        return data

    def send(self, plaintext: bytes | memoryview) -> None:
        """Encrypt ``plaintext`` (the handshake must be done)."""
        if plaintext:
            self.object.write(plaintext)

    def close(self) -> None:
        """Write our ``close_notify`` (once)."""
        if self.closed:
            return
        self.closed = True
        try:
            self.object.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass  # the peer's close_notify has not come: we do not wait for it
        except ssl.SSLError:
            pass  # the session is broken already: nothing more to say

    @property
    def wire_pending(self) -> int:
        """Bytes written by the session and not yet taken."""
        return self._outgoing.pending

    def take_wire(self) -> bytes:
        """Everything the session has written for the peer."""
        return self._outgoing.read()

    def info(self, plaintext_dropped: int = 0) -> TLSInfo:
        """The session's :class:`TLSInfo` (after the handshake)."""
        obj = self.object
        cipher = obj.cipher()
        if self.server_side:
            name = _server_names.get(obj)
        else:
            name = obj.server_hostname
        return TLSInfo(
            version=obj.version(),
            cipher=cipher[0] if cipher else None,
            alpn_protocol=obj.selected_alpn_protocol(),
            server_name=name,
            peer_certificate=obj.getpeercert() or None,
            plaintext_dropped=plaintext_dropped,
        )

    # -------------------------------------------------------------- private

    def _handshake(self) -> bool:
        try:
            self.object.do_handshake()
        except ssl.SSLWantReadError:
            return False
        self.established = True
        return True

    def _read(self) -> bytes:
        chunks = []
        read = self.object.read
        while True:
            try:
                chunk = read(_READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self.peer_closed = True
                break
            if not chunk:
                self.peer_closed = True
                break
            chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
