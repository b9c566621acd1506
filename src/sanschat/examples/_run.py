"""The examples' command line: serve one sans-IO Handler under any binding
(select, asyncio, trio, anyio, socket with a thread per connection, or twisted).

The protocols next to this file are written once, as ``sanschat.Handler``
classes; the serving is :func:`sanschat.serve`'s. A server prints
``listening on HOST:PORT`` once it accepts clients.
"""

from __future__ import annotations

import argparse
import ssl
from collections.abc import Callable

from .._handler import Handler
from .._serve import BACKENDS, add_server_arguments, add_tls_arguments, announce, server_context
from .._serve import serve as _serve

__all__ = ["BACKENDS", "add_tls_arguments", "announce", "main", "serve", "server_context"]

Factory = Callable[[], Handler]
Announce = Callable[[str, int], None]
TLS = ssl.SSLContext | None


def serve(
    factory: Factory,
    backend: str = "select",
    host: str = "127.0.0.1",
    port: int = 0,
    ready: Announce = announce,
    *,
    tls: TLS = None,
) -> None:
    """:func:`sanschat.serve`, announcing ``listening on HOST:PORT`` unless
    told otherwise (``ready`` may also be given by position here)."""
    _serve(factory, backend, host, port, tls=tls, ready=ready)


def main(
    factory: Factory,
    description: str,
    default_port: int,
    *,
    extra: argparse.ArgumentParser | None = None,
    first_byte_tls: bool = True,
) -> None:
    """Parse ``--backend`` (or ``--loop``), ``--host``, ``--port`` and, when
    ``first_byte_tls``, ``--tls-cert``/``--tls-key`` (TLS from the first
    byte); ``extra`` adds the example's own options. Then serve until Ctrl-C."""
    parents = [extra] if extra is not None else []
    parser = argparse.ArgumentParser(description=description, parents=parents)
    add_server_arguments(parser, default_port, tls=first_byte_tls)
    args = parser.parse_args()
    tls = server_context(args) if first_byte_tls else None
    try:
        serve(factory, args.backend, args.host, args.port, tls=tls)
    except KeyboardInterrupt:
        pass
