"""The atheris fuzz target's property, run without atheris: on its seed corpus
and on hypothesis-made inputs, so the target itself stays correct in CI."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
spec = importlib.util.spec_from_file_location("fuzz_framer", FUZZ / "fuzz_framer.py")
assert spec is not None and spec.loader is not None
fuzz_framer = importlib.util.module_from_spec(spec)
sys.modules["fuzz_framer"] = fuzz_framer  # dataclasses look their module up
spec.loader.exec_module(fuzz_framer)

CORPUS = sorted((FUZZ / "corpus").iterdir())


def test_every_corpus_input_passes() -> None:
    """The seeds plus what a 10-minute atheris run kept for coverage."""
    assert len(CORPUS) >= 8
    for path in CORPUS:
        fuzz_framer.check(path.read_bytes())


@pytest.mark.parametrize("seed", fuzz_framer.SEEDS)
def test_seeds_decode_to_themselves(seed: object) -> None:
    assert fuzz_framer.decode(fuzz_framer.encode(seed)) == seed


@given(st.binary(max_size=400))
def test_any_input(data: bytes) -> None:
    fuzz_framer.check(data)


def test_a_broken_framer_would_be_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check is not vacuous: a Framer that drops one byte of every chunk fails it."""
    from sanschat import Framer

    original = Framer.receive_data

    def lossy(self: Framer, data: bytes) -> None:
        original(self, data[1:] if len(data) > 1 else data)

    monkeypatch.setattr(Framer, "receive_data", lossy)
    with pytest.raises(AssertionError):
        fuzz_framer.check(fuzz_framer.encode(fuzz_framer.SEEDS[1]))  # a case with cuts
