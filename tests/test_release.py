"""What a release is made of: one version, the license, the changelog, the
``--version`` line, and what the sdist and the wheels hold.

The checks of built files run where a tox env has just built them and says
where (``SANSCHAT_DIST_DIR``: ``tox -e dist`` for the sdist and the pure
wheel, ``tox -e wheel`` for the sdist and the compiled wheel); elsewhere they
skip. ``SANSCHAT_EXPECT_COMPILED=1`` (``tox -e wheel``) makes the compiled core
a requirement of the whole run.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

import sanschat
from sanschat._cli import main

if sys.version_info >= (3, 11):
    import tomllib

ROOT = Path(__file__).resolve().parent.parent
DIST_DIR = os.environ.get("SANSCHAT_DIST_DIR")
needs_dist = pytest.mark.skipif(not DIST_DIR, reason="no built sdist/wheel: SANSCHAT_DIST_DIR (tox -e dist)")

BUILD_LINE = "compiled core" if sanschat.compiled else "pure Python"
COMPILED_MODULES = ("_events", "_output", "_buffer", "_readers", "_framer")  # setup.py's list
BINDINGS = ("select", "asyncio", "trio", "anyio", "socket", "twisted")


def read_pyproject() -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    raise pytest.skip.Exception("reading pyproject.toml takes tomllib, Python 3.11+")


# ----------------------------------------------------------------- version


def test_the_version_is_read_from_the_package() -> None:
    project = read_pyproject()
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "sanschat.__version__"}


def test_the_installed_metadata_carries_the_packages_version() -> None:
    assert metadata.version("sanschat") == sanschat.__version__


def test_no_other_file_writes_the_version() -> None:
    """Code and configuration name the version only through sanschat.__version__
    (CHANGELOG.md and docs prose may name releases, old and new)."""
    version = re.compile(rf"(?<![\w.]){re.escape(sanschat.__version__)}(?![\w.])")
    kinds = {".py", ".toml", ".cfg", ".ini", ".txt", ".yaml", ".yml", ".sh", ".in"}
    hidden_kept = {".ci", ".clusterfuzzlite"}
    generated = {"build", "build-compiled", "dist", "_build", "mutants", "corpus", "__pycache__"}
    home = ROOT / "src" / "sanschat" / "__init__.py"
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [
            d
            for d in subfolders
            if (d in hidden_kept or not d.startswith("."))
            and d not in generated
            and not d.endswith(".egg-info")
        ]
        for name in files:
            path = Path(folder, name)
            if path == home or not (path.suffix in kinds or name in ("Dockerfile", "run")):
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            where = path.relative_to(ROOT).as_posix()
            found += [f"{where}:{n}" for n, line in enumerate(text.splitlines(), 1) if version.search(line)]
    assert not found


def test_version_flag_prints_the_version_and_the_build() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sanschat", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"sanschat {sanschat.__version__} ({BUILD_LINE})\n"
    assert done.stderr == ""


def test_version_flag_writes_to_the_given_stream() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["--version"], out, err) == 0
    assert out.getvalue() == f"sanschat {sanschat.__version__} ({BUILD_LINE})\n"
    assert err.getvalue() == ""


def test_version_flag_is_in_the_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sanschat", "--help"], capture_output=True, text=True, timeout=60
    )
    assert "--version" in done.stdout


@pytest.mark.skipif(
    os.environ.get("SANSCHAT_EXPECT_COMPILED") != "1", reason="a run that requires the compiled core"
)
def test_the_compiled_core_runs_from_the_installed_wheel() -> None:
    assert sanschat.compiled
    where = Path(sanschat.__file__).resolve()
    assert ROOT not in where.parents, f"sanschat imported from the tree under test: {where}"
    framer_file = sys.modules["sanschat._framer"].__file__
    assert framer_file is not None and not framer_file.endswith(".py")


# ------------------------------------------------------ license, changelog


def test_the_license_is_mit_for_the_sanschat_developers() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 the sanschat developers" in text
    project = read_pyproject()["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]


def test_the_changelog_has_an_unreleased_section_and_this_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.*)$", text, flags=re.MULTILINE)
    assert headings[0] == "[Unreleased]"
    for heading in headings[1:]:  # released: "[X.Y.Z] - YYYY-MM-DD"
        assert re.fullmatch(r"\[\d+\.\d+\.\d+\] - \d{4}-\d{2}-\d{2}", heading), heading
    version = sanschat.__version__
    released = f"[{version}]" in headings
    assert released or f"becomes {version}" in text, "name this version in CHANGELOG.md"


def says_what_sanschat_is(summary: str) -> bool:
    return all(name in summary.lower() for name in BINDINGS) and all(
        word in summary for word in ("sans-IO", "TLS", "STARTTLS", "asynchat")
    )


def test_the_description_says_what_sanschat_is() -> None:
    assert says_what_sanschat_is(read_pyproject()["project"]["description"])


# -------------------------------------------------------- built artefacts


def built(pattern: str) -> list[Path]:
    assert DIST_DIR is not None
    return sorted(Path(DIST_DIR).glob(pattern))


def sdist_members() -> list[str]:
    [sdist] = built("*.tar.gz")
    assert sdist.name == f"sanschat-{sanschat.__version__}.tar.gz"
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    top = f"sanschat-{sanschat.__version__}"
    assert all(name == top or name.startswith(top + "/") for name in names)
    return [name[len(top) + 1 :] for name in names if name != top]


@needs_dist
def test_the_sdist_holds_tests_docs_benchmarks_fuzzing_and_examples() -> None:
    members = set(sdist_members())
    for required in (
        "LICENSE",
        "CHANGELOG.md",
        "README.md",
        "pyproject.toml",
        "setup.py",
        "MANIFEST.in",
        "tox.ini",
        "src/sanschat/py.typed",
        "src/sanschat/examples/smtp.py",
        "tests/conftest.py",
        "tests/test_release.py",
        "docs/conf.py",
        "docs/index.md",
        "benchmarks/run.py",
        "benchmarks/README.md",
        "fuzz/fuzz_framer.py",
        "fuzz/fuzz_handler.py",
        ".clusterfuzzlite/Dockerfile",
        ".clusterfuzzlite/build.sh",
        ".clusterfuzzlite/project.yaml",
    ):
        assert required in members, required
    # Everything the tests read from the tree they run in, the corpus included.
    for folder, pattern in (("tests", "*.py"), ("docs", "*.md"), ("fuzz/corpus", "*")):
        for path in (ROOT / folder).glob(pattern):
            assert f"{folder}/{path.name}" in members, path


@needs_dist
def test_the_sdist_holds_no_build_or_cache_leftovers() -> None:
    leftovers = {"__pycache__", ".tox", ".hypothesis", ".mypy_cache", ".pytest_cache", "_build", "mutants"}
    for name in sdist_members():
        path = PurePosixPath(name)
        assert not leftovers & set(path.parts), name
        assert path.parts[0] not in ("build", "build-compiled", "dist"), name
        assert path.suffix not in (".pyc", ".so", ".pyd", ".c"), name


@needs_dist
def test_each_wheel_holds_the_typed_package_and_its_license_only() -> None:
    wheels = built("*.whl")
    assert wheels
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
            info = f"sanschat-{sanschat.__version__}.dist-info"
            fields = Parser().parsestr(archive.read(f"{info}/METADATA").decode("utf-8"))
        assert {"sanschat/__init__.py", "sanschat/py.typed", "sanschat/examples/smtp.py"} <= names
        assert f"{info}/licenses/LICENSE" in names
        assert fields["Version"] == sanschat.__version__
        assert fields["License-Expression"] == "MIT"
        assert says_what_sanschat_is(fields["Summary"]), fields["Summary"]
        assert not {name.split("/")[0] for name in names} & {"tests", "docs", "fuzz", "benchmarks"}


@needs_dist
def test_a_platform_wheel_carries_the_compiled_core_and_a_pure_wheel_none() -> None:
    for wheel in built("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            extensions = [n for n in archive.namelist() if n.endswith((".so", ".pyd"))]
        if wheel.name.endswith("-py3-none-any.whl"):
            assert extensions == [], wheel.name
        else:
            for module in COMPILED_MODULES:
                assert any(n.startswith(f"sanschat/{module}.") for n in extensions), (wheel.name, module)
            assert any(n.startswith("sanschat__mypyc.") for n in extensions), wheel.name
    if os.environ.get("SANSCHAT_EXPECT_COMPILED") == "1":
        assert any(not w.name.endswith("-none-any.whl") for w in built("*.whl")), (
            "no compiled wheel was built"
        )
