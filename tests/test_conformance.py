"""Every binding, and the bare Driver, against the one Handler contract
(``sanschat.testing.check_binding``'s scenarios), over real loopback sockets."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from sanschat import Handler
from sanschat.testing import SCENARIOS, Serve

from .servers import BINDINGS, TCP_BINDINGS


@pytest.mark.parametrize("scenario", SCENARIOS.values(), ids=SCENARIOS.keys())
@pytest.mark.parametrize("binding", BINDINGS.values(), ids=BINDINGS.keys())
def test_the_binding_keeps_the_handler_contract(binding: Serve, scenario: Callable[[Serve], None]) -> None:
    scenario(binding)


class _Upper(Handler):
    def frame_received(self, data: bytes) -> None:
        self.framer.push(data.upper() + b"\r\n")

    def end_received(self, data: bytes) -> None:
        self.framer.close_when_done()


@pytest.mark.parametrize("binding", TCP_BINDINGS.values(), ids=TCP_BINDINGS.keys())
def test_sockets_numbered_past_1024_are_served(binding: Serve) -> None:
    """``select.select`` cannot watch a descriptor of 1024 or more: a server
    with many connections (or files) open must not use it."""
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the descriptor limit is {hard}")
    if soft != resource.RLIM_INFINITY and soft < 1200:
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (1200 if hard == resource.RLIM_INFINITY else min(hard, 4096), hard)
        )
    filler = []
    try:
        while (fd := os.open(os.devnull, os.O_RDONLY)) < 1030:
            filler.append(fd)
        filler.append(fd)
        with binding(_Upper) as served:
            peer = served.connect()
            try:
                peer.send(b"past\r\nthe limit\r\n")
                peer.shutdown_write()
                assert peer.read_to_end() == b"PAST\r\nTHE LIMIT\r\n"
            finally:
                peer.close()
    finally:
        for fd in filler:
            os.close(fd)
        if soft != resource.RLIM_INFINITY and soft < 1200:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
