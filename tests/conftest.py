import gc
import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:
    import trustme

settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None)
# For mutation testing: derandomized, no example database, so that a mutant's
# verdict never depends on the mutants run before it.
settings.register_profile(
    "mutation",
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
settings.register_profile("deep", max_examples=3000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(autouse=True)
def collect_what_the_test_left() -> Iterator[None]:
    """Collect garbage as each test ends, so that a socket or loop it leaked
    warns (ResourceWarning, an error here) in that test's own teardown, not
    in whichever later test the collector happens to run in."""
    yield
    gc.collect()


# ------------------------------------------------------------------ TLS
# One throwaway CA for the session (trustme), a certificate for localhost and
# 127.0.0.1, and contexts with verification on, as real deployments have.


@pytest.fixture(scope="session")
def ca() -> "trustme.CA":  # noqa: UP037 (trustme is imported only when TLS is tested)
    import trustme

    return trustme.CA()


@pytest.fixture(scope="session")
def server_context(ca: "trustme.CA") -> ssl.SSLContext:  # noqa: UP037
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context


@pytest.fixture(scope="session")
def client_context(ca: "trustme.CA") -> ssl.SSLContext:  # noqa: UP037
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture(scope="session")
def pem(ca: "trustme.CA", tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: UP037
    """The server's certificate chain and key, as a file (for --tls-cert)."""
    path = tmp_path_factory.mktemp("tls") / "server.pem"
    ca.issue_cert("localhost", "127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="session")
def ca_pem(ca: "trustme.CA", tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: UP037
    """The CA's certificate, as a file (for clients that take a path)."""
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path
