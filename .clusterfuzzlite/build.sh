#!/bin/bash -eu
# ClusterFuzzLite build: runs in the Dockerfile's image, from $SRC/sanschat.
# tests/test_fuzz_build.py runs this script with stand-ins for pip3 and
# compile_python_fuzzer, then runs one input through each target.

# Pure Python on purpose: atheris follows Python bytecode, not the C that
# mypyc makes of the core (the compiled build runs the same tests in tox -e wheel).
pip3 install .

for target in fuzz/fuzz_framer.py fuzz/fuzz_handler.py; do
    if [[ "${SANITIZER:-}" == coverage ]]; then
        # Coverage builds put a stub in front of the target's code, and a
        # __future__ import must come first in its file; the targets'
        # annotations evaluate as they are on the image's Python.
        sed -i '/^from __future__ import annotations$/d' "$target"
    fi
    compile_python_fuzzer "$target"
done

# The seed corpus (the tests replay it too), zipped where ClusterFuzzLite looks.
(cd fuzz/corpus && zip -q -r "$OUT/fuzz_framer_seed_corpus.zip" .)
