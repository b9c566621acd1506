"""The end-to-end loopback benchmark over TLS, and the memory of an idle TLS connection.

The servers, clients, work, checks and round-robin rounds are ``e2e.py``'s (the
echo with five times as many batches, ``BATCHES``); this module adds TLS to both ends. trustme makes a CA and a certificate for
``localhost`` in a temporary directory, which every server process loads into a
context of its own. TLS 1.3 is pinned (minimum and maximum version) and so is its
cipher suite: Python's ``ssl`` cannot set TLS 1.3 suites, so the server processes
get an OpenSSL configuration (``OPENSSL_CONF``) whose system default allows only
``TLS_AES_128_GCM_SHA256``; each server refuses to start if its context offers
another TLS 1.3 suite, and the client records the suite every connection
negotiated, which must be that one for every server.

The client is ``e2e.drive`` on non-blocking ``SSLSocket`` objects: each
connection does its handshake and one request/reply (so the server too has
finished its handshake and sent its session tickets) before the clock starts.

- line echo: sanschat's Echo Handler under every binding, against asyncio's own
  TLS (``create_server(..., ssl=context)``) with the hand-split ``Protocol`` of
  ``e2e.py``, and trio's ``SSLStream`` (``serve_ssl_over_tcp``) with the same
  hand-written split: each receive split by hand, written back once;
- RESP: ``sanschat.examples.resp`` under every binding, against ``e2e.py``'s
  asyncio streams server with ``ssl=context``, and a trio ``SSLStream`` server
  reading lines and values like ``StreamReader`` (a ``bytearray`` buffer) and
  writing the replies once per receive; both execute with the example's own
  ``execute``;
- idle memory: N connections, handshaken and primed, held idle; the server
  process's growth in resident memory (``VmRSS``), and in Python's own
  allocations (``tracemalloc``, in a second server process, as it adds memory
  of its own), over N. OpenSSL's buffers are C allocations that only the RSS
  figure counts.

A kind whose server does not start (a binding without ``tls=`` yet) is skipped
and said. Run: ``python benchmarks/e2e_tls.py [--quick] [--only echo|resp|memory]``.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import socket
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from types import SimpleNamespace
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import e2e  # noqa: E402  (it puts ../src on the path unless the package is installed)

BINDINGS = ["select", "asyncio", "trio", "anyio", "socket", "twisted"]
SANSCHAT = [f"sanschat {binding}" for binding in BINDINGS]
ECHO = [*SANSCHAT, "asyncio Protocol, hand-split", "trio SSLStream, hand-split"]
RESP = [*SANSCHAT, "asyncio streams", "trio SSLStream, buffered reader"]
REFERENCES = {
    "echo": ["asyncio Protocol, hand-split", "trio SSLStream, hand-split"],
    "resp": ["asyncio streams", "trio SSLStream, buffered reader"],
}
# 50 clients send this many pipelined batches of 100 requests: the echo's five
# times e2e's, as its runs are short (a tenth of a second) for a shared machine.
BATCHES = {"echo": 200, "resp": 40}
MEMORY = [*SANSCHAT, "asyncio Protocol, hand-split", "trio SSLStream, hand-split"]
# One request and its reply per connection before timing, so that the server's
# side of the handshake (and its session tickets) is over too.
PRIME = {"echo": (b"prime\n", b"prime\n"), "resp": (b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n")}
SUITE = "TLS_AES_128_GCM_SHA256"
HOSTNAME = "localhost"
OPENSSL_CONF = f"""\
openssl_conf = default_conf
[default_conf]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
Ciphersuites = {SUITE}
"""


# ------------------------------------------------------------------ certificates


@contextmanager
def certificates() -> Iterator[tuple[str, dict[str, str]]]:
    """A temporary directory holding ``ca.pem``, ``server.pem`` (key and chain)
    and ``openssl.cnf``; and the environment for server processes that pins
    the suite."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert(HOSTNAME, "127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="sanschat-tls-bench-") as tmp:
        ca.cert_pem.write_to_path(os.path.join(tmp, "ca.pem"))
        cert.private_key_and_cert_chain_pem.write_to_path(os.path.join(tmp, "server.pem"))
        with open(os.path.join(tmp, "openssl.cnf"), "w", encoding="ascii") as fh:
            fh.write(OPENSSL_CONF)
        yield tmp, {**os.environ, "OPENSSL_CONF": os.path.join(tmp, "openssl.cnf")}


def server_context(certdir: str) -> ssl.SSLContext:
    """The server context every server of the benchmark loads: TLS 1.3 only,
    and only the pinned suite (checked, as it comes from ``OPENSSL_CONF``)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(os.path.join(certdir, "server.pem"))
    suites = [c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.3"]
    if suites != [SUITE]:
        raise RuntimeError(f"TLS 1.3 suites {suites}, not [{SUITE}]: is OPENSSL_CONF set?")
    return context


def client_context(certdir: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=os.path.join(certdir, "ca.pem"))
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_3
    return context


# ------------------------------------------------------------------ servers


def _serve_trio(handle: Callable[[Any], Any], context: ssl.SSLContext) -> None:
    """``handle`` each TLS stream of ``trio.serve_ssl_over_tcp``."""
    import functools

    import trio

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            serve = functools.partial(trio.serve_ssl_over_tcp, handle, 0, context, host="127.0.0.1")
            listeners = await nursery.start(serve)
            e2e.ready(listeners[0].transport_listener.socket.getsockname()[1])

    trio.run(main)


def _serve_trio_echo(context: ssl.SSLContext) -> None:
    import trio

    async def handle(stream: trio.SSLStream[Any]) -> None:
        buf = b""
        try:
            while data := await stream.receive_some():
                *lines, buf = (buf + data).split(b"\n")
                if lines:  # one write per receive; the app sees each line, as in e2e's Protocol
                    await stream.send_all(b"".join([line + b"\n" for line in lines]))
        except trio.BrokenResourceError:
            pass  # a client that closes without close_notify

    _serve_trio(handle, context)


class _TrioReader:
    """``StreamReader``'s ``readline``/``readexactly`` on a trio stream (a
    ``bytearray`` buffer, as asyncio's); the replies queued in ``replies`` are
    written in one ``send_all`` before each receive."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.buf = bytearray()
        self.replies: list[bytes] = []

    async def _more(self) -> bool:
        if self.replies:
            await self.stream.send_all(b"".join(self.replies))
            self.replies.clear()
        data = await self.stream.receive_some()
        self.buf += data
        return bool(data)

    async def readline(self) -> bytes:
        while (end := self.buf.find(b"\n") + 1) == 0:
            if not await self._more():
                return b""
        line = bytes(self.buf[:end])
        del self.buf[:end]
        return line

    async def readexactly(self, size: int) -> bytes:
        while len(self.buf) < size:
            if not await self._more():
                raise EOFError
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data


def _serve_trio_resp(context: ssl.SSLContext) -> None:
    import trio

    from sanschat.examples.resp import RespServer

    store: dict[bytes, bytes] = {}

    async def handle(stream: trio.SSLStream[Any]) -> None:
        reader = _TrioReader(stream)
        commands = RespServer(store)  # its execute() only, as e2e's asyncio streams server
        commands.framer = SimpleNamespace(push=reader.replies.append)  # type: ignore[assignment]
        try:
            while (args := await e2e.read_command(reader)) is not None:
                commands.execute(args)
        except (trio.BrokenResourceError, EOFError):
            pass

    _serve_trio(handle, context)


def _answer_probes() -> None:
    """On each line read from stdin, print this process's VmRSS and traced
    Python memory (0 unless tracemalloc runs), after a full collection."""
    import tracemalloc

    for _ in sys.stdin:
        gc.collect()
        print(rss(os.getpid()), tracemalloc.get_traced_memory()[0], flush=True)


def serve(protocol: str, kind: str, certdir: str) -> None:
    """Serve ``protocol`` as ``kind`` over TLS with the certificate in ``certdir``."""
    if os.environ.get("SANSCHAT_BENCH_TRACEMALLOC"):
        import tracemalloc

        tracemalloc.start()
    threading.Thread(target=_answer_probes, daemon=True).start()
    context = server_context(certdir)
    if kind == "trio SSLStream, hand-split":
        _serve_trio_echo(context)
    elif kind == "trio SSLStream, buffered reader":
        _serve_trio_resp(context)
    else:
        e2e.serve(protocol, kind, context)


# ------------------------------------------------------------------ clients


class Client:
    """``connect(port)`` for ``e2e.drive``: a TLS connection, handshaken and
    primed with ``PRIME[protocol]`` (its reply checked), made non-blocking.
    Records the suite each port's connections negotiated."""

    def __init__(self, protocol: str, certdir: str) -> None:
        self.context = client_context(certdir)
        self.prime = PRIME[protocol]
        self.negotiated: dict[int, set[tuple[str, str, int]]] = {}

    def __call__(self, port: int) -> socket.socket:
        sock = self.context.wrap_socket(
            socket.create_connection(("127.0.0.1", port)), server_hostname=HOSTNAME
        )
        request, reply = self.prime
        sock.sendall(request)
        got = b""
        while len(got) < len(reply) and (data := sock.recv(len(reply) - len(got))):
            got += data
        if got != reply:
            raise RuntimeError(f"wrong reply to the priming request on port {port}: {got!r}")
        self.negotiated.setdefault(port, set()).add(sock.cipher())  # type: ignore[arg-type]
        sock.setblocking(False)
        return sock

    def suites(self, servers: e2e.Servers) -> dict[str, set[tuple[str, str, int]]]:
        return {kind: self.negotiated.get(port, set()) for kind, (_, port) in servers.items()}


def check_suites(client: Client, servers: e2e.Servers) -> tuple[str, str, int]:
    """The one suite every server negotiated; raises if any differs."""
    suites = client.suites(servers)
    seen = set().union(*suites.values())
    if len(seen) != 1 or next(iter(seen))[0] != SUITE or not all(suites.values()):
        raise RuntimeError(f"not the same suite everywhere: {suites}")
    return next(iter(seen))


def run(
    protocol: str,
    certdir: str,
    env: dict[str, str],
    kinds: list[str] | None = None,
    log: Callable[[str], None] = print,
    batches: int | None = None,
    rounds: int = 5,
) -> tuple[dict[str, float], tuple[str, str, int]]:
    """Median requests/s of each TLS server of ``protocol`` (50 clients,
    ``batches`` batches of 100 each, ``BATCHES`` by default), and the suite
    every server negotiated."""
    kinds = kinds or (ECHO if protocol == "echo" else RESP)
    servers = e2e.start_servers(protocol, kinds, log, __file__, [certdir], env)
    client = Client(protocol, certdir)
    try:
        batches = batches or BATCHES[protocol]
        figures = e2e.measure(protocol, servers, batches=batches, rounds=rounds, log=log, connect=client)
    finally:
        e2e.stop_servers(servers)
    return figures, check_suites(client, servers)


# ------------------------------------------------------------------ idle memory


def rss(pid: int) -> int:
    """Resident memory of process ``pid`` in bytes (``VmRSS``)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _probe(proc: Any) -> tuple[int, int]:
    time.sleep(0.5)  # for the server to settle: every handshake and reply is over
    proc.stdin.write("probe\n")
    proc.stdin.flush()
    resident, traced = proc.stdout.readline().split()
    return int(resident), int(traced)


def idle_growth(
    kind: str, certdir: str, env: dict[str, str], connections: int, warm: int = 10
) -> tuple[float, float]:
    """(RSS bytes, tracemalloc bytes) per idle TLS connection of an echo server
    ``kind``: growth from ``warm`` open connections to ``warm + connections``,
    over ``connections``; tracemalloc in a second process. NaN when it did not start."""
    figures = []
    for tracing in (False, True):
        server_env = {**env, "SANSCHAT_BENCH_TRACEMALLOC": "1"} if tracing else env
        servers = e2e.start_servers("echo", [kind], lambda _: None, __file__, [certdir], server_env)
        if not servers:
            return float("nan"), float("nan")
        proc, port = servers[kind]
        client = Client("echo", certdir)
        socks = [client(port) for _ in range(warm)]  # the one-time costs, and the first buffers
        try:
            before = _probe(proc)
            socks += [client(port) for _ in range(connections)]
            after = _probe(proc)
            check_suites(client, servers)
        finally:
            for sock in socks:
                sock.close()
            e2e.stop_servers(servers)
        figures.append((after[tracing] - before[tracing]) / connections)
    return figures[0], figures[1]


def memory(
    certdir: str, env: dict[str, str], connections: int, log: Callable[[str], None] = print
) -> dict[str, tuple[float, float]]:
    """Idle bytes per TLS connection of each kind in ``MEMORY``: (RSS, tracemalloc)."""
    results = {}
    for kind in MEMORY:
        results[kind] = idle_growth(kind, certdir, env, connections)
        resident, traced = results[kind]
        if resident != resident:  # NaN
            log(f"  {kind:32s} skipped (server did not start)")
        else:
            log(f"  {kind:32s} {resident:10,.0f} B RSS {traced:10,.0f} B traced per idle connection")
    return results


# ------------------------------------------------------------------ report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a quarter of the batches, three rounds")
    parser.add_argument("--only", choices=["echo", "resp", "memory"])
    parser.add_argument("--rounds", type=int, help="round-robin rounds (default 5, --quick 3)")
    parser.add_argument(
        "--connections", type=int, default=1000, help="idle connections for the memory figure"
    )
    parser.add_argument("--markdown", help="write the tables to this file")
    args = parser.parse_args()
    header = (
        f"Python {platform.python_version()} ({platform.python_implementation()}), {ssl.OPENSSL_VERSION}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}, {date.today().isoformat()}, "
        f"load average {os.getloadavg()[0]:.1f} at the start"
    )
    print(header)
    lines = [f"_{header}; median of round-robin runs, every reply checked._", ""]
    with certificates() as (certdir, env):
        for protocol in ("echo", "resp"):
            if args.only not in (None, protocol):
                continue
            print(f"{protocol} over TLS:")
            figures, suite = run(
                protocol,
                certdir,
                env,
                batches=BATCHES[protocol] // (4 if args.quick else 1),
                rounds=args.rounds or (3 if args.quick else 5),
            )
            print(f"    every server negotiated {suite[1]} {suite[0]}")
            refs = [r for r in REFERENCES[protocol] if r in figures]
            lines += [f"{protocol}, every server on {suite[1]} {suite[0]}:", ""]
            lines += ["| server | requests/s | " + " | ".join(f"x {r}" for r in refs) + " |"]
            lines += ["|---|---:|" + "---:|" * len(refs)]
            for kind, rate in figures.items():
                cells = " | ".join(f"{rate / figures[r]:.2f}" for r in refs)
                lines.append(f"| {kind} | {rate:,.0f} | {cells} |")
            lines.append("")
            for line in e2e.ratios(protocol, figures, REFERENCES[protocol]):
                print("    " + line)
        if args.only in (None, "memory"):
            print(f"idle memory, {args.connections} TLS connections:")
            idle = memory(certdir, env, args.connections)
            lines += [f"idle memory, {args.connections} TLS connections:", ""]
            lines += ["| server | RSS bytes per idle connection | tracemalloc bytes |", "|---|---:|---:|"]
            lines += [f"| {kind} | {r:,.0f} | {t:,.0f} |" for kind, (r, t) in idle.items() if r == r]
            lines.append("")
    lines.append(f"_load average {os.getloadavg()[0]:.1f} at the end._")
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
