"""Socket calls for a :class:`~sanschat.Driver`'s connection, shared by the
select binding and the thread-per-connection server. None of them raises:
a broken socket aborts the connection with its error, or says so at its next
call.
"""

from __future__ import annotations

import socket
import sys

from ._driver import Driver


def receive(sock: socket.socket, driver: Driver, size: int = 65536) -> None:
    """Hand the driver what the socket has: bytes, or the peer's end of stream."""
    try:
        data = sock.recv(size)
    except (BlockingIOError, InterruptedError):
        return
    except OSError as error:  # reset by the peer, and the like
        if not _tls_wants_more(error):
            driver.transport_failed(error)
        return
    if data:
        driver.data_received(data)
    else:
        driver.eof_received()


def send(sock: socket.socket, driver: Driver) -> None:
    """Send the driver's output until it is all sent or the socket is full."""
    while chunk := driver.peek_output():
        try:
            sent = sock.send(chunk)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            if not _tls_wants_more(error):
                driver.transport_failed(error)
            return
        driver.consume_output(sent)
        if sent < len(chunk):
            return  # the socket is full: wait until it is writable


def half_close(sock: socket.socket) -> None:
    """Send our end of stream (TLS: its close_notify); a socket already
    broken says so at its next call."""
    try:
        if tls_of(sock) is not None:
            sock.unwrap()  # type: ignore[attr-defined]  # non-blocking: sends ours, raises until the peer's
        else:
            sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def tls_of(sock: object) -> object | None:
    """``sock`` if it is a TLS socket, else None (``ssl`` is imported already if it is one)."""
    ssl = sys.modules.get("ssl")
    return sock if ssl is not None and isinstance(sock, ssl.SSLSocket) else None


def _tls_wants_more(error: OSError) -> bool:
    """Whether ``error`` only says that a TLS record is not complete yet (a would-block)."""
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(error, (ssl.SSLWantReadError, ssl.SSLWantWriteError))


def shut_down(sock: socket.socket) -> None:
    """End both directions now: a thread blocked on ``sock`` returns."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
