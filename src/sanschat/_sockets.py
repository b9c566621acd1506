"""Socket calls for a :class:`~sanschat.Driver`'s connection, shared by the
select binding and the thread-per-connection server. None of them raises:
a broken socket aborts the connection with its error, or says so at its next
call.
"""

from __future__ import annotations

import socket
import sys

from ._driver import Driver

#: How many clients may wait to be accepted, under every binding's ``serve``.
DEFAULT_BACKLOG = 1024


def listening_socket(
    host: str | None, port: int, *, backlog: int = DEFAULT_BACKLOG, reuse_port: bool = False
) -> socket.socket:
    """A TCP socket listening on ``host:port``; ``None`` or ``""`` is every
    interface (IPv6 too, where the system has a dual stack). ``reuse_port``
    (``SO_REUSEPORT``: Linux, the BSDs, macOS) lets other sockets, in other
    processes, listen on the same port, and the kernel shares the clients."""
    if reuse_port and not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port needs SO_REUSEPORT, which this system lacks")
    family, address, dual = passive_address(host, port)
    return socket.create_server(
        address, family=family, backlog=backlog, reuse_port=reuse_port, dualstack_ipv6=dual
    )


def passive_address(host: str | None, port: int) -> tuple[socket.AddressFamily, tuple[str, int], bool]:
    """Where :func:`listening_socket` binds for ``host:port``: the address
    family, the address, and whether the socket is dual-stack (IPv6 taking
    IPv4 too: every interface, where the system can)."""
    if not host:
        dual = socket.has_dualstack_ipv6()
        return (socket.AF_INET6 if dual else socket.AF_INET), ("", port), dual
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    return family, (host, port), False


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
