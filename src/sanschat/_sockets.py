"""Bytes between a non-blocking socket and a :class:`~sanschat.Driver`: the
moving that the select binding and the thread-per-connection server share.
Neither function blocks; a broken socket aborts the connection with its error.
"""

from __future__ import annotations

import socket

from ._driver import Driver


def receive(sock: socket.socket, driver: Driver, size: int = 65536) -> None:
    """Hand the driver what the socket has: bytes, or the peer's end of stream."""
    try:
        data = sock.recv(size)
    except (BlockingIOError, InterruptedError):
        return
    except OSError as error:  # reset by the peer, and the like
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
            driver.transport_failed(error)
            return
        driver.consume_output(sent)
        if sent < len(chunk):
            return  # the socket is full: wait until it is writable


def half_close(sock: socket.socket) -> None:
    """Send our end of stream; a socket already broken says so at its next recv."""
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
