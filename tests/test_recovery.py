"""Error recovery that cannot be subverted: a refused or malformed frame, then
a change of terminator or limit, then more input. Each test is one of the
reproducers an attacker found, named after what must hold."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sanschat import (
    NEED_DATA,
    AnyDelimiter,
    Data,
    EndOfStream,
    Frame,
    Framer,
    FrameTooLarge,
    LengthPrefix,
    MalformedFrame,
    Netstring,
    Varint,
)
from sanschat.testing import chunkings

from .helpers import drain


def test_a_refused_line_is_not_read_again_under_a_count_set_afterwards() -> None:
    f = Framer(b"\r\n", max_frame_size=8)
    f.receive_data(b"SMUGGLED-HEADER-LINE\r\n")
    with pytest.raises(FrameTooLarge):
        f.next_event()
    f.set_terminator(8)
    assert f.next_event() is NEED_DATA
    assert f.bytes_discarded == len(b"SMUGGLED-HEADER-LINE\r\n")
    f.receive_data(b"12345678")
    assert f.next_event() == Frame(b"12345678")


def test_a_refused_announced_body_is_not_read_as_lines() -> None:
    """The smuggling case: a refused length-prefixed body that holds a command."""
    body = b"padding\nDEL all\nmore padding"
    f = Framer(LengthPrefix(4), max_frame_size=10)
    f.receive_data(LengthPrefix(4).encode(body) + b"OK\n")
    with pytest.raises(FrameTooLarge, match="announced"):
        f.next_event()
    f.set_terminator(b"\n")
    assert drain(f) == [Frame(b"OK")]
    assert f.bytes_discarded == 4 + len(body)


def test_setting_the_same_terminator_again_does_not_raise_again() -> None:
    """A Handler that answers an oversized line and resets its terminator must
    not see the same error forever (that livelocked deliver_events)."""
    f = Framer(b"\n", max_frame_size=4)
    f.receive_data(b"far too long\nok\n")
    with pytest.raises(FrameTooLarge):
        f.next_event()
    f.set_terminator(b"\n")
    assert drain(f) == [Frame(b"ok")]


def test_a_terminator_set_mid_skip_applies_after_the_refused_frame() -> None:
    f = Framer(b"\n", max_frame_size=4)
    f.receive_data(b"far too")
    with pytest.raises(FrameTooLarge):
        f.next_event()
    f.set_terminator(3)
    assert f.next_event() is NEED_DATA
    f.receive_data(b" long\nabcdef")
    assert drain(f) == [Frame(b"abc"), Data(b"def")]  # then None: the rest is Data


def test_both_paths_agree_on_a_streamed_netstring_with_a_bad_trailer() -> None:
    def by_events() -> list[object]:
        f = Framer(Netstring(), stream=True)
        f.receive_data(b"1:x;")
        f.receive_data(b"")
        return [*drain(f)]

    def by_payloads() -> list[object]:
        f = Framer(Netstring(), stream=True)
        f.receive_data(b"1:x;")
        f.receive_data(b"")
        out: list[object] = []
        try:
            out.extend(Frame(p) for p in f.payloads())
        except MalformedFrame as error:
            out.append(error)
        return out + drain(f)

    for events in (by_events(), by_payloads()):
        assert [type(e) for e in events] == [Data, MalformedFrame, EndOfStream]
        assert events[0] == Data(b"x") and events[2] == EndOfStream(b";")


def test_resynchronising_after_a_streamed_malformed_frame_starts_a_fresh_limit() -> None:
    f = Framer(Netstring(), stream=True, max_frame_size=10)
    f.receive_data(b"9:123456789;")
    assert f.next_event() == Data(b"123456789")
    with pytest.raises(MalformedFrame):
        f.next_event()
    f.set_terminator(b"\n")
    f.receive_data(b"abc\n")
    assert drain(f) == [Frame(b";abc")]


def test_a_streamed_header_cut_by_the_end_of_the_stream_stays_framing() -> None:
    f = Framer(LengthPrefix(1), stream=True)
    f.receive_data(b"\x01")
    f.receive_data(b"")
    assert drain(f) == [EndOfStream(b"")]
    assert f.bytes_discarded == 0 and f._abandoned_headers == 1


def test_the_header_of_an_empty_streamed_payload_with_a_bad_trailer_is_counted() -> None:
    f = Framer(Netstring(), stream=True)
    f.receive_data(b"0:;")
    with pytest.raises(MalformedFrame):
        f.next_event()
    assert f.bytes_discarded == 0 and f._abandoned_headers == 2
    f.receive_data(b"")
    assert drain(f) == [EndOfStream(b";")]


def test_the_peer_closing_while_an_announced_frame_is_skipped_ends_the_stream() -> None:
    f = Framer(LengthPrefix(1), max_frame_size=2)
    f.receive_data(b"\x05ab")
    with pytest.raises(FrameTooLarge):
        f.next_event()
    assert f.next_event() is NEED_DATA
    f.receive_data(b"")
    assert drain(f) == [EndOfStream(b"")]
    assert f.bytes_discarded == 3


@pytest.mark.parametrize(
    "switch",
    [
        lambda f: f.set_terminator(b"\n"),
        lambda f: f.set_terminator(None),
        lambda f: f.set_terminator(2),
        lambda f: setattr(f, "max_frame_size", None),
        lambda f: f.discard_buffers(),
    ],
    ids=["delimiter", "none", "count", "no-limit", "discard"],
)
def test_no_change_after_a_refusal_brings_the_refused_bytes_back(switch: object) -> None:
    f = Framer(b"\n", max_frame_size=3)
    f.receive_data(b"secret-command\n")
    with pytest.raises(FrameTooLarge):
        f.next_event()
    switch(f)  # type: ignore[operator]
    f.receive_data(b"")
    assert b"secret" not in b"".join(getattr(e, "data", b"") for e in drain(f))
    assert f.bytes_discarded == len(b"secret-command\n")


# ------------------------------------------------ the property behind them all

LIMIT = 4
REFUSED = b"X" * (LIMIT + 3)  # "X" appears nowhere else in these inputs


def refused_frame(kind: str) -> tuple[object, bytes]:
    """A terminator, and the bytes of one frame it must refuse at LIMIT."""
    if kind == "delimiter":
        return b"\n", REFUSED + b"\n"
    if kind == "any":
        return AnyDelimiter(b"\r\n", b"\n"), REFUSED + b"\r\n"
    if kind == "count":
        return len(REFUSED), REFUSED
    if kind == "netstring":
        return Netstring(), Netstring().encode(REFUSED)
    return LengthPrefix(2), LengthPrefix(2).encode(REFUSED)


after_terminators = st.one_of(
    st.sampled_from([b"\n", b"\r\n", b"X", b"XX"]),
    st.integers(0, 12),
    st.none(),
    st.sampled_from([AnyDelimiter(b"\n", b"X"), LengthPrefix(1), Netstring(), Varint()]),
)


@given(
    kind=st.sampled_from(["delimiter", "any", "count", "netstring", "length"]),
    switches=st.lists(st.tuples(after_terminators, st.booleans(), st.one_of(st.none(), st.integers(0, 64)))),
    after=st.binary(max_size=40).map(lambda b: b.replace(b"X", b"")),
    data=st.data(),
)
def test_no_byte_of_a_refused_frame_is_ever_delivered(
    kind: str, switches: list[tuple[object, bool, int | None]], after: bytes, data: st.DataObject
) -> None:
    """Whatever terminator, delivery mode or limit is set after the refusal
    (each after one more event), and however the bytes are split, the refused
    frame's bytes are skipped and counted, never framed."""
    terminator, frame = refused_frame(kind)
    f = Framer(terminator, max_frame_size=LIMIT)  # type: ignore[arg-type]
    delivered: list[bytes] = []
    refused = False
    steps = iter(switches)
    for chunk in [*data.draw(chunkings(frame + after)), b""]:
        f.receive_data(chunk)
        while True:
            try:
                event = f.next_event()
            except FrameTooLarge:
                refused = True
                event = None
            except MalformedFrame:
                event = None
            if event is NEED_DATA:
                break
            if event is not None:
                delivered.append(event.data)  # type: ignore[union-attr]
                if type(event) is EndOfStream:
                    break
            if refused:
                step = next(steps, None)
                if step is not None:
                    f.set_terminator(step[0], stream=step[1])  # type: ignore[arg-type]
                    f.max_frame_size = step[2]
    assert refused
    assert b"X" not in b"".join(delivered)
    assert f.bytes_discarded >= len(REFUSED)


def test_discarding_a_streamed_header_frame_counts_its_header_once() -> None:
    """Found by the recovery state machine: the header was counted twice."""
    f = Framer(LengthPrefix(1), stream=True)
    f.receive_data(b"a")  # a header announcing 97 bytes, consumed
    assert f.next_event() is NEED_DATA
    f.discard_buffers()
    assert f.bytes_discarded == 0 and f._abandoned_headers == 1


def test_a_limit_lowered_below_what_a_streamed_frame_released_refuses_it() -> None:
    """Found by the recovery state machine: partial() released a negative count
    (Data(b"") and one byte handed back to the buffer, counted twice)."""
    f = Framer(b"\n", stream=True)
    f.receive_data(b"a")
    assert f.next_event() == Data(b"a")
    f.max_frame_size = 0
    with pytest.raises(FrameTooLarge):
        f.next_event()
    assert f.pending_input == 0 and f.bytes_discarded == 0
    f.receive_data(b"bc\nok\n")
    f.max_frame_size = None
    assert drain(f) == [Frame(b"ok")]  # the rest of the refused frame was skipped
    assert f.bytes_discarded == 3
