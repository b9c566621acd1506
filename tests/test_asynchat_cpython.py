"""CPython's own asynchat test suite, run against sanschat.asynchat.

The suite is not copied here: it is taken from an installed interpreter
(3.10 and 3.11 ship ``test/test_asynchat.py``; on 3.12+ a sibling 3.10/3.11
install is used if there is one). A directory whose ``asynchat.py`` re-exports
sanschat's module goes first on ``PYTHONPATH``, so the suite imports ours.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest


def find_suite() -> str | None:
    own = Path(sys.base_prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [str(own / "test" / "test_asynchat.py")]
    # Sibling installs (pyenv, /usr/lib, ...) of interpreters that still had asynchat.
    for root in {Path(sys.base_prefix).parent, Path("/usr/lib"), Path("/usr/local/lib")}:
        candidates += sorted(
            glob.glob(str(root / "*" / "lib" / "python3.1[01]" / "test" / "test_asynchat.py"))
        )
        candidates += sorted(glob.glob(str(root / "python3.1[01]" / "test" / "test_asynchat.py")))
    return next((c for c in candidates if os.path.isfile(c)), None)


SUITE = find_suite()


@pytest.mark.skipif(SUITE is None, reason="no interpreter here ships test_asynchat.py")
def test_cpython_asynchat_suite_passes_against_sanschat(tmp_path: Path) -> None:
    pytest.importorskip("asyncore")
    (tmp_path / "asynchat.py").write_text(
        "from sanschat.asynchat import async_chat, simple_producer, find_prefix_at_end\n"
        "import sanschat.asynchat as _impl\n"
        "__all__ = ['async_chat', 'simple_producer', 'find_prefix_at_end']\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    check = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", "import asynchat; print(asynchat.async_chat.__module__)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.stdout.strip() == "sanschat.asynchat", check.stderr
    assert SUITE is not None
    done = subprocess.run(
        [sys.executable, "-W", "ignore", SUITE, "-v"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-4000:]
    assert "Ran 25 tests" in report or "OK" in report, report[-2000:]
    # Both the select and the poll variants ran.
    assert "TestAsynchat_WithPoll" in report
