"""Run sanschat Handlers on the standard library's ``selectors``.

A :class:`Loop` owns listening and connected non-blocking sockets. It reads into
each connection's Framer, hands the events to the connection's
:class:`~sanschat.Handler`, writes queued output with partial-send accounting,
and closes a connection once ``close_when_done`` output is out. It never frames
anything itself. An exception from one connection's handler is logged and
closes that connection only. Nothing here is thread-safe except
:meth:`Loop.call_soon_threadsafe` and :meth:`Loop.stop`.

    loop = Loop()
    listener = loop.listen(EchoHandler, "127.0.0.1", 0)
    loop.run()                      # until loop.stop(), or nothing is left
"""

from __future__ import annotations

import heapq
import itertools
import logging
import selectors
import socket
from collections import deque
from collections.abc import Callable
from time import monotonic
from typing import Any

from ._framer import Framer
from ._handler import Handler, deliver_events

__all__ = ["Loop", "Connection", "Listener", "Timer"]

log = logging.getLogger("sanschat.select")

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE


class Timer:
    """A callback scheduled by :meth:`Loop.call_later`; :meth:`cancel` it at will."""

    __slots__ = ("when", "callback", "args", "cancelled")

    def __init__(self, when: float, callback: Callable[..., object], args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run the callback."""
        self.cancelled = True


class Connection:
    """One connected socket, its Framer and its Handler."""

    def __init__(self, loop: Loop, sock: socket.socket, handler: Handler) -> None:
        self.loop = loop
        self.sock = sock
        self.handler = handler
        self.framer: Framer = handler.new_framer()
        try:
            self.peer: Any = sock.getpeername()
        except OSError:
            self.peer = None
        self.closed = False
        self._mask = 0
        self._ended = False  # the peer's end of stream was delivered
        sock.setblocking(False)
        self.framer.on_output_ready = self._update_interest
        loop.connections.add(self)
        self._guard(handler.connection_made, self.framer)
        self._update_interest()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<Connection {self.peer} {state} {type(self.handler).__name__}>"

    # -------------------------------------------------------------- events

    def _on_ready(self, mask: int) -> None:
        if mask & _READ and not self.closed:
            self._read()
        if mask & _WRITE and not self.closed:
            self._write()
        self._update_interest()

    def _read(self) -> None:
        try:
            data = self.sock.recv(self.loop.recv_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:  # reset by the peer, and the like
            self._close(error)
            return
        try:
            self.framer.receive_data(data)  # b"" is the end of the stream
            if deliver_events(self.framer, self.handler):
                self._ended = True
        except Exception as error:
            self._fail(error)

    def _write(self) -> None:
        framer = self.framer
        try:
            while True:
                chunk = framer.peek_output()
                if not chunk:
                    break
                try:
                    sent = self.sock.send(chunk)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as error:
                    self._close(error)
                    return
                framer.consume_output(sent)
                if sent < len(chunk):
                    break  # the socket is full: wait until it is writable
        except Exception as error:  # a producer failed
            self._fail(error)
            return
        if framer.should_close:
            self._close(None)

    def _update_interest(self) -> None:
        """Ask the selector for what this connection can use now."""
        if self.closed:
            return
        framer = self.framer
        mask = 0
        if not self._ended and not framer.writing_paused:
            mask |= _READ  # a peer that does not read our output is not read either
        if framer.has_output or framer.should_close:
            mask |= _WRITE
        if mask == self._mask:
            return
        selector = self.loop.selector
        if not self._mask:
            selector.register(self.sock, mask, self._on_ready)
        elif not mask:
            selector.unregister(self.sock)
        else:
            selector.modify(self.sock, mask, self._on_ready)
        self._mask = mask

    # ------------------------------------------------------------- closing

    def close(self) -> None:
        """Close now, dropping unsent output (see ``close_when_done`` for a flush)."""
        self._close(None)

    def _fail(self, error: Exception) -> None:
        log.error("closing %r after an error in its handler", self, exc_info=error)
        self._close(error)

    def _close(self, error: BaseException | None) -> None:
        if self.closed:
            return
        self.closed = True
        if self._mask:
            self.loop.selector.unregister(self.sock)
            self._mask = 0
        self.framer.on_output_ready = None
        if error is None:
            _linger_close(self.sock)
        else:
            self.sock.close()
        self.loop.connections.discard(self)
        self._guard(self.handler.connection_lost, error)

    def _guard(self, callback: Callable[..., object], *args: object) -> None:
        try:
            callback(*args)
        except Exception as error:
            self._fail(error)


def _linger_close(sock: socket.socket) -> None:
    """Close so that the peer gets all we sent: send FIN first, and read what
    it still has in flight, so the kernel does not answer with a reset."""
    try:
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass
    except OSError:
        pass
    sock.close()


class Listener:
    """A listening socket that makes a Connection, with a new Handler, per client."""

    def __init__(self, loop: Loop, sock: socket.socket, factory: Callable[[], Handler]) -> None:
        self.loop = loop
        self.sock = sock
        self.factory = factory
        self.address: Any = sock.getsockname()
        sock.setblocking(False)
        loop.selector.register(sock, _READ, self._on_ready)
        loop.listeners.add(self)

    def _on_ready(self, mask: int) -> None:
        for _ in range(256):  # accept a burst, then let the others run
            try:
                client, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # out of descriptors, and the like
                log.warning("accept failed on %r: %s", self.address, error)
                return
            if client.family in (socket.AF_INET, socket.AF_INET6):
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                handler = self.factory()
            except Exception:
                log.exception("handler factory failed; dropping the client")
                client.close()
                continue
            Connection(self.loop, client, handler)

    def close(self) -> None:
        """Stop accepting clients (connections already made go on)."""
        if self in self.loop.listeners:
            self.loop.listeners.discard(self)
            self.loop.selector.unregister(self.sock)
            self.sock.close()


class Loop:
    """A small selectors-based event loop for sanschat Handlers."""

    def __init__(self, *, recv_size: int = 65536) -> None:
        self.selector: selectors.BaseSelector = selectors.DefaultSelector()
        self.recv_size = recv_size
        self.connections: set[Connection] = set()
        self.listeners: set[Listener] = set()
        self._timers: list[tuple[float, int, Timer]] = []
        self._sequence = itertools.count()
        self._ready: deque[tuple[Callable[..., object], tuple[Any, ...]]] = deque()
        self._stopping = False
        self._wake_recv, self._wake_send = socket.socketpair()
        self._wake_recv.setblocking(False)
        self._wake_send.setblocking(False)
        self.selector.register(self._wake_recv, _READ, self._drain_wakeups)

    # ------------------------------------------------------------ sockets

    def listen(
        self,
        factory: Callable[[], Handler],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        backlog: int = 1024,
    ) -> Listener:
        """Accept TCP clients on ``host:port`` (0: a free port, see ``.address``);
        each gets a Handler from ``factory``."""
        sock = socket.create_server((host, port), backlog=backlog, reuse_port=False)
        return Listener(self, sock, factory)

    def connect(self, handler: Handler, host: str, port: int, *, timeout: float = 10.0) -> Connection:
        """Connect to ``host:port`` (blocking for at most ``timeout``) and run ``handler``."""
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Connection(self, sock, handler)

    def add_socket(self, sock: socket.socket, handler: Handler) -> Connection:
        """Run ``handler`` on an already connected stream socket (a socketpair, say)."""
        return Connection(self, sock, handler)

    # ---------------------------------------------------------- callbacks

    def call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        """Run ``callback(*args)`` on the next turn of the loop."""
        self._ready.append((callback, args))

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: Any) -> None:
        """Like :meth:`call_soon`, from any thread: wakes the loop up."""
        self._ready.append((callback, args))
        self._wake()

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Timer:
        """Run ``callback(*args)`` after ``delay`` seconds."""
        timer = Timer(monotonic() + delay, callback, args)
        heapq.heappush(self._timers, (timer.when, next(self._sequence), timer))
        return timer

    def stop(self) -> None:
        """Make :meth:`run` return after the current turn; safe from any thread."""
        self._stopping = True
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_send.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already awake, or closing

    def _drain_wakeups(self, mask: int) -> None:
        try:
            while self._wake_recv.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    # ---------------------------------------------------------------- run

    def run(self, timeout: float | None = None) -> None:
        """Serve until :meth:`stop`, until ``timeout`` seconds have passed, or until
        there is nothing left to do (no listener, connection, timer or callback)."""
        deadline = None if timeout is None else monotonic() + timeout
        self._stopping = False
        while not self._stopping:
            self._run_ready()
            if not (self.connections or self.listeners or self._timers or self._ready):
                return
            now = monotonic()
            if deadline is not None and now >= deadline:
                return
            wait = self._next_wait(now, deadline)
            for key, mask in self.selector.select(wait):
                key.data(mask)
            self._run_timers()

    def _next_wait(self, now: float, deadline: float | None) -> float | None:
        if self._ready:
            return 0
        candidates = [t[0] for t in self._timers[:1]]
        if deadline is not None:
            candidates.append(deadline)
        return max(0.0, min(candidates) - now) if candidates else None

    def _run_ready(self) -> None:
        for _ in range(len(self._ready)):
            callback, args = self._ready.popleft()
            self._call(callback, args)

    def _run_timers(self) -> None:
        now = monotonic()
        while self._timers and self._timers[0][0] <= now:
            timer = heapq.heappop(self._timers)[2]
            if not timer.cancelled:
                self._call(timer.callback, timer.args)

    @staticmethod
    def _call(callback: Callable[..., object], args: tuple[Any, ...]) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("callback %r failed", callback)

    def close(self) -> None:
        """Close every connection and listener, then the loop itself."""
        for listener in list(self.listeners):
            listener.close()
        for connection in list(self.connections):
            connection.close()
        self.selector.unregister(self._wake_recv)
        self._wake_recv.close()
        self._wake_send.close()
        self.selector.close()

    def __enter__(self) -> Loop:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
