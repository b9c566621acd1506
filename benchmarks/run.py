"""sanschat's benchmark suite: the same in-memory input fed to each peer.

Run: ``python benchmarks/run.py`` (``--quick`` for a smaller smoke run,
``--markdown FILE`` to write the table). Peers need the ``bench`` extra:
``pip install .[bench]``; a peer that is not installed is reported as skipped.

The workloads and the peers' cases are in ``workloads.py``. Every case returns
its whole output, checked against the exact expected output after every timed
run, so a fast wrong answer fails loudly. Repeats run round-robin (each case
once per round, in a rotating order), so a slow patch of the shared machine
hits every peer alike; the median of the rounds is reported.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import date

HERE = os.path.dirname(os.path.abspath(__file__))
if "SANSCHAT_BENCH_INSTALLED" not in os.environ:
    sys.path.insert(0, os.path.join(HERE, "..", "src"))
sys.path.insert(0, HERE)

from workloads import Workload, build  # noqa: E402

import sanschat  # noqa: E402


def measure(workload: Workload) -> dict[str, float | str]:
    """Median seconds of each case over round-robin rounds (a note instead
    for a skipped case or a wrong output)."""
    cases = [(name, case) for name, case in workload.cases if not isinstance(case, str)]
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    wrong: dict[str, str] = {}
    for round_ in range(workload.repeats):
        shift = round_ % len(cases)
        for name, case in cases[shift:] + cases[:shift]:
            quadratic = name.startswith("Twisted") and workload.name.startswith("W4")
            if quadratic and times[name]:
                continue  # once is enough: minutes per run
            gc.collect()
            start = time.perf_counter()
            result = case(workload.chunks)
            times[name].append(time.perf_counter() - start)
            if not workload.check(result):
                wrong[name] = f"WRONG OUTPUT ({len(result)} units, {len(workload.expected)} expected)"
    out: dict[str, float | str] = {}
    for name, case in workload.cases:
        if isinstance(case, str):
            out[name] = case
        else:
            out[name] = wrong.get(name) or statistics.median(times[name])
    return out


def e2e_section(quick: bool, raw: list[dict[str, object]]) -> list[str]:
    """Run the loopback benchmark (benchmarks/e2e.py) and return its tables."""
    import e2e

    lines: list[str] = []
    for protocol, what in (("echo", "line echo"), ("resp", "RESP SET/GET")):
        batches, rounds = e2e.QUICK if quick else e2e.LENGTH[protocol]
        title = f"E2E: {what} over loopback, 50 clients, {batches} pipelined batches of 100, {rounds} rounds"
        print(f"\n{title}")
        figures = e2e.run(protocol, quick)
        lines += [f"### {title}", "", "| server | requests/s |", "|---|---:|"]
        lines += [f"| {name} | {rate:,.0f} |" for name, rate in figures.items()]
        lines.append("")
        for msg in e2e.ratios(protocol, figures):
            print("    " + msg)
            lines.append(f"- {msg}")
        lines.append("")
        raw += [
            {"workload": f"E2E {protocol}", "case": name, "requests_per_s": rate}
            for name, rate in figures.items()
        ]
    return lines


def linearity_section(raw: list[dict[str, object]]) -> list[str]:
    """W4's point: the 16 MiB message must cost about four times the 4 MiB one."""
    times: dict[tuple[object, object], float] = {
        (r["workload"], r["case"]): r["seconds"]
        for r in raw
        if "seconds" in r  # type: ignore[misc]
    }
    lines = []
    for (workload, case), small in times.items():
        large = times.get(("W4-16", case))
        if workload == "W4-4" and large is not None:
            lines.append(f"- {case}: 16 MiB / 4 MiB = {large / small:.2f} (linear is 4)")
    if lines:
        print("\nW4 linearity")
        for line in lines:
            print("  " + line[2:])
        lines = ["### W4 linearity", "", *lines, ""]
    return lines


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the data, for a smoke run")
    parser.add_argument("--only", help="run only workloads whose name starts with this")
    parser.add_argument("--markdown", help="write the result table to this file")
    parser.add_argument("--json", help="write raw results to this file")
    parser.add_argument("--no-e2e", action="store_true", help="skip the loopback benchmark")
    args = parser.parse_args(argv)

    header = (
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.machine()}, {cpu_model()} x{os.cpu_count()}, {platform.system()}, "
        f"{date.today().isoformat()}, sanschat "
        f"{'compiled (mypyc)' if getattr(sanschat, 'compiled', False) else 'pure Python'}"
    )
    print(header)
    lines = [f"_{header}; median of round-robin runs in one process, every output checked._", ""]
    raw: list[dict[str, object]] = []
    failures = 0
    for w in build(args.quick):
        if args.only and not w.name.startswith(args.only):
            continue
        total_bytes = sum(map(len, w.chunks))
        print(f"\n{w.name}: {w.title} ({total_bytes / 1e6:.1f} MB, {len(w.expected)} units)")
        lines += [
            f"### {w.name}: {w.title}",
            "",
            "| case | median s | units/s | MB/s | x floor | x sanschat best |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        rows: list[tuple[str, float | None, str]] = []
        for name, figure in measure(w).items():
            if isinstance(figure, str):
                print(f"  {name:32s} {figure}")
                failures += figure.startswith("WRONG")
                rows.append((name, None, figure))
            else:
                rows.append((name, figure, ""))
        timed = {name: s for name, s, note in rows if s is not None}
        floor = next((s for name, s in timed.items() if name.startswith("floor")), None)
        best = min((s for name, s in timed.items() if name.startswith("sanschat")), default=None)
        for name, seconds, note in rows:
            if seconds is None:
                lines.append(f"| {name} | {note} | | | | |")
                continue
            fps = len(w.expected) / seconds
            mbs = total_bytes / seconds / 1e6
            vs_floor = f"{floor / seconds:.2f}" if floor else ""
            vs_best = f"{best / seconds:.2f}" if best else ""
            print(
                f"  {name:32s} {seconds:8.4f} s {fps:12,.0f} units/s {mbs:8.1f} MB/s"
                f"  x floor {vs_floor:>5s}  {note}"
            )
            lines.append(
                f"| {name}{' ' + note if note else ''} | {seconds:.4f} | {fps:,.0f} | "
                f"{mbs:.1f} | {vs_floor} | {vs_best} |"
            )
            raw.append({"workload": w.name, "case": name, "seconds": seconds, "ok": not note})
        lines.append("")
        sans = {n: s for n, s in timed.items() if n.startswith("sanschat")}
        for peer, peer_s in timed.items():
            if peer.startswith(("sanschat", "floor")):
                continue
            for mine, my_s in sans.items():
                msg = f"{mine} vs {peer}: {peer_s / my_s:.2f}x"
                print("    " + msg)
                lines.append(f"- {msg}")
        lines.append("")
    lines += linearity_section(raw)
    if not args.no_e2e and (not args.only or "E2E".startswith(args.only)):
        lines += e2e_section(args.quick, raw)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(raw, fh, indent=1)
    if failures:
        print(f"\n{failures} case(s) produced wrong output", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
