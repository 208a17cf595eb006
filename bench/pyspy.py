"""Where a web worker's time goes under load: py-spy samples, summed into the stages of accepting an event.

``bench/webhook.py --profile DIR`` runs ``py-spy record --format raw`` on each gunicorn worker while wrk
loads it; :func:`summarize` reads those files and prints, per stage, the share of the samples whose stack
passes through it (a stage's inclusive time; stages can nest, so shares need not add up to 100 %), then
the functions with the most samples of their own. py-spy is a sampling profiler outside the process, so
the figures are those of the server as it runs (``pip install py-spy``; it is not a dependency).
"""

from __future__ import annotations

import collections
import os
import subprocess
from pathlib import Path

#: Stage -> a part of a frame's text (``function (file:line)``) that marks it.
STAGES = {
    "auth (key lookup)": "KeyStore.verify (",
    "read + JSON decode": "read_json (",
    "validation (split)": "Generic.split (",
    "envelope (make_items, ids)": "make_items (",
    "request id": "_request_id (",
    "publish() on the request's greenlet": "BatchPublisher.publish (",
    "publisher greenlet (pika publish + confirm)": "BatchPublisher._run (",
    "the resource (Ingest._accept)": "Ingest._accept (",
    "falcon app": "App.__call__ (",
    "gevent.pywsgi (HTTP parse/write)": "WSGIHandler.handle (",
    "sending (socket send)": "SocketMixin.send (",
    "hub (event loop)": "Hub.run (",
}


def worker_pids(master: int) -> list[int]:
    """The pids of a gunicorn master's workers (its children)."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) the processes used so far: what a request costs, whatever else runs."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / ticks


def record(
    pids: list[int], out_dir: Path, seconds: int, executable: str, *, gil: bool = False
) -> list[subprocess.Popen]:
    """Start one ``py-spy record`` per pid; each writes ``out_dir/web-<pid>.txt`` after ``seconds``.

    With ``gil``, only samples holding the GIL count: Python's own work, not system calls nor waiting for a core.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    spies = []
    for pid in pids:
        argv = [executable, "record", "--format", "raw", "--nonblocking", "-d", str(seconds), "-r", "200",
                "-o", str(out_dir / f"web-{pid}.txt"), "-p", str(pid), *(["--gil"] if gil else [])]  # fmt: skip
        spies.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return spies


def summarize(out_dir: Path, top: int = 25) -> str:
    """The stages' and the hottest functions' shares of all samples in ``out_dir/web-*.txt``."""
    total = 0
    stages: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    for path in sorted(out_dir.glob("web-*.txt")):
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack:
                continue
            count = int(count_text)
            total += count
            frames = stack.split(";")
            own[frames[-1]] += count
            for stage, mark in STAGES.items():
                if any(mark in frame for frame in frames):
                    stages[stage] += count
    if not total:
        return "no samples"
    lines = [f"{total} samples; stages (inclusive):"]
    lines += [f"  {100 * stages[s] / total:5.1f} %  {s}" for s in STAGES]
    lines.append("functions (own samples):")
    lines += [f"  {100 * n / total:5.1f} %  {frame}" for frame, n in own.most_common(top)]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(summarize(Path(sys.argv[1])))
