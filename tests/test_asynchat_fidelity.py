"""sanschat.asynchat against the original, attribute by attribute.

The same subclass is built on both (the standard library's asynchat on
3.10/3.11, pyasynchat on 3.12+), given the same script over a real socketpair
and driven by the same ``asyncore.loop`` steps; after every step it records
what a subclass can see: ``ac_in_buffer``, ``incoming``, ``producer_fifo``,
``terminator``, what it collected and whether it is still connected. The
recordings must match.
"""

from __future__ import annotations

import socket
import warnings
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    asyncore = pytest.importorskip("asyncore")
    original = pytest.importorskip("asynchat")

from sanschat import asynchat as ours  # noqa: E402
from sanschat.asynchat import simple_producer  # noqa: E402

Action = tuple[str, Any]


def channel_class(base: Any) -> Any:
    """A recording subclass of ``base`` that reaches into asynchat's internals
    the way real programs do."""

    class Channel(base):  # type: ignore[misc]
        def __init__(self, sock: socket.socket, channel_map: dict[int, Any]) -> None:
            base.__init__(self, sock, map=channel_map)
            self.set_terminator(b"\r\n")
            self.collected: list[object] = []
            self.want_write = False
            self.closed_by_handle_close = False

        def collect_incoming_data(self, data: bytes) -> None:
            self._collect_incoming_data(data)

        def found_terminator(self) -> None:
            self.collected.append(self._get_data())

        def initiate_send(self) -> None:
            base.initiate_send(self)
            self.want_write = bool(self.producer_fifo)  # pyftpdlib does this

        def handle_close(self) -> None:
            self.closed_by_handle_close = True
            base.handle_close(self)

        def snapshot(self) -> tuple[object, ...]:
            fifo = [
                None if item is None else bytes(item) if isinstance(item, (bytes, memoryview)) else "producer"
                for item in self.producer_fifo
            ]
            return (
                bytes(self.ac_in_buffer),
                list(self.incoming),
                fifo,
                self.get_terminator(),
                list(self.collected),
                self.want_write,
                self.connected,
                self.closed_by_handle_close,
            )

    return Channel


def run(base: type, script: list[Action]) -> list[tuple[object, ...]]:
    channel_map: dict[int, Any] = {}
    mine, peer = socket.socketpair()
    chan = channel_class(base)(mine, channel_map)
    received = bytearray()
    recording = []
    try:
        for action, argument in script:
            if action == "send":
                try:
                    peer.sendall(argument)
                except OSError:
                    pass  # the channel closed: the peer's bytes go nowhere
            elif action == "push":
                chan.push(argument)
            elif action == "producer":
                chan.push_with_producer(simple_producer(argument, 3))
            elif action == "fifo":
                chan.producer_fifo.append(argument)  # straight into the fifo
            elif action == "terminator":
                chan.set_terminator(argument)
            elif action == "close_when_done":
                chan.close_when_done()
            elif action == "discard":
                chan.discard_buffers()
            elif action == "in_buffer":
                chan.ac_in_buffer = argument
            asyncore.loop(timeout=0.01, map=channel_map, count=1)
            peer.setblocking(False)
            try:
                received += peer.recv(65536)
            except BlockingIOError:
                pass
            recording.append((*chan.snapshot(), bytes(received)))
    finally:
        chan.close()
        peer.close()
    return recording


def agree(script: list[Action]) -> None:
    assert run(ours.async_chat, script) == run(original.async_chat, script)


def test_the_producer_fifo_is_a_real_deque_that_drives_sending() -> None:
    agree(
        [
            ("push", b"hello "),
            ("fifo", b"straight in "),
            ("producer", b"from a producer"),
            ("send", b"one\r\ntw"),
            ("send", b"o\r"),
            ("send", b"\nthree"),
        ]
    )


def test_close_when_done_then_discard_buffers_cancels_the_close() -> None:
    agree([("push", b"a"), ("close_when_done", None), ("discard", None), ("send", b"x\r\n"), ("push", b"b")])


def test_discard_then_handle_close_leaves_an_empty_fifo() -> None:
    channel_map: dict[int, Any] = {}
    mine, peer = socket.socketpair()
    chan = channel_class(ours.async_chat)(mine, channel_map)
    chan.push(b"unsent")
    chan.close_when_done()
    chan.discard_buffers()
    chan.handle_close()
    assert len(chan.producer_fifo) == 0
    peer.close()


def test_the_close_marker_is_popped_before_handle_close() -> None:
    seen: list[int] = []

    class Watch(ours.async_chat):
        def handle_close(self) -> None:
            seen.append(len(self.producer_fifo))
            self.close()

    mine, peer = socket.socketpair()
    chan = Watch(mine, map={})
    chan.push(b"bye")
    chan.close_when_done()
    chan.initiate_send()
    chan.initiate_send()
    assert seen == [0]
    assert peer.recv(10) == b"bye"
    peer.close()


def test_ac_in_buffer_holds_the_start_of_a_terminator_and_can_be_replaced() -> None:
    agree(
        [
            ("terminator", b"\r\n.\r\n"),
            ("send", b"data\r\n."),
            ("in_buffer", b""),
            ("send", b"more\r\n.\r\n"),
            ("terminator", 4),
            ("send", b"ab"),
            ("send", b"cdef"),
        ]
    )


actions = st.one_of(
    st.tuples(
        st.just("send"), st.binary(min_size=1, max_size=12).map(lambda b: bytes(x % 4 + 10 for x in b))
    ),
    st.tuples(st.just("push"), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("producer"), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("fifo"), st.binary(max_size=5)),
    st.tuples(st.just("terminator"), st.sampled_from([b"\r\n", b"\n", b"\r\r", 3, 5, None])),
    st.tuples(st.just("close_when_done"), st.none()),
    st.tuples(st.just("discard"), st.none()),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(actions, max_size=12))
def test_any_script_gives_the_same_recording(script: list[Action]) -> None:
    agree(script)
