"""sanschat.twisted beyond the shared contract (that is in test_conformance):
a HandlerFactory on a listening UNIX socket, over a real one."""

from __future__ import annotations

import os
import socket
import tempfile
import threading

import pytest

from sanschat import ConnectionInfo, Handler
from sanschat.twisted import HandlerFactory

from .servers import running_reactor


class Greeter(Handler):
    seen: list[ConnectionInfo] = []

    def connection_made(self, framer: object) -> None:
        super().connection_made(framer)  # type: ignore[arg-type]
        Greeter.seen.append(self.connection_info)

    def frame_received(self, data: bytes) -> None:
        self.framer.push(b"hello " + data + b"\r\n")
        self.framer.close_when_done()


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no UNIX sockets here")
def test_a_unix_socket_is_served_with_its_path_as_the_address() -> None:
    from twisted.internet.threads import blockingCallFromThread

    reactor = running_reactor()
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "greeter.sock")
        port = blockingCallFromThread(reactor, reactor.listenUNIX, path, HandlerFactory(Greeter))
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.settimeout(30)
                client.connect(path)
                client.sendall(b"unix\r\n")
                reply = b""
                while chunk := client.recv(4096):
                    reply += chunk
            assert reply == b"hello unix\r\n"
            assert os.fsdecode(Greeter.seen[-1].local) == path
        finally:
            stopped = threading.Event()
            reactor.callFromThread(lambda: port.stopListening().addBoth(lambda _: stopped.set()))
            assert stopped.wait(30)
