"""Print a table of the DESIGN.md workloads, with bare Python measured beside HyperNodes.

Usage: ``python benchmarks/run.py [--quick] [--only SUBSTRING] [--peers]``.  Every ``bench_*.py``
module in this folder contributes workloads through a ``workloads()`` function that returns
:class:`common.Workload` objects; this script runs them and prints one table.  ``--peers`` runs
the chain, map and warm-cache workloads through pipefunc and Hamilton as well (``peers.py``;
install them with the ``bench`` extra) and prints them side by side with ratios.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pathlib
import sys

# One BLAS thread: the workloads' matrix products are small, and on a loaded two-core machine the
# spinning threads of a multi-threaded BLAS make their timings erratic.  Set before numpy loads.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import Result, Workload  # noqa: E402


def discover() -> list[Workload]:
    workloads: list[Workload] = []
    for path in sorted(HERE.glob("bench_*.py")):
        module = importlib.import_module(path.stem)
        workloads.extend(module.workloads())
    return workloads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--only", default="", help="run workloads whose name contains this")
    parser.add_argument(
        "--peers", action="store_true", help="only the side-by-side run with pipefunc and Hamilton"
    )
    args = parser.parse_args()
    if args.peers:
        from peers import side_by_side

        print_rows(("workload", "hypernodes", *PEER_NAMES), side_by_side(args.quick))
        return 0
    rows: list[Result] = []
    for workload in discover():
        if args.only and args.only not in workload.name:
            continue
        print(f"running: {workload.name} ...", file=sys.stderr, flush=True)
        rows.append(workload.measure(quick=args.quick))
    print_table(rows)
    return 0 if all(r.ok is not False for r in rows) else 1


PEER_NAMES = ("pipefunc", "hamilton")


def print_table(rows: list[Result]) -> None:
    header = ("workload", "hypernodes", "bare python", "metric", "target", "ok")
    print_rows(header, [r.cells() for r in rows])


def print_rows(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    line = "| " + " | ".join("-" * w for w in widths) + " |"
    for i, row in enumerate(table):
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |")
        if i == 0:
            print(line)


if __name__ == "__main__":
    raise SystemExit(main())
