"""The TLS benchmark's servers (benchmarks/e2e_tls.py) give exactly the expected
replies at a quick size, on the pinned suite, and its checks refuse a wrong
reply or another suite, so a change that breaks the benchmark fails here first.
A binding whose server does not take ``tls=`` yet is skipped."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trustme")
pytest.importorskip("trio")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import e2e  # type: ignore[import-not-found]  # noqa: E402  (benchmarks/ is not type-checked)
import e2e_tls  # type: ignore[import-not-found]  # noqa: E402

Running = Callable[[str], tuple[dict[str, Any], Any]]
KINDS = {"echo": e2e_tls.ECHO, "resp": e2e_tls.RESP}


@pytest.fixture(scope="module")
def certificates() -> Iterator[tuple[str, dict[str, str]]]:
    with e2e_tls.certificates() as made:
        yield made


@pytest.fixture(scope="module")
def running(certificates: tuple[str, dict[str, str]]) -> Iterator[Running]:
    """The benchmark's TLS servers of a protocol, started on first use, and a client."""
    certdir, env = certificates
    started: dict[str, tuple[dict[str, Any], Any]] = {}

    def get(protocol: str) -> tuple[dict[str, Any], Any]:
        if protocol not in started:
            servers = e2e.start_servers(
                protocol, KINDS[protocol], lambda _: None, e2e_tls.__file__, [certdir], env
            )
            started[protocol] = (servers, e2e_tls.Client(protocol, certdir))
        return started[protocol]

    yield get
    for servers, _ in started.values():
        e2e.stop_servers(servers)


def quick_work(protocol: str) -> list[list[tuple[bytes, bytes]]]:
    if protocol == "echo":
        return [e2e.echo_batches(3, 20, random.Random(client)) for client in range(4)]
    return [e2e.resp_batches(client, 3, 20, b"test") for client in range(4)]


@pytest.mark.parametrize(("protocol", "kind"), [(p, kind) for p, kinds in KINDS.items() for kind in kinds])
def test_each_tls_server_gives_the_exact_replies_on_the_pinned_suite(
    running: Running, protocol: str, kind: str
) -> None:
    servers, client = running(protocol)
    if kind not in servers:
        pytest.skip(f"{kind} does not serve TLS (yet)")
    e2e.drive(servers[kind][1], quick_work(protocol), client)  # raises on any wrong byte
    assert e2e_tls.check_suites(client, {kind: servers[kind]}) == (e2e_tls.SUITE, "TLSv1.3", 128)


def test_the_check_refuses_a_wrong_reply(running: Running) -> None:
    servers, client = running("echo")
    port = servers["asyncio Protocol, hand-split"][1]
    with pytest.raises(RuntimeError, match="wrong reply"):
        e2e.drive(port, [[(b"hello\n", b"hellO\n")]], client)


def test_the_suite_check_refuses_a_server_on_another_suite() -> None:
    client = e2e_tls.Client.__new__(e2e_tls.Client)
    client.negotiated = {
        1: {(e2e_tls.SUITE, "TLSv1.3", 128)},
        2: {("TLS_AES_256_GCM_SHA384", "TLSv1.3", 256)},
    }
    with pytest.raises(RuntimeError, match="not the same suite"):
        e2e_tls.check_suites(client, {"a": (None, 1), "b": (None, 2)})
    with pytest.raises(RuntimeError, match="not the same suite"):  # a server never measured
        e2e_tls.check_suites(client, {"a": (None, 1), "c": (None, 3)})


def test_idle_memory_is_measured_per_connection(certificates: tuple[str, dict[str, str]]) -> None:
    resident, traced = e2e_tls.idle_growth("sanschat select", *certificates, connections=5, warm=2)
    assert resident == resident and traced > 0  # not NaN: the server started and answered its probes
