"""Every Python example in the README runs and its assertions hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(path: Path) -> list[tuple[str, str]]:
    text = path.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    return [(f"{path.name}#{i}", block) for i, block in enumerate(blocks)]


EXAMPLES = [example for path in DOCS if path.exists() for example in python_blocks(path)]


def test_the_readme_has_examples() -> None:
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("name, code", EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_doc_example_runs(name: str, code: str) -> None:
    exec(compile(code, name, "exec"), {"__name__": "__doc_example__"})
