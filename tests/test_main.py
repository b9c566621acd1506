"""The command-line tool: ``python -m sanschat serve | demo | chat | split``."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sanschat import Netstring
from sanschat._cli import demo, main, split
from sanschat._serve import BACKENDS

from .helpers import read_all, serving


def run_cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "sanschat", *args], input=stdin, capture_output=True, timeout=60
    )


# ------------------------------------------------------------------- demo


def test_demo_prints_the_whole_conversation() -> None:
    log = io.StringIO()
    assert demo(log) == 0
    text = log.getvalue()
    assert "alice < * you are alice; 1 here" in text
    assert "  bob < <alice> hello bob" in text
    assert "  bob < * line too long, skipped" in text
    assert "alice < <bob> hi alice" in text  # the connection went on after the refusal
    assert "alice < * bob left" in text
    assert text.rstrip().endswith("nothing lost")


def test_python_dash_m_sanschat_demo_exits_zero() -> None:
    done = run_cli("demo")
    assert done.returncode == 0, done.stderr
    assert b"demo finished" in done.stdout


# ------------------------------------------------------------------- chat


@pytest.mark.parametrize("backend", BACKENDS)
def test_chat_serves_until_stopped(backend: str) -> None:
    with serving("-m", "sanschat", "chat", "--backend", backend, "--port", "0") as port:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"/nick zoe\r\n/quit\r\n")
            received = read_all(sock)
    assert received.endswith(b"* you are zoe; 1 here\r\n* bye\r\n")


# ------------------------------------------------------------------ serve

USER_MODULE = """
from sanschat import Handler


class Echo(Handler):
    terminator = b"\\n"

    def frame_received(self, line):
        self.framer.push(b"echo: " + line + b"\\n")
        if line == b"QUIT":
            self.framer.close_when_done()


class Pid(Handler):
    terminator = b"\\n"

    def frame_received(self, line):
        import os

        self.framer.push(b"%d\\n" % os.getpid())
        self.framer.close_when_done()


class Counted(Handler):
    terminator = b"\\n"

    def __init__(self, counts):
        self.counts = counts

    def frame_received(self, line):
        self.counts[line] = self.counts.get(line, 0) + 1
        self.framer.push(b"%s #%d\\n" % (line, self.counts[line]))
        self.framer.close_when_done()


counts = {}


def make_counted():
    return Counted(counts)


NOT_A_FACTORY = 42


class NotAHandler:
    pass
"""

# Python ignores Ctrl-C in a process whose parent ignored it (a shell's
# background job); the server under test takes it as a user's terminal gives it.
WITH_CTRL_C = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'sanschat'; runpy.run_module('sanschat', run_name='__main__', alter_sys=True)"
)


@contextmanager
def user_server(folder: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``python -m sanschat serve ARGS`` run from ``folder``, which holds the
    user's module ``handlers``; yields the process and the port it announces."""
    (folder / "handlers.py").write_text(USER_MODULE)
    process = subprocess.Popen(
        [sys.executable, "-c", WITH_CTRL_C, "serve", *args, "--port", "0"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:"), (line, process.communicate(timeout=10))
        yield process, int(line.rsplit(":", 1)[1])
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def ask(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return read_all(sock)


@pytest.mark.parametrize("backend", BACKENDS)
def test_serve_runs_a_handler_class_from_the_users_module(tmp_path: Path, backend: str) -> None:
    with user_server(tmp_path, "handlers:Echo", "--backend", backend) as (_process, port):
        assert ask(port, b"hello\nQUIT\n") == b"echo: hello\necho: QUIT\n"


def test_serve_takes_a_function_returning_a_handler(tmp_path: Path) -> None:
    with user_server(tmp_path, "handlers:make_counted", "--backend", "asyncio") as (_process, port):
        assert ask(port, b"a\n") == b"a #1\n"
        assert ask(port, b"a\n") == b"a #2\n"  # one state, shared by the connections


@pytest.mark.parametrize("backend", ["select", "trio"])
def test_serve_serves_tls_with_the_certificate_given(
    tmp_path: Path, backend: str, pem: Path, client_context: ssl.SSLContext
) -> None:
    with user_server(tmp_path, "handlers:Echo", "--backend", backend, "--tls-cert", str(pem)) as (_p, port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with client_context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"secret\nQUIT\n")
                assert read_all(tls) == b"echo: secret\necho: QUIT\n"


@pytest.mark.skipif(sys.platform == "win32", reason="Ctrl-C is a POSIX signal here")
@pytest.mark.parametrize("backend", BACKENDS)
def test_serve_stops_on_ctrl_c_with_status_0(tmp_path: Path, backend: str) -> None:
    with user_server(tmp_path, "handlers:Echo", "--backend", backend) as (process, port):
        assert ask(port, b"QUIT\n") == b"echo: QUIT\n"
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert err == "stopped\n"


@pytest.mark.skipif(
    not hasattr(os, "fork") or not hasattr(socket, "SO_REUSEPORT"), reason="POSIX, SO_REUSEPORT"
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_serve_with_workers_shares_one_port_between_processes(tmp_path: Path, backend: str) -> None:
    with user_server(tmp_path, "handlers:Pid", "--backend", backend, "--workers", "2") as (process, port):
        pids = {ask(port, b"pid?\n") for _ in range(64)}
        assert len(pids) == 2, pids  # the kernel spreads 64 clients over both (all on one: 2**-63)
        assert str(process.pid).encode() + b"\n" in pids
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert err == "stopped\n"
    with pytest.raises(ConnectionRefusedError):  # the other worker has stopped too
        socket.create_connection(("127.0.0.1", port), timeout=5)


@pytest.mark.skipif(
    not hasattr(os, "fork") or not hasattr(socket, "SO_REUSEPORT"), reason="POSIX, SO_REUSEPORT"
)
def test_workers_stop_when_their_parent_is_killed(tmp_path: Path) -> None:
    with user_server(tmp_path, "handlers:Pid", "--workers", "2") as (process, port):
        assert len({ask(port, b"pid?\n") for _ in range(64)}) == 2
        process.kill()  # no chance to stop the other worker itself
        process.wait(30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
            except ConnectionRefusedError:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the orphaned worker still serves")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("handlers", "expected MODULE:FACTORY (e.g. mymodule:MyHandler), not 'handlers'"),
        ("handlers:", "expected MODULE:FACTORY"),
        (":Echo", "expected MODULE:FACTORY"),
        (
            "no_such_module_here:Echo",
            "cannot import 'no_such_module_here': no module named 'no_such_module_here'",
        ),
        ("handlers:Missing", "handlers:Missing: handlers has no attribute 'Missing'"),
        ("handlers:Echo.nested", "handlers:Echo.nested: handlers:Echo has no attribute 'nested'"),
        ("handlers:NOT_A_FACTORY", "handlers:NOT_A_FACTORY is not callable"),
        (
            "handlers:NotAHandler",
            "handlers:NotAHandler is the class NotAHandler, not a sanschat.Handler subclass",
        ),
    ],
)
def test_serve_refuses_a_bad_module_factory_with_status_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str, message: str
) -> None:
    (tmp_path / "handlers.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # serve puts the current directory on it
    monkeypatch.delitem(sys.modules, "handlers", raising=False)
    out, err = io.StringIO(), io.StringIO()
    assert main(["serve", spec], out, err) == 2
    assert err.getvalue().startswith(f"sanschat: error: {message}")
    assert err.getvalue().count("\n") == 1
    assert out.getvalue() == ""
    sys.modules.pop("handlers", None)


def test_serve_with_a_bad_spec_through_the_real_command_has_no_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sanschat", "serve", "nowhere:Nothing"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr == "sanschat: error: cannot import 'nowhere': no module named 'nowhere'\n"


def test_serve_keeps_the_traceback_of_an_error_inside_the_users_module(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import a_dependency_not_installed\n")
    done = subprocess.run(
        [sys.executable, "-m", "sanschat", "serve", "broken:Handler"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert "No module named 'a_dependency_not_installed'" in done.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--port", "65536"], "a port is a number from 0 to 65535, not '65536'"),
        (["--backend", "tornado"], "invalid choice: 'tornado'"),
        (["--tls-key", "key.pem"], "--tls-key goes with --tls-cert"),
        (["--tls-cert", "/no/such/cert.pem"], "cannot load /no/such/cert.pem"),
        (["--workers", "0"], "workers is a whole number from 1, not '0'"),
    ],
)
def test_serve_refuses_bad_options_with_status_2(args: list[str], message: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["serve", "sanschat.examples.http:HttpRequestReader", *args], out, err) == 2
    assert err.getvalue().startswith("sanschat: error: ")
    assert message in err.getvalue()


def test_serve_says_when_the_port_is_taken() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        out, err = io.StringIO(), io.StringIO()
        assert main(["serve", "sanschat.examples.http:HttpRequestReader", "--port", str(port)], out, err) == 2
    assert err.getvalue().startswith(f"sanschat: error: cannot listen on 127.0.0.1:{port}: ")


# ------------------------------------------------------------------ split


def split_text(data: bytes, *args: str) -> tuple[str, str]:
    """Run ``sanschat split FILE ARGS`` in-process over ``data`` in a file;
    return (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input"
        path.write_bytes(data)
        assert main(["split", str(path), *args], out, err) == 0, err.getvalue()
    return out.getvalue(), err.getvalue()


def test_split_prints_escaped_frames_and_a_summary() -> None:
    out, err = split_text(b"HELO x\r\nbin\x00\xff\\\r\n\r\ntail")
    assert out.splitlines() == ["HELO x", r"bin\x00\xff\\", "", "tail (unterminated)"]
    assert err == "3 frames, 12 payload bytes, largest frame 6 bytes, unterminated tail 4 bytes\n"


def test_split_json_lines_round_trip_the_bytes() -> None:
    data = b'caf\xc3\xa9 "quoted"\nsecond\nrest'
    out, _ = split_text(data, "-t", r"\n", "-f", "json")
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["data"].encode("latin-1") for r in records] == data.split(b"\n")
    assert [r["terminated"] for r in records] == [True, True, False]
    assert [r["size"] for r in records] == [len(p) for p in data.split(b"\n")]


def test_split_by_count_in_hex() -> None:
    out, err = split_text(b"abcdefg", "-c", "3", "-f", "hex")
    assert out.splitlines() == ["616263", "646566", "67 (unterminated)"]
    assert "2 frames" in err


def test_split_reads_stdin_through_the_real_command() -> None:
    done = run_cli("split", "-t", r"\n", stdin=b"one\ntwo\n")
    assert done.returncode == 0
    assert done.stdout == b"one\ntwo\n"
    assert b"2 frames" in done.stderr


def test_split_a_frame_much_larger_than_memory_needs_runs_in_constant_memory(tmp_path: Path) -> None:
    """64 MiB with no terminator at all: printed as it streams, never held."""
    big = tmp_path / "big"
    with big.open("wb") as f:
        for _ in range(64):
            f.write(b"z" * (1 << 20))
    sink = open(os.devnull, "w")
    tracemalloc.start()
    try:
        with big.open("rb") as source:
            split(source, sink, io.StringIO(), b"\r\n")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        sink.close()
    assert peak < 8 << 20  # a read or two, never the 64 MiB frame


def test_split_shows_progress_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "input"
    path.write_bytes(b"line\r\n" * 1000)
    out, err = io.StringIO(), io.StringIO()
    assert main(["split", str(path), "--progress"], out, err) == 0
    assert "100%" in err.getvalue() and "[##" in err.getvalue()
    assert out.getvalue().count("line\n") == 1000


@pytest.mark.parametrize(
    "args, message",
    [
        (["split", "-t", r"\q"], r"bad escape \q"),
        (["split", "-t", ""], "must not be empty"),
        (["split", "-c", "0"], "at least 1"),
        (["split", "-c", "1000000000000000000000000000000"], "--count must be at most"),
        (["split", "-c", "many"], "invalid int value"),
        (["split", "-t", "x", "-c", "3"], "not allowed with"),
        (["split", "/no/such/file"], "cannot read /no/such/file"),
        (["split", "-f", "xml"], "invalid choice"),
        (["chat", "--backend", "tornado"], "invalid choice"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_arguments_give_one_line_and_status_2(args: list[str], message: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(args, out, err) == 2
    assert err.getvalue().count("\n") == 1
    assert err.getvalue().startswith("sanschat: error: ")
    assert message in err.getvalue()


def test_a_non_utf8_terminator_byte_from_the_shell_is_that_byte(tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(b"one\xfftwo\xff")
    done = subprocess.run(
        [sys.executable, "-m", "sanschat", "split", "-f", "hex", "-t", os.fsdecode(b"\xff"), str(source)],
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().splitlines() == [b"one".hex(), b"two".hex()]


def test_bad_arguments_through_the_real_command_have_no_traceback() -> None:
    done = run_cli("split", "-c", "-5")
    assert done.returncode == 2
    assert done.stderr.decode().strip() == "sanschat: error: --count must be at least 1, not -5"


@pytest.mark.parametrize(
    ("args", "data", "lines"),
    [
        (["--any", r"\r\n", "--any", r"\n"], b"one\r\ntwo\nthree\r\n", ["one", "two", "three"]),
        (["--length-prefix", "2"], b"\x00\x03abc\x00\x00\x00\x01z", ["abc", "", "z"]),
        (["--length-prefix", "2", "--byteorder", "little"], b"\x03\x00abc\x01\x00z", ["abc", "z"]),
        (["--varint"], b"\x03abc\x01z", ["abc", "z"]),
        (["--netstring"], b"3:abc,0:,1:z,", ["abc", "", "z"]),
    ],
)
def test_split_frames_every_kind(args: list[str], data: bytes, lines: list[str]) -> None:
    out, err = split_text(data, *args)
    assert out.splitlines() == lines
    assert err.startswith(f"{len(lines)} frames")


def test_split_reports_a_malformed_frame_and_exits_1() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert split(io.BytesIO(b"3:abc,2:xy!rest"), out, err, Netstring()) == 1
    assert out.getvalue().splitlines() == ["abc", "xy!rest (unterminated)"]
    assert "malformed frame after 1 frames: expected b',' after the payload, got b'!'" in err.getvalue()


def test_split_says_when_the_input_ends_inside_a_header_announced_frame() -> None:
    _out, err = split_text(b"\x00\x03abc\x00\x09", "--length-prefix", "2")
    assert err.endswith("unterminated tail 0 bytes, 2 header bytes of an unfinished frame\n")


def test_split_text_escapes_each_byte_on_its_own() -> None:
    special = {9: "\\t", 10: "\\n", 13: "\\r", 92: "\\\\"}
    text = "".join(special.get(b, chr(b) if 32 <= b < 127 else f"\\x{b:02x}") for b in range(256))
    out, _ = split_text(bytes(range(256)) + b"ZZ", "-t", "ZZ")
    assert out == text + "\n"
