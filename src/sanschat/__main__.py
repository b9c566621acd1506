"""Command-line tool: ``python -m sanschat demo``."""

from __future__ import annotations

import argparse
import selectors
import socket
import sys
import threading
from typing import Sequence, TextIO

from . import NEED_DATA, EndOfStream, Frame, Framer

# Pipelined requests, sent in small pieces so frames straddle reads.
DEMO_REQUESTS = (
    b"GET /hello HTTP/1.1\r\nHost: demo\r\n\r\n"
    b"POST /echo HTTP/1.1\r\nHost: demo\r\nContent-Length: 11\r\n\r\nhello world"
    b"POST /empty HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
    b"GET /bye HTTP/1.1\r\nConnection: close\r\n\r\n"
)


class HttpRequestReader:
    """The seed's HTTP example as a sans-IO protocol: headers whole, then a
    Content-Length body read with a count terminator (0 included)."""

    def __init__(self, framer: Framer, log: TextIO) -> None:
        self.framer = framer
        self.log = log
        self.head: bytes | None = None

    def handle(self, event: Frame | EndOfStream) -> None:
        if type(event) is EndOfStream:
            self.log.write(f"server: client closed (unterminated: {event.data!r})\n")
            return
        if self.head is None:
            self.head = event.data
            length = 0
            for line in event.data.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            self.framer.set_terminator(length)  # 0 is an immediate empty body
            return
        request_line = self.head.split(b"\r\n", 1)[0].decode()
        self.log.write(f"server: {request_line!s} body={event.data!r}\n")
        body = b"you sent " + event.data if event.data else b"ok"
        self.framer.push(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        if b"Connection: close" in self.head:
            self.framer.close_when_done()
        self.head = None
        self.framer.set_terminator(b"\r\n\r\n")


def _client(port: int, log: TextIO) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for i in range(0, len(DEMO_REQUESTS), 7):
            sock.sendall(DEMO_REQUESTS[i : i + 7])
        replies = Framer(b"\r\n\r\n")
        responses = 0
        while responses < 4:
            data = sock.recv(4096)
            replies.receive_data(data)
            if not data:
                break
            while (event := replies.next_event()) is not NEED_DATA:
                if type(event) is Frame and replies.get_terminator() == b"\r\n\r\n":
                    length = int(event.data.rsplit(b":", 1)[1])
                    replies.set_terminator(length)
                elif type(event) is Frame:
                    log.write(f"client: got {event.data!r}\n")
                    responses += 1
                    replies.set_terminator(b"\r\n\r\n")


def demo(log: TextIO) -> int:
    """Serve four pipelined HTTP requests over loopback TCP with a sans-IO Framer."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    log.write(f"server: listening on 127.0.0.1:{port}\n")
    client = threading.Thread(target=_client, args=(port, log))
    client.start()
    conn, _ = listener.accept()
    listener.close()
    conn.setblocking(False)
    framer = Framer(b"\r\n\r\n")
    protocol = HttpRequestReader(framer, log)
    with selectors.DefaultSelector() as sel, conn:
        sel.register(conn, selectors.EVENT_READ)
        while not framer.should_close:
            wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if framer.has_output else 0)
            sel.modify(conn, wanted)
            for _key, mask in sel.select(timeout=5):
                if mask & selectors.EVENT_READ and not framer.eof_received:
                    framer.receive_data(conn.recv(65536))
                    while (event := framer.next_event()) is not NEED_DATA:
                        protocol.handle(event)  # type: ignore[arg-type]
                        if type(event) is EndOfStream:
                            framer.close_when_done()
                            break
                if mask & selectors.EVENT_WRITE:
                    chunk = framer.peek_output()
                    if chunk:
                        framer.consume_output(conn.send(chunk))  # partial sends are fine
    client.join(timeout=5)
    log.write("server: closed after the last response was sent\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sanschat", description="Framing for command/response protocols, sans I/O."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="serve pipelined HTTP requests over loopback and show the frames")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(sys.stdout)
    return 2  # pragma: no cover - argparse already refused it


if __name__ == "__main__":
    sys.exit(main())
