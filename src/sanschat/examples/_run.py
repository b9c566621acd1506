"""Serve one sans-IO Handler under any binding: select, asyncio, trio, anyio,
socket (a thread per connection) or twisted.

The protocols next to this file are written once, as ``sanschat.Handler``
classes; this module is the only place that knows about loops. A server prints
``listening on HOST:PORT`` once it accepts clients.
"""

from __future__ import annotations

import argparse
import ssl
from collections.abc import Callable

from .._handler import Handler

BACKENDS = ("select", "asyncio", "trio", "anyio", "socket", "twisted")

Factory = Callable[[], Handler]
Announce = Callable[[str, int], None]
TLS = ssl.SSLContext | None


def announce(host: str, port: int) -> None:
    print(f"listening on {host}:{port}", flush=True)


def _serve_select(factory: Factory, host: str, port: int, ready: Announce, tls: TLS) -> None:
    from ..select import Loop

    with Loop() as loop:
        listener = loop.listen(factory, host, port, tls=tls)
        ready(host, listener.address[1])
        loop.run()


def _serve_asyncio(factory: Factory, host: str, port: int, ready: Announce, tls: TLS) -> None:
    import asyncio

    from ..asyncio import serve

    async def main() -> None:
        server = await serve(factory, host, port, tls=tls)
        ready(host, server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def _serve_trio(factory: Factory, host: str, port: int, ready: Announce, tls: TLS) -> None:
    import functools

    import trio

    from ..trio import serve

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(functools.partial(serve, factory, host, port, tls=tls))
            ready(host, server.port)

    trio.run(main)


def _serve_anyio(factory: Factory, host: str, port: int, ready: Announce, tls: TLS) -> None:
    import functools

    import anyio

    from ..anyio import serve

    async def main() -> None:
        async with anyio.create_task_group() as group:
            server = await group.start(functools.partial(serve, factory, host, port, tls=tls))
            ready(host, server.port)

    anyio.run(main)


def _serve_socket(factory: Factory, host: str, port: int, ready: Announce, tls: TLS) -> None:
    import threading

    from ..socket import serve

    server = serve(factory, host, port, tls=tls)  # serving in a thread of its own
    ready(host, server.port)
    threading.Event().wait()  # until Ctrl-C


def _serve_twisted(factory: Factory, host: str, port: int, ready: Announce, tls: TLS) -> None:
    from ..twisted import _reactor, serve

    listening = serve(factory, port, host, tls=tls)
    ready(host, listening.getHost().port)
    _reactor().run()


_SERVERS = {
    "select": _serve_select,
    "asyncio": _serve_asyncio,
    "trio": _serve_trio,
    "anyio": _serve_anyio,
    "socket": _serve_socket,
    "twisted": _serve_twisted,
}


def serve(
    factory: Factory,
    backend: str = "select",
    host: str = "127.0.0.1",
    port: int = 0,
    ready: Announce = announce,
    *,
    tls: TLS = None,
) -> None:
    """Serve ``factory``'s handlers on ``host:port`` with ``backend`` until
    interrupted; ``ready(host, port)`` is called once clients can connect.
    ``tls``: a server context, for TLS from the first byte. A missing trio
    raises ImportError naming the extra."""
    if backend not in _SERVERS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    _SERVERS[backend](factory, host, port, ready, tls)


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tls-cert`` and ``--tls-key``: a PEM certificate chain and its key."""
    parser.add_argument("--tls-cert", help="PEM certificate (chain) for TLS")
    parser.add_argument("--tls-key", help="PEM private key (default: in --tls-cert)")


def server_context(options: argparse.Namespace) -> TLS:
    """A server TLS context from ``--tls-cert``/``--tls-key``, or None without them."""
    if not options.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(options.tls_cert, options.tls_key)
    return context


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
    byte); ``extra`` adds the example's own options. Then serve."""
    parents = [extra] if extra is not None else []
    parser = argparse.ArgumentParser(description=description, parents=parents)
    parser.add_argument("--backend", "--loop", choices=BACKENDS, default="select")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port, help="0 picks a free port")
    if first_byte_tls:
        add_tls_arguments(parser)
    args = parser.parse_args()
    tls = server_context(args) if first_byte_tls else None
    try:
        serve(factory, args.backend, args.host, args.port, tls=tls)
    except KeyboardInterrupt:
        pass
