"""sanschat.testing: the helpers users get for testing their protocols without sockets."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sanschat import Data, EndOfStream, Frame, Framer, FrameTooLarge, Handler
from sanschat.examples.http import HttpRequestReader
from sanschat.testing import (
    assert_split_invariant,
    chunkings,
    fuzz_split,
    replay,
    run_handler,
    sample_splits,
    splits,
)


def test_splits_lists_every_cut_whole_first_trickle_last() -> None:
    assert list(splits(b"abc")) == [[b"abc"], [b"a", b"bc"], [b"ab", b"c"], [b"a", b"b", b"c"]]
    assert list(splits(b"")) == [[]]
    assert len(list(splits(b"x" * 10))) == 2**9


def test_sample_splits_tries_fewest_cuts_first() -> None:
    data = bytes(range(100))
    sample = sample_splits(data, 300, seed=7)
    assert len(sample) == 300
    assert sample[0] == [data]
    assert sample[1:100] == [[data[:i], data[i:]] for i in range(1, 100)]
    assert sample[100] == [bytes([b]) for b in data]
    assert all(len(chunks) >= 3 for chunks in sample[101:])
    assert all(b"".join(chunks) == data and all(chunks) for chunks in sample)
    assert sample == sample_splits(data, 300, seed=7)  # reproducible
    assert sample != sample_splits(data, 300, seed=8)


@given(st.data())
def test_chunkings_rebuild_the_input_from_non_empty_chunks(data: st.DataObject) -> None:
    payload = data.draw(st.binary(max_size=50))
    chunks = data.draw(chunkings(payload))
    assert b"".join(chunks) == payload
    assert all(chunks)


def test_replay_joins_streamed_pieces_to_their_frame() -> None:
    def body_after_header(framer: Framer, frame: Frame) -> None:
        if frame.data == b"LEN 5":
            framer.set_terminator(5, stream=True)
        else:
            framer.set_terminator(b"\n")

    chunks = [b"LEN 5\nab", b"c", b"deQUIT\nrest"]
    assert replay(Framer(b"\n"), chunks, after_frame=body_after_header) == [
        Frame(b"LEN 5"),
        Frame(b"abcde"),
        Frame(b"QUIT"),
        EndOfStream(b"rest"),
    ]


def test_replay_records_an_oversized_frame_and_goes_on() -> None:
    events = replay(Framer(b"\n", max_frame_size=4), [b"ok\n", b"far too long\nok\n"])
    assert events[0] == Frame(b"ok")
    assert isinstance(events[1], FrameTooLarge)
    assert events[2:] == [Frame(b"ok"), EndOfStream(b"")]


def test_replay_without_eof_returns_the_frame_in_progress_as_data() -> None:
    assert replay(Framer(None), [b"ab", b"cd"], eof=False) == [Data(b"abcd")]


class Upper(Handler):
    def frame_received(self, data: bytes) -> None:
        self.framer.push(data.upper() + b"\r\n")
        if data == b"bye":
            self.framer.close_when_done()


def test_run_handler_records_the_connection_as_a_binding_runs_it() -> None:
    transcript = run_handler(Upper, [b"hel", b"lo\r\nbye\r", b"\nignored\r\n"])
    assert transcript.calls == [
        ("connection_made", None),
        ("frame_received", b"hello"),
        ("frame_received", b"bye"),
        ("connection_lost", None),  # nothing after the close decision is delivered
    ]
    assert transcript.output == b"HELLO\r\nBYE\r\n"
    assert transcript.closed
    assert transcript.error is None


def test_the_default_end_received_closes_and_an_overridden_one_may_not() -> None:
    assert run_handler(Upper, [b"hi\r\n"]).calls[-2:] == [("end_received", b""), ("connection_lost", None)]

    class HalfOpen(Upper):
        def end_received(self, data: bytes) -> None:
            pass  # keeps the connection open to send more later

    transcript = run_handler(HalfOpen, [b"hi\r\n"])
    assert not transcript.closed
    assert transcript.calls[-1] == ("end_received", b"")
    assert not run_handler(Upper, [b"hi\r\n"], eof=False).closed


def test_a_handler_error_keeps_the_answers_before_it() -> None:
    class Fails(Upper):
        def frame_received(self, data: bytes) -> None:
            super().frame_received(data)
            if data == b"boom":
                raise RuntimeError("bug")

    transcript = run_handler(Fails, [b"a\r\nboom\r\nb\r\n"])
    assert transcript.output == b"A\r\nBOOM\r\n"
    assert isinstance(transcript.error, RuntimeError)
    assert transcript.calls[-1] == ("connection_lost", (RuntimeError, "bug"))


def test_a_split_invariant_protocol_passes_and_returns_its_transcript() -> None:
    transcript = assert_split_invariant(Upper, b"one\r\ntwo\r\n")
    assert transcript.output == b"ONE\r\nTWO\r\n"
    assert transcript.calls[-2] == ("end_received", b"")


class NaiveLines(Handler):
    """A classic bug: treating each piece that arrives as a whole line."""

    terminator = None

    def data_received(self, data: bytes) -> None:
        for line in data.split(b"\n"):
            if line:
                self.framer.push(b"got " + line + b"\n")


def test_a_protocol_that_depends_on_the_split_is_caught() -> None:
    with pytest.raises(AssertionError, match="split"):
        assert_split_invariant(NaiveLines, b"hello\nworld\n")


def test_the_http_example_gives_the_same_answers_however_requests_are_cut() -> None:
    requests = (
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
        b"POST /f HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
        b"POST /e HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    transcript = assert_split_invariant(HttpRequestReader, requests, max_splits=300)
    assert transcript.output.count(b"HTTP/1.1 200 OK") == 3
    assert b"POST /f HTTP/1.1: 5 body bytes" in transcript.output
    assert transcript.closed


def test_errors_are_part_of_the_transcript() -> None:
    class Strict(Upper):
        max_frame_size = 3

    transcript = assert_split_invariant(Strict, b"ok\r\ntoo long\r\n")
    assert transcript.output == b"OK\r\n"
    assert isinstance(transcript.error, FrameTooLarge)
    assert transcript.calls[-2][0] == "frame_too_large"
    assert transcript.calls[-1] == ("connection_lost", (FrameTooLarge, 3))


# ------------------------------------------- helpers that point at the bug


class LengthThenBody(Handler):
    """``LEN n`` then n bytes, echoed back; ``off_by`` plants a split-independent bug."""

    terminator = b"\n"
    off_by = 0

    def frame_received(self, data: bytes) -> None:
        if data.startswith(b"LEN "):
            self.framer.set_terminator(int(data[4:]) + self.off_by)
        else:
            self.framer.push(b"<" + data + b">")
            self.framer.set_terminator(b"\n")


class OffByOne(LengthThenBody):
    off_by = -1


WIRE = b"LEN 5\nhelloLEN 3\nabc"


def minimal_failing_chunks(factory: Callable[[], Handler], wire: bytes, expected: bytes) -> list[bytes]:
    """The split hypothesis reports when ``factory`` answers ``wire`` wrongly
    (the last example a failing test runs is the shrunk one)."""
    tried: list[list[bytes]] = []

    @settings(database=None, max_examples=300, derandomize=True)
    @given(chunkings(wire))
    def answers_right(chunks: list[bytes]) -> None:
        tried.append(chunks)
        assert run_handler(factory, chunks).output == expected

    with pytest.raises(AssertionError):
        answers_right()
    return tried[-1]


def test_a_split_independent_bug_shrinks_to_the_unsplit_input() -> None:
    expected = run_handler(LengthThenBody, [WIRE]).output
    assert expected == b"<hello><abc>"
    assert minimal_failing_chunks(OffByOne, WIRE, expected) == [WIRE]


def test_a_split_dependent_bug_shrinks_to_one_cut() -> None:
    wire = b"hello\nworld\n"
    expected = run_handler(NaiveLines, [wire]).output
    minimal = minimal_failing_chunks(NaiveLines, wire, expected)
    assert len(minimal) == 2
    assert b"".join(minimal) == wire


def test_the_split_invariance_failure_names_the_smallest_split_and_the_first_difference() -> None:
    wire = b"first line\nsecond line\n"  # 24 bytes: sampled, not exhaustive
    with pytest.raises(AssertionError) as caught:
        assert_split_invariant(NaiveLines, wire)
    message = str(caught.value)
    cut = int(message.split("cut at [")[1].split("]")[0])  # one cut, no more
    assert 0 < cut < len(wire)
    assert "output byte" in message
    assert "first line" in message or "second line" in message


def test_a_difference_in_callbacks_is_named_by_its_position() -> None:
    class CountsPieces(Handler):
        terminator = None

        def data_received(self, data: bytes) -> None:
            self.framer.set_terminator(b"\n" if len(data) > 3 else None)

    with pytest.raises(AssertionError, match=r"cut at \[\d\].*callback #"):
        assert_split_invariant(CountsPieces, b"abcd\nef\n")


def test_fuzz_split_finds_a_split_dependent_bug_and_passes_a_correct_handler() -> None:
    """The atheris template's one step, driven here by a seeded random search."""
    rng = random.Random(5)
    inputs = [bytes(rng.randrange(256) for _ in range(2)) + b"ab\ncd\nef\n" for _ in range(200)]
    for data in inputs:
        fuzz_split(Upper, data)  # a correct Handler never fails
    failures = 0
    for data in inputs:
        try:
            fuzz_split(NaiveLines, data)
        except AssertionError as error:
            failures += 1
            assert "cut at [" in str(error)
    assert failures > 50


def test_fuzz_split_reports_a_crashing_parser() -> None:
    class Crashes(Handler):
        def frame_received(self, data: bytes) -> None:
            int(data)  # hostile input: ValueError

    with pytest.raises(ValueError):
        fuzz_split(Crashes, b"\x00\x01not a number\r\n")


def test_the_fuzz_template_runs_without_atheris() -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent.parent / "fuzz" / "fuzz_handler.py"
    spec = importlib.util.spec_from_file_location("fuzz_handler", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.test_one_input(b"\x12\x34hello\r\nworld\r\n")
