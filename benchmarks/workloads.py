"""The in-memory workloads of the benchmark suite and every peer's case for them.

A case takes the list of chunks and returns its whole output: one unit per
frame (or per parsed command). A streamed frame's unit is a :class:`Pieces`
list, joined only when checked, after the timing. Every peer of a workload does
the same work: where one builds a frame, all do; where one parses a command
into its arguments, all do.
"""

from __future__ import annotations

import asyncio
import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sanschat import NEED_DATA, AnyDelimiter, Framer, LengthPrefix, deliver_events

Chunks = Sequence[bytes]
Result = list[Any]
Case = Callable[[Chunks], Result]


class Pieces(list):  # type: ignore[type-arg]
    """The pieces of one streamed frame, in order."""


@dataclass
class Workload:
    name: str
    title: str
    chunks: list[bytes]
    expected: Result
    cases: list[tuple[str, Case | str]] = field(default_factory=list)
    repeats: int = 5

    def check(self, result: Result) -> bool:
        """Whether ``result`` is exactly the expected output."""
        return [b"".join(unit) if type(unit) is Pieces else unit for unit in result] == self.expected


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def trickle(data: bytes, rng: random.Random) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, 7)
        out.append(data[i : i + n])
        i += n
    return out


def optional(make: Callable[[], Case]) -> Case | str:
    try:
        return make()
    except ImportError as exc:
        return f"skipped ({exc.name} not installed)"


def feed_asyncio(chunks: Chunks, parse: Callable[[asyncio.StreamReader], Any]) -> Result:
    """Run ``parse(reader)`` while the chunks arrive one per loop iteration, as
    from a socket (asyncio's own readers at their fastest: no transport)."""

    async def main() -> Result:
        reader = asyncio.StreamReader(limit=1 << 30)

        async def feed() -> None:
            for chunk in chunks:
                reader.feed_data(chunk)
                await asyncio.sleep(0)
            reader.feed_eof()

        feeder = asyncio.ensure_future(feed())
        out: Result = await parse(reader)
        await feeder
        return out

    return asyncio.run(main())


def _asynchat_module():  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import asynchat

    return asynchat


def run_asynchat(channel: Any, chunks: Chunks) -> None:
    """Hand the chunks to a socketless async_chat through its real handle_read."""
    it = iter(chunks)
    channel.recv = lambda size: next(it)
    channel.ac_in_buffer_size = 1 << 20
    for _ in range(len(chunks)):
        channel.handle_read()


# ------------------------------------------------------------ lines (W1, W2, W4)


def make_lines(count: int, rng: random.Random) -> tuple[bytes, list[bytes]]:
    letters = b"abcdefghijklmnopqrstuvwxyz0123456789 "
    lines = [bytes(rng.choices(letters, k=rng.randint(8, 120))) for _ in range(count)]
    return b"".join(line + b"\r\n" for line in lines), lines


def floor_split(term: bytes) -> Case:
    def run(chunks: Chunks) -> Result:
        out: Result = []
        tail = b""
        for chunk in chunks:
            lines = (tail + chunk).split(term)
            tail = lines.pop()
            out += lines
        return out

    return run


def floor_copy(term: bytes) -> Case:
    """Append every chunk to one buffer, split once at the end: a plain copy."""

    def run(chunks: Chunks) -> Result:
        buf = bytearray()
        for chunk in chunks:
            buf += chunk
        *frames, _tail = bytes(buf).split(term)
        return frames

    return run


def sanschat_events(term: object) -> Case:
    def run(chunks: Chunks) -> Result:
        f = Framer(term, max_frame_size=None)  # type: ignore[arg-type]
        out: Result = []
        append = out.append
        for chunk in chunks:
            f.receive_data(chunk)
            while (event := f.next_event()) is not NEED_DATA:
                append(event.data)  # type: ignore[union-attr]
        return out

    return run


def sanschat_payloads(term: object) -> Case:
    def run(chunks: Chunks) -> Result:
        f = Framer(term, max_frame_size=None)  # type: ignore[arg-type]
        out: Result = []
        for chunk in chunks:
            f.receive_data(chunk)
            out += f.payloads()
            while (event := f.next_event()) is not NEED_DATA:  # nothing, for these inputs
                out.append(event.data)  # type: ignore[union-attr]
        return out

    return run


def sanschat_take(term: object) -> Case:
    """take_payloads(): every whole frame of a chunk in one list (what a
    Handler's frames_received gets)."""

    def run(chunks: Chunks) -> Result:
        f = Framer(term, max_frame_size=None)  # type: ignore[arg-type]
        out: Result = []
        for chunk in chunks:
            f.receive_data(chunk)
            while taken := f.take_payloads():
                out += taken
        return out

    return run


def twisted_lines(kind: str, term: bytes) -> Case:
    from twisted.protocols import basic

    base = basic.LineOnlyReceiver if kind == "LineOnlyReceiver" else basic.LineReceiver

    class Receiver(base):  # type: ignore[misc, valid-type]
        delimiter = term
        MAX_LENGTH = 1 << 30

        def __init__(self) -> None:
            self.out: Result = []
            self.lineReceived = self.out.append  # type: ignore[assignment]

    class Transport:
        disconnecting = False

    def run(chunks: Chunks) -> Result:
        receiver = Receiver()
        receiver.transport = Transport()
        return _run_twisted(receiver, chunks)

    return run


def asyncio_readuntil(term: bytes) -> Case:
    async def parse(reader: asyncio.StreamReader) -> Result:
        out: Result = []
        while True:
            try:
                line = await reader.readuntil(term)
            except asyncio.IncompleteReadError:
                return out
            out.append(line[: -len(term)])

    return lambda chunks: feed_asyncio(chunks, parse)


def anyio_stream(chunks: Chunks) -> Any:
    import anyio
    from anyio.abc import ByteReceiveStream
    from anyio.streams.buffered import BufferedByteReceiveStream

    class ChunkStream(ByteReceiveStream):
        def __init__(self) -> None:
            self.it = iter(chunks)

        async def receive(self, max_bytes: int = 65536) -> bytes:
            try:
                return next(self.it)
            except StopIteration:
                raise anyio.EndOfStream from None

        async def aclose(self) -> None:
            pass

    return BufferedByteReceiveStream(ChunkStream())


def anyio_lines(term: bytes) -> Case:
    import anyio

    async def main(chunks: Chunks) -> Result:
        stream = anyio_stream(chunks)
        out: Result = []
        while True:
            try:
                out.append(await stream.receive_until(term, 1 << 30))
            except (anyio.IncompleteRead, anyio.EndOfStream):
                return out

    return lambda chunks: anyio.run(main, chunks)


def asynchat_lines(term: bytes) -> Case:
    asynchat = _asynchat_module()

    class Channel(asynchat.async_chat):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__(sock=None, map={})
            self.set_terminator(term)
            self.incoming: list[bytes] = []
            self.out: Result = []

        def collect_incoming_data(self, data: bytes) -> None:
            self.incoming.append(data)

        def found_terminator(self) -> None:
            self.out.append(b"".join(self.incoming))
            self.incoming = []

    def run(chunks: Chunks) -> Result:
        channel = Channel()
        run_asynchat(channel, chunks)
        return channel.out

    return run


# --------------------------------------------------------- counted bodies (W3)


def floor_slices(size: int, whole: bool) -> Case:
    """Slice each chunk once (and join a body's slices, whole): the least a
    count framer must do."""

    def run(chunks: Chunks) -> Result:
        out: Result = []
        pieces = Pieces()
        left = size
        for chunk in chunks:
            pos = 0
            while pos < len(chunk):
                piece = chunk[pos : pos + left]
                pos += len(piece)
                left -= len(piece)
                pieces.append(piece)
                if not left:
                    out.append(b"".join(pieces) if whole else pieces)
                    pieces = Pieces()
                    left = size
        return out

    return run


def sanschat_counts(size: int, stream: bool) -> Case:
    def run(chunks: Chunks) -> Result:
        f = Framer(size, stream=stream, max_frame_size=None)
        out: Result = []
        pieces = Pieces()
        for chunk in chunks:
            f.receive_data(chunk)
            while (event := f.next_event()) is not NEED_DATA:
                if type(event).__name__ == "Data":
                    pieces.append(event.data)  # type: ignore[union-attr]
                    continue
                if stream:
                    pieces.append(event.data)  # type: ignore[union-attr]
                    out.append(pieces)
                    pieces = Pieces()
                else:
                    out.append(event.data)  # type: ignore[union-attr]
                f.set_terminator(size, stream=stream)
        return out

    return run


def asynchat_counts(size: int, whole: bool) -> Case:
    asynchat = _asynchat_module()

    class Channel(asynchat.async_chat):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__(sock=None, map={})
            self.set_terminator(size)
            self.pieces = Pieces()
            self.out: Result = []

        def collect_incoming_data(self, data: bytes) -> None:
            self.pieces.append(data)

        def found_terminator(self) -> None:
            self.out.append(b"".join(self.pieces) if whole else self.pieces)
            self.pieces = Pieces()
            self.set_terminator(size)

    def run(chunks: Chunks) -> Result:
        channel = Channel()
        run_asynchat(channel, chunks)
        return channel.out

    return run


def asyncio_counts(size: int) -> Case:
    async def parse(reader: asyncio.StreamReader) -> Result:
        out: Result = []
        while True:
            try:
                out.append(await reader.readexactly(size))
            except asyncio.IncompleteReadError:
                return out

    return lambda chunks: feed_asyncio(chunks, parse)


# --------------------------------------------------------- HTTP requests (W5)


def make_http(count: int, rng: random.Random) -> tuple[bytes, list[bytes]]:
    parts, units = [], []
    for i in range(count):
        length = rng.choice([0, 0, 5, 64, 300, 1500])
        head = (
            b"POST /item/%d HTTP/1.1\r\nHost: bench\r\nUser-Agent: sanschat-bench\r\n"
            b"Accept: */*\r\nContent-Length: %d" % (i, length)
        )
        body = bytes(rng.choices(b"xyz", k=length))
        parts.append(head + b"\r\n\r\n" + body)
        units += [head, body]
    return b"".join(parts), units


def _content_length(head: bytes) -> int:
    return int(head[head.rindex(b":") + 1 :])


def sanschat_http(use_payloads: bool) -> Case:
    def run(chunks: Chunks) -> Result:
        f = Framer(b"\r\n\r\n", max_frame_size=None)
        out: Result = []
        in_body = False
        for chunk in chunks:
            f.receive_data(chunk)
            if use_payloads:
                for data in f.payloads():
                    out.append(data)
                    in_body = not in_body
                    f.set_terminator(_content_length(data) if in_body else b"\r\n\r\n")
            while (event := f.next_event()) is not NEED_DATA:
                data = event.data  # type: ignore[union-attr]
                out.append(data)
                in_body = not in_body
                f.set_terminator(_content_length(data) if in_body else b"\r\n\r\n")
        return out

    return run


def sanschat_http_read_exactly(chunks: Chunks) -> Result:
    """The same with read_exactly: the body, then headers again by themselves."""
    f = Framer(b"\r\n\r\n", max_frame_size=None, max_value_size=None)
    out: Result = []
    in_body = False
    for chunk in chunks:
        f.receive_data(chunk)
        for data in f.payloads():
            out.append(data)
            if in_body:
                in_body = False
            else:
                in_body = True
                f.read_exactly(_content_length(data))
    return out


def asyncio_http(chunks: Chunks) -> Result:
    async def parse(reader: asyncio.StreamReader) -> Result:
        out: Result = []
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return out
            out.append(head[:-4])
            out.append(await reader.readexactly(_content_length(head[:-4])))

    return feed_asyncio(chunks, parse)


def anyio_http() -> Case:
    import anyio

    async def main(chunks: Chunks) -> Result:
        stream = anyio_stream(chunks)
        out: Result = []
        while True:
            try:
                head = await stream.receive_until(b"\r\n\r\n", 1 << 30)
            except (anyio.IncompleteRead, anyio.EndOfStream):
                return out
            out.append(head)
            out.append(await stream.receive_exactly(_content_length(head)))

    return lambda chunks: anyio.run(main, chunks)


def asynchat_http(chunks: Chunks) -> Result:
    asynchat = _asynchat_module()

    class Channel(asynchat.async_chat):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__(sock=None, map={})
            self.set_terminator(b"\r\n\r\n")
            self.incoming: list[bytes] = []
            self.in_body = False
            self.out: Result = []

        def collect_incoming_data(self, data: bytes) -> None:
            self.incoming.append(data)

        def found_terminator(self) -> None:
            data = b"".join(self.incoming)
            self.incoming = []
            self.out.append(data)
            self.in_body = not self.in_body
            if not self.in_body:
                self.set_terminator(b"\r\n\r\n")
            elif length := _content_length(data):
                self.set_terminator(length)
            else:  # asynchat reads 0 as "forever": the seed's trap
                self.found_terminator()

    channel = Channel()
    run_asynchat(channel, chunks)
    return channel.out


# ------------------------------------------------------------- RESP (W6)


def make_resp(count: int, rng: random.Random) -> tuple[bytes, list[list[bytes]]]:
    """SET and GET commands as redis-py sends them; one value in 50 holds a CRLF."""
    commands = []
    for _ in range(count):
        key = b"key:%06d" % rng.randrange(1_000_000)
        if rng.random() < 0.5:
            value = bytes(rng.choices(b"abcdefghij", k=rng.randint(1, 100)))
            if rng.random() < 0.02:
                value += b"\r\n" + value
            commands.append([b"SET", key, value])
        else:
            commands.append([b"GET", key])
    wire = b"".join(
        b"*%d\r\n" % len(c) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in c) for c in commands
    )
    return wire, commands


def sanschat_resp(use_payloads: bool) -> Case:
    """A RESP command parser over a Framer, as a user writes it."""

    def run(chunks: Chunks) -> Result:
        f = Framer(b"\r\n", max_frame_size=65536, max_value_size=None)
        out: Result = []
        args: list[bytes] = []
        left = 0
        in_value = False
        for chunk in chunks:
            f.receive_data(chunk)
            frames = f.payloads() if use_payloads else iter(f.next_event, NEED_DATA)
            for data in frames:
                if not use_payloads:
                    data = data.data  # type: ignore[attr-defined]
                if in_value:
                    in_value = False
                    args.append(data)
                    left -= 1
                    if not left:
                        out.append(args)
                elif left:
                    in_value = True
                    f.read_exactly(int(data[1:]), b"\r\n")
                else:
                    left = int(data[1:])
                    args = []
        return out

    return run


def sanschat_resp_handler(chunks: Chunks) -> Result:
    """The same parser as a Handler (the RESP example's), run by deliver_events
    as every binding runs it: one callback per frame."""
    from sanschat.examples.resp import RespServer

    out: Result = []

    class Parser(RespServer):
        def execute(self, args: list[bytes]) -> None:
            out.append(args)

    handler = Parser()
    framer = handler.new_framer()
    handler.connection_made(framer)
    for chunk in chunks:
        framer.receive_data(chunk)
        deliver_events(framer, handler)
    return out


def asyncio_resp(chunks: Chunks) -> Result:
    async def parse(reader: asyncio.StreamReader) -> Result:
        out: Result = []
        while line := await reader.readline():
            args = []
            for _ in range(int(line[1:])):
                size = int((await reader.readline())[1:])
                args.append((await reader.readexactly(size + 2))[:-2])
            out.append(args)
        return out

    return feed_asyncio(chunks, parse)


def _raw_value_receiver(max_line: int) -> type:
    """Twisted's ``LineReceiver`` plus what RESP and memcached need of raw mode:
    ``read_value(size)`` collects ``size`` bytes and the CRLF after them, gives
    them to ``value_received`` and returns to lines (as their clients do)."""
    from twisted.protocols.basic import LineReceiver

    class RawValueReceiver(LineReceiver):  # type: ignore[misc]
        MAX_LENGTH = max_line

        def __init__(self) -> None:
            self.out: Result = []
            self.value: list[bytes] = []
            self.need = 0

        def read_value(self, size: int) -> None:
            self.need = size + 2
            self.value = []
            self.setRawMode()

        def rawDataReceived(self, data: bytes) -> None:
            need = self.need
            if len(data) < need:
                self.value.append(data)
                self.need = need - len(data)
                return
            self.value.append(data[:need])
            self.value_received(b"".join(self.value)[:-2])
            self.setLineMode(data[need:])

        def value_received(self, value: bytes) -> None:
            raise NotImplementedError

    return RawValueReceiver


def _run_twisted(receiver: Any, chunks: Chunks) -> Result:
    for chunk in chunks:
        receiver.dataReceived(chunk)
    out: Result = receiver.out
    return out


def twisted_resp() -> Case:
    class Receiver(_raw_value_receiver(65536)):  # type: ignore[misc]
        args: list[bytes]  # set by each "*N" line
        left = 0

        def lineReceived(self, line: bytes) -> None:
            if self.left:
                self.read_value(int(line[1:]))
            else:
                self.left = int(line[1:])
                self.args = []

        def value_received(self, value: bytes) -> None:
            self.args.append(value)
            self.left -= 1
            if not self.left:
                self.out.append(self.args)

    return lambda chunks: _run_twisted(Receiver(), chunks)


def hiredis_resp() -> Case:
    import hiredis

    def run(chunks: Chunks) -> Result:
        reader = hiredis.Reader()
        out: Result = []
        for chunk in chunks:
            reader.feed(chunk)
            while (command := reader.gets()) is not False:
                out.append(command)
        return out

    return run


# --------------------------------------------------------- memcached (W7)


def make_memcached(count: int, rng: random.Random) -> tuple[bytes, list[bytes]]:
    """``set`` lines with their data blocks, and multi-key ``get`` lines."""
    parts, units = [], []
    for _ in range(count):
        if rng.random() < 0.5:
            key = b"k%06d" % rng.randrange(1_000_000)
            data = bytes(rng.choices(b"lmnop\r\n", k=rng.randint(0, 400)))
            line = b"set %s %d 0 %d" % (key, rng.randrange(16), len(data))
            parts.append(line + b"\r\n" + data + b"\r\n")
            units += [line, data]
        else:
            line = b"get " + b" ".join(b"k%06d" % rng.randrange(1_000_000) for _ in range(rng.randint(1, 5)))
            parts.append(line + b"\r\n")
            units.append(line)
    return b"".join(parts), units


def sanschat_memcached(use_payloads: bool) -> Case:
    def run(chunks: Chunks) -> Result:
        f = Framer(b"\r\n", max_frame_size=2048, max_value_size=None)
        out: Result = []
        in_data = False
        for chunk in chunks:
            f.receive_data(chunk)
            frames = f.payloads() if use_payloads else iter(f.next_event, NEED_DATA)
            for data in frames:
                if not use_payloads:
                    data = data.data  # type: ignore[attr-defined]
                out.append(data)
                if in_data:
                    in_data = False
                elif data.startswith(b"set "):
                    in_data = True
                    f.read_exactly(int(data.split()[4]), b"\r\n")
        return out

    return run


def asyncio_memcached(chunks: Chunks) -> Result:
    async def parse(reader: asyncio.StreamReader) -> Result:
        out: Result = []
        while line := await reader.readline():
            out.append(line[:-2])
            if line.startswith(b"set "):
                out.append((await reader.readexactly(int(line.split()[4]) + 2))[:-2])
        return out

    return feed_asyncio(chunks, parse)


def twisted_memcached() -> Case:
    class Receiver(_raw_value_receiver(2048)):  # type: ignore[misc]
        def lineReceived(self, line: bytes) -> None:
            self.out.append(line)
            if line.startswith(b"set "):
                self.read_value(int(line.split()[4]))

        def value_received(self, value: bytes) -> None:
            self.out.append(value)

    return lambda chunks: _run_twisted(Receiver(), chunks)


# ------------------------------------------------------ length prefixes (W8)


def floor_prefixed(chunks: Chunks) -> Result:
    """A hand-written loop over the joined input: read a prefix, slice a payload."""
    data = b"".join(chunks)
    out: Result = []
    pos = 0
    size = len(data)
    while pos + 4 <= size:
        length = int.from_bytes(data[pos : pos + 4], "big")
        out.append(data[pos + 4 : pos + 4 + length])
        pos += 4 + length
    return out


def twisted_int32() -> Case:
    from twisted.protocols import basic

    class Receiver(basic.Int32StringReceiver):  # type: ignore[misc]
        MAX_LENGTH = 1 << 30

        def __init__(self) -> None:
            self.out: Result = []
            self.stringReceived = self.out.append  # type: ignore[assignment]

    return lambda chunks: _run_twisted(Receiver(), chunks)


def asyncio_prefixed(chunks: Chunks) -> Result:
    async def parse(reader: asyncio.StreamReader) -> Result:
        out: Result = []
        while True:
            try:
                head = await reader.readexactly(4)
            except asyncio.IncompleteReadError:
                return out
            out.append(await reader.readexactly(int.from_bytes(head, "big")))

    return feed_asyncio(chunks, parse)


# -------------------------------------------------------------- the suite


def build(quick: bool) -> list[Workload]:
    rng = random.Random(20261125)
    scale = 10 if quick else 1
    crlf = b"\r\n"
    any_eol = AnyDelimiter(b"\r\n", b"\n")

    w1_data, w1_lines = make_lines(500_000 // scale, rng)
    w1 = Workload("W1", "pipelined small lines, 64 KiB chunks", chunked(w1_data, 65536), w1_lines)
    w1.cases = [
        ("floor: bytes.split", floor_split(crlf)),
        ("sanschat payloads()", sanschat_payloads(crlf)),
        ("sanschat next_event()", sanschat_events(crlf)),
        ("sanschat take_payloads()", sanschat_take(crlf)),
        ("Twisted LineOnlyReceiver", optional(lambda: twisted_lines("LineOnlyReceiver", crlf))),
        ("Twisted LineReceiver", optional(lambda: twisted_lines("LineReceiver", crlf))),
        ("asyncio readuntil", asyncio_readuntil(crlf)),
        ("anyio receive_until", optional(lambda: anyio_lines(crlf))),
        ("asynchat", optional(lambda: asynchat_lines(crlf))),
        ("sanschat AnyDelimiter(CRLF, LF) payloads()", sanschat_payloads(any_eol)),
        ("sanschat AnyDelimiter(CRLF, LF) next_event()", sanschat_events(any_eol)),
    ]

    w2_data, w2_lines = make_lines(20_000 // scale, rng)
    w2 = Workload("W2", "trickle: chunks of 1-7 bytes", trickle(w2_data, rng), w2_lines)
    w2.cases = [
        ("floor: bytes.split", floor_split(crlf)),
        ("sanschat payloads()", sanschat_payloads(crlf)),
        ("sanschat next_event()", sanschat_events(crlf)),
        ("sanschat take_payloads()", sanschat_take(crlf)),
        ("Twisted LineOnlyReceiver", optional(lambda: twisted_lines("LineOnlyReceiver", crlf))),
        ("asyncio readuntil", asyncio_readuntil(crlf)),
        ("asynchat", optional(lambda: asynchat_lines(crlf))),
    ]

    body = 1 << 20
    bodies = 50 // scale
    block = bytes(rng.getrandbits(8) for _ in range(4096))
    w3_data = block * (body * bodies // 4096)
    w3 = Workload(
        "W3",
        f"{bodies} bodies of 1 MiB by count, each built whole (streamed: kept as pieces), 64 KiB chunks",
        chunked(w3_data, 65536),
        [w3_data[i * body : (i + 1) * body] for i in range(bodies)],
    )
    w3.cases = [
        ("floor: slice each chunk once, join", floor_slices(body, True)),
        ("sanschat whole", sanschat_counts(body, False)),
        ("sanschat streaming", sanschat_counts(body, True)),
        ("asynchat, joined", optional(lambda: asynchat_counts(body, True))),
        ("asynchat, pieces kept", optional(lambda: asynchat_counts(body, False))),
        ("asyncio readexactly", asyncio_counts(body)),
    ]

    workloads = [w1, w2, w3]
    for mib in (4, 16):
        size = (mib << 20) // scale
        msg = bytes(rng.choices(b"abc\r\n.", k=size))
        while b"\r\n.\r\n" in msg:  # dot-stuffing, until the end marker cannot occur
            msg = msg.replace(b"\r\n.\r\n", b"\r\n..\r\n")
        term = b"\r\n.\r\n"
        w4 = Workload(
            f"W4-{mib}",
            f"one {mib} MiB message ended by CRLF.CRLF, 4 KiB chunks",
            chunked(msg + term, 4096),
            [msg],
            repeats=3,
        )
        w4.cases = [
            ("floor: copy, split once", floor_copy(term)),
            ("sanschat payloads()", sanschat_payloads(term)),
            ("sanschat next_event()", sanschat_events(term)),
            ("asyncio readuntil", asyncio_readuntil(term)),
            ("asynchat", optional(lambda term=term: asynchat_lines(term))),  # type: ignore[misc]
        ]
        if mib == 4:  # quadratic: 16 MiB would take minutes
            w4.cases.append(
                (
                    "Twisted LineOnlyReceiver",
                    optional(lambda term=term: twisted_lines("LineOnlyReceiver", term)),
                )
            )
        workloads.append(w4)

    w5_data, w5_units = make_http(20_000 // scale, rng)
    w5 = Workload(
        "W5", "HTTP: header block + Content-Length body, 64 KiB chunks", chunked(w5_data, 65536), w5_units
    )
    w5.cases = [
        ("sanschat next_event()", sanschat_http(False)),
        ("sanschat payloads()", sanschat_http(True)),
        ("sanschat payloads() + read_exactly", sanschat_http_read_exactly),
        ("asyncio readuntil/readexactly", asyncio_http),
        ("anyio receive_until/receive_exactly", optional(anyio_http)),
        ("asynchat", optional(lambda: asynchat_http)),
    ]
    workloads.append(w5)

    w6_data, w6_commands = make_resp(100_000 // scale, rng)
    w6 = Workload(
        "W6",
        "RESP: pipelined SET/GET commands as redis-py sends them, 64 KiB chunks",
        chunked(w6_data, 65536),
        w6_commands,
    )
    w6.cases = [
        ("sanschat payloads() + read_exactly", sanschat_resp(True)),
        ("sanschat next_event() + read_exactly", sanschat_resp(False)),
        ("sanschat Handler (examples.resp)", sanschat_resp_handler),
        ("asyncio readline/readexactly", asyncio_resp),
        ("Twisted LineReceiver + raw mode", optional(twisted_resp)),
        ("hiredis Reader (C, the ceiling)", optional(hiredis_resp)),
    ]
    workloads.append(w6)

    w7_data, w7_units = make_memcached(100_000 // scale, rng)
    w7 = Workload(
        "W7", "memcached: set + data block, multi-key get, 64 KiB chunks", chunked(w7_data, 65536), w7_units
    )
    w7.cases = [
        ("sanschat payloads() + read_exactly", sanschat_memcached(True)),
        ("sanschat next_event() + read_exactly", sanschat_memcached(False)),
        ("asyncio readline/readexactly", asyncio_memcached),
        ("Twisted LineReceiver + raw mode", optional(twisted_memcached)),
    ]
    workloads.append(w7)

    payloads = [bytes(rng.choices(b"pqrs", k=rng.randint(0, 200))) for _ in range(200_000 // scale)]
    w8_data = b"".join(len(p).to_bytes(4, "big") + p for p in payloads)
    w8 = Workload(
        "W8", "length-prefixed messages (4-byte big-endian), 64 KiB chunks", chunked(w8_data, 65536), payloads
    )
    w8.cases = [
        ("floor: hand loop over joined input", floor_prefixed),
        ("sanschat LengthPrefix payloads()", sanschat_payloads(LengthPrefix(4))),
        ("sanschat LengthPrefix next_event()", sanschat_events(LengthPrefix(4))),
        ("Twisted Int32StringReceiver", optional(twisted_int32)),
        ("asyncio readexactly", asyncio_prefixed),
    ]
    workloads.append(w8)
    return workloads
