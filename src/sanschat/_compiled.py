"""Whether the Framer runs compiled (mypyc, see setup.py), and what that build
needs put back: mypyc keeps no docstrings, so the classes get theirs from the
source files installed next to the compiled modules."""

from __future__ import annotations

import ast
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path


def is_compiled(module_name: str) -> bool:
    """Whether ``module_name`` (imported already) was loaded from an extension module."""
    origin = getattr(sys.modules[module_name], "__file__", None) or ""
    return origin.endswith(tuple(EXTENSION_SUFFIXES))


def restore_class_docstrings(*classes: type) -> None:
    """Give each class without a docstring the one its source file declares."""
    for cls in classes:
        if cls.__doc__:
            continue
        origin = getattr(sys.modules[cls.__module__], "__file__", None) or ""
        compiled_file = Path(origin)
        source = compiled_file.with_name(compiled_file.name.split(".", 1)[0] + ".py")
        if not source.is_file():
            continue
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
                cls.__doc__ = ast.get_docstring(node)
