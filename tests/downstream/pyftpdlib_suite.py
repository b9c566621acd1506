"""Run pyftpdlib's own test suite against sanschat.asynchat and against the
original asynchat, side by side (``tox -e downstream-py311,downstream-py312``).

pyftpdlib 1.5.10 is a maintained FTP server built on asynchat: its classes
subclass ``async_chat``, read and change ``producer_fifo``, and override
``initiate_send``, ``writable`` and ``close_when_done``. Its sdist is fetched
from PyPI, unpacked twice, and changed in one line per module, the import:
``from sanschat import asynchat`` in one copy, ``import asynchat`` (the
standard library's on 3.11, pyasynchat's on 3.12+) in the other. Both suites
run; every test the original passes must pass on sanschat too.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

VERSION = "1.5.10"
IMPORT = "from . import _asynchat as asynchat"
PATCHED = {"sanschat": "from sanschat import asynchat", "original": "import asynchat"}


def fetch(into: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q",
         "-d", str(into), f"pyftpdlib=={VERSION}"],
        check=True,
    )  # fmt: skip
    return next(into.glob("pyftpdlib-*.tar.gz"))


def unpack(sdist: Path, into: Path, asynchat_import: str) -> Path:
    with tarfile.open(sdist) as archive:
        archive.extractall(into, filter="data") if sys.version_info >= (3, 12) else archive.extractall(into)
    root = into / f"pyftpdlib-{VERSION}"
    for module in ("handlers.py", "ioloop.py"):
        path = root / "pyftpdlib" / module
        text = path.read_text()
        assert text.count(IMPORT) == 1, f"{module}: the import to change is not where it was"
        path.write_text(text.replace(IMPORT, asynchat_import))
    return root


def run_suite(root: Path, report: Path) -> dict[str, str]:
    """Run the suite in ``root``; return each test's outcome."""
    subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-p", "no:randomly", f"--junitxml={report}", "pyftpdlib/test"],
        cwd=root,
        check=False,
    )  # fmt: skip
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        kinds = {child.tag for child in case}
        outcomes[name] = (
            "failed" if kinds & {"failure", "error"} else "skipped" if "skipped" in kinds else "passed"
        )
    return outcomes


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sdist = fetch(work / "sdist")
        results = {
            name: run_suite(unpack(sdist, work / name, line), work / f"{name}.xml")
            for name, line in PATCHED.items()
        }
    ours, theirs = results["sanschat"], results["original"]
    for name, outcomes in results.items():
        counts = {
            kind: sum(1 for o in outcomes.values() if o == kind) for kind in ("passed", "failed", "skipped")
        }
        print(f"pyftpdlib {VERSION} on {name} asynchat: {counts}")
    regressions = sorted(t for t, o in theirs.items() if o == "passed" and ours.get(t) != "passed")
    for test in regressions:
        print(f"passes on the original, not on sanschat: {test} ({ours.get(test, 'missing')})")
    return 1 if regressions or not ours else 0


if __name__ == "__main__":
    sys.exit(main())
