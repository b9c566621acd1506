"""Events are small immutable data."""

from __future__ import annotations

import pickle

import pytest

from sanschat import Data, EndOfStream, Frame


def test_events_compare_by_type_and_data() -> None:
    assert Frame(b"x") == Frame(b"x")
    assert Frame(b"x") != Data(b"x")
    assert Frame(b"x") != b"x"
    assert len({Frame(b"x"), Frame(b"x"), Data(b"x")}) == 2


def test_events_are_immutable() -> None:
    event = EndOfStream(b"tail")
    with pytest.raises(AttributeError):
        event.data = b"other"
    with pytest.raises(AttributeError):
        del event.data
    with pytest.raises(AttributeError):
        event.extra = 1


def test_events_repr_and_pickle() -> None:
    assert repr(Data(b"a\r\n")) == "Data(b'a\\r\\n')"
    assert pickle.loads(pickle.dumps(Frame(b"p"))) == Frame(b"p")


def framer_built_events() -> list[Frame | Data]:
    """One event of each path the Framer builds them on: a batch of pipelined
    frames, a single frame, a streamed piece, a frame of an AnyDelimiter."""
    from sanschat import NEED_DATA, AnyDelimiter, Framer, Terminator

    built: list[Frame | Data] = []
    cases: list[tuple[Terminator, bool, bytes]] = [
        (b"\n", False, b"a\n" * 600),  # pipelined: the batch path
        (b"\n", False, b"one\n"),
        (b"\n", True, b"stream"),
        (AnyDelimiter(b"\r\n", b"\n"), False, b"any\r\n"),
    ]
    for terminator, stream, data in cases:
        framer = Framer(terminator, stream=stream)
        framer.receive_data(data)
        event = framer.next_event()
        assert event is not NEED_DATA
        built.append(event)  # type: ignore[arg-type]
    return built


def test_events_the_framer_builds_are_the_events_one_constructs() -> None:
    batch, single, piece, any_frame = framer_built_events()
    assert (batch, single, piece, any_frame) == (
        Frame(b"a"),
        Frame(b"one"),
        Data(b"stream"),
        Frame(b"any", b"\r\n"),
    )
    assert [batch.terminator, single.terminator, any_frame.terminator] == [None, None, b"\r\n"]  # type: ignore[union-attr]
    for event in (batch, single, piece, any_frame):
        twin = pickle.loads(pickle.dumps(event))
        assert (twin, hash(twin), repr(twin)) == (event, hash(event), repr(event))
        with pytest.raises(AttributeError):
            event.data = b"other"


def test_the_compiled_build_makes_native_events() -> None:
    """The compiled Framer builds events as native classes (one C call each);
    a build that compiled the Framer but not the events would lose that."""
    import sanschat
    from sanschat._events import NATIVE_EVENTS

    assert NATIVE_EVENTS is sanschat.compiled
    assert hasattr(Frame, "__mypyc_attrs__") is sanschat.compiled
