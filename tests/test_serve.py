"""``sanschat.serve``: a Handler served under a binding named by a string,
until Ctrl-C, in this process. (``python -m sanschat serve``, in
tests/test_main.py, runs it in a child process under all six, twisted too:
its reactor runs once per process.)"""

from __future__ import annotations

import signal
import socket
import sys
import threading
from collections.abc import Iterator

import pytest

import sanschat
from sanschat import Handler
from sanschat._serve import BACKENDS, _only_interrupts

from .helpers import read_all

IN_PROCESS = [backend for backend in BACKENDS if backend != "twisted"]


class Echo(Handler):
    terminator = b"\n"

    def frame_received(self, line: bytes) -> None:
        self.framer.push(b"echo: " + line + b"\n")
        if line == b"QUIT":
            self.framer.close_when_done()


@pytest.fixture
def ctrl_c() -> Iterator[None]:
    """Python's own Ctrl-C handler, whatever the test runner's parent left."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def nothing_listens_on(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
    except ConnectionRefusedError:
        return True
    return False


def test_an_unknown_backend_is_refused_with_the_six_names() -> None:
    with pytest.raises(ValueError, match="select, asyncio, trio, anyio, socket, twisted, not 'tornado'"):
        sanschat.serve(Echo, "tornado")


@pytest.mark.skipif(sys.platform == "win32", reason="Ctrl-C is sent as a POSIX signal here")
@pytest.mark.parametrize("backend", IN_PROCESS)
def test_serve_answers_clients_until_ctrl_c_then_raises_keyboard_interrupt(
    backend: str, ctrl_c: None
) -> None:
    main = threading.main_thread().ident
    assert main is not None and threading.get_ident() == main
    answers: list[bytes] = []
    ports: list[int] = []

    def client(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"one\nQUIT\n")
            answers.append(read_all(sock))
        signal.pthread_kill(main, signal.SIGINT)  # Ctrl-C, to the thread that serves

    def ready(host: str, port: int) -> None:
        assert host == "127.0.0.1" and port > 0  # the port really bound, not 0
        ports.append(port)
        threading.Thread(target=client, args=(port,), daemon=True).start()

    with pytest.raises(KeyboardInterrupt):  # the bare exception: never an exception group
        sanschat.serve(Echo, backend, ready=ready)
    assert answers == [b"echo: one\necho: QUIT\n"]
    assert nothing_listens_on(ports[0])  # the listener is closed


@pytest.mark.parametrize("backend", IN_PROCESS)
def test_an_interrupt_while_a_client_is_connected_ends_serve_and_its_connection(backend: str) -> None:
    clients: list[socket.socket] = []
    ports: list[int] = []

    def ready(host: str, port: int) -> None:
        ports.append(port)
        clients.append(socket.create_connection((host, port), timeout=10))  # and it stays, idle
        raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            sanschat.serve(Echo, backend, ready=ready)
        assert nothing_listens_on(ports[0])
    finally:
        for sock in clients:
            sock.close()


def test_only_interrupts_sees_through_nested_exception_groups() -> None:
    if sys.version_info >= (3, 11):
        from builtins import BaseExceptionGroup as group
    else:  # pragma: no cover - trio brings the backport
        from exceptiongroup import BaseExceptionGroup as group  # type: ignore[import-not-found, unused-ignore]
    assert _only_interrupts(group("", [KeyboardInterrupt(), group("", [KeyboardInterrupt()])]))
    assert not _only_interrupts(group("", [KeyboardInterrupt(), ValueError()]))
    assert not _only_interrupts(ValueError())
