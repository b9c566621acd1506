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


def rerun(root: Path, test: str, times: int = 3) -> int:
    """How many of ``times`` lone runs of ``test`` fail (timing-sensitive tests
    of the suite fail now and then on a busy machine, on either asynchat)."""
    classname, _, name = test.rpartition("::")
    module, _, cls = classname.rpartition(".")
    node = f"{module.replace('.', '/')}.py::{cls}::{name}"
    failures = 0
    for _ in range(times):
        done = subprocess.run(
            [sys.executable, "-W", "ignore::DeprecationWarning", "-m", "pytest", "-q", "-p", "no:cacheprovider", node],
            cwd=root,
            capture_output=True,
            check=False,
        )  # fmt: skip
        failures += done.returncode != 0
    return failures


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sdist = fetch(work / "sdist")
        roots = {name: unpack(sdist, work / name, line) for name, line in PATCHED.items()}
        results = {name: run_suite(root, work / f"{name}.xml") for name, root in roots.items()}
        ours, theirs = results["sanschat"], results["original"]
        for name, outcomes in results.items():
            counts = {
                kind: sum(1 for o in outcomes.values() if o == kind)
                for kind in ("passed", "failed", "skipped")
            }
            print(f"pyftpdlib {VERSION} on {name} asynchat: {counts}")
        regressions = []
        for test in sorted(t for t, o in theirs.items() if o == "passed" and ours.get(t) != "passed"):
            # A regression fails every time; a timing-sensitive test does not.
            failed = rerun(roots["sanschat"], test) if test in ours else 3
            print(f"passed on the original, not once on sanschat: {test}; {failed} of 3 reruns failed")
            if failed == 3:
                regressions.append(test)
    for test in regressions:
        print(f"REGRESSION: passes on the original, never on sanschat: {test}")
    return 1 if regressions or not ours else 0


if __name__ == "__main__":
    sys.exit(main())
