"""The example protocols (sanschat.examples), run as their users would, under each loop."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator

import pytest

from .helpers import read_all, serving

LOOPS = ["select", "asyncio", "trio", "anyio", "socket", "twisted"]


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """Run ``python -m sanschat.examples.<name> --backend <loop> --port 0``; yield its port."""
    name, loop = request.param
    with serving("-m", f"sanschat.examples.{name}", "--backend", loop, "--port", "0") as port:
        yield loop, port


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    received = b""
    while marker not in received:
        chunk = sock.recv(65536)
        assert chunk, f"closed before {marker!r}; got {received!r}"
        received += chunk
    return received


def response(text: bytes, status: bytes = b"200 OK") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n%s" % (
        status,
        len(text),
        text,
    )


def params(name: str) -> list[object]:
    return [pytest.param((name, loop), id=loop) for loop in LOOPS]


@pytest.mark.parametrize("server", params("http"), indirect=True)
def test_http_reader_pipelined_trickled_and_content_length_zero(server: tuple[str, int]) -> None:
    _loop, port = server
    body = b"b" * 300_000  # larger than the 16 KiB header limit: the body is streamed
    requests = (
        b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /empty HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        b"POST /big HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s"
        b"POST /last HTTP/1.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
    ) % (len(body), body)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        head, rest = requests[:200], requests[200:]
        for byte in head:  # the first requests one byte at a time
            sock.send(bytes([byte]))
        sock.sendall(rest)
        assert read_all(sock) == (
            response(b"GET /hello HTTP/1.1: 0 body bytes\n")
            + response(b"POST /empty HTTP/1.1: 0 body bytes\n")
            + response(b"POST /big HTTP/1.1: 300000 body bytes\n")
            + response(b"POST /last HTTP/1.1: 5 body bytes\n")
        )


@pytest.mark.parametrize("server", params("http"), indirect=True)
def test_a_too_large_body_sent_eagerly_still_gets_its_413(server: tuple[str, int]) -> None:
    """http.client sends the whole body before reading: the server must read
    (and drop) it after deciding to close, or the client never sees the answer."""
    _loop, port = server
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", "/upload", body=b"z" * (3 << 20))
        answer = connection.getresponse()
        assert answer.status == 413
        assert answer.read() == b"body over 1 MiB\n"
    finally:
        connection.close()


@pytest.mark.parametrize("server", params("http"), indirect=True)
def test_http_reader_keeps_answers_when_the_client_keeps_talking(server: tuple[str, int]) -> None:
    _loop, port = server
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"GET /a HTTP/1.1\r\n\r\n"
            b"GET /b HTTP/1.1\r\nConnection: close\r\n\r\n" + b"GET /ignored HTTP/1.1\r\n\r\n" * 500
        )
        received = read_all(sock)
    assert received == response(b"GET /a HTTP/1.1: 0 body bytes\n") + response(
        b"GET /b HTTP/1.1: 0 body bytes\n"
    )


@pytest.mark.parametrize("server", params("http"), indirect=True)
def test_http_reader_refuses_bad_requests(server: tuple[str, int]) -> None:
    _loop, port = server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nContent-Length: lots\r\n\r\nGET / HTTP/1.1\r\n\r\n")
        assert read_all(sock) == response(b"bad Content-Length\n", b"400 Bad Request")
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nX: " + b"x" * 20000 + b"\r\n\r\n")
        reply = read_all(sock)
        assert reply == response(b"headers over 16 KiB\n", b"431 Request Header Fields Too Large")


@pytest.mark.parametrize("server", params("chat"), indirect=True)
def test_chat_server_rooms_under_each_loop(server: tuple[str, int]) -> None:
    _loop, port = server
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    try:
        for sock in socks:
            read_until(sock, b"/nick NAME to join\r\n")
        ann, bob, cy = socks
        ann.sendall(b"hello?\r\n")
        assert read_until(ann, b"first\r\n") == b"* /nick NAME first\r\n"
        ann.sendall(b"/nick ann\r\n")
        assert read_until(ann, b"here\r\n") == b"* you are ann; 1 here\r\n"
        bob.sendall(b"/nick bob\r\n")
        assert read_until(bob, b"here\r\n") == b"* you are bob; 2 here\r\n"
        assert read_until(ann, b"joined\r\n") == b"* bob joined\r\n"
        bob.sendall(b"/nick ann\r\n")
        assert read_until(bob, b"empty\r\n") == b"* that name is taken or empty\r\n"
        cy.sendall(b"/nick cy\r\n" + b"x" * 5000 + b"\r\nhi all\r\n")
        got = read_until(cy, b"skipped\r\n")
        assert got == b"* you are cy; 3 here\r\n* line too long, skipped\r\n"
        assert read_until(ann, b"all\r\n") == b"* cy joined\r\n<cy> hi all\r\n"
        assert read_until(bob, b"all\r\n") == b"* cy joined\r\n<cy> hi all\r\n"
        bob.sendall(b"/quit\r\n")
        assert read_all(bob) == b"* bye\r\n"  # then the server closes
        assert read_until(ann, b"left\r\n") == b"* bob left\r\n"
        assert read_until(cy, b"left\r\n") == b"* bob left\r\n"
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.parametrize("server", params("resp"), indirect=True)
def test_resp_server_with_redis_py(server: tuple[str, int]) -> None:
    redis = pytest.importorskip("redis")
    _loop, port = server
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=30, protocol=2)
    try:
        assert client.ping() is True
        big = bytes(range(256)) * 4096  # 1 MiB, CRLF and all
        assert client.set("k", b"v\r\nv") is True
        assert client.set("big", big) is True
        assert client.get("k") == b"v\r\nv"
        assert client.get("big") == big
        assert client.get("missing") is None
        pipe = client.pipeline(transaction=False)
        for i in range(500):
            pipe.incr("counter")
            pipe.set(f"key{i}", f"value {i}\r\n")
        results = pipe.execute()
        assert results[0::2] == list(range(1, 501)) and all(results[1::2])
        assert client.get("key499") == b"value 499\r\n"
        assert client.delete("k", "big", "missing") == 2
        with pytest.raises(redis.ResponseError, match="unknown command"):
            client.execute_command("FLUSHALL")
    finally:
        client.close()


@pytest.mark.parametrize("server", params("resp"), indirect=True)
def test_resp_server_raw_pipeline_trickled_and_refused(server: tuple[str, int]) -> None:
    _loop, port = server
    commands = b"".join(b"*3\r\n$3\r\nSET\r\n$2\r\nk%d\r\n$3\r\n%03d\r\n" % (i % 10, i) for i in range(300))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for i in range(0, len(commands), 7):  # trickled: values cut anywhere
            sock.sendall(commands[i : i + 7])
        sock.sendall(b"*2\r\n$3\r\nGET\r\n$2\r\nk9\r\n")
        assert read_until(sock, b"$3\r\n299\r\n") == b"+OK\r\n" * 300 + b"$3\r\n299\r\n"
        sock.sendall(b"*2\r\n$3\r\nGET\r\n$2\r\nk9XX")  # no CRLF after the value
        assert read_all(sock) == b"-ERR Protocol error: a bulk string must end with CRLF\r\n"


@pytest.mark.parametrize("server", params("memcached"), indirect=True)
def test_memcached_server_with_pymemcache(server: tuple[str, int]) -> None:
    pymemcache = pytest.importorskip("pymemcache.client.base")
    _loop, port = server
    client = pymemcache.Client(("127.0.0.1", port), timeout=30)
    try:
        assert client.set("a", b"1\r\n2", noreply=False) is True
        assert client.get("a") == b"1\r\n2"
        assert client.add("a", b"x", noreply=False) is False
        values = {f"k{i}": b"v" * i for i in range(200)}
        assert client.set_many(values, noreply=False) == []
        assert client.get_many(list(values)) == {k: v for k, v in values.items() if v} | {"k0": b""}
        assert client.delete("a", noreply=False) is True
        assert client.get("a") is None
        with pytest.raises(pymemcache.MemcacheServerError, match="too large"):
            client.set("huge", b"x" * (2 << 20), noreply=False)
        assert client.get("k5") == b"vvvvv"  # the refused block was skipped whole
    finally:
        client.close()
