"""One connection on a :class:`~sanschat.Driver` under a structured-concurrency
library (trio, anyio), and a server's graceful shutdown, written once.

Each binding hands in its library's primitives (:class:`Primitives`) and its
stream's operations (:class:`Transport`); nothing here imports an event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ._driver import ACCEPT_BACKOFF, CloseAction, Driver
from ._handler import ConnectionInfo, Handler
from ._shape import ServerShape

__all__ = ["Primitives", "Transport", "run_connection", "Server"]

log = logging.getLogger("sanschat")


@dataclass(frozen=True)
class Primitives:
    """What the engine needs of a library: ``Event``, a task group factory
    (``trio.open_nursery``, ``anyio.create_task_group``), ``move_on_after``,
    ``CancelScope``, ``sleep`` and the exceptions that mean a stream (or a
    listener) is gone."""

    Event: Callable[[], Any]
    task_group: Callable[[], Any]
    move_on_after: Callable[[float], Any]
    CancelScope: Callable[..., Any]
    sleep: Callable[[float], Awaitable[None]]
    broken: tuple[type[BaseException], ...]


@dataclass(frozen=True)
class Transport:
    """A byte stream's operations: ``receive()`` gives ``b""`` at its end;
    ``send_eof`` is None where the stream cannot half-close (TLS); ``aclose``
    closes gracefully (TLS: with its close_notify), ``close`` at once."""

    receive: Callable[[], Awaitable[bytes | bytearray]]
    send: Callable[[memoryview], Awaitable[None]]
    send_eof: Callable[[], Awaitable[None]] | None
    aclose: Callable[[], Awaitable[None]]
    close: Callable[[], Awaitable[None]]  # at once, never raising


async def run_connection(
    lib: Primitives, transport: Transport, driver: Driver, linger: float, task_status: Any = None
) -> None:
    """Move bytes between ``transport`` and ``driver`` until the connection is
    over: a read task and a write task, so output pushed at any time goes out at
    once. A clean close sends our end of stream, then drops what the peer sends
    until its own end or ``linger`` seconds; a stream that cannot half-close
    (TLS) is closed gracefully instead. ``task_status.started(driver)`` once
    the Handler's ``connection_made`` has run."""
    changed = lib.Event()

    def notify() -> None:
        nonlocal changed
        changed.set()
        changed = lib.Event()

    driver.on_wake = notify

    async def read_loop() -> None:
        while not driver.input_ended:
            if not driver.wants_read:
                await changed.wait()
                continue
            try:
                data = await transport.receive()
            except lib.broken as error:
                driver.transport_failed(error)
                return notify()
            if data:
                driver.data_received(data)
            else:
                driver.eof_received()
            notify()

    async def watch_deadline() -> None:
        """End a TLS handshake that takes too long (``Driver.deadline``)."""
        while True:
            deadline = driver.deadline
            if deadline is None:
                await changed.wait()
                continue
            await lib.sleep(max(0.0, deadline - time.monotonic()))
            driver.check_deadline()
            notify()

    async def write_loop() -> CloseAction:
        while (action := driver.close_action) is CloseAction.NONE:
            view = driver.peek_output()
            if not view:
                await changed.wait()
                continue
            try:
                await transport.send(view)
            except lib.broken as error:
                driver.transport_failed(error)
                return CloseAction.ABORT
            driver.consume_output(len(view))
            notify()
        return action

    try:
        driver.start()
        if task_status is not None:
            task_status.started(driver)
        async with lib.task_group() as group:
            group.start_soon(read_loop)
            group.start_soon(watch_deadline)
            action = await write_loop()
            group.cancel_scope.cancel()
        if action is CloseAction.CLOSE:
            with lib.move_on_after(linger):
                try:
                    if transport.send_eof is not None and not driver.input_ended:
                        await transport.send_eof()
                        while data := await transport.receive():
                            driver.data_received(data)  # dropped and counted, as under every binding
                    await transport.aclose()  # (a TLS stream, which cannot half-close, says its end here)
                except lib.broken:
                    pass
    finally:
        with lib.CancelScope(shield=True):
            await transport.close()
            driver.connection_lost()


class Server(ServerShape):
    """What a binding's ``serve`` starts, with the names every binding's server
    has: :attr:`port`, :attr:`addresses`, :attr:`connections`, :meth:`close`
    and ``await`` :meth:`shutdown`. ``wrap(stream)`` gives a stream's Transport
    and ConnectionInfo; ``address_of(listener)`` a listener's address."""

    #: Seconds a cleanly closing connection waits for the peer's end of stream.
    linger = 2.0

    def __init__(
        self,
        lib: Primitives,
        listeners: list[Any],
        cancel_scope: Any,
        wrap: Callable[[Any], tuple[Transport, ConnectionInfo]],
        address_of: Callable[[Any], Any],
        driver_options: dict[str, Any] | None = None,
    ) -> None:
        self.listeners = listeners
        #: Keywords for each connection's Driver (``tls``, ``handshake_timeout``).
        self.driver_options = driver_options or {}
        self._addresses = [address_of(listener) for listener in listeners]
        self._connections: set[Driver] = set()
        self._listening = True
        self._accepting: list[Any] = []  # each listener's cancel scope
        self._closing = False
        self._closed = lib.Event()
        self._lib, self._cancel_scope, self._wrap = lib, cancel_scope, wrap

    def _open_drivers(self) -> Iterable[Driver]:
        return self._connections

    def close(self) -> None:
        """Stop accepting clients and close the listeners; the connections go on."""
        self._listening = False
        for scope in self._accepting:
            scope.cancel()

    async def shutdown(self, timeout: float = 10.0) -> None:
        """Stop accepting, let every connection finish what it has queued
        (``close_when_done``), wait up to ``timeout`` seconds, then cancel the
        rest; ``serve`` returns."""
        self.close()
        self._closing = True
        if not self._connections:
            self._closed.set()
        for driver in list(self._connections):
            driver.framer.close_when_done()
            if driver.on_wake is not None:
                driver.on_wake()
        with self._lib.move_on_after(timeout):
            await self._closed.wait()
        self._cancel_scope.cancel()

    async def serve(self, factory: Callable[[], Handler], task_status: Any) -> None:
        """Accept on every listener, a Handler from ``factory`` per client, until
        shut down or cancelled; ``task_status.started(self)`` once listening."""
        try:
            async with self._lib.task_group() as group:
                for listener in self.listeners:
                    group.start_soon(self._accept, listener, group, factory)
                task_status.started(self)
        finally:
            for listener in self.listeners:
                with self._lib.CancelScope(shield=True):
                    await listener.aclose()

    async def _accept(self, listener: Any, group: Any, factory: Callable[[], Handler]) -> None:
        scope = self._lib.CancelScope()
        self._accepting.append(scope)
        if not self._listening:
            scope.cancel()
        try:
            with scope:
                await self._accept_until_closed(listener, group, factory)
        finally:
            with self._lib.CancelScope(shield=True):
                await listener.aclose()

    async def _accept_until_closed(self, listener: Any, group: Any, factory: Callable[[], Handler]) -> None:
        while True:
            try:
                stream = await listener.accept()
            except self._lib.broken:  # closed
                return
            except OSError as error:  # out of descriptors, and the like
                log.warning("accept failed: %s; retrying in %.1f s", error, ACCEPT_BACKOFF)
                await self._lib.sleep(ACCEPT_BACKOFF)
                continue
            transport, info = self._wrap(stream)
            try:
                handler = factory()
            except Exception:
                log.exception("handler factory failed; dropping the client")
                await transport.close()
                continue
            group.start_soon(self._run, transport, Driver(handler, info, **self.driver_options))

    async def _run(self, transport: Transport, driver: Driver) -> None:
        """Run one connection, counted among the open ones."""
        self._connections.add(driver)
        try:
            await run_connection(self._lib, transport, driver, self.linger)
        except Exception:  # a fault in one connection's machinery ends it, not the server
            log.exception("the connection to %s failed", driver.info.peer)
        finally:
            self._connections.discard(driver)
            if self._closing and not self._connections:
                self._closed.set()
