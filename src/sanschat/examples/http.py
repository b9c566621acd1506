"""The seed's HTTP request reader as one sans-IO protocol, under any loop.

Headers arrive whole (terminator ``\\r\\n\\r\\n``, at most 16 KiB); the body is
read with an integer terminator of Content-Length bytes (0 included),
streamed, so a large body never has to fit a frame limit. Requests may be
pipelined. Run: ``python -m sanschat.examples.http --backend trio --port 8080``.
"""

from __future__ import annotations

from .. import FrameTooLarge, Handler

MAX_BODY = 1 << 20


class HttpRequestReader(Handler):
    terminator = b"\r\n\r\n"
    max_frame_size = 16384  # the request line and headers

    def __init__(self) -> None:
        self.request_line = b""
        self.headers: dict[bytes, bytes] = {}
        self.body: list[bytes] = []
        self.in_body = False

    def frame_received(self, data: bytes) -> None:
        # After an error reply (close_when_done) nothing more is delivered, and
        # the binding drains what the client still sends so it gets the reply.
        if self.in_body:
            self.body.append(data)
            self.respond()
        else:
            self.start(data)

    def data_received(self, data: bytes) -> None:
        self.body.append(data)  # a piece of a streamed body

    def start(self, head: bytes) -> None:
        self.request_line, *lines = head.split(b"\r\n")
        self.headers = {}
        for line in lines:
            name, colon, value = line.partition(b":")
            if not colon:
                return self.fail(b"400 Bad Request", b"malformed header line")
            self.headers[name.strip().lower()] = value.strip()
        length = self.headers.get(b"content-length", b"0")
        if not length.isdigit():
            return self.fail(b"400 Bad Request", b"bad Content-Length")
        if int(length) > MAX_BODY:
            return self.fail(b"413 Content Too Large", b"body over 1 MiB")
        self.in_body = True
        self.body = []
        self.framer.set_terminator(int(length), stream=True)  # 0: an empty body at once

    def respond(self) -> None:
        body = b"".join(self.body)
        text = b"%s: %d body bytes\n" % (self.request_line, len(body))
        self.reply(b"200 OK", text)
        self.in_body = False
        if self.headers.get(b"connection", b"").lower() == b"close":
            self.framer.close_when_done()
        else:
            self.framer.set_terminator(b"\r\n\r\n", stream=False)

    def reply(self, status: bytes, text: bytes) -> None:
        self.framer.push(
            b"HTTP/1.1 %s\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n%s"
            % (status, len(text), text)
        )

    def fail(self, status: bytes, why: bytes) -> None:
        self.reply(status, why + b"\n")
        self.framer.close_when_done()

    def frame_too_large(self, error: FrameTooLarge) -> None:
        self.fail(b"431 Request Header Fields Too Large", b"headers over 16 KiB")

    def end_received(self, data: bytes) -> None:
        self.framer.close_when_done()  # the client is done; an unfinished request is dropped


if __name__ == "__main__":
    from ._run import main

    main(HttpRequestReader, __doc__.splitlines()[0], 8080)
