"""The incidents an event may join, found by the keys it shares with them rather than by scanning every one.

PERF: placing an event used to weigh it against every open incident (150 µs an event under the
correlator's lock with a few hundred open). :class:`Candidates` indexes the incidents a batch
holds by the keys their events left (:attr:`.evidence.OpenIncident.keys`: fingerprint, named
service, template, host, failing node and ancestor, address named), so an event is weighed against
the few incidents that share one of its keys; the answer is the same as weighing every one
(evidence without a shared key is none).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .evidence import Facts, OpenIncident, subject
from .templates import similarity

#: Alike templates remembered per template (cleared when the index gets another template).
_ALIKE_CACHE = 20_000


class Candidates:
    """The incidents of a batch (live ones, and those the correlator closed within the flap window), indexed by key.

    Iterating gives every incident, most recent first.
    """

    def __init__(self, incidents: Iterable[OpenIncident], *, similarity_floor: float = 0.8) -> None:
        self.floor = similarity_floor
        self.by_id: dict[str, OpenIncident] = {}
        self._index: dict[str, set[str]] = {}
        #: host -> its h/r keys present in the index.
        self._hosts: dict[str, set[str]] = {}
        #: template length -> the templates present in the index.
        self._templates: dict[int, set[tuple[str, ...]]] = {}
        #: template -> parent -> its key present in the index (one per parent).
        self._variants: dict[tuple[str, ...], dict[str, str]] = {}
        self._alike: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        for inc in incidents:
            self.add(inc)

    def __iter__(self) -> Iterator[OpenIncident]:
        return iter(self._ordered(self.by_id))

    def __len__(self) -> int:
        return len(self.by_id)

    def add(self, inc: OpenIncident) -> None:
        """Index ``inc`` by its keys."""
        self.by_id[inc.id] = inc
        for key in inc.keys:
            self.index_key(inc.id, key)

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
                    self._templates.setdefault(len(tpl), set()).add(tpl)
                    self._alike.clear()
                variants[key[key.rindex("@") + 1 :]] = key
        ids.add(incident_id)

    def near(self, facts: Facts) -> list[OpenIncident]:
        """The incidents sharing a key with the event (or a template alike), most recent first."""
        found: set[str] = set()
        index = self._index
        for key, _ in facts.probed():
            ids = index.get(key)
            if ids:
                found |= ids
        for host in (facts.host, *facts.mentions):
            for key in self._hosts.get(host or "", ()):
                found |= index.get(key, set())
        if not facts.routine and facts.template:
            for tpl in self._alike_templates(facts.template):
                # A template's key behind no known node, or behind one of the event's parents (any, when it has none).
                variants = self._variants[tpl]
                if facts.parents:
                    keys = [variants[p] for p in ("", *facts.parents) if p in variants]
                else:
                    keys = list(variants.values())
                for key in keys:
                    found |= index.get(key, set())
        return self._ordered(found)

    def linked(self, keys: Iterable[str]) -> list[OpenIncident]:
        """The incidents holding any of ``keys`` (exactly), most recent first."""
        found: set[str] = set()
        for key in keys:
            found |= self._index.get(key, set())
        return self._ordered(found)

    def _ordered(self, ids: Iterable[str]) -> list[OpenIncident]:
        """Most recent first, then by keys the events decide (never by arrival: the partition must not depend on it)."""
        found = [self.by_id[i] for i in ids if i in self.by_id]
        if len(found) > 1:
            found.sort(key=_recency)
        return found

    def _alike_templates(self, tpl: tuple[str, ...]) -> list[tuple[str, ...]]:
        keys = self._alike.get(tpl)
        if keys is None:
            keys = [
                other
                for other in self._templates.get(len(tpl), ())
                if other == tpl or similarity(tpl, other) >= self.floor
            ]
            if len(self._alike) > _ALIKE_CACHE:
                self._alike.clear()
            self._alike[tpl] = keys
        return keys


def _recency(inc: OpenIncident) -> tuple[float, float, str]:
    row = getattr(inc, "row", None)
    return -inc.last_event_at.timestamp(), inc.first_event_at.timestamp(), str(row.root_event_id if row else inc.id)
