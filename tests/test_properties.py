"""Framing rules that must hold for every input and every chunking."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sanschat import Framer, FrameTooLarge

from .helpers import Step, chunkings, delimiters, model, programs, run, small_bytes, terminators


@given(st.data(), small_bytes, delimiters, st.booleans(), st.booleans())
def test_any_chunking_gives_the_same_frames(
    data: st.DataObject, payload: bytes, delimiter: bytes, stream: bool, use_payloads: bool
) -> None:
    whole = run(Framer(delimiter, stream=stream), [payload])
    chunks = data.draw(chunkings(payload))
    assert run(Framer(delimiter, stream=stream), chunks, use_payloads=use_payloads) == whole


@given(st.data(), small_bytes, delimiters, st.booleans())
def test_every_byte_is_delivered_exactly_once_in_order(
    data: st.DataObject, payload: bytes, delimiter: bytes, stream: bool
) -> None:
    units = run(Framer(delimiter, stream=stream), data.draw(chunkings(payload)))
    *frames, (kind, tail) = units
    assert kind == "end"
    rebuilt = b"".join(frame + delimiter for _, frame in frames) + tail  # type: ignore[operator]
    assert rebuilt == payload


@given(st.data(), small_bytes, terminators, programs, st.booleans(), st.sampled_from([1, 3, 4096]))
def test_terminator_programs_match_the_reference_model(
    data: st.DataObject,
    payload: bytes,
    first: object,
    program: list[Step],
    use_payloads: bool,
    keep_aside: int,
) -> None:
    framer = Framer(first, max_frame_size=None)  # type: ignore[arg-type]
    framer._keep_aside_from = keep_aside  # counted bytes kept out of the buffer (4096 in use)
    got = run(framer, data.draw(chunkings(payload)), program, use_payloads=use_payloads)
    assert got == model(payload, first, program)


@given(st.data(), small_bytes, delimiters, st.integers(0, 12), st.booleans(), st.booleans())
def test_limits_trip_at_the_same_frame_whatever_the_chunking(
    data: st.DataObject,
    payload: bytes,
    delimiter: bytes,
    limit: int,
    stream: bool,
    use_payloads: bool,
) -> None:
    framer = Framer(delimiter, stream=stream, max_frame_size=limit)
    tally: list[int] = []
    got = run(framer, data.draw(chunkings(payload)), use_payloads=use_payloads, tally=tally)
    assert got == model(payload, delimiter, max_frame_size=limit)
    # Conservation with a limit: delivered + delimiters + discarded = received.
    frames = sum(1 for unit in got if unit[0] == "frame")
    assert sum(tally) + frames * len(delimiter) + framer.bytes_discarded == len(payload)


@given(st.lists(st.binary(max_size=30), max_size=40), delimiters, st.booleans())
def test_payloads_and_next_event_agree(chunks: list[bytes], delimiter: bytes, stream: bool) -> None:
    a = run(Framer(delimiter, stream=stream), chunks, use_payloads=True)
    b = run(Framer(delimiter, stream=stream), chunks)
    assert a == b


def test_a_whole_frame_is_never_lost_to_a_limit_error() -> None:
    framer = Framer(b"\n", max_frame_size=3)
    framer.receive_data(b"abc\nabcd\nab\n")
    assert framer.next_event().data == b"abc"  # type: ignore[union-attr]
    try:
        framer.next_event()
    except FrameTooLarge:
        pass
    assert framer.next_event().data == b"ab"  # type: ignore[union-attr]
