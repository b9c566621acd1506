"""End-to-end loopback benchmark: line-echo servers under real clients.

Each server runs in its own process; the clients run in this one, on a plain
``selectors`` loop that only counts echoed bytes (so the servers, not the
clients, are measured). Servers:

- asyncio: sanschat's binding running a Handler, and the idiomatic
  ``StreamReader.readline`` + ``write`` + ``drain`` server, on the same loop;
- trio: sanschat's binding running the same Handler, and a hand-written
  ``receive_some`` + ``find`` loop that answers a read's lines in one send.

Run alone: ``python benchmarks/e2e.py`` (``run.py`` includes it).
"""

from __future__ import annotations

import os
import random
import selectors
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
if "SANSCHAT_BENCH_INSTALLED" not in os.environ:
    sys.path.insert(0, os.path.join(HERE, "..", "src"))

SERVERS = ["sanschat asyncio", "asyncio StreamReader.readline", "sanschat trio", "trio receive_some+find"]


# ------------------------------------------------------------------ servers


def _echo_handler() -> type:
    from sanschat import Handler

    class Echo(Handler):
        terminator = b"\n"

        def frame_received(self, data: bytes) -> None:
            self.framer.push(data + b"\n")

    return Echo


def serve(kind: str) -> None:
    """Serve line echo on a free port of 127.0.0.1 and print the port."""

    def ready(port: int) -> None:
        print(port, flush=True)

    if kind == "sanschat asyncio":
        import asyncio

        import sanschat.asyncio

        async def main() -> None:
            server = await sanschat.asyncio.serve(_echo_handler(), "127.0.0.1", 0)
            ready(server.sockets[0].getsockname()[1])
            await server.serve_forever()

        asyncio.run(main())
    elif kind == "asyncio StreamReader.readline":
        import asyncio

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()
            writer.close()

        async def main() -> None:
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            ready(server.sockets[0].getsockname()[1])
            await server.serve_forever()

        asyncio.run(main())
    elif kind == "sanschat trio":
        import trio

        import sanschat.trio

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                server = await nursery.start(sanschat.trio.serve, _echo_handler())
                ready(server.port)

        trio.run(main)
    elif kind == "trio receive_some+find":
        import trio

        async def handle(stream: trio.SocketStream) -> None:
            buf = bytearray()
            while data := await stream.receive_some(65536):
                buf += data
                start = 0
                replies = []
                while (end := buf.find(b"\n", start)) >= 0:
                    replies.append(bytes(buf[start:end]) + b"\n")  # the app sees each line
                    start = end + 1
                del buf[:start]
                if replies:
                    await stream.send_all(b"".join(replies))

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                listeners = await nursery.start(trio.serve_tcp, handle, 0)
                ready(listeners[0].socket.getsockname()[1])

        trio.run(main)
    else:
        raise SystemExit(f"unknown server {kind!r}")


# ------------------------------------------------------------------ clients


def make_payload(lines: int, rng: random.Random) -> bytes:
    letters = b"abcdefghijklmnopqrstuvwxyz0123456789 "
    return b"".join(bytes(rng.choices(letters, k=rng.randint(8, 120))) + b"\n" for _ in range(lines))


def drive(port: int, clients: int, payload: bytes) -> float:
    """Connect ``clients`` sockets, pipeline ``payload`` on each, wait for every
    echo; return the seconds it took. Checks the echoed bytes' count and sum."""
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(clients):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        socks.append(sock)
    state = {sock: [memoryview(payload), 0] for sock in socks}
    start = time.perf_counter()
    for sock in socks:
        sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    left = clients
    while left:
        for key, mask in sel.select(timeout=30):
            sock = key.fileobj
            st = state[sock]  # type: ignore[index]
            if mask & selectors.EVENT_WRITE and st[0]:
                sent = sock.send(st[0][:262144])  # type: ignore[union-attr]
                st[0] = st[0][sent:]
                if not st[0]:
                    sel.modify(sock, selectors.EVENT_READ)
            if mask & selectors.EVENT_READ:
                data = sock.recv(262144)  # type: ignore[union-attr]
                if not data:
                    raise RuntimeError("server closed early")
                st[1] += len(data)
                if st[1] == len(payload):
                    sel.unregister(sock)
                    left -= 1
    elapsed = time.perf_counter() - start
    for sock in socks:
        sock.close()
    sel.close()
    return elapsed


def run(
    clients: int = 50, lines: int = 4000, repeats: int = 3, log: Callable[[str], None] = print
) -> dict[str, float]:
    """Median lines/s of each server; a server that cannot start is left out."""
    payload = make_payload(lines, random.Random(20261125))
    total_lines = clients * lines
    results: dict[str, float] = {}
    for kind in SERVERS:
        proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "serve", kind],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.strip().isdigit():
                log(f"  {kind:32s} skipped (server did not start)")
                continue
            port = int(line)
            drive(port, clients, payload)  # warm-up
            seconds = statistics.median(drive(port, clients, payload) for _ in range(repeats))
            results[kind] = total_lines / seconds
            log(f"  {kind:32s} {seconds:8.4f} s {total_lines / seconds:12,.0f} lines/s")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return results


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(sys.argv[2])
    else:
        figures = run()
        for mine, peer in (
            ("sanschat asyncio", "asyncio StreamReader.readline"),
            ("sanschat trio", "trio receive_some+find"),
        ):
            if mine in figures and peer in figures:
                print(f"    {mine} vs {peer}: {figures[mine] / figures[peer]:.2f}x")
