"""Time sanschat's own cases of the suite for two source trees, round-robin.

    python benchmarks/before_after.py OLD_SRC NEW_SRC [--rounds 7] [--only W1,W2]

Each round runs every sanschat case once per tree, each in a fresh process,
alternating which tree goes first; the medians and the new/old ratio are
printed. ``git worktree add /tmp/old REV`` gives an old tree (its ``src``).
The workloads and their checked outputs are those of ``benchmarks/workloads.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

ONE_ROUND = """
import gc, json, sys, time
sys.path.insert(0, {here!r})
import workloads
out = {{}}
for workload in workloads.build(False):
    if not workload.name.startswith(tuple({only!r})):
        continue
    for name, case in workload.cases:
        if not name.startswith("sanschat") or isinstance(case, str):
            continue
        gc.collect()
        started = time.perf_counter()
        try:
            result = case(workload.chunks)
        except AttributeError:  # an older tree without the API this case uses
            continue
        out[workload.name + " " + name] = time.perf_counter() - started
        assert workload.check(result), (workload.name, name)
print(json.dumps(out))
"""


def one_round(src: str, only: list[str]) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=src, SANSCHAT_BENCH_INSTALLED="1")
    code = ONE_ROUND.format(here=str(HERE), only=only)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", default="W1,W2,W3,W5,W6,W7,W8")
    args = parser.parse_args()
    only = args.only.split(",")
    times: dict[str, dict[str, list[float]]] = {"old": {}, "new": {}}
    for n in range(args.rounds):
        order = [("old", args.old), ("new", args.new)]
        for label, src in order if n % 2 == 0 else order[::-1]:
            for case, seconds in one_round(src, only).items():
                times[label].setdefault(case, []).append(seconds)
    print("| case | old median s | new median s | new/old time |\n|---|---:|---:|---:|")
    for case, old in times["old"].items():
        new = times["new"].get(case)
        if not new:
            continue
        a, b = statistics.median(old), statistics.median(new)
        print(f"| {case} | {a:.4f} | {b:.4f} | {b / a:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
