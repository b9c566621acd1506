"""The public surface: what ``import sanschat`` offers, and what it costs."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import sanschat


def test_public_names_are_exactly_the_documented_ones() -> None:
    assert sorted(sanschat.__all__) == sorted(
        [
            "Framer",
            "Event",
            "Frame",
            "Data",
            "EndOfStream",
            "NEED_DATA",
            "InputEvent",
            "Terminator",
            "Producer",
            "simple_producer",
            "FramingError",
            "PeerError",
            "LocalError",
            "FrameTooLarge",
            "ProducerError",
            "ClosedError",
            "DEFAULT_MAX_FRAME_SIZE",
            "Handler",
            "ConnectionInfo",
            "TLSInfo",
            "deliver_events",
            "serve",
            "ServerShape",
            "Driver",
            "CloseAction",
            "OutputLimitExceeded",
            "AnyDelimiter",
            "LengthPrefix",
            "Varint",
            "Netstring",
            "HeaderKind",
            "MalformedFrame",
        ]
    )
    for name in sanschat.__all__:
        assert getattr(sanschat, name) is not None


def test_every_public_name_has_a_docstring() -> None:
    for name in sanschat.__all__:
        obj = getattr(sanschat, name)
        if isinstance(obj, type):
            assert obj.__doc__, name


def test_errors_say_whose_fault_they_are() -> None:
    for peer in (sanschat.FrameTooLarge, sanschat.MalformedFrame, sanschat.OutputLimitExceeded):
        assert issubclass(peer, sanschat.PeerError) and not issubclass(peer, sanschat.LocalError)
    for local in (sanschat.ClosedError, sanschat.ProducerError):
        assert issubclass(local, sanschat.LocalError) and not issubclass(local, sanschat.PeerError)


def test_errors_share_one_base() -> None:
    for exc in (
        sanschat.FrameTooLarge,
        sanschat.ProducerError,
        sanschat.ClosedError,
        sanschat.MalformedFrame,
        sanschat.OutputLimitExceeded,
    ):
        assert issubclass(exc, sanschat.FramingError)


def test_need_data_is_its_own_type() -> None:
    assert type(sanschat.NEED_DATA) is sanschat.NEED_DATA
    assert repr(sanschat.NEED_DATA) == "NEED_DATA"


def test_importing_sanschat_pulls_in_no_event_loop() -> None:
    code = (
        "import sys, sanschat; "
        "bad = [m for m in ('asyncio', 'trio', 'anyio', 'twisted', 'socketserver', 'asyncore', 'asynchat', "
        "'selectors', 'ssl', 'dpkt') if m in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_py_typed_ships_with_the_package() -> None:
    from importlib.resources import files

    assert files("sanschat").joinpath("py.typed").is_file()


@pytest.mark.parametrize("binding", ["asyncio", "trio"])
def test_the_old_name_of_framed_connection_still_works_with_a_warning(binding: str) -> None:
    module = importlib.import_module(f"sanschat.{binding}")
    with pytest.warns(DeprecationWarning, match="FramedStream is now FramedConnection"):
        assert module.FramedStream is module.FramedConnection
    with pytest.raises(AttributeError):
        module.NoSuchThing  # noqa: B018
