"""The names every binding's server has, written once.

Each binding's server keeps the addresses it listens on (``_addresses``, as
``getsockname()`` gives them) and says which connections are open
(``_open_drivers``); this base turns those into ``port``, ``addresses`` and
``connections``. ``close()`` and ``shutdown(timeout)`` are each binding's own,
in its loop's calling style.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._driver import Driver

__all__ = ["ServerShape"]


class ServerShape:
    """What every binding's server is: ``isinstance(server, ServerShape)`` holds
    for the servers of all six, so code that watches a server (its port, its
    open connections) need not know the binding. Each also has ``close()``
    (stop accepting) and ``shutdown(timeout)``, in its loop's calling style
    (see "One shape for every binding" in the bindings guide)."""

    _addresses: list[Any]

    @property
    def port(self) -> int:
        """The port it listens on (the one chosen for port 0; the first
        address's, where it listens on several)."""
        return int(self._addresses[0][1])

    @property
    def addresses(self) -> list[Any]:
        """The addresses it listens on, as ``socket.getsockname()`` gives them."""
        return list(self._addresses)

    @property
    def connections(self) -> frozenset[Driver]:
        """The open connections, each as its :class:`~sanschat.Driver`
        (``.handler``, ``.info``, ``.framer``)."""
        return frozenset(self._open_drivers())

    def _open_drivers(self) -> Iterable[Driver]:
        raise NotImplementedError
