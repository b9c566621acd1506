"""Template: fuzz your own Handler under every split, with atheris.

Copy this file, import your Handler instead of ``Upper`` and run it::

    pip install --only-binary=:all: atheris
    mkdir -p fuzz/corpus-handler
    python fuzz/fuzz_handler.py fuzz/corpus-handler -max_total_time=300

Each input's first two bytes choose where to cut the rest; the Handler must
answer the cut input exactly as the unsplit one, and no callback may raise
anything but a FramingError. A finding is written as ``crash-*``; replay it
with ``python fuzz/fuzz_handler.py crash-...``.
"""

from __future__ import annotations

import sys

from sanschat import Handler
from sanschat.testing import fuzz_split


class Upper(Handler):
    """Replace with your own Handler (import it inside atheris.instrument_imports())."""

    def frame_received(self, data: bytes) -> None:
        self.framer.push(data.upper() + b"\r\n")


def test_one_input(data: bytes) -> None:
    fuzz_split(Upper, data)


if __name__ == "__main__":
    import atheris

    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
