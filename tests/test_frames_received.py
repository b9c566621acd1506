"""``Handler.frames_received``: a pipelined run of whole frames in one call,
and ``Framer.take_payloads()`` beneath it.

The rules: the same frames as one ``frame_received`` call each, in order, for
any split of the input; a change made inside the call (terminator, close)
applies from the byte after the run's last frame; an error never costs a
frame taken before it.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sanschat import Framer, FrameTooLarge, Handler
from sanschat.testing import assert_split_invariant, chunkings, run_handler


class Echo(Handler):
    terminator = b"\n"
    max_frame_size = 8

    def frame_received(self, data: bytes) -> None:
        self.framer.push(data + b"\n")

    def frame_too_large(self, error: FrameTooLarge) -> None:
        self.framer.push(b"too long\n")


class RunEcho(Echo):
    """The same answers, one push per run."""

    def __init__(self) -> None:
        self.runs: list[list[bytes]] = []

    def frames_received(self, frames: list[bytes]) -> None:
        self.runs.append(frames)
        self.framer.push(b"".join([data + b"\n" for data in frames]))


lines = st.lists(st.binary(max_size=10).map(lambda line: line.replace(b"\n", b"")), max_size=30)


@given(st.data(), lines)
def test_a_run_handler_sees_what_frame_received_would_see(data: st.DataObject, payloads: list[bytes]) -> None:
    stream = b"".join(line + b"\n" for line in payloads) + b"tail"
    chunks = data.draw(chunkings(stream))
    one_by_one = run_handler(Echo, chunks)
    in_runs = run_handler(RunEcho, chunks)
    assert in_runs.comparable() == one_by_one.comparable()


def test_the_transcript_of_a_run_handler_does_not_depend_on_the_split() -> None:
    assert_split_invariant(RunEcho, b"a\nb\n0123456789\nc\nd")


def test_one_read_of_pipelined_frames_is_one_call() -> None:
    handler = RunEcho()
    run_handler(lambda: handler, [b"a\nb\nc\n", b"d\n"])
    assert handler.runs == [[b"a", b"b", b"c"], [b"d"]]


def test_a_terminator_set_in_the_call_applies_after_the_run() -> None:
    class Switch(Handler):
        terminator = b"\n"

        def __init__(self) -> None:
            self.seen: list[list[bytes]] = []

        def frames_received(self, frames: list[bytes]) -> None:
            self.seen.append(frames)
            self.framer.set_terminator(3)  # from the byte after the last of them

    handler = Switch()
    run_handler(lambda: handler, [b"one\ntwo\nabcdef"])
    first, *rest = handler.seen
    assert first == [b"one", b"two"]
    assert [frame for run in rest for frame in run] == [b"abc", b"def"]  # (in runs of any size)


def test_a_close_in_the_call_delivers_nothing_after_the_run() -> None:
    class Quit(Handler):
        terminator = b"\n"

        def __init__(self) -> None:
            self.seen: list[list[bytes]] = []

        def frames_received(self, frames: list[bytes]) -> None:
            self.seen.append(frames)
            self.framer.close_when_done()

    handler = Quit()
    transcript = run_handler(lambda: handler, [b"a\nb\n", b"c\n"])
    assert handler.seen == [[b"a", b"b"]]
    assert transcript.closed


def test_an_oversized_frame_in_a_run_costs_no_other_frame() -> None:
    handler = RunEcho()
    transcript = run_handler(lambda: handler, [b"a\nb\n" + b"x" * 20 + b"\nc\nd\n"])
    assert transcript.output == b"a\nb\ntoo long\nc\nd\n"
    assert [frame for run in handler.runs for frame in run] == [b"a", b"b", b"c", b"d"]


# ------------------------------------------------------- take_payloads()


@given(st.data(), lines)
def test_take_payloads_gives_what_payloads_gives(data: st.DataObject, payloads: list[bytes]) -> None:
    stream = b"".join(line + b"\n" for line in payloads)
    by_list, by_generator = Framer(b"\n"), Framer(b"\n")
    got_list: list[bytes] = []
    got_generator: list[bytes] = []
    for chunk in data.draw(chunkings(stream)):
        by_list.receive_data(chunk)
        by_generator.receive_data(chunk)
        while taken := by_list.take_payloads():
            got_list += taken
        got_generator += by_generator.payloads()
    assert got_list == got_generator == payloads


def test_take_payloads_raises_only_with_nothing_taken() -> None:
    framer = Framer(b"\n", max_frame_size=4)
    framer.receive_data(b"ab\ncd\n" + b"x" * 10 + b"\nef\n")
    taken: list[bytes] = []
    while True:
        try:
            run = framer.take_payloads()
        except FrameTooLarge as error:
            assert error.limit == 4
            break
        assert run, "stopped at the oversized frame without refusing it"
        taken += run
    assert taken == [b"ab", b"cd"]  # every frame before the error, none lost to it
    assert framer.take_payloads() == [b"ef"]
    assert framer.take_payloads() == []
