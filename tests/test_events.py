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
