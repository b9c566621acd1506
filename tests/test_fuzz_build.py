"""The ClusterFuzzLite build (``.clusterfuzzlite/``), run as far as it runs
without its container image.

``build.sh`` runs under bash as ClusterFuzzLite runs it (from ``$SRC/sanschat``,
with ``$SRC``, ``$OUT`` and ``$SANITIZER`` set), with stand-ins for the two
commands the image provides: ``pip3`` (the test's own interpreter already has
sanschat) and ``compile_python_fuzzer``, which records each target and, in
coverage builds, puts code in front of it as the real one does before
PyInstaller packs it. Each recorded target then runs one input as the packed
fuzzer would, through a stand-in ``atheris`` that calls the target's test
function once per input. What is not run here: the image itself, PyInstaller,
and atheris's instrumentation and mutation.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CFL = ROOT / ".clusterfuzzlite"
# ClusterFuzzLite's documented base image for Python projects (atheris inside).
BASE_IMAGE = "gcr.io/oss-fuzz-base/base-builder-python"

linux_only = pytest.mark.skipif(
    sys.platform != "linux" or shutil.which("bash") is None,
    reason="build.sh runs in a Linux image (GNU sed, bash)",
)

COMPILE_STAND_IN = """\
#!/bin/bash -eu
# compile_python_fuzzer stand-in: record the target; in coverage builds put
# code in front of it, as the real helper does before packing it.
echo "$*" >> "$OUT/compiled.log"
if [[ "$SANITIZER" == coverage ]]; then
    printf 'import atexit\\natexit.register(lambda: None)\\n' | cat - "$1" > "$1.tmp"
    mv "$1.tmp" "$1"
fi
"""

PIP_STAND_IN = """\
#!/bin/bash -eu
echo "$*" >> "$OUT/pip3.log"
"""

# Calls the target's test function once per input it is given (a file, or
# the first file of a folder), as ``fuzzer -runs=N INPUT...`` would.
ATHERIS_STAND_IN = """
import contextlib
import os
import sys

_test = None
_inputs = []


def instrument_all():
    pass


@contextlib.contextmanager
def instrument_imports():
    yield


def Setup(argv, test_one_input, **kwargs):
    global _test
    _test = test_one_input
    for arg in argv[1:]:
        if arg.startswith("-"):
            continue
        if os.path.isdir(arg):
            arg = os.path.join(arg, sorted(os.listdir(arg))[0])
        _inputs.append(arg)


def Fuzz():
    for path in _inputs:
        with open(path, "rb") as f:
            _test(f.read())
    print(f"atheris stand-in: {len(_inputs)} input(s) ran")
"""


def dockerfile_instructions() -> list[list[str]]:
    lines = (CFL / "Dockerfile").read_text(encoding="utf-8").splitlines()
    return [line.split() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def targets_in_build_sh() -> list[str]:
    script = (CFL / "build.sh").read_text(encoding="utf-8")
    loop = re.search(r"^for target in (.*); do$", script, flags=re.MULTILINE)
    assert loop, "build.sh names its targets in one for loop"
    return loop.group(1).split()


# ----------------------------------------------------------- static checks


def test_the_dockerfile_starts_from_the_documented_python_image() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ["FROM", BASE_IMAGE]
    assert ["COPY", ".", "$SRC/sanschat"] in instructions
    assert ["WORKDIR", "$SRC/sanschat"] in instructions
    assert ["COPY", ".clusterfuzzlite/build.sh", "$SRC/"] in instructions


def test_the_project_is_declared_python() -> None:
    assert (CFL / "project.yaml").read_text(encoding="utf-8").split() == ["language:", "python"]


def test_build_sh_packs_every_target_in_fuzz_and_only_those() -> None:
    on_disk = sorted(f"fuzz/{path.name}" for path in (ROOT / "fuzz").glob("fuzz_*.py"))
    assert sorted(targets_in_build_sh()) == on_disk
    assert len(on_disk) >= 2


@linux_only
def test_build_sh_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(CFL / "build.sh")], check=True)


# ------------------------------------------------- build.sh, then one input


def run_build(tmp_path: Path, sanitizer: str) -> tuple[Path, Path]:
    """Lay out $SRC and $OUT as the image does and run build.sh; return the
    project folder (as build.sh left it) and $OUT."""
    src, out, tools = tmp_path / "src", tmp_path / "out", tmp_path / "tools"
    project = src / "sanschat"
    for folder in (out, tools):
        folder.mkdir()
    shutil.copytree(ROOT / "fuzz", project / "fuzz", ignore=shutil.ignore_patterns("corpus-*", "__pycache__"))
    shutil.copy(CFL / "build.sh", src / "build.sh")  # the Dockerfile's COPY
    for name, script in (("compile_python_fuzzer", COMPILE_STAND_IN), ("pip3", PIP_STAND_IN)):
        (tools / name).write_text(script, encoding="utf-8")
        (tools / name).chmod(0o755)
    env = {
        **os.environ,
        "SRC": str(src),
        "OUT": str(out),
        "SANITIZER": sanitizer,
        "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}",
    }
    done = subprocess.run(
        ["bash", "-eu", str(src / "build.sh")],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return project, out


@linux_only
@pytest.mark.skipif(shutil.which("zip") is None, reason="zip (in the image) is not installed here")
@pytest.mark.parametrize("sanitizer", ["address", "coverage"])
def test_build_sh_packs_each_target_and_each_runs_an_input(tmp_path: Path, sanitizer: str) -> None:
    project, out = run_build(tmp_path, sanitizer)
    assert (out / "pip3.log").read_text().split() == ["install", "."]
    packed = (out / "compiled.log").read_text().split()
    assert packed == targets_in_build_sh()

    corpus = sorted(p.name for p in (ROOT / "fuzz" / "corpus").iterdir())
    with zipfile.ZipFile(out / "fuzz_framer_seed_corpus.zip") as seeds:
        assert sorted(seeds.namelist()) == corpus

    stand_in = tmp_path / "atheris-stand-in"
    stand_in.mkdir()
    (stand_in / "atheris.py").write_text(textwrap.dedent(ATHERIS_STAND_IN), encoding="utf-8")
    one_input = tmp_path / "input"
    one_input.mkdir()
    shutil.copy(ROOT / "fuzz" / "corpus" / corpus[0], one_input / "seed")
    env = {**os.environ, "PYTHONPATH": str(stand_in)}
    for target in packed:
        # As ClusterFuzzLite starts a fuzzer: libFuzzer flags, then the corpus folder.
        done = subprocess.run(
            [sys.executable, target, "-runs=1", "-max_total_time=10", str(one_input)],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, (target, done.stderr)
        assert "atheris stand-in: 1 input(s) ran" in done.stdout, (target, done.stdout)


def test_a_failing_target_would_fail_its_run(tmp_path: Path) -> None:
    """The stand-in propagates what the test function raises: a run that
    passes above has run the target's check."""
    stand_in = tmp_path / "atheris.py"
    stand_in.write_text(textwrap.dedent(ATHERIS_STAND_IN), encoding="utf-8")
    target = tmp_path / "fuzz_broken.py"
    target.write_text(
        "import sys, atheris\n"
        "def check(data):\n"
        "    raise AssertionError('planted')\n"
        "atheris.Setup(sys.argv, check)\n"
        "atheris.Fuzz()\n",
        encoding="utf-8",
    )
    (tmp_path / "seed").write_bytes(b"x")
    done = subprocess.run(
        [sys.executable, str(target), str(tmp_path / "seed")],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "planted" in done.stderr
