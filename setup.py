"""Whether the wheel carries the compiled core; everything else is in pyproject.toml.

The pure-Python package is complete. ``SANSCHAT_COMPILE=1`` compiles the
events, the Framer, its readers, buffer and output queue with mypyc (it ships with mypy):

* By default (``pip install .``, ``python -m build``) nothing is compiled:
  no compiler and no mypy are needed.
* With ``SANSCHAT_COMPILE=1`` this script asks the build frontend for mypy
  (setuptools' backend reports ``setup_requires`` as a build requirement under
  PEP 517), so ``SANSCHAT_COMPILE=1 pip install .`` and
  ``SANSCHAT_COMPILE=1 python -m build`` need nothing installed by hand. With
  ``--no-build-isolation``, install mypy and setuptools first.
* When compiling cannot happen (mypy missing, no C compiler or Python headers,
  a mypyc error), the build says why on stderr and finishes as pure Python, so
  an install from the sdist works everywhere. ``sanschat.compiled`` and
  ``python -m sanschat --version`` tell which build runs; the release wheels are
  checked to be compiled (cibuildwheel's test-command, ``tox -e wheel``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

COMPILED_MODULES = [
    "src/sanschat/_events.py",
    "src/sanschat/_output.py",
    "src/sanschat/_buffer.py",
    "src/sanschat/_readers.py",
    "src/sanschat/_framer.py",
]
MYPY = "mypy>=1.8"
# A build directory of their own, so that a later pure build never packs the
# compiled modules (nor mypyc's generated C).
BUILD_BASE = "build-compiled"
# Commands that build no wheel (metadata, build requirements, the sdist): nothing
# to compile, and the sdist must not take the generated C as sources.
NOTHING_TO_COMPILE = {"egg_info", "dist_info", "sdist"}


class CompileFailed(Exception):
    """Building the extensions failed; the build goes on without them."""


class BuildExtOrFail(build_ext):
    """build_ext whose every failure is a CompileFailed (a missing compiler is
    an OSError or a distutils error, depending on the platform)."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:
            raise CompileFailed(f"{type(error).__name__}: {error}") from error


def pure_build_saying(reason: str) -> type[build_py]:
    """build_py that says, as the real build starts, why it is pure Python."""

    class BuildPyNoting(build_py):
        def run(self) -> None:
            print(f"sanschat: SANSCHAT_COMPILE=1 but {reason}; building pure Python", file=sys.stderr)
            super().run()

    return BuildPyNoting


def compiled_extensions() -> tuple[list[Any], str]:
    """The mypyc extensions, or none and the reason."""
    try:
        from mypyc.build import mypycify
    except ImportError as error:
        return [], f"mypyc cannot be imported ({error}; install {MYPY!r} or build with isolation)"
    try:
        # Only the compiled modules are checked: the bindings they may import
        # lazily (trio, anyio, Twisted) are extras, absent from a build env.
        options = ["--follow-imports=silent", "--ignore-missing-imports"]
        modules = mypycify(
            [*options, *COMPILED_MODULES],
            opt_level="3",
            group_name="sanschat",
            target_dir=f"{BUILD_BASE}/mypyc",
        )
    except (Exception, SystemExit) as error:  # mypyc reports a type error by exiting
        return [], f"mypyc failed ({type(error).__name__}: {error})"
    return modules, ""


def main() -> None:
    if os.environ.get("SANSCHAT_COMPILE") != "1":
        setup()
        return
    if NOTHING_TO_COMPILE & set(sys.argv[1:]):
        setup(setup_requires=[MYPY])
        return
    ext_modules, reason = compiled_extensions()
    if ext_modules:
        try:
            setup(
                ext_modules=ext_modules,
                setup_requires=[MYPY],
                cmdclass={"build_ext": BuildExtOrFail},
                options={"build": {"build_base": BUILD_BASE}},
            )
            return
        except CompileFailed as error:
            reason = f"the extensions did not build ({error})"
    setup(setup_requires=[MYPY], cmdclass={"build_py": pure_build_saying(reason)})


main()
