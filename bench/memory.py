"""Resident memory of the processes a benchmark started, sampled while it runs.

Each process the benchmarks start (``tests.processes.Process``) leads a session of its own, so
its process group holds the dramatiq or gunicorn master and the workers they fork; the sampler
reads ``VmRSS`` of every process of each group from ``/proc`` and keeps each one's peak.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

#: Seconds between two samples.
INTERVAL_S = 0.5


def group_rss_kib(pgid: int) -> dict[int, int]:
    """``VmRSS`` in KiB of every process of the process group ``pgid``, by pid."""
    out: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # The command may hold spaces and parentheses: fields start after the last ")".
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) != pgid:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out[int(entry.name)] = int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue  # the process ended between listing and reading
    return out


class RssSampler:
    """Peak resident memory of named process groups, sampled every :data:`INTERVAL_S` in a thread.

    ``with RssSampler({"web": web_process, ...}) as rss: ...`` then ``rss.peaks_mib()``.
    """

    def __init__(self, processes: dict[str, Any]) -> None:
        self._groups = {name: p.proc.pid for name, p in processes.items()}
        self._peaks: dict[str, int] = dict.fromkeys(self._groups, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling (again: nothing)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def __enter__(self) -> RssSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def sample(self) -> None:
        for name, pgid in self._groups.items():
            sizes = group_rss_kib(pgid)
            if sizes:
                # The largest single process of the group: the figure a per-process limit applies to.
                self._peaks[name] = max(self._peaks[name], max(sizes.values()))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(INTERVAL_S)

    def peaks_mib(self) -> dict[str, float]:
        """Each group's largest process at its peak, in MiB."""
        return {name: round(kib / 1024, 1) for name, kib in self._peaks.items()}


def describe(peaks: dict[str, float]) -> str:
    return ", ".join(f"{name} {mib:.0f} MiB" for name, mib in peaks.items())


if __name__ == "__main__":  # pragma: no cover - a manual check: this shell's group
    print(group_rss_kib(os.getpgid(0)))
