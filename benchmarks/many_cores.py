"""Requests per second of one line-echo server in 1 process and in N processes
sharing its port (``python -m sanschat serve --workers N``, SO_REUSEPORT).

``--work N`` makes each request cost the server N sha256 digests (an
application's own work): with none, one Python load process cannot keep even
one server process busy on a small machine. Each round starts the server, runs the same load against it (``--clients``
processes, each keeping ``--connections`` connections with ``--depth``
requests in flight, for ``--seconds``), checks every answer, and stops it. The
worker counts are run round-robin, ``--rounds`` times; the median is reported.
The load generator runs on the same machine, so it competes for the same cores:
the figure is what a machine with that many cores gives, load included.

    python benchmarks/many_cores.py --backend select --workers 1 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HANDLER = """
import hashlib
import os

from sanschat import Handler

WORK = int(os.environ.get("MANY_CORES_WORK", "0"))


class Echo(Handler):
    def frame_received(self, line):
        for _ in range(WORK):  # the application's own work per request, if any
            hashlib.sha256(line).digest()
        self.framer.push(line + b"\\r\\n")
"""


def load(port: int, connections: int, depth: int, seconds: float, results: multiprocessing.Queue) -> None:
    """Keep ``depth`` numbered requests in flight on each connection; count
    the answers, each checked to be the echo of its request, in order."""
    selector = selectors.DefaultSelector()
    state = []
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        entry = {"sock": sock, "sent": 0, "got": 0, "buffer": b""}
        sock.sendall(b"".join(b"%d\r\n" % n for n in range(depth)))
        entry["sent"] = depth
        state.append(entry)
        selector.register(sock, selectors.EVENT_READ, entry)
    answered = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for key, _mask in selector.select(0.1):
            entry = key.data
            data = entry["sock"].recv(65536)
            if not data:
                raise SystemExit("the server closed a connection")
            *lines, entry["buffer"] = (entry["buffer"] + data).split(b"\r\n")
            for line in lines:
                if int(line) != entry["got"]:
                    raise SystemExit(f"answer {line!r} out of order, expected {entry['got']}")
                entry["got"] += 1
            answered += len(lines)
            more = b"".join(b"%d\r\n" % n for n in range(entry["sent"], entry["sent"] + len(lines)))
            entry["sock"].sendall(more)
            entry["sent"] += len(lines)
    for entry in state:
        entry["sock"].close()
    results.put(answered)


def one_round(backend: str, workers: int, options: argparse.Namespace, folder: Path) -> float:
    server = subprocess.Popen(
        [sys.executable, "-m", "sanschat", "serve", "echo_handler:Echo", "--backend", backend, "--port", "0"]
        + ["--workers", str(workers)],
        cwd=folder,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(folder), "MANY_CORES_WORK": str(options.work)},
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        port = int(line.rsplit(":", 1)[1])
        results: multiprocessing.Queue = multiprocessing.Queue()
        clients = [
            multiprocessing.Process(
                target=load, args=(port, options.connections, options.depth, options.seconds, results)
            )
            for _ in range(options.clients)
        ]
        for client in clients:
            client.start()
        total = sum(results.get(timeout=options.seconds + 60) for _ in clients)
        for client in clients:
            client.join()
            if client.exitcode:
                raise SystemExit(f"a load process failed ({client.exitcode})")
        return total / options.seconds
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", default="select")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clients", type=int, default=2, help="load processes")
    parser.add_argument("--connections", type=int, default=16, help="per load process")
    parser.add_argument("--depth", type=int, default=8, help="requests in flight per connection")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=int, default=0, help="sha256 digests per request (application work)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "echo_handler.py").write_text(HANDLER)
        rates: dict[int, list[float]] = {n: [] for n in options.workers}
        for _ in range(options.rounds):
            for workers in options.workers:  # round-robin: each count sees the same machine state
                rates[workers].append(one_round(options.backend, workers, options, Path(folder)))
    base = statistics.median(rates[options.workers[0]])
    print(
        f"line echo, {options.backend}, {options.work} digests per request, {os.cpu_count()} cores, "
        f"load: {options.clients} processes x {options.connections} connections x {options.depth} "
        f"in flight, {options.rounds} rounds"
    )
    print("| workers | requests/s (median) | rounds | vs 1st |")
    print("|---|---|---|---|")
    for workers, seen in rates.items():
        median = statistics.median(seen)
        shown = ", ".join(f"{rate:,.0f}" for rate in seen)
        print(f"| {workers} | {median:,.0f} | {shown} | {median / base:.2f}x |")


if __name__ == "__main__":
    main()
