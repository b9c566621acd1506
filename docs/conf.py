"""Sphinx configuration: ``tox -e docs`` builds the site into docs/_build/html,
with every warning an error."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import sanschat  # noqa: E402

project = "sanschat"
author = "the sanschat developers"
copyright = "2026, the sanschat developers"
release = version = sanschat.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

html_theme = "furo"
html_title = f"sanschat {release}"

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
# Methods inherited from asyncio's and trio's classes keep their own docs there.
autodoc_inherit_docstrings = False
