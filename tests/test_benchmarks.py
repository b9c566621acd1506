"""The benchmark suite's own sanschat cases give exactly the expected output
(at the quick size), so a change that breaks a benchmark fails here first."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import workloads  # type: ignore[import-not-found]  # noqa: E402  (benchmarks/ is not type-checked)

WORKLOADS = workloads.build(quick=True)
CASES = [
    pytest.param(workload, case, id=f"{workload.name}: {name}")
    for workload in WORKLOADS
    for name, case in workload.cases
    if name.startswith("sanschat") and not isinstance(case, str)
]


@pytest.mark.parametrize(("workload", "case"), CASES)
def test_each_sanschat_case_gives_the_exact_output(
    workload: workloads.Workload, case: workloads.Case
) -> None:
    assert workload.check(case(workload.chunks))


def test_the_check_refuses_a_wrong_output() -> None:
    workload = WORKLOADS[0]
    assert not workload.check(workload.expected[:-1])
    assert not workload.check([b"x", *workload.expected[1:]])
