"""Time every shipped syslog rule, and the whole syslog parser, on hostile 64 KiB lines.

Each pattern of ``app/data/syslog_rules.json`` is searched (RE2, as the normalizer does) in lines
built to make a backtracking engine go quadratic or worse: long runs of the characters patterns
repeat (``a``, spaces, digits, ``-``, ``;``), the pattern's own literal fragments repeated, and the
same ending in a newline (``.`` and ``$`` stop there). Whole frames, with those lines and hostile
CEF, LEEF and RFC 5424 structured data, go through :func:`app.parsing.syslog.parse_syslog` too, so
the header patterns kept on Python's ``re`` are timed as well.

Prints, per rule, the median of several runs of its slowest line, in milliseconds; the
``MAX_SECONDS_PER_LINE`` bound of ``tests/unit/test_regex_safety.py`` is set from these figures.

    .venv/bin/python bench/regex.py [--runs 5] [--size 65536]
"""

from __future__ import annotations

import argparse
import re._parser as sre_parse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.parsing.syslog import parse_syslog  # noqa: E402
from app.parsing.syslog_ruleset import Rule, default_rules  # noqa: E402

#: Size of a hostile line, in characters: the largest TCP frame a receiver accepts.
LINE_CHARS = 64 * 1024
#: Characters patterns repeat (``\S+``, ``\s*``, ``\d+``, ``[^;]*``, ``[^ ]+``, ``.*``), each made into a whole line.
FILLERS = ("a", " ", "0", "-", ";", ".", "%", "=", "\\", "|", "[", '"', "(", ":")


def fragments(pattern: str) -> list[str]:
    """The literal runs of a pattern (``"Failed password for "``, ``" from "``, ``" port "``), in order."""
    found: list[str] = []

    def walk(parsed: sre_parse.SubPattern | list) -> None:
        run: list[str] = []
        for op, arg in parsed:
            if op is sre_parse.LITERAL:
                run.append(chr(arg))
                continue
            if run:
                found.append("".join(run))
                run = []
            if op is sre_parse.SUBPATTERN:
                walk(arg[-1])
            elif op is sre_parse.BRANCH:
                for branch in arg[1]:
                    walk(branch)
            elif op in (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT):
                walk(arg[2])
            elif op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
                walk(arg[1])
        if run:
            found.append("".join(run))

    walk(sre_parse.parse(pattern))
    return [f for f in found if f.strip()] or ["a"]


def _fill(unit: str, size: int) -> str:
    return (unit * (size // max(len(unit), 1) + 1))[:size]


def hostile_lines(pattern: str, size: int = LINE_CHARS) -> Iterator[str]:
    """Lines of about ``size`` characters made to stall a backtracking engine on ``pattern``."""
    parts = fragments(pattern)
    prefix = parts[0]
    for filler in FILLERS:
        yield _fill(filler, size)
        yield prefix + _fill(filler, size - len(prefix) - 2) + "\n!"
    yield _fill(prefix, size)
    for part in parts:
        for unit in (part, part + " ", " " + part + "a", part + "a;"):
            yield prefix + _fill(unit, size - len(prefix) - 2) + "\n!"
            yield prefix + _fill(unit, size - len(prefix) - 1) + "!"
    yield prefix + _fill(" ".join(parts) + " ", size - len(prefix) - 2) + "\n!"
    yield prefix + _fill("".join(parts), size - len(prefix) - 2) + "\n!"


def hostile_frames(size: int = LINE_CHARS) -> Iterator[bytes]:
    """Whole syslog frames: every rule's hostile lines behind a header, and hostile CEF, LEEF and SD."""
    for rule in default_rules():
        for line in hostile_lines(rule.pattern.pattern, size):
            yield b"<27>Nov 24 01:36:30 vm systemd[1]: " + line.encode()
    headers = (
        "CEF:0|", "CEF:0|a|b|c|d|e|f|", "LEEF:1.0|", "LEEF:2.0|a|b|c|d|", "<13>1 2024-01-01T00:00:00Z h a p m [x",
        "<13>1 - - - - - [x a=\"", "1: ", "*Mar  1 ", "host ", "%LINK-3-", "app[",
    )  # fmt: skip
    units = ("\\|", "\\", "|", " a=", "a=b ", "\\=", '\\"', ' a="b"', "0: ", "1d02h: ", ":", "[", "%A-1-B", "CEF:0|")
    for header in headers:
        for unit in units:
            yield (header + _fill(unit, size - len(header))).encode()
            yield (header + _fill(unit, size - len(header) - 2) + "\n!").encode()


def seconds(fn: Callable[[], object], runs: int) -> float:
    """The median wall time of ``runs`` calls of ``fn``, in seconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def slowest_line(rule: Rule, runs: int, size: int) -> tuple[float, str]:
    """(median seconds, the line) of the rule's slowest hostile line."""
    worst = (0.0, "")
    for line in hostile_lines(rule.pattern.pattern, size):
        took = seconds(lambda line=line: rule.pattern.search(line), runs)
        worst = max(worst, (took, line))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per line; the median is kept")
    parser.add_argument("--size", type=int, default=LINE_CHARS, help="characters per hostile line")
    args = parser.parse_args()
    rules = default_rules()
    print(f"{'rule':32} {'slowest line':>14}  line starts with")
    overall = 0.0
    for rule in rules:
        took, line = slowest_line(rule, args.runs, args.size)
        overall = max(overall, took)
        print(f"{rule.name:32} {took * 1000:11.2f} ms  {line[:40]!r}")
    took = max(seconds(lambda line=line: rules.match(line), args.runs) for line in _all_lines(args.size))
    print(f"{'every rule (RuleSet.match)':32} {took * 1000:11.2f} ms")
    overall = max(overall, took)
    now = datetime.now(UTC)
    worst = (0.0, b"")
    for frame in hostile_frames(args.size):
        took = seconds(lambda frame=frame: _parse(frame, now), args.runs)
        worst = max(worst, (took, frame))
    print(f"{'parse_syslog (whole frame)':32} {worst[0] * 1000:11.2f} ms  {worst[1][:40]!r}")
    overall = max(overall, worst[0])
    print(f"slowest: {overall * 1000:.2f} ms per {args.size} characters")


def _all_lines(size: int) -> Iterator[str]:
    for rule in default_rules():
        yield from hostile_lines(rule.pattern.pattern, size)


def _parse(frame: bytes, now: datetime) -> None:
    from app.errors import InvalidEvent

    try:
        parse_syslog(frame, received_at=now, peer="192.0.2.1")
    except InvalidEvent:
        pass


if __name__ == "__main__":
    main()
