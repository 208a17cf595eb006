"""How fast the cost agent reads a large AWS CUR: lines per second, and its peak memory.

Writes a synthetic CUR 2.0 CSV of ``--lines`` lines (the fixture's columns; ``--resources``
distinct resources over 31 days of one month, with data-transfer lines metered) to a temporary
directory, then times, interleaved, ``--runs`` times each:

- ``csv``: the standard library's ``csv.DictReader`` alone over the file (the floor of any CSV path),
- ``read``: :class:`app.agents.cost_exports.ExportReader` turning it into cost lines,
- ``analyse``: the lines folded into :class:`app.agents.cost_analysis.Spend`, then the anomalies,
  idle resources and monthly totals worked out (what a run does before storing its report).

    .venv/bin/python bench/cost_exports.py [--lines 500000] [--resources 5000] [--runs 3] [--root DIR]

Prints the median of each, in lines/s, and the process's peak RSS. ``--root`` imports ``app`` from
another checkout (``git archive <commit> app | tar -x -C DIR``), for an A/B of two versions.
"""

from __future__ import annotations

import argparse
import csv
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COLUMNS = ("identity_line_item_id", "line_item_usage_account_id", "line_item_line_item_type", "line_item_usage_start_date",
           "line_item_product_code", "line_item_usage_type", "line_item_resource_id", "line_item_usage_amount",
           "pricing_unit", "line_item_unblended_cost")  # fmt: skip


def write_cur(path: Path, *, lines: int, resources: int) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for n in range(lines):
            r = n % resources
            day = 1 + (n // resources) % 31
            metered = n % 3 == 0
            writer.writerow([
                f"li-{n}", f"{100000000000 + r % 20}", "Usage", f"2026-12-{day:02d}T00:00:00Z",
                ("AmazonEC2", "AmazonS3", "AmazonRDS", "AWSELB")[r % 4],
                "USE1-DataTransfer-Out-Bytes" if metered else "USE1-BoxUsage:m5.large", f"i-{r:017x}",
                f"{(n % 97) / 10:.6f}" if metered else "1.000000", "GB" if metered else "Hrs", f"{0.096 + (n % 13) / 100:.6f}",
            ])  # fmt: skip


def timed(fn: Callable[[], int]) -> float:
    start = time.perf_counter()
    n = fn()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--resources", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--root", type=Path, default=ROOT, help="where app is imported from")
    args = parser.parse_args()
    sys.path.insert(0, str(args.root))
    from app.agents.cost_analysis import Spend, anomalies, idle_resources
    from app.agents.cost_exports import ExportReader

    print(f"app from {sys.modules['app.agents.cost_exports'].__file__}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cur.csv"
        write_cur(path, lines=args.lines, resources=args.resources)

        def bare() -> int:
            with path.open(newline="") as f:
                return sum(1 for _ in csv.DictReader(f))

        def read() -> int:
            return sum(1 for _ in ExportReader("aws").lines([path]))

        def analyse() -> int:
            reader, spend = ExportReader("aws"), Spend()
            spend.add(reader.lines([path]))
            anomalies(spend.daily, {})
            idle_resources(spend, {})
            spend.totals()
            return reader.read

        figures: dict[str, list[float]] = {"csv": [], "read": [], "analyse": []}
        for _ in range(args.runs):
            for name, fn in (("csv", bare), ("read", read), ("analyse", analyse)):
                figures[name].append(timed(fn))
    print(f"{args.lines:,} CUR lines, {args.resources:,} resources")
    for name, values in figures.items():
        print(
            f"{name:8s} median {statistics.median(values):>10,.0f} lines/s  (runs: {', '.join(f'{v:,.0f}' for v in values)})"
        )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
