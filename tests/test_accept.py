"""The asyncio server out of file descriptors, for real: a server process
limited to 40 descriptors meets EMFILE on every accept while 80 clients stay
connected. It must log the episode, not each failure, spend little CPU, and
serve again once the clients go; on asyncio's own loop and on uvloop.

(``tests/test_load.py`` runs the same scene for every binding; this one
counts the server's log records, and runs uvloop too.)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from .test_load import cpu_seconds

LIMIT = 40

LOOPS = ["asyncio"]
try:
    import uvloop  # noqa: F401

    LOOPS.append("uvloop")
except ImportError:  # pragma: no cover - uvloop does not build everywhere
    pass

SERVER = """
import asyncio, logging, resource, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[2]), hard))
logging.basicConfig(level=logging.INFO, format="RECORD %(created).6f %(name)s %(levelname)s %(message)s")
from sanschat.asyncio import serve
from sanschat.examples.http import HttpRequestReader

async def main():
    server = await serve(HttpRequestReader)
    print("listening on", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

if sys.argv[1] == "uvloop":
    import uvloop
    loop = uvloop.new_event_loop()
else:
    loop = asyncio.new_event_loop()
loop.run_until_complete(main())
"""


def descriptors_held(pid: int) -> int | None:
    """How many descriptors a process has open (Linux's /proc; None elsewhere)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def records_of(stderr: str) -> list[tuple[float, str]]:
    """The log records in the server's stderr: (time created, the rest)."""
    found = []
    for line in stderr.splitlines():
        if line.startswith("RECORD "):
            _, created, rest = line.split(" ", 2)
            found.append((float(created), rest))
    return found


@pytest.mark.parametrize("loop", LOOPS)
def test_running_out_of_descriptors_is_logged_once_and_recovers(loop: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, loop, str(LIMIT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    clients: list[socket.socket] = []
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on"), line
        port = int(line.split()[-1])
        for _ in range(80):
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=30))
        if descriptors_held(process.pid) is not None:  # Linux: wait until it holds all it may
            deadline = time.monotonic() + 30
            while descriptors_held(process.pid) != LIMIT:
                assert time.monotonic() < deadline, descriptors_held(process.pid)
                time.sleep(0.01)
        before, started = cpu_seconds(process.pid), time.monotonic()
        time.sleep(1.0)  # the server now meets EMFILE on every accept it tries
        if before is not None:
            spent, elapsed = cpu_seconds(process.pid) - before, time.monotonic() - started  # type: ignore[operator]
            assert spent < elapsed / 2, f"the server spun: {spent:.2f} s of CPU in {elapsed:.2f} s of EMFILE"
        clients_left = time.time()
        for sock in clients:
            sock.close()
        clients.clear()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200 OK"), reply
    finally:
        for sock in clients:
            sock.close()
        process.terminate()
        _out, errors = process.communicate(timeout=30)
    records = records_of(errors)
    while_out = [rest for created, rest in records if created < clients_left]
    print(f"{loop}: {len(while_out)} record(s) while out of descriptors, {len(records)} in all")
    assert len(while_out) == 1, while_out
    assert while_out[0].startswith("sanschat.asyncio WARNING accept failed"), while_out
    assert "Too many open files" in while_out[0]
    assert len(records) <= 10, records  # taking the 80 waiting clients may meet EMFILE again
    assert any("accepting again" in rest for _, rest in records), records
