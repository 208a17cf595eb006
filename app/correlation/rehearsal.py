"""Deciding a batch before the correlator's lock, and checking under it that nothing it relied on changed.

PERF: placing a batch's events (weighing each against the incidents sharing a key with it) is most
of a batch's cost, and under one lock for every correlator process it is serial: two processes
gave about one's rate. So a batch is first *rehearsed* without the lock, against the candidates as
a snapshot gives them (:meth:`.held.HeldIncidents.take`): the same placements, on rows this process
holds, recording every question put to the index (:meth:`.candidates.Candidates.near` and
``linked``) and the incidents the answers named. Under the lock (:func:`check`) the candidates'
row versions are read again; the rehearsal stands when no incident it looked at changed since,
and no incident that changed or appeared since answers any of its questions: placing anew would
ask the same questions, get the same answers (the index answers from shared keys only, incident
by incident), weigh the same rows and decide the same. Only then are its rows saved as it left
them; otherwise the batch is placed again under the lock, as without a rehearsal.

A rehearsal has no effect outside its rows: the notifications of the incidents it closes, and the
writes of the saved incidents it merges (their events and links moved, the timelines), wait for
:func:`check`, which makes them under the lock, in the order the batch made them and before the
rows are saved, as a placement under the lock makes them (PERF: a merge no longer sends the batch
to be placed again under the lock). A reopening (which counts the incident's returns in the
database) is left to the lock: :class:`Unsure`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from ..db import uuid_in
from ..models import Incident
from ..notifications import follow
from .evidence import Facts
from .grouping import Candidates, GroupingSettings, OpenIncident, Topology
from .held import Versioned, read_incidents
from .placing import ACTOR, Batch, matching_state

#: How batches were decided, by this process: "rehearsed" (the rehearsal stood), "conflict" (placed
#: again under the lock: an incident it relied on changed), "unsure" (a reopening: placed
#: under the lock), "skipped" (no rehearsal: nothing to place when it was made, or most of the process's
#: last ones did not stand, :func:`.store._rehearsing`).
OUTCOMES: Counter[str] = Counter()


class Unsure(Exception):
    """The rehearsal met a step whose effects reach beyond the batch's rows: place the batch under the lock."""


#: A question put to the index: ("near", the event's facts) or ("linked", keys).
Query = tuple[str, Any]


def _recording(base: type[Candidates]) -> type:
    """``base`` (the index class a :class:`.placing.Batch` uses), recording its questions for a :class:`Rehearsing`.

    An index asked for every incident at once (a question not recorded) makes the rehearsal :class:`Unsure`.
    """
    recorded = _RECORDING.get(base)
    if recorded is None:

        def near(self: Any, facts: Facts) -> list[OpenIncident]:
            found: list[OpenIncident] = base.near(self, facts)
            self.questions.asked("near", facts, found)
            return found

        def linked(self: Any, keys: Any) -> list[OpenIncident]:
            keys = list(keys)
            found: list[OpenIncident] = base.linked(self, keys)
            self.questions.asked("linked", keys, found)
            return found

        def every(self: Any) -> Any:
            raise Unsure("the index was asked for every incident")

        recorded = type(f"Recorded{base.__name__}", (base,), {"near": near, "linked": linked, "__iter__": every})
        _RECORDING[base] = recorded
    return recorded


_RECORDING: dict[type[Candidates], type] = {}


class _Questions:
    """The questions a rehearsal put to its index, and the incidents the answers named.

    PERF: the index records into this, not into the :class:`Rehearsing` that holds the index: with the two
    referring to each other, every rehearsal (its events' facts, thousands of objects) outlived its batch until
    the garbage collector's next full collection, and made those collections several times as frequent.
    """

    def __init__(self) -> None:
        self.queries: list[Query] = []
        self.looked: set[str] = set()

    def asked(self, kind: str, question: Any, found: list[OpenIncident]) -> None:
        self.queries.append((kind, question))
        self.looked.update(inc.id for inc in found)


class Rehearsing(Batch):
    """A :class:`.placing.Batch` that records what it asked the index and defers what reaches beyond its rows.

    Parameters:
        flush: as :class:`.placing.Batch`'s, called by :func:`check` (under the lock) before the first merge's writes.
    """

    def __init__(
        self,
        incidents: Candidates | list[OpenIncident],
        topology: Topology,
        cfg: GroupingSettings,
        *,
        flush: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(incidents, topology, cfg, flush=flush)
        questions = _Questions()
        self.queries: list[Query] = questions.queries
        #: Incidents an answer named (or a repeat looked up by id): the rehearsal relied on their rows.
        self.looked: set[str] = questions.looked
        #: The writes beyond its rows, in the batch's order, that :func:`check` makes: the notifications of the
        #: incidents it closed, the merges of saved incidents.
        self.effects: list[Callable[[], object]] = []
        #: Incidents changed in place besides :attr:`changed` (a reopening stopped half way).
        self.dirty: set[str] = set()
        index: Any = self.incidents
        index.__class__ = _recording(type(index))
        index.questions = questions

    def repeat(self, event: dict[str, Any], at: datetime) -> bool:
        self.looked.add(self.assigned.get(event["id"]) or event.get("correlation_id") or "")
        return super().repeat(event, at)

    def _close(self, row: Incident, inc: OpenIncident, event: dict[str, Any], at: datetime) -> None:
        # As Batch._close, but for the notification, which waits for the lock.
        row.status, row.closed_at, row.closed_by_event_id = "closed", at, event["id"]
        row.status_changed_at = at
        inc.status, inc.closed_at = "closed", at
        self.effects.append(partial(follow.incident_changed, row.id, "closed", actor=ACTOR, now=at))

    def _reopen(self, row: Incident, inc: OpenIncident, event: dict[str, Any], at: datetime, placement: Any) -> None:
        self.dirty.add(inc.id)
        raise Unsure("an incident reopens")

    def _moved(self, target: Any, source: Any, moved: int, at: datetime, why: str) -> None:
        # As Batch._moved, under the lock (the merged incident was looked at: check() sees it changed meanwhile).
        self.effects.append(partial(Batch._moved, self, target, source, moved, at, why))


@dataclass
class Rehearsal:
    """A batch placed before the lock: what it decided, and what it relied on."""

    #: What the batch decides: its events' ids, the claimed ones, the repeats (id, incident, last seen).
    inputs: tuple[Any, ...]
    topology: Topology
    since: datetime
    flap_since: datetime
    #: The candidates' rows as taken (id -> (version, row)); those the batch changed are changed in place.
    taken: dict[str, Versioned]
    batch: Rehearsing | None = None
    #: Why there is no :attr:`batch` (:class:`Unsure`).
    unsure: str | None = None
    #: The statement saving the incidents it changed, values bound (PERF: made before the lock).
    saving: bytes | None = None
    #: Whether its rows were handed on (:meth:`consume`): they are no longer its own.
    consumed: bool = field(default=False)

    def clean_rows(self) -> dict[str, Versioned]:
        """The rows taken that the rehearsal left as read (for the cache when it does not stand)."""
        if self.consumed:
            return {}
        dirty = set(self.batch.changed) | self.batch.dirty if self.batch is not None else set(self.taken)
        return {i: v for i, v in self.taken.items() if i not in dirty}

    def consume(self) -> dict[str, Versioned]:
        """:meth:`clean_rows`, once: the caller takes them."""
        rows = self.clean_rows()
        self.consumed = True
        return rows


def check(rehearsal: Rehearsal, versions: dict[str, str], cfg: GroupingSettings) -> dict[str, Versioned] | None:
    """Under the lock: whether the rehearsal stands, given the candidates' row versions now.

    Returns:
      None when it does not (an incident it relied on changed, or one changed or new since would
      answer one of its questions); else the rows of the candidates that changed since, as read
      now (for the cache), after making its writes beyond its rows (:attr:`Rehearsing.effects`).
    """
    batch = rehearsal.batch
    assert batch is not None
    taken = rehearsal.taken
    stale = {i for i, v in versions.items() if i not in taken or taken[i][0] != v}
    stale |= {i for i in taken if i not in versions}
    if stale & (batch.looked | set(batch.changed)):
        return None
    fresh: dict[str, Versioned] = {}
    if changed := sorted(i for i in stale if i in versions):
        rows = read_incidents(uuid_in(Incident.id, changed), versioned=True)
        fresh = {str(r.id): (r.row_version, r) for r in rows}  # type: ignore[attr-defined]
        index = Candidates([matching_state(r) for _, r in fresh.values()], similarity_floor=cfg.similarity)
        for kind, question in batch.queries:
            if index.near(question) if kind == "near" else index.linked(question):
                return None
    for effect in batch.effects:
        effect()
    return fresh
