"""The Handler contract over TLS: every scenario of the conformance checker,
and the hostile TLS peers, for every TCP binding serving TLS from the first
byte in sanschat's sans-IO layer, with verifying clients that refuse a
truncated end (a TCP end without close_notify)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sanschat.testing import SCENARIOS, TLS_SCENARIOS, Serve

from .servers import TLS_BINDINGS, tls_contexts


@pytest.mark.parametrize("scenario", SCENARIOS.values(), ids=SCENARIOS.keys())
@pytest.mark.parametrize("binding", TLS_BINDINGS.values(), ids=TLS_BINDINGS.keys())
def test_the_binding_keeps_the_handler_contract_over_tls(
    binding: Serve, scenario: Callable[[Serve], None]
) -> None:
    scenario(binding)


@pytest.mark.parametrize("scenario", TLS_SCENARIOS.values(), ids=TLS_SCENARIOS.keys())
@pytest.mark.parametrize("binding", TLS_BINDINGS.values(), ids=TLS_BINDINGS.keys())
def test_the_binding_withstands_hostile_tls_peers(binding: Serve, scenario: Callable[..., None]) -> None:
    if scenario is TLS_SCENARIOS["tls_a_trickled_handshake_does_not_delay_others"]:
        scenario(binding, tls_contexts()[1])
    else:
        scenario(binding)
