"""Error recovery that cannot be subverted: a refused or malformed frame, then
a change of terminator or limit, then more input. Each test is one of the
reproducers an attacker found, named after what must hold."""

from __future__ import annotations

import pytest

from sanschat import (
    NEED_DATA,
    Data,
    EndOfStream,
    Frame,
    Framer,
    FrameTooLarge,
    LengthPrefix,
    MalformedFrame,
    Netstring,
)

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


def test_a_streamed_header_cut_by_the_end_of_the_stream_is_counted() -> None:
    f = Framer(LengthPrefix(1), stream=True)
    f.receive_data(b"\x01")
    f.receive_data(b"")
    assert drain(f) == [EndOfStream(b"")]
    assert f.bytes_discarded == 1


def test_the_header_of_an_empty_streamed_payload_with_a_bad_trailer_is_counted() -> None:
    f = Framer(Netstring(), stream=True)
    f.receive_data(b"0:;")
    with pytest.raises(MalformedFrame):
        f.next_event()
    assert f.bytes_discarded == 2
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
