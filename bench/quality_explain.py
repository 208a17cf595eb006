"""Where a grouping goes wrong, by incident kind: the false merges and the splits, with the reasons behind them.

For tuning only (``bench/correlation_quality.py --tuning --explain``): a true incident's *kind* is
its label without the trailing number (``network_outage-2`` -> ``network_outage``), noise is a
kind of its own. Pairs are counted as in :mod:`bench.quality_metrics`:

- a *false merge* is a pair grouped together that belongs to two true incidents (or involves
  noise); it is charged to both kinds, and the worst groups are listed with, for each event of a
  minority label, the correlator's reason for putting it there (``events.event_correlations``);
- a *split* is a pair of one true incident put in two groups; the worst incidents are listed with
  their groups and, for the events outside the largest one, how they were placed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

#: Groups and incidents listed per seed.
WORST = 6
#: Events shown per group or incident.
SHOWN = 4


def kind_of(label: str) -> str:
    return "noise" if label.startswith("noise") else label.rsplit("-", 1)[0]


def _group_of(event_id: str, partition: dict[str, str | None]) -> str:
    return partition[event_id] or f"alone:{event_id}"


def _line(event: dict[str, Any], reasons: dict[str, str]) -> str:
    why = reasons.get(event["id"], "opened its incident (or stayed alone)")
    return (f"      t={event['t']:7.0f} [{event['label']}] {event['severity']:<8} h={event['host']} s={event['service']} "
            f"| {event['title'][:70]}\n        <- {why[:230]}")  # fmt: skip


def per_kind(events: list[dict[str, Any]], partition: dict[str, str | None]) -> dict[str, Counter[str]]:
    """Kind -> {"merge": false-merge pairs charged to it, "split": pairs of it split apart, "pairs": its true pairs}."""
    by_group: dict[str, Counter[str]] = {}
    by_label: dict[str, Counter[str]] = {}
    for e in events:
        group = _group_of(e["id"], partition)
        label = e["label"] if not e["label"].startswith("noise") else f"noise:{e['id']}"
        by_group.setdefault(group, Counter())[label] += 1
        by_label.setdefault(label, Counter())[group] += 1
    out: dict[str, Counter[str]] = {}
    for members in by_group.values():
        labels = list(members.items())
        for i, (a, na) in enumerate(labels):
            for b, nb in labels[i + 1 :]:
                for label in (a, b):
                    out.setdefault(kind_of(label), Counter())["merge"] += na * nb
    for label, groups in by_label.items():
        n = sum(groups.values())
        together = sum(k * (k - 1) // 2 for k in groups.values())
        out.setdefault(kind_of(label), Counter())["pairs"] += n * (n - 1) // 2
        out[kind_of(label)]["split"] += n * (n - 1) // 2 - together
    return out


def explain(events: list[dict[str, Any]], partition: dict[str, str | None], reasons: dict[str, str]) -> str:
    """The report for one seed: pairs per kind, then the worst merges and splits with their reasons.

    Parameters:
      events: stored events ``{"id", "t", "label", "host", "service", "severity", "title"}``.
      partition: event id -> incident id (None: alone).
      reasons: event id -> the correlation reason that placed it in its incident.
    """
    lines = ["  pairs by kind (false merges charged to both kinds, split pairs, true pairs):"]
    for kind, c in sorted(per_kind(events, partition).items(), key=lambda kv: -(kv[1]["merge"] + kv[1]["split"])):
        if c["merge"] or c["split"]:
            lines.append(f"    {kind:<18} merge {c['merge']:>6}  split {c['split']:>6}  of {c['pairs']:>6}")
    groups: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        groups.setdefault(_group_of(e["id"], partition), []).append(e)
    merges = []
    for members in groups.values():
        labels = Counter(e["label"] for e in members)
        if len(labels) > 1:
            n = len(members)
            wrong = n * (n - 1) // 2 - sum(k * (k - 1) // 2 for k in labels.values())
            merges.append((wrong, members, labels))
    lines.append("  worst false merges:")
    for wrong, members, labels in sorted(merges, key=lambda m: -m[0])[:WORST]:
        major = labels.most_common(1)[0][0]
        lines.append(f"    {wrong} false pairs in a group of {len(members)}: "
                     + ", ".join(f"{label} {n}" for label, n in labels.most_common(6)))  # fmt: skip
        # The bridges first: events whose evidence merged incidents, then minority events that joined on evidence.
        bridges = [e for e in members if "merged into this one" in reasons.get(e["id"], "")]
        joined = [e for e in members if e["label"] != major and e["id"] in reasons and e not in bridges]
        for e in sorted(bridges, key=lambda e: e["t"])[:SHOWN] + sorted(joined, key=lambda e: e["t"])[:SHOWN]:
            lines.append(_line(e, reasons))
    splits = []
    by_label: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if not e["label"].startswith("noise"):
            by_label.setdefault(e["label"], []).append(e)
    for label, members in by_label.items():
        parts = Counter(_group_of(e["id"], partition) for e in members)
        if len(parts) > 1:
            n = len(members)
            missed = n * (n - 1) // 2 - sum(k * (k - 1) // 2 for k in parts.values())
            splits.append((missed, label, members, parts))
    lines.append("  worst splits:")
    for missed, label, members, parts in sorted(splits, key=lambda s: -s[0])[:WORST]:
        main = parts.most_common(1)[0][0]
        lines.append(f"    {label}: {missed} pairs missed, {len(members)} events in {len(parts)} groups "
                     f"({', '.join(str(n) for _, n in parts.most_common(8))})")  # fmt: skip
        outside = [e for e in members if _group_of(e["id"], partition) != main]
        for e in sorted(outside, key=lambda e: e["t"])[:SHOWN]:
            lines.append(_line(e, reasons))
    return "\n".join(lines)
