"""How good a grouping is, against the true labels; and the two baselines a grouping has to beat.

A *partition* maps an event id to the group it was put in: an incident id, or ``None`` for an
event left alone (it is a group of its own). *Truth* maps an event id to its incident label, or
to ``noise`` (any label starting with ``noise``): every noise event is an incident of its own.

- pairwise precision / recall / F1 over all pairs of events: a pair is grouped (same group)
  and/or belongs together (same true incident);
- a true incident is *found* when at least :data:`FOUND_SHARE` of its events are in one group;
- *noise reduction* is ``1 - groups / events``;
- *flapping marked*: true flapping links whose main group the correlator marked ``flapping``;
- *noise contamination*: of the noise events, the share put into a group that holds events of a
  true incident (``noise_absorbed``), and of the events in such groups, the share that is noise
  (``noise_share``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

#: A true incident is found when at least this share of its events are in one group.
FOUND_SHARE = 0.9
#: The baselines' window: an event joins its host's (or service's) group if that group's last event is this recent.
BASELINE_WINDOW_S = 15 * 60


def is_noise(label: str) -> bool:
    return label.startswith("noise")


def _keys(truth: dict[str, str], partition: dict[str, str | None]) -> tuple[list[str], list[str]]:
    """(true key, predicted key) per event; noise and ungrouped events get keys of their own."""
    ids = sorted(i for i in truth if i in partition)
    true = [f"\x00{i}" if is_noise(truth[i]) else truth[i] for i in ids]
    pred = [f"\x00{i}" if partition[i] is None else str(partition[i]) for i in ids]
    return true, pred


def _pairs(counts: Counter[Any]) -> int:
    return sum(n * (n - 1) // 2 for n in counts.values())


@dataclass(frozen=True)
class Pairwise:
    """Pair counts and the scores they give (precision/recall are 1.0 when there is nothing to get wrong)."""

    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, other: Pairwise) -> Pairwise:
        return Pairwise(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)


def pairwise(truth: dict[str, str], partition: dict[str, str | None]) -> Pairwise:
    """Pairwise counts over the events both know, from the contingency table (no loop over pairs)."""
    true, pred = _keys(truth, partition)
    tp = _pairs(Counter(zip(true, pred, strict=True)))
    return Pairwise(tp=tp, fp=_pairs(Counter(pred)) - tp, fn=_pairs(Counter(true)) - tp)


def found(truth: dict[str, str], partition: dict[str, str | None]) -> dict[str, float]:
    """True incident -> the largest share of its events that one group holds."""
    true, pred = _keys(truth, partition)
    members: dict[str, Counter[str]] = {}
    for t, p in zip(true, pred, strict=True):
        if not t.startswith("\x00"):
            members.setdefault(t, Counter())[p] += 1
    return {label: max(c.values()) / sum(c.values()) for label, c in sorted(members.items())}


def noise_counts(truth: dict[str, str], partition: dict[str, str | None]) -> tuple[int, int, int]:
    """(noise events, those in a group that holds a true incident's events, events in such groups)."""
    ids = [i for i in truth if i in partition]
    incident_groups = {partition[i] for i in ids if partition[i] is not None and not is_noise(truth[i])}
    noise = [i for i in ids if is_noise(truth[i])]
    absorbed = sum(1 for i in noise if partition[i] in incident_groups)
    return len(noise), absorbed, sum(1 for i in ids if partition[i] in incident_groups)


def contamination(truth: dict[str, str], partition: dict[str, str | None]) -> tuple[float, float]:
    """(share of noise events in incident groups, share of incident groups' events that are noise)."""
    return noise_shares(*noise_counts(truth, partition))


def noise_shares(noise: int, absorbed: int, in_groups: int) -> tuple[float, float]:
    return (absorbed / noise if noise else 0.0, absorbed / in_groups if in_groups else 0.0)


def groups(partition: dict[str, str | None]) -> int:
    """Incidents a partition makes (events left alone are not incidents)."""
    return len({g for g in partition.values() if g is not None})


def baseline(events: list[dict[str, Any]], key: str, *, window_s: float = BASELINE_WINDOW_S) -> dict[str, str | None]:
    """Group ``events`` (``{"id", "at" (seconds), key}``) by ``key`` within ``window_s``.

    An event joins the latest group of its ``key`` when that group's last event is at most
    ``window_s`` older; otherwise it starts a new group. An event without ``key`` stays alone.
    """
    partition: dict[str, str | None] = {}
    latest: dict[str, tuple[str, float]] = {}
    for event in sorted(events, key=lambda e: (e["at"], e["id"])):
        value = event.get(key)
        if not value:
            partition[event["id"]] = None
            continue
        group = latest.get(value)
        if group is None or event["at"] - group[1] > window_s:
            group = (f"{key}:{value}:{event['id']}", event["at"])
        latest[value] = (group[0], event["at"])
        partition[event["id"]] = group[0]
    return partition


def score(truth: dict[str, str], partition: dict[str, str | None]) -> dict[str, Any]:
    """Every figure of one partition against the truth."""
    pairs = pairwise(truth, partition)
    shares = found(truth, partition)
    counts = noise_counts(truth, partition)
    absorbed, share = noise_shares(*counts)
    events = sum(1 for i in truth if i in partition)
    made = groups({i: partition[i] for i in truth if i in partition})
    return {
        "pairs": pairs,
        "precision": pairs.precision,
        "recall": pairs.recall,
        "f1": pairs.f1,
        "incidents": len(shares),
        "found": sum(1 for s in shares.values() if s >= FOUND_SHARE),
        "missed": {label: round(s, 3) for label, s in shares.items() if s < FOUND_SHARE},
        "groups": made,
        "noise_reduction": 1 - made / events if events else 0.0,
        "noise_counts": counts,
        "noise_absorbed": absorbed,
        "noise_share": share,
    }


def same_partition(a: dict[str, str | None], b: dict[str, str | None]) -> bool:
    """Whether two partitions group the same events together (group names aside)."""

    def blocks(p: dict[str, str | None]) -> set[frozenset[str]]:
        by: dict[str, set[str]] = {}
        for event_id, group in p.items():
            by.setdefault(group if group is not None else f"\x00{event_id}", set()).add(event_id)
        return {frozenset(s) for s in by.values()}

    return a.keys() == b.keys() and blocks(a) == blocks(b)


def flapping_marked(
    truth: dict[str, str], partition: dict[str, str | None], statuses: dict[str, str], *, kind: str = "flapping_link"
) -> tuple[int, int]:
    """(marked, total): true incidents of ``kind`` whose main group (the incident holding most of their events)
    the correlator marked ``flapping``."""
    by_label: dict[str, Counter[str | None]] = {}
    for event_id, label in truth.items():
        if label.rsplit("-", 1)[0] == kind and event_id in partition:
            by_label.setdefault(label, Counter())[partition[event_id]] += 1
    marked = sum(1 for groups in by_label.values() if statuses.get(groups.most_common(1)[0][0] or "") == "flapping")
    return marked, len(by_label)
