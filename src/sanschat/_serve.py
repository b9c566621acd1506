"""Run a Handler as a server under a binding chosen by name.

Each binding has its own way to listen and to keep running (a loop to run, a
nursery to start in, a reactor, a thread); :func:`serve` hides that behind one
blocking call, so moving a server to another binding is changing one word.
``python -m sanschat serve`` and the examples' command lines are built on it.

Nothing here imports a binding, ``ssl`` or ``argparse`` until it is used:
``import sanschat`` stays free of event loops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    import ssl

    from ._handler import Handler

__all__ = ["BACKENDS", "serve", "announce", "add_server_arguments", "add_tls_arguments", "server_context"]

#: The names :func:`serve` takes, one per binding module.
BACKENDS = ("select", "asyncio", "trio", "anyio", "socket", "twisted")

Factory = Callable[[], "Handler"]
Ready = Callable[[str, int], None]
Options = dict[str, Any]  # serve's keywords, the same under every binding


def announce(host: str, port: int) -> None:
    """The ``ready`` of the command lines: ``listening on HOST:PORT`` on stdout."""
    print(f"listening on {host}:{port}", flush=True)


def _ignore(host: str, port: int) -> None:
    pass


def _only_interrupts(error: BaseException) -> bool:
    # trio and anyio raise a Ctrl-C that reaches a nursery or task group
    # wrapped in an exception group: unwrapped, every binding raises the same.
    if isinstance(error, KeyboardInterrupt):
        return True
    inner: tuple[BaseException, ...] = getattr(error, "exceptions", ())
    return bool(inner) and all(_only_interrupts(each) for each in inner)


# Each starts the binding's server through the one shape every binding has
# (``serve(factory, host, port, **options)``, ``server.port``, a shutdown in the
# loop's style) and keeps it running until interrupted.


def _serve_select(factory: Factory, host: str, port: int, ready: Ready, options: Options) -> None:
    from .select import serve

    server = serve(factory, host, port, **options)
    try:
        ready(host, server.port)
    except BaseException:
        server.loop.close()
        raise
    server.serve_forever()  # closes its loop, Ctrl-C included


def _serve_asyncio(factory: Factory, host: str, port: int, ready: Ready, options: Options) -> None:
    import asyncio

    from .asyncio import serve

    async def main() -> None:
        server = await serve(factory, host, port, **options)
        try:
            ready(host, server.port)
            # Not serve_forever(): cancelled by Ctrl-C, it would wait for every
            # client to leave. Stopping cuts them, as the other bindings do.
            await asyncio.Event().wait()
        finally:
            await server.shutdown(0)

    asyncio.run(main())


def _serve_trio(factory: Factory, host: str, port: int, ready: Ready, options: Options) -> None:
    from .trio import serve  # noqa: I001 (first: a missing trio is then named as the extra)
    import functools
    import trio

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(functools.partial(serve, factory, host, port, **options))
            ready(host, server.port)

    trio.run(main)


def _serve_anyio(factory: Factory, host: str, port: int, ready: Ready, options: Options) -> None:
    from .anyio import serve  # noqa: I001 (first: a missing anyio is then named as the extra)
    import functools
    import anyio

    async def main() -> None:
        async with anyio.create_task_group() as group:
            server = await group.start(functools.partial(serve, factory, host, port, **options))
            ready(host, server.port)

    import asyncio

    try:
        anyio.run(main)
    except asyncio.CancelledError:  # (Python 3.10: anyio's runner ends a Ctrl-C'ed task so)
        raise KeyboardInterrupt from None


def _serve_socket(factory: Factory, host: str, port: int, ready: Ready, options: Options) -> None:
    import threading

    from .socket import serve

    server = serve(factory, host, port, **options)  # serving in a thread of its own
    try:
        ready(host, server.port)
        threading.Event().wait()  # until Ctrl-C
    finally:
        server.shutdown(timeout=0)  # stop listening, cut what is open


def _serve_twisted(factory: Factory, host: str, port: int, ready: Ready, options: Options) -> None:
    from .twisted import _reactor, serve

    server = serve(factory, host, port, **options)
    try:
        ready(host, server.port)
    except BaseException:
        server.close()
        raise
    _reactor().run()  # the reactor stops itself on SIGINT and SIGTERM


_SERVERS: dict[str, Callable[[Factory, str, int, Ready, Options], None]] = {
    "select": _serve_select,
    "asyncio": _serve_asyncio,
    "trio": _serve_trio,
    "anyio": _serve_anyio,
    "socket": _serve_socket,
    "twisted": _serve_twisted,
}


def serve(
    factory: Callable[[], Handler],
    backend: str = "select",
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    tls: ssl.SSLContext | None = None,
    reuse_port: bool = False,
    backlog: int = 1024,
    workers: int = 1,
    ready: Callable[[str, int], None] | None = None,
) -> None:
    """Serve TCP on ``host:port`` under the binding named ``backend`` (one of
    ``select``, ``asyncio``, ``trio``, ``anyio``, ``socket``, ``twisted``),
    running a Handler from ``factory`` for each client, until interrupted.

    ``factory`` is a Handler class or any callable returning a new Handler;
    close over shared state with a lambda. ``port=0`` picks a free port:
    ``ready(host, port)`` is called once, when clients can connect, with the
    port really bound. ``tls`` (a server context): TLS from the first byte.
    ``reuse_port``: other processes may serve the same port, the kernel
    sharing the clients (``SO_REUSEPORT``; see "Running on many cores").
    ``workers``: serve in that many processes (forked, POSIX only), each with
    its own loop and ``reuse_port``, so a server uses as many cores; Ctrl-C or
    the end of this one stops them all.

    Blocks until Ctrl-C, which raises ``KeyboardInterrupt`` out of it under
    every binding but ``twisted``, whose reactor stops itself on Ctrl-C (and
    on SIGTERM) and ``serve`` then returns. The listening socket is closed
    either way. An unknown ``backend`` raises ``ValueError``; a binding whose
    extra is missing (trio, anyio, Twisted), ``ImportError`` naming it; a
    port that cannot be bound, ``OSError``."""
    try:
        run = _SERVERS[backend]
    except KeyError:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}") from None
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    try:
        options = {"tls": tls, "reuse_port": reuse_port, "backlog": backlog}
        if workers > 1:
            _serve_in_processes(run, factory, host, port, workers, ready, options)
        else:
            run(factory, host, port, _ignore if ready is None else ready, options)
    except BaseException as error:
        if not isinstance(error, KeyboardInterrupt) and _only_interrupts(error):
            raise KeyboardInterrupt from None
        raise


def _serve_in_processes(
    run: Callable[[Factory, str, int, Ready, Options], None],
    factory: Factory,
    host: str,
    port: int,
    workers: int,
    ready: Ready | None,
    options: Options,
) -> None:
    """``workers`` processes serving one port through ``SO_REUSEPORT``: this
    one and ``workers - 1`` forks. Port 0 is chosen once, before forking.
    Each process stops on Ctrl-C as a single one does (its loop's own way);
    SIGTERM is taken as Ctrl-C, and this one passes its stop on to the others."""
    import os
    import signal
    import socket

    from ._sockets import passive_address

    if not hasattr(os, "fork"):
        raise ValueError("workers > 1 needs os.fork (POSIX)")
    options = {**options, "reuse_port": True}
    # Hold the port (bound with SO_REUSEPORT where every worker will listen,
    # but not listening: it takes no client) until this process listens too:
    # port 0 is then one port for all.
    family, address, dual = passive_address(host, port)
    reserved = socket.socket(family, socket.SOCK_STREAM)
    children: list[int] = []
    try:
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if dual:
            reserved.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        reserved.bind(address)
        port = reserved.getsockname()[1]
        parent = os.getpid()
        for _ in range(workers - 1):
            child = os.fork()
            if child == 0:  # a worker: serve until stopped, never return into the caller
                status = 0
                try:
                    reserved.close()
                    _take_sigterm_as_ctrl_c()
                    _stop_when_orphaned(parent)
                    run(factory, host, port, _ignore, options)
                except BaseException as error:
                    status = 0 if _only_interrupts(error) else 1
                os._exit(status)
            children.append(child)

        def announce_and_release(bound_host: str, bound_port: int) -> None:
            reserved.close()
            if ready is not None:
                ready(bound_host, bound_port)

        _take_sigterm_as_ctrl_c()
        run(factory, host, port, announce_and_release, options)
    finally:
        reserved.close()
        for child in children:
            try:
                os.kill(child, signal.SIGINT)
            except ProcessLookupError:
                pass
        for child in children:
            os.waitpid(child, 0)


def _stop_when_orphaned(parent: int) -> None:
    """A worker whose parent died without stopping it (killed) stops itself."""
    import os
    import signal
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, daemon=True).start()


def _take_sigterm_as_ctrl_c() -> None:
    """SIGTERM becomes a SIGINT to this process, which each loop stops on its
    own way; SIGINT itself is Python's Ctrl-C even where the parent ignored it."""
    import os
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: os.kill(os.getpid(), signal.SIGINT))


# ------------------------------------------- for the command lines built on it


def add_server_arguments(parser: argparse.ArgumentParser, default_port: int, *, tls: bool = True) -> None:
    """``--backend`` (also ``--loop``), ``--host``, ``--port`` and, with
    ``tls``, ``--tls-cert``/``--tls-key``: what :func:`serve` takes."""
    parser.add_argument(
        "--backend",
        "--loop",
        choices=BACKENDS,
        default="select",
        metavar="NAME",
        help=f"the binding: {', '.join(BACKENDS)} (default: select)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=_port, default=default_port, help=f"0 picks a free port (default: {default_port})"
    )
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        help="let other processes serve the same port (SO_REUSEPORT: Linux, BSD, macOS)",
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="serve in N processes sharing the port, one per core (POSIX; default: 1)",
    )
    if tls:
        add_tls_arguments(parser)


def _workers(text: str) -> int:
    import argparse

    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"workers is a whole number from 1, not {text!r}")
    return int(text)


def _port(text: str) -> int:
    import argparse

    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, not {text!r}")
    return port


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tls-cert`` and ``--tls-key``: a PEM certificate chain and its key."""
    parser.add_argument("--tls-cert", metavar="FILE", help="PEM certificate (chain): serve TLS")
    parser.add_argument("--tls-key", metavar="FILE", help="PEM private key (default: in --tls-cert)")


def server_context(options: argparse.Namespace) -> ssl.SSLContext | None:
    """A server TLS context from ``--tls-cert``/``--tls-key``, or None without them."""
    if not options.tls_cert:
        return None
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(options.tls_cert, options.tls_key)
    return context
