"""Run one sans-IO Handler under the select, asyncio or trio binding.

The examples next to this file define their protocol once, as a
``sanschat.Handler``; this module is the only place that knows about loops.
A server prints ``listening on 127.0.0.1:PORT`` once it accepts clients.
"""

from __future__ import annotations

import argparse
from typing import Callable

from sanschat import Handler

LOOPS = ("select", "asyncio", "trio")


def announce(port: int) -> None:
    print(f"listening on 127.0.0.1:{port}", flush=True)


def serve_select(factory: Callable[[], Handler], port: int) -> None:
    from sanschat.select import Loop

    with Loop() as loop:
        listener = loop.listen(factory, "127.0.0.1", port)
        announce(listener.address[1])
        loop.run()


def serve_asyncio(factory: Callable[[], Handler], port: int) -> None:
    import asyncio

    import sanschat.asyncio

    async def main() -> None:
        server = await sanschat.asyncio.serve(factory, "127.0.0.1", port)
        announce(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def serve_trio(factory: Callable[[], Handler], port: int) -> None:
    import trio

    import sanschat.trio

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(sanschat.trio.serve, factory, port)
            announce(listeners[0].socket.getsockname()[1])

    trio.run(main)


def main(factory: Callable[[], Handler], description: str) -> None:
    """Parse ``--loop`` and ``--port`` and serve ``factory``'s handlers until interrupted."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--loop", choices=LOOPS, default="select")
    parser.add_argument("--port", type=int, default=8025, help="0 picks a free port")
    args = parser.parse_args()
    serve = {"select": serve_select, "asyncio": serve_asyncio, "trio": serve_trio}[args.loop]
    try:
        serve(factory, args.port)
    except KeyboardInterrupt:
        pass
