"""Every Python example in the README and in docs/ runs and its assertions hold.

A page's blocks run in order in one namespace, as a reader follows them (the
tutorial builds its Handler in one block and tests it in the next), and each
page in a fresh interpreter (Twisted's reactor, for one, runs once per process).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

RUN_PAGE = """
import json, sys
namespace = {"__name__": "__doc_example__"}
for number, code in enumerate(json.loads(sys.stdin.read())):
    exec(compile(code, f"%s, example {number + 1}", "exec"), namespace)
"""


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_pages_have_examples() -> None:
    assert sum(len(python_blocks(page)) for page in PAGES) >= 15  # 17 when written
    assert python_blocks(ROOT / "README.md")  # the one example the README keeps


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.name)
def test_page_examples_run(page: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", RUN_PAGE % page.name],
        input=json.dumps(python_blocks(page)),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
