"""sanschat against the original asynchat, fed the same bytes, chunking and
terminator program: the frames and the unterminated remainder must agree.

The oracle is the standard library's asynchat on 3.10/3.11 and the pyasynchat
distribution (the same code, kept alive) on 3.12+. Its real ``handle_read`` runs,
with ``recv`` stubbed to hand out the chunks.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sanschat import Framer

from .helpers import Step, Unit, chunkings, run, small_bytes

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    asynchat = pytest.importorskip("asynchat")


class Recorder(asynchat.async_chat):  # type: ignore[misc, name-defined]
    """A channel with no socket whose recv hands out prepared chunks."""

    def __init__(self, terminator: object, program: Sequence[Step]) -> None:
        super().__init__(sock=None, map={})
        self.set_terminator(terminator)
        self.steps = iter(program)
        self.collected: list[bytes] = []
        self.units: list[Unit] = []
        self.chunks: list[bytes] = []

    def recv(self, buffer_size: int) -> bytes:
        return self.chunks.pop(0)

    def collect_incoming_data(self, data: bytes) -> None:
        self.collected.append(data)

    def found_terminator(self) -> None:
        self.units.append(("frame", b"".join(self.collected)))
        self.collected.clear()
        step = next(self.steps, None)
        if step is not None:
            self.set_terminator(step[0])

    def feed(self, chunks: Sequence[bytes]) -> list[Unit]:
        for chunk in chunks:
            self.chunks.append(chunk)
            self.handle_read()
        remainder = b"".join(self.collected) + bytes(self.ac_in_buffer)
        return [*self.units, ("end", remainder)]


def oracle(chunks: Sequence[bytes], terminator: object, program: Sequence[Step]) -> list[Unit]:
    return Recorder(terminator, program).feed(chunks)


# asynchat reads 0 as "collect forever"; sanschat's 0 is an empty frame, so
# the shared programs use counts from 1.
positive_terms = st.one_of(
    st.binary(min_size=1, max_size=4).map(lambda b: bytes(x % 3 + 97 for x in b)),
    st.integers(1, 40),
    st.none(),
)
shared_programs = st.lists(st.tuples(positive_terms, st.booleans()), max_size=30)


@given(st.data(), small_bytes, positive_terms, shared_programs, st.booleans())
def test_same_frames_and_remainder_as_asynchat(
    data: st.DataObject, payload: bytes, first: Any, program: list[Step], use_payloads: bool
) -> None:
    chunks = data.draw(chunkings(payload))
    expected = oracle(chunks, first, program)
    framer = Framer(first, max_frame_size=None)
    assert run(framer, chunks, program, use_payloads=use_payloads) == expected


def test_the_seed_http_example_agrees_with_asynchat() -> None:
    stream = b"POST /form HTTP/1.0\r\nContent-Length: 11\r\n\r\nhello worldGET / HTTP/1.0\r\n\r\n"
    program = [(11, False), (b"\r\n\r\n", False), (None, False)]
    for size in (1, 2, 7, len(stream)):
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        expected = oracle(chunks, b"\r\n\r\n", program)
        assert run(Framer(b"\r\n\r\n"), chunks, program) == expected
        assert expected[1] == ("frame", b"hello world")
