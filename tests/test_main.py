"""The command-line tool."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from sanschat.__main__ import demo, main


def test_demo_serves_every_pipelined_request_over_loopback() -> None:
    log = io.StringIO()
    assert demo(log) == 0
    text = log.getvalue()
    assert "POST /echo HTTP/1.1 body=b'hello world'" in text
    assert "POST /empty HTTP/1.1 body=b''" in text  # Content-Length: 0 is not a trap
    assert text.count("client: got") == 4
    assert "client: got b'you sent hello world'" in text


def test_python_dash_m_sanschat_demo_exits_zero() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sanschat", "demo"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "closed after the last response was sent" in done.stdout


def test_unknown_command_exits_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
