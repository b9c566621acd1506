"""sanschat's benchmark suite: the same in-memory input fed to each peer.

Run: ``python benchmarks/run.py`` (``--quick`` for a smaller smoke run,
``--markdown FILE`` to write the table). Peers need the ``bench`` extra:
``pip install .[bench]``; a peer that is not installed is reported as skipped.

Every case returns (frames, payload bytes); each is checked against the
expected figures of its workload, so a fast wrong answer fails loudly.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

if "SANSCHAT_BENCH_INSTALLED" not in __import__("os").environ:
    sys.path.insert(0, __import__("os").path.join(__import__("os").path.dirname(__file__), "..", "src"))

import sanschat  # noqa: E402
from sanschat import NEED_DATA, Framer  # noqa: E402

Chunks = Sequence[bytes]
Result = tuple[int, int]  # frames, payload bytes


# ------------------------------------------------------------------ workloads


@dataclass
class Workload:
    name: str
    title: str
    chunks: list[bytes]
    expected: Result
    cases: list[tuple[str, Callable[[Chunks], Result]]] = field(default_factory=list)
    repeats: int = 5


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def make_lines(count: int, rng: random.Random) -> tuple[bytes, Result]:
    letters = b"abcdefghijklmnopqrstuvwxyz0123456789 "
    lines = [bytes(rng.choices(letters, k=rng.randint(8, 120))) for _ in range(count)]
    return b"".join(line + b"\r\n" for line in lines), (count, sum(map(len, lines)))


def trickle(data: bytes, rng: random.Random) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, 7)
        out.append(data[i : i + n])
        i += n
    return out


def make_http(count: int, rng: random.Random) -> tuple[bytes, int, Result]:
    parts, body_bytes = [], 0
    for i in range(count):
        length = rng.choice([0, 0, 5, 64, 300, 1500])
        head = (
            b"POST /item/%d HTTP/1.1\r\nHost: bench\r\nUser-Agent: sanschat-bench\r\n"
            b"Accept: */*\r\nContent-Length: %d\r\n\r\n" % (i, length)
        )
        parts.append(head + bytes(rng.choices(b"xyz", k=length)))
        body_bytes += length
    data = b"".join(parts)
    return data, body_bytes, (2 * count, 0)


# ---------------------------------------------------------------- sanschat


def sanschat_events(term: bytes) -> Callable[[Chunks], Result]:
    def run(chunks: Chunks) -> Result:
        f = Framer(term, max_frame_size=None)
        n = total = 0
        for chunk in chunks:
            f.receive_data(chunk)
            while (event := f.next_event()) is not NEED_DATA:
                n += 1
                total += len(event.data)  # type: ignore[union-attr]
        return n, total

    return run


def sanschat_payloads(term: bytes) -> Callable[[Chunks], Result]:
    def run(chunks: Chunks) -> Result:
        f = Framer(term, max_frame_size=None)
        n = total = 0
        for chunk in chunks:
            f.receive_data(chunk)
            for payload in f.payloads():
                n += 1
                total += len(payload)
        return n, total

    return run


def sanschat_counts(size: int, stream: bool) -> Callable[[Chunks], Result]:
    def run(chunks: Chunks) -> Result:
        f = Framer(size, stream=stream, max_frame_size=None)
        frames = total = 0
        for chunk in chunks:
            f.receive_data(chunk)
            while (event := f.next_event()) is not NEED_DATA:
                total += len(event.data)  # type: ignore[union-attr]
                if f.get_terminator() is None:  # a body completed
                    frames += 1
                    f.set_terminator(size, stream=stream)
        return frames, total

    return run


def sanschat_kind(make_kind: Callable[[], object], batch: bool) -> Callable[[Chunks], Result]:
    """Frames of a terminator kind (LengthPrefix, AnyDelimiter...), by payloads() or next_event()."""
    kind = make_kind()

    def run(chunks: Chunks) -> Result:
        f = Framer(kind, max_frame_size=None)  # type: ignore[arg-type]
        n = total = 0
        for chunk in chunks:
            f.receive_data(chunk)
            if batch:
                for payload in f.payloads():
                    n += 1
                    total += len(payload)
            while (event := f.next_event()) is not NEED_DATA:
                n += 1
                total += len(event.data)  # type: ignore[union-attr]
        return n, total

    return run


def sanschat_http(chunks: Chunks) -> Result:
    f = Framer(b"\r\n\r\n", max_frame_size=None)
    frames = 0
    reading_headers = True
    for chunk in chunks:
        f.receive_data(chunk)
        while (event := f.next_event()) is not NEED_DATA:
            frames += 1
            if reading_headers:
                data = event.data  # type: ignore[union-attr]
                length = int(data[data.rindex(b":") + 1 :])
                f.set_terminator(length)
                reading_headers = False
            else:
                f.set_terminator(b"\r\n\r\n")
                reading_headers = True
    return frames, 0


# -------------------------------------------------------------------- floors


def floor_split(term: bytes) -> Callable[[Chunks], Result]:
    def run(chunks: Chunks) -> Result:
        n = total = 0
        tail = b""
        for chunk in chunks:
            lines = (tail + chunk).split(term)
            tail = lines.pop()
            for line in lines:
                n += 1
                total += len(line)
        return n, total

    return run


def floor_copy(term: bytes) -> Callable[[Chunks], Result]:
    """Append every chunk to one buffer, split once at the end: a plain copy."""

    def run(chunks: Chunks) -> Result:
        buf = bytearray()
        for chunk in chunks:
            buf += chunk
        *frames, _tail = bytes(buf).split(term)
        return len(frames), sum(map(len, frames))

    return run


def floor_slices(size: int) -> Callable[[Chunks], Result]:
    """Slice each chunk once into bytes: the least a count framer must do."""

    def run(chunks: Chunks) -> Result:
        frames = total = 0
        left = size
        for chunk in chunks:
            pos = 0
            while pos < len(chunk):
                piece = chunk[pos : pos + left]
                pos += len(piece)
                total += len(piece)
                left -= len(piece)
                if not left:
                    frames += 1
                    left = size
        return frames, total

    return run


# -------------------------------------------------------------------- asynchat


def _asynchat_module():  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import asynchat

    return asynchat


def asynchat_lines(term: bytes) -> Callable[[Chunks], Result]:
    asynchat = _asynchat_module()

    class Channel(asynchat.async_chat):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__(sock=None, map={})
            self.set_terminator(term)
            self.incoming: list[bytes] = []
            self.n = self.total = 0

        def collect_incoming_data(self, data: bytes) -> None:
            self.incoming.append(data)

        def found_terminator(self) -> None:
            line = b"".join(self.incoming)
            self.incoming = []
            self.n += 1
            self.total += len(line)

    def run(chunks: Chunks) -> Result:
        ch = Channel()
        it = iter(chunks)
        ch.recv = lambda size: next(it)
        ch.ac_in_buffer_size = 1 << 20
        for _ in range(len(chunks)):
            ch.handle_read()
        return ch.n, ch.total

    return run


def asynchat_counts(size: int) -> Callable[[Chunks], Result]:
    asynchat = _asynchat_module()

    class Channel(asynchat.async_chat):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__(sock=None, map={})
            self.set_terminator(size)
            self.frames = self.total = 0

        def collect_incoming_data(self, data: bytes) -> None:
            self.total += len(data)

        def found_terminator(self) -> None:
            self.frames += 1
            self.set_terminator(size)

    def run(chunks: Chunks) -> Result:
        ch = Channel()
        it = iter(chunks)
        ch.recv = lambda n: next(it)
        ch.ac_in_buffer_size = 1 << 20
        for _ in range(len(chunks)):
            ch.handle_read()
        return ch.frames, ch.total

    return run


def asynchat_http(chunks: Chunks) -> Result:
    asynchat = _asynchat_module()

    class Channel(asynchat.async_chat):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__(sock=None, map={})
            self.set_terminator(b"\r\n\r\n")
            self.incoming: list[bytes] = []
            self.reading_headers = True
            self.frames = 0

        def collect_incoming_data(self, data: bytes) -> None:
            self.incoming.append(data)

        def found_terminator(self) -> None:
            data = b"".join(self.incoming)
            self.incoming = []
            self.frames += 1
            if self.reading_headers:
                length = int(data[data.rindex(b":") + 1 :])
                self.reading_headers = False
                if length:
                    self.set_terminator(length)
                else:  # asynchat reads 0 as "forever": the seed's trap
                    self.found_terminator()
            else:
                self.set_terminator(b"\r\n\r\n")
                self.reading_headers = True

    ch = Channel()
    it = iter(chunks)
    ch.recv = lambda n: next(it)
    ch.ac_in_buffer_size = 1 << 20
    for _ in range(len(chunks)):
        ch.handle_read()
    return ch.frames, 0


# --------------------------------------------------------------------- Twisted


def twisted_lines(kind: str, term: bytes) -> Callable[[Chunks], Result]:
    from twisted.protocols import basic

    base = basic.LineOnlyReceiver if kind == "LineOnlyReceiver" else basic.LineReceiver

    class Receiver(base):  # type: ignore[misc, valid-type]
        delimiter = term
        MAX_LENGTH = 1 << 30

        def __init__(self) -> None:
            self.n = self.total = 0

        def lineReceived(self, line: bytes) -> None:
            self.n += 1
            self.total += len(line)

    class Transport:
        disconnecting = False

    def run(chunks: Chunks) -> Result:
        r = Receiver()
        r.transport = Transport()
        for chunk in chunks:
            r.dataReceived(chunk)
        return r.n, r.total

    return run


def twisted_int32(chunks: Chunks) -> Result:
    from twisted.protocols import basic

    class Receiver(basic.Int32StringReceiver):  # type: ignore[misc]
        MAX_LENGTH = 1 << 30

        def __init__(self) -> None:
            self.n = self.total = 0

        def stringReceived(self, string: bytes) -> None:
            self.n += 1
            self.total += len(string)

    r = Receiver()
    for chunk in chunks:
        r.dataReceived(chunk)
    return r.n, r.total


def floor_prefixed(chunks: Chunks) -> Result:
    """A hand-written loop over the joined input: read a prefix, slice a payload."""
    data = b"".join(chunks)
    n = total = pos = 0
    size = len(data)
    while pos + 4 <= size:
        length = int.from_bytes(data[pos : pos + 4], "big")
        payload = data[pos + 4 : pos + 4 + length]
        pos += 4 + length
        n += 1
        total += len(payload)
    return n, total


def asyncio_prefixed(chunks: Chunks) -> Result:
    async def main() -> Result:
        reader = asyncio.StreamReader(limit=1 << 30)
        for chunk in chunks:
            reader.feed_data(chunk)
        reader.feed_eof()
        n = total = 0
        while True:
            try:
                head = await reader.readexactly(4)
            except asyncio.IncompleteReadError:
                return n, total
            payload = await reader.readexactly(int.from_bytes(head, "big"))
            n += 1
            total += len(payload)

    return asyncio.run(main())


# ---------------------------------------------------------------- asyncio/anyio


def asyncio_readuntil(term: bytes) -> Callable[[Chunks], Result]:
    async def main(chunks: Chunks) -> Result:
        reader = asyncio.StreamReader(limit=1 << 30)
        n = total = 0

        async def feed() -> None:
            for chunk in chunks:
                reader.feed_data(chunk)
                await asyncio.sleep(0)
            reader.feed_eof()

        feeder = asyncio.ensure_future(feed())
        while True:
            try:
                line = await reader.readuntil(term)
            except asyncio.IncompleteReadError:
                break
            n += 1
            total += len(line) - len(term)
        await feeder
        return n, total

    return lambda chunks: asyncio.run(main(chunks))


def asyncio_http(chunks: Chunks) -> Result:
    async def main() -> Result:
        reader = asyncio.StreamReader(limit=1 << 30)

        async def feed() -> None:
            for chunk in chunks:
                reader.feed_data(chunk)
                await asyncio.sleep(0)
            reader.feed_eof()

        feeder = asyncio.ensure_future(feed())
        frames = 0
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = int(head[head.rindex(b":") + 1 : -4])
            await reader.readexactly(length)
            frames += 2
        await feeder
        return frames, 0

    return asyncio.run(main())


def anyio_lines(term: bytes) -> Callable[[Chunks], Result]:
    import anyio
    from anyio.abc import ByteReceiveStream
    from anyio.streams.buffered import BufferedByteReceiveStream

    class ChunkStream(ByteReceiveStream):
        def __init__(self, chunks: Chunks) -> None:
            self.it = iter(chunks)

        async def receive(self, max_bytes: int = 65536) -> bytes:
            try:
                return next(self.it)
            except StopIteration:
                raise anyio.EndOfStream from None

        async def aclose(self) -> None:
            pass

    async def main(chunks: Chunks) -> Result:
        stream = BufferedByteReceiveStream(ChunkStream(chunks))
        n = total = 0
        while True:
            try:
                line = await stream.receive_until(term, 1 << 30)
            except (anyio.IncompleteRead, anyio.EndOfStream):
                break
            n += 1
            total += len(line)
        return n, total

    return lambda chunks: anyio.run(main, chunks)


# ------------------------------------------------------------------- running


def optional(make: Callable[[], Callable[[Chunks], Result]]) -> Callable[[Chunks], Result] | str:
    try:
        return make()
    except ImportError as exc:
        return f"skipped ({exc.name} not installed)"


def build(quick: bool) -> list[Workload]:
    rng = random.Random(20261125)
    scale = 10 if quick else 1
    crlf = b"\r\n"

    w1_data, w1_expected = make_lines(500_000 // scale, rng)
    w1 = Workload("W1", "pipelined small lines, 64 KiB chunks", chunked(w1_data, 65536), w1_expected)
    w1.cases = [
        ("floor: bytes.split", floor_split(crlf)),
        ("sanschat payloads()", sanschat_payloads(crlf)),
        ("sanschat next_event()", sanschat_events(crlf)),
        ("Twisted LineOnlyReceiver", optional(lambda: twisted_lines("LineOnlyReceiver", crlf))),
        ("Twisted LineReceiver", optional(lambda: twisted_lines("LineReceiver", crlf))),
        ("asyncio readuntil", asyncio_readuntil(crlf)),
        ("anyio receive_until", optional(lambda: anyio_lines(crlf))),
        ("asynchat", optional(lambda: asynchat_lines(crlf))),
        (
            "sanschat AnyDelimiter(CRLF, LF) payloads()",
            optional(lambda: sanschat_kind(any_line_endings, True)),
        ),
        (
            "sanschat AnyDelimiter(CRLF, LF) next_event()",
            optional(lambda: sanschat_kind(any_line_endings, False)),
        ),
    ]

    w2_data, w2_expected = make_lines(20_000 // scale, rng)
    w2 = Workload("W2", "trickle: chunks of 1-7 bytes", trickle(w2_data, rng), w2_expected)
    w2.cases = [
        ("floor: bytes.split", floor_split(crlf)),
        ("sanschat payloads()", sanschat_payloads(crlf)),
        ("sanschat next_event()", sanschat_events(crlf)),
        ("Twisted LineOnlyReceiver", optional(lambda: twisted_lines("LineOnlyReceiver", crlf))),
        ("asyncio readuntil", asyncio_readuntil(crlf)),
        ("asynchat", optional(lambda: asynchat_lines(crlf))),
    ]

    body = 1 << 20
    bodies = 50 // scale
    w3_data = bytes(rng.getrandbits(8) for _ in range(4096)) * (body * bodies // 4096)
    w3 = Workload(
        "W3",
        f"{bodies} bodies of 1 MiB by count, 64 KiB chunks",
        chunked(w3_data, 65536),
        (bodies, len(w3_data)),
    )
    w3.cases = [
        ("floor: slice each chunk once", floor_slices(body)),
        ("sanschat streaming", sanschat_counts(body, True)),
        ("sanschat whole", sanschat_counts(body, False)),
        ("asynchat", optional(lambda: asynchat_counts(body))),
    ]

    workloads = [w1, w2, w3]
    for mib in (4, 16):
        size = (mib << 20) // scale
        msg = bytes(rng.choices(b"abc\r\n.", k=size))
        while b"\r\n.\r\n" in msg:  # dot-stuffing, until the end marker cannot occur
            msg = msg.replace(b"\r\n.\r\n", b"\r\n..\r\n")
        data = msg + b"\r\n.\r\n"
        w4 = Workload(
            f"W4-{mib}",
            f"one {mib} MiB message ended by CRLF.CRLF, 4 KiB chunks",
            chunked(data, 4096),
            (1, len(msg)),
            repeats=3,
        )
        term = b"\r\n.\r\n"
        w4.cases = [
            ("floor: copy, split once", floor_copy(term)),
            ("sanschat payloads()", sanschat_payloads(term)),
            ("sanschat next_event()", sanschat_events(term)),
            ("asyncio readuntil", asyncio_readuntil(term)),
            ("asynchat", optional(lambda term=term: asynchat_lines(term))),
        ]
        if mib == 4:  # quadratic: 16 MiB would take minutes
            w4.cases.append(
                (
                    "Twisted LineOnlyReceiver",
                    optional(lambda: twisted_lines("LineOnlyReceiver", b"\r\n.\r\n")),
                )
            )
        workloads.append(w4)

    w5_data, _body_bytes, w5_expected = make_http(20_000 // scale, rng)
    w5 = Workload(
        "W5", "HTTP: header block + Content-Length body, 64 KiB chunks", chunked(w5_data, 65536), w5_expected
    )
    w5.cases = [
        ("sanschat next_event()", sanschat_http),
        ("asyncio readuntil/readexactly", asyncio_http),
        ("asynchat", optional(lambda: asynchat_http)),
    ]
    workloads.append(w5)

    payloads = [bytes(rng.choices(b"pqrs", k=rng.randint(0, 200))) for _ in range(200_000 // scale)]
    w6_data = b"".join(len(p).to_bytes(4, "big") + p for p in payloads)
    w6 = Workload(
        "W6",
        "length-prefixed messages (4-byte big-endian), 64 KiB chunks",
        chunked(w6_data, 65536),
        (len(payloads), sum(map(len, payloads))),
    )
    w6.cases = [
        ("floor: hand loop over joined input", floor_prefixed),
        ("sanschat LengthPrefix payloads()", optional(lambda: sanschat_kind(length_prefix_4, True))),
        ("sanschat LengthPrefix next_event()", optional(lambda: sanschat_kind(length_prefix_4, False))),
        (
            "Twisted Int32StringReceiver",
            optional(lambda: twisted_int32 if _has("twisted") else _missing("twisted")),
        ),
        ("asyncio readexactly", asyncio_prefixed),
    ]
    workloads.append(w6)
    return workloads


def any_line_endings() -> object:
    from sanschat import AnyDelimiter

    return AnyDelimiter(b"\r\n", b"\n")


def length_prefix_4() -> object:
    from sanschat import LengthPrefix

    return LengthPrefix(4)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _missing(module: str) -> Callable[[Chunks], Result]:
    raise ImportError(module, name=module)


def measure(case: Callable[[Chunks], Result], chunks: Chunks, repeats: int) -> tuple[float, Result]:
    times, result = [], (0, 0)
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = case(chunks)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def e2e_section(quick: bool, raw: list[dict[str, object]]) -> list[str]:
    """Run the loopback benchmark (benchmarks/e2e.py) and return its table."""
    sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
    import e2e

    clients, per_client = (20, 1000) if quick else (50, 4000)
    title = f"E2E: line echo over loopback, {clients} clients x {per_client} pipelined lines"
    print(f"\n{title}")
    figures = e2e.run(clients, per_client)
    lines = [f"### {title}", "", "| server | lines/s |", "|---|---:|"]
    lines += [f"| {name} | {rate:,.0f} |" for name, rate in figures.items()]
    lines.append("")
    for mine, peer in (
        ("sanschat asyncio", "asyncio StreamReader.readline"),
        ("sanschat trio", "trio receive_some+find"),
    ):
        if mine in figures and peer in figures:
            msg = f"{mine} vs {peer}: {figures[mine] / figures[peer]:.2f}x"
            print("    " + msg)
            lines.append(f"- {msg}")
    raw += [{"workload": "E2E", "case": name, "lines_per_s": rate} for name, rate in figures.items()]
    return [*lines, ""]


def linearity_section(raw: list[dict[str, object]]) -> list[str]:
    """W4's point: the 16 MiB message must cost about four times the 4 MiB one."""
    times: dict[tuple[object, object], float] = {
        (r["workload"], r["case"]): r["seconds"]
        for r in raw
        if "seconds" in r  # type: ignore[misc]
    }
    lines = []
    for (workload, case), small in times.items():
        large = times.get(("W4-16", case))
        if workload == "W4-4" and large is not None:
            lines.append(f"- {case}: 16 MiB / 4 MiB = {large / small:.2f} (linear is 4)")
    if lines:
        print("\nW4 linearity")
        for line in lines:
            print("  " + line[2:])
        lines = ["### W4 linearity", "", *lines, ""]
    return lines


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the data, for a smoke run")
    parser.add_argument("--only", help="run only workloads whose name starts with this")
    parser.add_argument("--markdown", help="write the result table to this file")
    parser.add_argument("--json", help="write raw results to this file")
    parser.add_argument("--no-e2e", action="store_true", help="skip the loopback benchmark")
    args = parser.parse_args(argv)

    header = (
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.machine()}, {cpu_model()} x{os.cpu_count()}, {platform.system()}, "
        f"{date.today().isoformat()}, sanschat "
        f"{'compiled (mypyc)' if getattr(sanschat, 'compiled', False) else 'pure Python'}"
    )
    print(header)
    lines = [f"_{header}; median of several runs in one process._", ""]
    raw: list[dict[str, object]] = []
    failures = 0
    for w in build(args.quick):
        if args.only and not w.name.startswith(args.only):
            continue
        total_bytes = sum(map(len, w.chunks))
        print(f"\n{w.name}: {w.title} ({total_bytes / 1e6:.1f} MB, {w.expected[0]} frames)")
        lines += [
            f"### {w.name}: {w.title}",
            "",
            "| case | median s | frames/s | MB/s | x floor | x sanschat best |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        rows = []
        for name, case in w.cases:
            if isinstance(case, str):
                print(f"  {name:32s} {case}")
                rows.append((name, None, case))
                continue
            quadratic = name.startswith("Twisted") and w.name.startswith("W4")
            seconds, result = measure(case, w.chunks, 1 if quadratic else w.repeats)
            ok = result == w.expected
            if not ok:
                failures += 1
            rows.append((name, seconds, "" if ok else f"WRONG: {result} != {w.expected}"))
        timed = {name: s for name, s, note in rows if s is not None}
        floor = next((s for name, s in timed.items() if name.startswith("floor")), None)
        best = min((s for name, s in timed.items() if name.startswith("sanschat")), default=None)
        for name, seconds, note in rows:
            if seconds is None:
                lines.append(f"| {name} | {note} | | | | |")
                continue
            fps = w.expected[0] / seconds
            mbs = total_bytes / seconds / 1e6
            vs_floor = f"{floor / seconds:.2f}" if floor else ""
            vs_best = f"{best / seconds:.2f}" if best else ""
            print(
                f"  {name:32s} {seconds:8.4f} s {fps:12,.0f} frames/s {mbs:8.1f} MB/s"
                f"  x floor {vs_floor:>5s}  {note}"
            )
            lines.append(
                f"| {name}{' ' + note if note else ''} | {seconds:.4f} | {fps:,.0f} | "
                f"{mbs:.1f} | {vs_floor} | {vs_best} |"
            )
            raw.append({"workload": w.name, "case": name, "seconds": seconds, "ok": not note})
        lines.append("")
        sans = {n: s for n, s in timed.items() if n.startswith("sanschat")}
        for peer, peer_s in timed.items():
            if peer.startswith(("sanschat", "floor")):
                continue
            for mine, my_s in sans.items():
                msg = f"{mine} vs {peer}: {peer_s / my_s:.2f}x"
                print("    " + msg)
                lines.append(f"- {msg}")
        lines.append("")
    lines += linearity_section(raw)
    if not args.no_e2e and (not args.only or "E2E".startswith(args.only)):
        lines += e2e_section(args.quick, raw)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(raw, fh, indent=1)
    if failures:
        print(f"\n{failures} case(s) produced wrong frames", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
