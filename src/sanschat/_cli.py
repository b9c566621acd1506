"""The command-line tool: ``python -m sanschat {serve,demo,chat,split}`` (also ``sanschat``).

* ``--version``: the version and which build runs (compiled core or pure Python).
* ``serve MODULE:FACTORY``: your Handler as a server, until Ctrl-C, under any
  of the six bindings (``--backend``), on a port of your choice.
* ``demo``: a line chat server on a free loopback port, three scripted
  clients, the conversation printed; exits 0 within seconds.
* ``chat``: the same chat server, until Ctrl-C, under any of the six bindings.
* ``split``: frame a file, stdin or each TCP stream of a packet capture with
  any terminator kind and print the frames; streams, so input of any size
  runs in constant memory.

Bad arguments print one line and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import binascii
import importlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, BinaryIO, NoReturn, TextIO

from ._errors import MalformedFrame
from ._events import NEED_DATA, Data, EndOfStream, Frame
from ._framer import Framer
from ._handler import Handler
from ._kinds import AnyDelimiter, LengthPrefix, Netstring, Varint
from ._terminators import MAX_COUNT, Terminator

if TYPE_CHECKING:
    import ssl

READ_SIZE = 1 << 20
PROGRESS_MIN_SIZE = 32 << 20  # smaller files finish before a bar helps


class UsageError(Exception):
    """A bad argument: reported on one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


class _VersionAsked(Exception):
    """``--version`` was given: main() prints the version line, exit status 0."""


class _VersionAction(argparse.Action):
    # argparse's own version action prints to sys.stdout and exits; this one
    # leaves the printing to main(), which writes to the stream it was given.
    def __call__(self, *args: object, **kwargs: object) -> None:
        raise _VersionAsked


def version_line() -> str:
    """``sanschat VERSION (compiled core)``, or ``(pure Python)``: which build runs."""
    from . import __version__, compiled

    return f"sanschat {__version__} ({'compiled core' if compiled else 'pure Python'})"


# ------------------------------------------------------------------ split

_ESCAPES = {"r": "\r", "n": "\n", "t": "\t", "0": "\0", "\\": "\\"}


def parse_escapes(text: str) -> bytes:
    r"""``\r``, ``\n``, ``\t``, ``\0``, ``\\`` and ``\xHH`` in ``text``, as bytes."""
    out = bytearray()
    i = 0
    while i < len(text):
        char = text[i]
        if char != "\\":
            out += char.encode("utf-8", "surrogateescape")  # a non-UTF-8 argv byte is itself
            i += 1
            continue
        code = text[i + 1 : i + 2]
        if code in _ESCAPES:
            out += _ESCAPES[code].encode()
            i += 2
        elif code == "x" and len(text[i + 2 : i + 4]) == 2:
            try:
                out.append(int(text[i + 2 : i + 4], 16))
            except ValueError:
                raise UsageError(f"bad escape {text[i : i + 4]} in {text}") from None
            i += 4
        else:
            raise UsageError(f"bad escape {text[i : i + 2]} in {text} (known: \\r \\n \\t \\0 \\\\ \\xHH)")
    return bytes(out)


def _as_text(piece: bytes) -> bytes:
    """Printable ASCII as it is; backslash, \\r, \\n, \\t and every other byte
    escaped, byte by byte, so that a frame written in pieces reads the same as
    one written whole (Python's unicode_escape does exactly that, in C)."""
    return piece.decode("latin-1").encode("unicode_escape")


def _as_json_string_body(piece: bytes) -> bytes:
    return json.dumps(piece.decode("latin-1"))[1:-1].encode("ascii")


_FORMATS: dict[str, Callable[[bytes], bytes]] = {
    "text": _as_text,
    "hex": binascii.hexlify,
    "json": _as_json_string_body,
}


class _FramePrinter:
    """Writes each frame on one line as its pieces arrive (constant memory).

    Every format is ASCII, so it goes as bytes to the binary buffer under
    ``out`` when there is one (no text layer to encode it again)."""

    def __init__(self, out: TextIO, fmt: str) -> None:
        buffer = getattr(out, "buffer", None)
        if buffer is not None:
            out.flush()
            self.write: Callable[[bytes], object] = buffer.write
        else:
            self.write = lambda data: out.write(data.decode("ascii"))
        self.json = fmt == "json"
        self.render = _FORMATS[fmt]
        self.size = 0  # of the frame in progress
        self.frames = 0
        self.total = 0
        self.largest = 0
        self.open = False

    def piece(self, data: bytes) -> None:
        if not self.open:
            if self.json:
                self.write(b'{"data": "')
            self.open = True
        self.write(self.render(data))
        self.size += len(data)

    def end(self, terminated: bool) -> None:
        if self.json:
            self.write(
                b'", "size": %d, "terminated": %s}\n' % (self.size, b"true" if terminated else b"false")
            )
        else:
            self.write(b"\n" if terminated else b" (unterminated)\n")
        if terminated:
            self.frames += 1
            self.total += self.size
            self.largest = max(self.largest, self.size)
        self.size = 0
        self.open = False


class _Progress:
    """A one-line progress bar on a terminal's stderr, redrawn at most 5 times a second."""

    def __init__(self, err: TextIO, total: int) -> None:
        self.err = err
        self.total = total
        self.shown = 0.0

    def update(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.shown < 0.2:
            return
        self.shown = now
        share = done / self.total if self.total else 1.0
        bar = "#" * int(share * 30)
        self.err.write(f"\r[{bar:<30}] {share:4.0%} {done >> 20}/{self.total >> 20} MiB")
        if final:
            self.err.write("\n")
        self.err.flush()


def split(
    source: BinaryIO,
    out: TextIO,
    err: TextIO,
    terminator: Terminator,
    fmt: str = "text",
    progress_total: int | None = None,
) -> int:
    """Frame ``source`` with ``terminator`` and print one line per frame, then a
    summary on ``err``. A count terminator repeats after each frame. Returns 1
    if a frame was malformed (reported on ``err``; the rest is the tail), else 0."""
    framer = Framer(terminator, stream=True, max_frame_size=None)
    printer = _FramePrinter(out, fmt)
    progress = _Progress(err, progress_total) if progress_total else None
    done = 0
    status = 0
    while True:
        chunk = source.read(READ_SIZE)
        framer.receive_data(chunk)
        done += len(chunk)
        while True:
            try:
                event = framer.next_event()
            except MalformedFrame as error:
                err.write(f"malformed frame after {printer.frames} frames: {error}; the rest is the tail\n")
                status = 1
                continue
            if event is NEED_DATA:
                break
            kind = type(event)
            if kind is Data:
                printer.piece(event.data)  # type: ignore[union-attr]
            elif kind is Frame:
                printer.piece(event.data)  # type: ignore[union-attr]
                printer.end(terminated=True)
                if isinstance(terminator, int):
                    framer.set_terminator(terminator, stream=True)
            else:
                assert kind is EndOfStream
                tail = printer.size + len(event.data)  # type: ignore[union-attr]
                if tail:
                    printer.piece(event.data)  # type: ignore[union-attr]
                    printer.end(terminated=False)
                if progress:
                    progress.update(done, final=True)
                dropped = framer._headers_in_flight  # (framing consumed by a frame the end cut)
                err.write(
                    f"{printer.frames} frames, {printer.total} payload bytes, "
                    f"largest frame {printer.largest} bytes, unterminated tail {tail} bytes"
                    + (f", {dropped} header bytes of an unfinished frame\n" if dropped else "\n")
                )
                return status
        if progress:
            progress.update(done)


def _terminator_from(args: argparse.Namespace) -> Terminator:
    if args.none:
        return None
    if args.any is not None:
        delimiters = [parse_escapes(text) for text in args.any]
        if not all(delimiters):
            raise UsageError("--any delimiters must not be empty")
        return AnyDelimiter(*delimiters)
    if args.length_prefix is not None:
        return LengthPrefix(args.length_prefix, args.byteorder)
    if args.varint:
        return Varint()
    if args.netstring:
        return Netstring()
    if args.count is not None:
        if args.count < 1:
            raise UsageError(f"--count must be at least 1, not {args.count}")
        if args.count > MAX_COUNT:
            raise UsageError(f"--count must be at most {MAX_COUNT}, not {args.count}")
        return int(args.count)
    delimiter = parse_escapes(args.terminator)
    if not delimiter:
        raise UsageError("--terminator must not be empty")
    return delimiter


def _run_split(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    terminator = _terminator_from(args)
    if args.pcap is not None:
        return _split_capture(args.pcap, args.port, out, err, terminator, args.format)
    if args.port is not None:
        raise UsageError("--port goes with --pcap")
    if args.file == "-":
        return split(sys.stdin.buffer, out, err, terminator, args.format)
    try:
        source = open(args.file, "rb")
    except OSError as error:
        raise UsageError(f"cannot read {args.file}: {error.strerror}") from None
    with source:
        size = os.fstat(source.fileno()).st_size
        show = args.progress or (args.progress is None and err.isatty() and size >= PROGRESS_MIN_SIZE)
        return split(source, out, err, terminator, args.format, size if show else None)


def _split_capture(
    path: str, port: int | None, out: TextIO, err: TextIO, terminator: Terminator, fmt: str
) -> int:
    """Frame each direction of each TCP conversation in a capture, labelled."""
    import io

    from ._pcap import read_conversations

    try:
        conversations = read_conversations(path, port)
    except ImportError as error:
        raise UsageError(str(error)) from None
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
    except ValueError as error:
        raise UsageError(f"{path}: {error}") from None
    status = 0
    for number, talk in enumerate(conversations, 1):
        client, server = (f"{host}:{port}" for host, port in (talk.client, talk.server))
        for label, data, gap in (
            (f"{client} -> {server}", talk.client_bytes, talk.client_gap),
            (f"{server} -> {client}", talk.server_bytes, talk.server_gap),
        ):
            missing = ", then a segment the capture missed" if gap else ""
            out.write(f"# connection {number}, {label}: {len(data)} bytes{missing}\n")
            err.write(f"connection {number}, {label}: ")
            status |= split(io.BytesIO(data), out, err, terminator, fmt)
    if not conversations:
        err.write(f"no TCP conversation in {path}{f' on port {port}' if port is not None else ''}\n")
    return status


# ------------------------------------------------------------- demo / chat


def _serve_chat_in_thread() -> tuple[int, Callable[[], None]]:
    from .examples.chat import ChatUser, Room
    from .select import serve

    room = Room()
    server = serve(lambda: ChatUser(room), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown(0)
        thread.join(5)

    return server.port, stop


class _ScriptedClient:
    """A chat client that says lines and prints what it is told, line by line."""

    def __init__(self, name: str, port: int, log: TextIO) -> None:
        self.name = name
        self.log = log
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.lines = Framer(b"\r\n")

    def say(self, line: bytes) -> None:
        shown = line if len(line) <= 60 else line[:40] + b"... (%d bytes)" % len(line)
        self.log.write(f"{self.name:>5} > {shown.decode(errors='replace')}\n")
        self.sock.sendall(line + b"\r\n")

    def expect(self, count: int = 1) -> None:
        """Print the next ``count`` lines received (EOF counts as one)."""
        while count:
            event = self.lines.next_event()
            if event is NEED_DATA:
                self.lines.receive_data(self.sock.recv(65536))
                continue
            if type(event) is EndOfStream:
                self.log.write(f"{self.name:>5} < (connection closed)\n")
                return
            self.log.write(f"{self.name:>5} < {event.data.decode(errors='replace')}\n")  # type: ignore[union-attr]
            count -= 1

    def close(self) -> None:
        self.sock.close()


def demo(log: TextIO) -> int:
    """Run the chat server on loopback and a scripted conversation against it."""
    port, stop = _serve_chat_in_thread()
    log.write(f"chat server (sanschat.examples.chat, select backend) on 127.0.0.1:{port}\n")
    try:
        alice = _ScriptedClient("alice", port, log)
        alice.expect()
        alice.say(b"/nick alice")
        alice.expect()
        bob = _ScriptedClient("bob", port, log)
        bob.expect()
        bob.say(b"/nick bob")
        bob.expect()
        alice.expect()
        alice.say(b"hello bob")
        bob.expect()
        bob.say(b"a line of 2000 bytes: " + b"x" * 1978)
        bob.expect()
        bob.say(b"hi alice")
        alice.expect()
        bob.say(b"/quit")
        bob.expect(2)
        alice.expect()
        alice.close()
        bob.close()
    finally:
        stop()
    log.write("demo finished: every line framed, the oversized one refused, nothing lost\n")
    return 0


def _run_chat(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .examples.chat import ChatUser, Room

    room = Room()
    return _serve_until_stopped(lambda: ChatUser(room), args, None, out, err)


# ------------------------------------------------------------------ serve


def load_factory(spec: str) -> Callable[[], Handler]:
    """The Handler factory that ``MODULE:FACTORY`` names: ``MODULE`` is
    imported (from the current directory too), ``FACTORY`` is an attribute of
    it, dotted for a nested one (``module:Server.Handler``): a Handler class or
    any callable returning a Handler. A bad spec raises :class:`UsageError`;
    an error inside the module itself propagates, traceback and all."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute or module_name.startswith("."):
        raise UsageError(f"expected MODULE:FACTORY (e.g. mymodule:MyHandler), not {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` would, for the installed `sanschat` script
    try:
        found: object = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if module_name != missing and not module_name.startswith(missing + "."):
            raise  # the module exists and failed to import something of its own
        raise UsageError(f"cannot import {module_name!r}: no module named {missing!r}") from None
    path = module_name
    for name in attribute.split("."):
        try:
            found = getattr(found, name)
        except AttributeError:
            raise UsageError(f"{spec}: {path} has no attribute {name!r}") from None
        path += (":" if path == module_name else ".") + name
    if isinstance(found, type) and not issubclass(found, Handler):
        raise UsageError(f"{spec} is the class {found.__qualname__}, not a sanschat.Handler subclass")
    if not callable(found):
        raise UsageError(f"{spec} is not callable: give a Handler class or a function returning a Handler")
    return found


def _run_serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._serve import server_context

    factory = load_factory(args.factory)
    if args.tls_key and not args.tls_cert:
        raise UsageError("--tls-key goes with --tls-cert")
    try:
        tls = server_context(args)
    except OSError as error:  # ssl.SSLError too
        raise UsageError(f"cannot load {args.tls_cert}: {error}") from None
    return _serve_until_stopped(factory, args, tls, out, err)


def _serve_until_stopped(
    factory: Callable[[], Handler],
    args: argparse.Namespace,
    tls: ssl.SSLContext | None,
    out: TextIO,
    err: TextIO,
) -> int:
    """Serve with :func:`sanschat.serve`, printing ``listening on HOST:PORT``
    on ``out`` once clients can connect; Ctrl-C stops it (status 0)."""
    from ._serve import serve

    listening = False

    def ready(host: str, port: int) -> None:
        nonlocal listening
        listening = True
        out.write(f"listening on {host}:{port}\n")
        out.flush()

    try:
        serve(
            factory,
            args.backend,
            args.host,
            args.port,
            tls=tls,
            reuse_port=args.reuse_port,
            workers=args.workers,
            ready=ready,
        )
    except ImportError as error:
        if listening:
            raise
        raise UsageError(str(error)) from None
    except OSError as error:
        if listening:
            raise
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}") from None
    except KeyboardInterrupt:
        pass  # Ctrl-C (twisted's reactor takes it itself, and serve returns)
    err.write("stopped\n")
    return 0


# ------------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    from ._serve import add_server_arguments

    parser = _Parser(prog="sanschat", description="Framing for command/response protocols, sans I/O.")
    parser.add_argument(
        "--version",
        nargs=0,
        action=_VersionAction,
        help="print the version and whether the compiled core runs, then exit",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser(
        "serve",
        help="run a Handler as a server until Ctrl-C",
        description="Import MODULE, take FACTORY from it (a sanschat.Handler subclass, or any "
        "callable returning a Handler) and serve it on HOST:PORT under the chosen binding "
        "until Ctrl-C. Prints 'listening on HOST:PORT' once clients can connect.",
    )
    run.add_argument("factory", metavar="MODULE:FACTORY", help="e.g. mymodule:MyHandler")
    add_server_arguments(run, 8000)
    commands.add_parser("demo", help="run a chat server on loopback with scripted clients, print the talk")
    chat = commands.add_parser("chat", help="run the line chat server until Ctrl-C")
    add_server_arguments(chat, 8025, tls=False)
    cut = commands.add_parser(
        "split",
        help="frame a file or stdin and print the frames",
        description="Frame bytes with a terminator and print one line per frame, "
        "then a summary on stderr. Runs in constant memory.",
    )
    cut.add_argument("file", nargs="?", default="-", help="input file (default: stdin)")
    kind = cut.add_mutually_exclusive_group()
    kind.add_argument(
        "-t", "--terminator", default=r"\r\n", help=r"delimiter, escapes allowed (default: \r\n)"
    )
    kind.add_argument("-c", "--count", type=int, help="frames of this many bytes each")
    kind.add_argument(
        "--any",
        action="append",
        metavar="DELIM",
        help="ended by whichever of these delimiters comes first (give --any once per delimiter)",
    )
    kind.add_argument(
        "--length-prefix",
        type=int,
        choices=(1, 2, 4, 8),
        metavar="N",
        help="an N-byte length before each payload",
    )
    kind.add_argument("--varint", action="store_true", help="a protobuf varint length before each payload")
    kind.add_argument("--netstring", action="store_true", help="netstrings: 5:hello,")
    kind.add_argument("--none", action="store_true", help="no terminator: everything is the tail")
    cut.add_argument("--byteorder", choices=("big", "little"), default="big", help="of --length-prefix")
    cut.add_argument(
        "--pcap", metavar="FILE", help="frame each TCP stream of this capture (pip install sanschat[pcap])"
    )
    cut.add_argument("--port", type=int, help="with --pcap: only conversations on this port")
    cut.add_argument("-f", "--format", choices=("text", "hex", "json"), default="text")
    cut.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: on a terminal, for files of 32 MiB or more)",
    )
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        args = _parser().parse_args(argv)
        if args.command == "demo":
            return demo(out)
        if args.command == "serve":
            return _run_serve(args, out, err)
        if args.command == "chat":
            return _run_chat(args, out, err)
        return _run_split(args, out, err)
    except _VersionAsked:
        out.write(version_line() + "\n")
        return 0
    except UsageError as error:
        err.write(f"sanschat: error: {error}\n")
        return 2
    except BrokenPipeError:  # piped into head: stop quietly
        if out is sys.stdout:  # and keep the interpreter's last flush quiet too
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
