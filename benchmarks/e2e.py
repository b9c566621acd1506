"""End-to-end loopback benchmark: servers under real sockets, every reply checked.

Each server runs in its own process, all started up front; the clients run in
this one, on a plain ``selectors`` loop. Each client sends its requests in
pipelined batches and sends the next batch once the whole reply to the last
has come; every reply byte is compared with the expected reply. Rounds are
round-robin over the servers and the median is reported.

Two protocols:

- line echo: sanschat's Echo Handler under select, asyncio and trio, against
  the fastest plain Python server (an asyncio ``Protocol`` that splits each
  read by hand and writes once per read) and ``StreamReader.readline``;
- RESP: ``sanschat.examples.resp`` under select, asyncio and trio, against the
  same commands on asyncio streams (``readline``/``readexactly``, a ``drain``
  per command), both executing with the example's own ``execute``.

Run alone: ``python benchmarks/e2e.py [--quick]`` (``run.py`` includes it).
``e2e_tls.py`` runs the same servers and clients over TLS.
"""

from __future__ import annotations

import argparse
import os
import random
import selectors
import socket
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
if "SANSCHAT_BENCH_INSTALLED" not in os.environ:
    sys.path.insert(0, os.path.join(HERE, "..", "src"))

ECHO = [
    "sanschat select",
    "sanschat asyncio",
    "sanschat trio",
    "sanschat select frames_received",
    "sanschat asyncio frames_received",
    "asyncio Protocol, hand-split",
    "asyncio readline",
]
RESP = ["sanschat select", "sanschat asyncio", "sanschat trio", "asyncio streams"]
REFERENCE = {"echo": "asyncio Protocol, hand-split", "resp": "asyncio streams"}
#: Batches per client and rounds. An echo run of 40 batches lasts a twentieth
#: of a second, too short to time on a shared machine (its ratios moved by 0.2
#: between runs), so the echo sends 200; ``--quick``: 10 batches, 3 rounds.
LENGTH = {"echo": (200, 9), "resp": (40, 5)}
QUICK = (10, 3)


# ------------------------------------------------------------------ servers


def _handler(protocol: str, runs: bool = False) -> Callable[[], Any]:
    """The server's Handler; ``runs``: the echo answers each pipelined run of
    lines with one push (``frames_received``), as the hand-split Protocol
    answers each read with one write."""
    from sanschat import Handler

    if protocol == "resp":
        from sanschat.examples.resp import RespServer

        store: dict[bytes, bytes] = {}
        return lambda: RespServer(store)

    class Echo(Handler):
        terminator = b"\n"

        def frame_received(self, data: bytes) -> None:
            self.framer.push(data + b"\n")

    class RunEcho(Echo):
        def frames_received(self, frames: list[bytes]) -> None:
            self.framer.push(b"".join([data + b"\n" for data in frames]))

    return RunEcho if runs else Echo


TLS = ssl.SSLContext | None  # a server context: TLS from the first byte


def _serve_sanschat(loop: str, factory: Callable[[], Any], ready: Callable[[int], None], tls: TLS) -> None:
    from sanschat.examples._run import serve

    serve(factory, loop, "127.0.0.1", 0, lambda host, port: ready(port), tls=tls)


def _serve_asyncio_echo(hand_split: bool, ready: Callable[[int], None], tls: TLS) -> None:
    import asyncio

    class HandSplit(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            *lines, self.buf = (self.buf + data).split(b"\n")
            if lines:
                self.transport.write(b"".join([line + b"\n" for line in lines]))  # the app sees each line

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        if hand_split:
            server = await loop.create_server(HandSplit, "127.0.0.1", 0, ssl=tls)
        else:
            server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
        ready(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


async def read_command(reader: Any) -> list[bytes] | None:
    """One RESP command's arguments, read with ``StreamReader``'s ``readline``
    and ``readexactly`` (or a reader with the same two); None at the end."""
    line = await reader.readline()
    if not line:
        return None
    args = []
    for _ in range(int(line[1:])):
        size = int((await reader.readline())[1:])
        args.append((await reader.readexactly(size + 2))[:-2])
    return args


def _serve_asyncio_resp(ready: Callable[[int], None], tls: TLS) -> None:
    import asyncio

    from sanschat.examples.resp import RespServer

    store: dict[bytes, bytes] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        commands = RespServer(store)  # its execute() only, so both servers do the same work
        commands.framer = SimpleNamespace(push=writer.write)  # type: ignore[assignment]
        while (args := await read_command(reader)) is not None:
            commands.execute(args)
            await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=1 << 20, ssl=tls)
        ready(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def ready(port: int) -> None:
    """Tell the parent (``start_servers``) that clients can connect."""
    print(port, flush=True)


def serve(protocol: str, kind: str, tls: TLS = None) -> None:
    """Serve ``protocol`` as ``kind`` on a free port of 127.0.0.1; print the port.
    ``tls``: a server context, for TLS from the first byte."""
    if kind.startswith("sanschat "):
        _serve_sanschat(kind.split()[1], _handler(protocol, kind.endswith("frames_received")), ready, tls)
    elif protocol == "echo":
        _serve_asyncio_echo(kind == "asyncio Protocol, hand-split", ready, tls)
    else:
        _serve_asyncio_resp(ready, tls)


# ------------------------------------------------------------------ clients

Batch = tuple[bytes, bytes]  # requests, the exact reply expected


def echo_batches(count: int, per_batch: int, rng: random.Random) -> list[Batch]:
    letters = b"abcdefghijklmnopqrstuvwxyz0123456789 "
    batches = []
    for _ in range(count):
        lines = b"".join(bytes(rng.choices(letters, k=rng.randint(8, 120))) + b"\n" for _ in range(per_batch))
        batches.append((lines, lines))
    return batches


def resp_batches(client: int, count: int, per_batch: int, tag: bytes) -> list[Batch]:
    """SET and GET on this client's own keys (``tag`` makes them new for every
    run), so every reply is known in advance; every run does the same work."""
    rng = random.Random(client)
    store: dict[bytes, bytes] = {}
    batches = []
    for _ in range(count):
        requests, replies = [], []
        for _ in range(per_batch):
            key = b"%s:c%d:%d" % (tag, client, rng.randrange(200))
            if rng.random() < 0.5:
                value = bytes(rng.choices(b"abcdefghij\r\n", k=rng.randint(1, 100)))
                store[key] = value
                args, reply = [b"SET", key, value], b"+OK\r\n"
            else:
                value = store.get(key)  # type: ignore[assignment]
                args = [b"GET", key]
                reply = b"$-1\r\n" if value is None else b"$%d\r\n%s\r\n" % (len(value), value)
            requests.append(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
            replies.append(reply)
        batches.append((b"".join(requests), b"".join(replies)))
    return batches


def connect_plain(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


# A non-blocking TLS socket that cannot go on until the other direction moves:
# a would-block, like a plain socket's, retried on the next event.
TLS_WOULD_BLOCK = (ssl.SSLWantReadError, ssl.SSLWantWriteError)


def drive(
    port: int, work: list[list[Batch]], connect: Callable[[int], socket.socket] = connect_plain
) -> float:
    """One client per entry of ``work``, each sending its batches in turn; return
    the seconds until every reply has come. Raises if a reply differs.
    ``connect(port)`` gives a connected non-blocking socket (an ``SSLSocket``
    with its handshake done for TLS); connecting is not timed."""
    sel = selectors.DefaultSelector()
    clients = [(connect(port), iter(batches)) for batches in work]
    # One read buffer for every client: a recv() of its own per read would
    # allocate 256 KiB each time, whose cost depends on the process's
    # allocation history (this process's heap made the same server's rate
    # differ by 20% between runs), and the client is what limits the fastest server.
    buffer = bytearray(262144)
    view = memoryview(buffer)
    start = time.perf_counter()
    state: dict[socket.socket, list[Any]] = {}
    for sock, batches in clients:
        request, reply = next(batches)
        state[sock] = [batches, memoryview(request), reply, bytearray(), isinstance(sock, ssl.SSLSocket)]
        sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    try:
        left = len(clients)
        while left:
            for key, mask in sel.select(timeout=60):
                sock = key.fileobj  # type: ignore[assignment]
                st = state[sock]
                if mask & selectors.EVENT_WRITE and st[1]:
                    try:
                        st[1] = st[1][sock.send(st[1][:262144]) :]
                    except TLS_WOULD_BLOCK:  # retried with the same bytes, as OpenSSL requires
                        pass
                    if not st[1]:
                        sel.modify(sock, selectors.EVENT_READ)
                if mask & selectors.EVENT_READ:
                    try:
                        count = sock.recv_into(buffer)
                    except TLS_WOULD_BLOCK:  # half a TLS record, or a session ticket and no data
                        continue
                    if not count:
                        raise RuntimeError("the server closed early")
                    st[3] += view[:count]
                    while st[4]:  # TLS gives a record a recv: read on while records are there,
                        try:  # decrypted (pending()) or in the socket, rather than select per record
                            count = sock.recv_into(buffer)
                        except TLS_WOULD_BLOCK:
                            break
                        if not count:
                            break  # the end: the next recv says so
                        st[3] += view[:count]
                    if len(st[3]) >= len(st[2]):
                        if st[3] != st[2]:
                            raise RuntimeError(f"wrong reply on port {port}")
                        nxt = next(st[0], None)
                        if nxt is None:
                            sel.unregister(sock)
                            left -= 1
                        else:
                            st[1], st[2], st[3] = memoryview(nxt[0]), nxt[1], bytearray()
                            sel.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        elapsed = time.perf_counter() - start
    finally:  # a wrong reply too
        for sock, _ in clients:
            sock.close()
        sel.close()
    return elapsed


Servers = dict[str, tuple[Any, int]]  # kind -> (its process, its port)


def start_servers(
    protocol: str,
    kinds: list[str],
    log: Callable[[str], None],
    script: str = __file__,
    extra: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> Servers:
    """Start one process per kind (``script serve PROTOCOL KIND *extra``, which
    prints its port); a kind whose server does not start is skipped and said."""
    servers = {}
    for kind in kinds:
        proc = subprocess.Popen(
            [sys.executable, os.path.abspath(script), "serve", protocol, kind, *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip().isdigit():
            servers[kind] = (proc, int(line))
        else:
            log(f"  {kind:32s} skipped (server did not start)")
            _end(proc)
    return servers


def _end(proc: Any) -> None:
    proc.terminate()
    proc.wait(timeout=10)
    proc.stdin.close()
    proc.stdout.close()


def stop_servers(servers: Servers) -> None:
    for proc, _ in servers.values():
        _end(proc)


def measure(
    protocol: str,
    servers: Servers,
    clients: int = 50,
    batches: int = 40,
    per_batch: int = 100,
    rounds: int = 5,
    log: Callable[[str], None] = print,
    connect: Callable[[int], socket.socket] = connect_plain,
) -> dict[str, float]:
    """Median requests/s of each of ``servers`` (serving ``protocol``, "echo"
    or "resp"), over round-robin rounds of the same work for each."""
    rng = random.Random(20261126)
    echo_work = [echo_batches(batches, per_batch, rng) for _ in range(clients)]

    def work(run: str) -> list[list[Batch]]:
        if protocol == "echo":
            return echo_work
        return [resp_batches(i, batches, per_batch, run.encode()) for i in range(clients)]

    times: dict[str, list[float]] = {kind: [] for kind in servers}
    cpu: dict[str, list[float]] = {kind: [] for kind in servers}
    for _, port in servers.values():
        drive(port, work("warm-up"), connect)  # (and the first check of every reply)
    for round_ in range(rounds):
        kinds = list(servers)
        shift = round_ % len(kinds)
        for kind in kinds[shift:] + kinds[:shift]:
            proc, port = servers[kind]
            before = server_cpu(proc.pid)
            times[kind].append(drive(port, work(f"round {round_}"), connect))
            after = server_cpu(proc.pid)
            if before is not None and after is not None:
                cpu[kind].append(after - before)
    requests = clients * batches * per_batch
    results = {kind: requests / statistics.median(seconds) for kind, seconds in times.items()}
    for kind, rate in results.items():
        line = f"  {kind:32s} {rate:12,.0f} requests/s"
        if cpu[kind]:  # what a request costs the server itself, whatever the client's share of the cores
            spent = statistics.median(cpu[kind])
            line += f"  server CPU {spent / requests * 1e9:5.0f} ns/request, busy {spent / statistics.median(times[kind]):4.0%}"
        log(line)
    return results


def server_cpu(pid: int) -> float | None:
    """Seconds of CPU process ``pid`` has run (Linux's ``/proc``; None elsewhere).
    It located the echo's gap: a server's own cost per read, layer by layer."""
    try:
        with open(f"/proc/{pid}/schedstat") as stat:
            return int(stat.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def run(
    protocol: str,
    quick: bool = False,
    clients: int = 50,
    per_batch: int = 100,
    log: Callable[[str], None] = print,
) -> dict[str, float]:
    """Median requests/s of each server of ``protocol`` ("echo" or "resp")."""
    batches, rounds = QUICK if quick else LENGTH[protocol]
    servers = start_servers(protocol, ECHO if protocol == "echo" else RESP, log)
    try:
        return measure(protocol, servers, clients, batches, per_batch, rounds, log)
    finally:
        stop_servers(servers)


def ratios(protocol: str, figures: dict[str, float], references: Sequence[str] = ()) -> list[str]:
    """Each sanschat figure against each reference present (by default the
    protocol's plain reference)."""
    return [
        f"{kind} vs {reference}: {rate / figures[reference]:.2f}x"
        for reference in references or [REFERENCE[protocol]]
        if reference in figures
        for kind, rate in figures.items()
        if kind.startswith("sanschat")
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["echo", "resp"])
    args = parser.parse_args()
    for protocol in ["echo", "resp"] if args.only is None else [args.only]:
        print(f"{protocol}:")
        figures = run(protocol, args.quick)
        for line in ratios(protocol, figures):
            print("    " + line)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    else:
        main()
