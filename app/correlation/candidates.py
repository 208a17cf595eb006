"""The incidents an event may join, found by the keys it shares with them rather than by scanning every one.

PERF: placing an event used to weigh it against every open incident (150 µs an event under the
correlator's lock with a few hundred open). :class:`Candidates` indexes the incidents a batch
holds by the keys their events left (:attr:`.evidence.OpenIncident.keys`: fingerprint, named
service, template, host, failing node and ancestor, address named), so an event is weighed against
the few incidents that share one of its keys; the answer is the same as weighing every one
(evidence without a shared key is none).

PERF: a correlator process keeps one index of the incidents it holds between batches
(:class:`.held.HeldIncidents`); a batch's index is an overlay over it (``base``): it indexes only
the incidents new to it and the keys its events add, and looks keys up in both. An incident the
base still lists but the batch does not hold (or holds in a newer state) only makes an answer
longer: the batch's own list decides who is a candidate, and weighing decides the rest.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Collection, Iterable, Iterator

from .evidence import Facts, OpenIncident, in_scope, subject
from .templates import Positions

#: Templates a process remembers with those alike them (all forgotten past it, then relearned as indexes ask).
_ALIKE_CACHE = 20_000


class _Likeness:
    """Which templates are alike (Drain similarity at least ``floor``), for every index of the process.

    PERF: each batch builds its own :class:`Candidates`; when each index compared an event's template with
    all of its length itself, that was a third of a correlator's CPU on the pipeline bench. A template's
    alike list is worked out once and extended as templates arrive; an index keeps the ones it holds.
    """

    def __init__(self, floor: float) -> None:
        self.floor = floor
        #: Bumped when everything is forgotten: an index then teaches its templates again.
        self.generation = 0
        self._lock = threading.Lock()
        #: template length -> the templates learned.
        self._known: dict[int, Positions] = {}
        #: template length -> template asked about -> the learned templates alike it.
        self._alike: dict[int, dict[tuple[str, ...], list[tuple[str, ...]]]] = {}
        #: template length -> the templates asked about (PERF: those a new template is alike are found by position).
        self._asked: dict[int, Positions] = {}

    def learn(self, tpl: tuple[str, ...], held: Collection[tuple[str, ...]], generation: int) -> int:
        """Learn ``tpl``, new to an index that holds ``held`` (``tpl`` among them) and last knew ``generation``;
        the generation the index knows now (an older one when learning ``tpl`` made the process forget the rest)."""
        with self._lock:
            if generation != self.generation:
                self._learn(held)
                return self.generation
            self._learn((tpl,))
            return generation

    def alike(
        self, tpl: tuple[str, ...], held: Collection[tuple[str, ...]], generation: int
    ) -> tuple[int, list[tuple[str, ...]]]:
        """The templates of ``held`` alike ``tpl``, for an index that last knew ``generation``, and the
        generation it knows now."""
        with self._lock:
            if generation != self.generation:
                self._learn(held)
                generation = self.generation
            n = len(tpl)
            asked = self._alike.setdefault(n, {})
            found = asked.get(tpl)
            if found is None:
                known = self._known.get(n)
                found = known.alike(tpl, self.floor) if known is not None else []
                asked[tpl] = found
                _positions(self._asked, n).add(tpl)
            return generation, [o for o in found if o in held]

    def _learn(self, templates: Iterable[tuple[str, ...]]) -> None:
        """Learn ``templates`` (under the lock); an index whose generation is old teaches all it holds."""
        taught = list(dict.fromkeys(templates))
        new = [t for t in taught if t not in _positions(self._known, len(t)).templates]
        size = sum(len(p.templates) for p in self._known.values())
        if size and size + len(new) > _ALIKE_CACHE:
            # Forgotten all at once, never within one learning: what an index teaches is all known after it.
            self._known, self._alike, self._asked = {}, {}, {}
            self.generation += 1
            new = taught
        for tpl in new:
            n = len(tpl)
            _positions(self._known, n).add(tpl)
            asked = self._asked.get(n)
            if asked is not None:
                for other in asked.alike(tpl, self.floor):  # alike is symmetric
                    self._alike[n][other].append(tpl)


def _positions(by_length: dict[int, Positions], length: int) -> Positions:
    found = by_length.get(length)
    if found is None:
        by_length[length] = found = Positions(length)
    return found


@functools.cache
def _likeness(floor: float) -> _Likeness:
    """The process's likeness at ``floor`` (two threads racing on a first call may make two: each stays right)."""
    return _Likeness(floor)


class Candidates:
    """The incidents of a batch (live ones, and those the correlator closed within the flap window), indexed by key.

    Iterating gives every incident, most recent first.
    """

    floor: float
    _base: Candidates | None

    def __init__(
        self, incidents: Iterable[OpenIncident], *, similarity_floor: float = 0.8, base: Candidates | None = None
    ) -> None:
        if base is not None and (base.floor != similarity_floor or base._base is not None):
            raise ValueError("a base index must be a plain index of the same similarity floor")
        self.floor = similarity_floor
        self.by_id: dict[str, OpenIncident] = {}
        self._index: dict[str, set[str]] = {}
        #: host -> its h/r keys present in the index.
        self._hosts: dict[str, set[str]] = {}
        #: template -> scope (``parent\x1fprogram``) -> its key present in the index (one per scope).
        self._variants: dict[tuple[str, ...], dict[str, str]] = {}
        #: The index this one overlays: it answers for the incidents it holds as this one holds them.
        self._base = base
        self._templates: Collection[tuple[str, ...]] = (
            self._variants.keys() if base is None else _Both(self._variants.keys(), base._variants.keys())
        )
        self._likeness = _likeness(similarity_floor)
        self._generation = self._likeness.generation
        for inc in incidents:
            if base is not None and base.by_id.get(inc.id) is inc:
                self.by_id[inc.id] = inc  # its keys are indexed in the base
            else:
                self.add(inc)

    def __iter__(self) -> Iterator[OpenIncident]:
        return iter(self._ordered(self.by_id))

    def __len__(self) -> int:
        return len(self.by_id)

    def add(self, inc: OpenIncident) -> None:
        """Index ``inc`` by its keys."""
        self.by_id[inc.id] = inc
        index = self._index
        for key in inc.keys:
            ids = index.get(key)
            if ids is None:
                self.index_key(inc.id, key)
            else:
                ids.add(inc.id)  # PERF: as index_key does for a key indexed already (most of them), without the call

    def remove(self, inc: OpenIncident) -> None:
        self.by_id.pop(inc.id, None)
        for key in inc.keys:
            ids = self._index.get(key)
            if ids is not None:
                ids.discard(inc.id)

    def index_key(self, incident_id: str, key: str) -> None:
        ids = self._index.get(key)
        if ids is None:
            self._index[key] = ids = set()
            if key[0] in "hr":
                self._hosts.setdefault(subject(key)[1], set()).add(key)
            elif key[0] == "t":
                tpl = tuple(subject(key)[1].split())
                variants = self._variants.get(tpl)
                if variants is None:
                    self._variants[tpl] = variants = {}
                    self._learn(tpl)
                variants[key[key.rindex("@") + 1 :]] = key
        ids.add(incident_id)

    def near(self, facts: Facts) -> list[OpenIncident]:
        """The incidents sharing a key with the event (or a template alike), most recent first."""
        found: set[str] = set()
        for index in self._layers():
            for key, _ in facts.probed():
                ids = index._index.get(key)
                if ids:
                    found |= ids
            for host in (facts.host, *facts.mentions):
                for key in index._hosts.get(host or "", ()):
                    found |= index._index[key]
        if facts.template and facts.weighs_template():
            program = facts.program()
            for tpl in self._alike_templates(facts.template):
                # A template's key in the event's scope: behind no known node or one of its parents, by its program.
                for index in self._layers():
                    for scope, key in index._variants.get(tpl, {}).items():
                        if in_scope(scope, facts.parents, program):
                            found |= index._index[key]
        return self._ordered(found)

    def linked(self, keys: Iterable[str]) -> list[OpenIncident]:
        """The incidents holding any of ``keys`` (exactly), most recent first."""
        found: set[str] = set()
        for key in keys:
            for index in self._layers():
                found |= index._index.get(key, set())
        return self._ordered(found)

    def _layers(self) -> tuple[Candidates, ...]:
        return (self,) if self._base is None else (self, self._base)

    def _ordered(self, ids: Iterable[str]) -> list[OpenIncident]:
        """Most recent first, then by keys the events decide (never by arrival: the partition must not depend on it)."""
        found = [self.by_id[i] for i in ids if i in self.by_id]
        if len(found) > 1:
            found.sort(key=_recency)
        return found

    def _alike_templates(self, tpl: tuple[str, ...]) -> list[tuple[str, ...]]:
        """The index's templates of ``tpl``'s length alike it."""
        self._generation, alike = self._likeness.alike(tpl, self._templates, self._generation)
        return alike

    def _learn(self, tpl: tuple[str, ...]) -> None:
        self._generation = self._likeness.learn(tpl, self._templates, self._generation)


class _Both(Collection[tuple[str, ...]]):
    """The templates of an index and of its base, as one collection (no copy of either)."""

    def __init__(self, own: Collection[tuple[str, ...]], base: Collection[tuple[str, ...]]) -> None:
        self.own, self.base = own, base

    def __contains__(self, tpl: object) -> bool:
        return tpl in self.own or tpl in self.base

    def __iter__(self) -> Iterator[tuple[str, ...]]:
        yield from self.own
        yield from (t for t in self.base if t not in self.own)

    def __len__(self) -> int:
        return len(self.own) + sum(1 for t in self.base if t not in self.own)


def _recency(inc: OpenIncident) -> tuple[float, float, str]:
    row = getattr(inc, "row", None)
    return -inc.last_event_at.timestamp(), inc.first_event_at.timestamp(), str(row.root_event_id if row else inc.id)
