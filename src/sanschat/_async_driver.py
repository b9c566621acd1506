"""One connection on a :class:`~sanschat.Driver` under a structured-concurrency
library (trio, anyio), and a server's graceful shutdown, written once.

Each binding hands in its library's primitives (:class:`Primitives`) and its
stream's operations (:class:`Transport`); nothing here imports an event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ._driver import CloseAction, Driver

__all__ = ["Primitives", "Transport", "run_connection", "Connections"]


@dataclass(frozen=True)
class Primitives:
    """What the engine needs of a library: ``Event``, a task group factory
    (``trio.open_nursery``, ``anyio.create_task_group``), ``move_on_after``,
    ``CancelScope`` and the exceptions that mean the stream is gone."""

    Event: Callable[[], Any]
    task_group: Callable[[], Any]
    move_on_after: Callable[[float], Any]
    CancelScope: Callable[..., Any]
    broken: tuple[type[BaseException], ...]


@dataclass(frozen=True)
class Transport:
    """A byte stream's operations: ``receive()`` gives ``b""`` at its end;
    ``send_eof`` is None where the stream cannot half-close."""

    receive: Callable[[], Awaitable[bytes | bytearray]]
    send: Callable[[memoryview], Awaitable[None]]
    send_eof: Callable[[], Awaitable[None]] | None
    close: Callable[[], Awaitable[None]]  # at once, never raising


async def run_connection(lib: Primitives, transport: Transport, driver: Driver, linger: float) -> None:
    """Move bytes between ``transport`` and ``driver`` until the connection is
    over: a read task and a write task, so output pushed at any time goes out at
    once. A clean close sends our end of stream, then drops what the peer sends
    until its own end or ``linger`` seconds."""
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
        async with lib.task_group() as group:
            group.start_soon(read_loop)
            action = await write_loop()
            group.cancel_scope.cancel()
        if action is CloseAction.CLOSE and not driver.input_ended and transport.send_eof is not None:
            with lib.move_on_after(linger):
                try:
                    await transport.send_eof()
                    while await transport.receive():
                        pass
                except lib.broken:
                    pass
    finally:
        with lib.CancelScope(shield=True):
            await transport.close()
            driver.connection_lost()


class Connections:
    """A server's open connections, and its graceful shutdown."""

    def __init__(self, lib: Primitives) -> None:
        self.lib = lib
        #: The drivers of the open connections.
        self.drivers: set[Driver] = set()
        self.closing = False
        self._closed = lib.Event()

    async def run(self, transport: Transport, driver: Driver, linger: float = 2.0) -> None:
        """Run one connection, counted among the open ones."""
        self.drivers.add(driver)
        try:
            await run_connection(self.lib, transport, driver, linger)
        finally:
            self.drivers.discard(driver)
            if self.closing and not self.drivers:
                self._closed.set()

    async def shutdown(self, timeout: float, cancel_scope: Any) -> None:
        """Ask every open connection to close once its answers are out
        (``close_when_done``), wait up to ``timeout`` seconds, then cancel
        ``cancel_scope`` (the server's). Close the listeners first."""
        self.closing = True
        if not self.drivers:
            self._closed.set()
        for driver in list(self.drivers):
            driver.framer.close_when_done()
            if driver.on_wake is not None:
                driver.on_wake()
        with self.lib.move_on_after(timeout):
            await self._closed.wait()
        cancel_scope.cancel()
