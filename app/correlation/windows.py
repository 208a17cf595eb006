"""The grouping's settings: how far apart in time (per kind of evidence) and how alike events may be to join one
incident, each kind's weight, and the kinds of keys an incident keeps (``CORRELATION_*``, see :mod:`.evidence`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Settings

#: The kinds of evidence, in the order a reason lists them.
KINDS = ("fingerprint", "topology", "service", "template", "entity", "host", "nearby", "other_service")


@dataclass(frozen=True, kw_only=True)
class Weights:
    """How much each kind of evidence adds to a join's score (``CORRELATION_WEIGHT_<KIND>``)."""

    fingerprint: float = 1.0
    topology: float = 0.9
    service: float = 0.6
    template: float = 0.6
    entity: float = 0.6
    host: float = 0.5
    nearby: float = 0.3
    other_service: float = -0.4


@dataclass(kw_only=True)
class GroupingSettings:
    """How far apart in time and how alike events may be to join one incident (``CORRELATION_*``)."""

    #: The same named service ties events this far apart.
    window: timedelta = timedelta(minutes=15)
    #: An address or name one names and the other names or is (a client's complaint and the server's alert).
    entity_window: timedelta = timedelta(minutes=5)
    #: The same problem (fingerprint) ties events this far apart; nothing ties events further apart.
    lookback: timedelta = timedelta(hours=1)
    #: A dependency (topology) ties events this far apart: effects follow their cause within minutes.
    causal_window: timedelta = timedelta(minutes=3)
    #: The same host ties events this far apart ...
    host_window: timedelta = timedelta(minutes=5)
    #: ... and this far when either is routine (``info``).
    routine_window: timedelta = timedelta(minutes=2)
    #: Alike messages tie events this far apart.
    template_window: timedelta = timedelta(minutes=8)
    #: Incidents an event has the evidence to join are merged when they started this close (the parts of one
    #: problem start together); further apart, they are two problems and the event joins one (:mod:`.grouping`).
    merge_window: timedelta = timedelta(minutes=10)
    #: Least template similarity (0..1) that counts as evidence.
    similarity: float = 0.8
    #: Least score of the evidence for a join.
    join_score: float = 0.5
    weights: Weights = field(default_factory=Weights)
    #: A root problem that returns this many times within flap_window after its resolution is flapping.
    flap_changes: int = 3
    flap_window: timedelta = timedelta(minutes=30)

    @classmethod
    def from_settings(cls, settings: Settings) -> GroupingSettings:
        """The grouping the process's settings ask for."""
        minutes = {
            name: timedelta(minutes=getattr(settings, f"correlation_{name}_minutes"))
            for name in (
                "causal_window",
                "entity_window",
                "host_window",
                "merge_window",
                "routine_window",
                "template_window",
            )
        }
        known = set(Weights.__dataclass_fields__)
        return cls(
            window=timedelta(minutes=settings.correlation_window_minutes),
            lookback=timedelta(minutes=settings.correlation_lookback_minutes),
            similarity=settings.correlation_similarity,
            join_score=settings.correlation_join_score,
            weights=Weights(**{k: v for k, v in settings.correlation_weights.items() if k in known}),
            flap_changes=settings.correlation_flap_changes,
            flap_window=timedelta(minutes=settings.correlation_flap_window_minutes),
            **minutes,
        )

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        self.__dict__.pop("_gaps", None)  # a window changed: work them out again

    def window_of(self, kind: str) -> float:
        """Seconds two events may lie apart for evidence of ``kind`` (a key's kind, see :func:`key_kind`)."""
        return float(getattr(self, _WINDOW_OF_KIND[kind]).total_seconds())

    def gaps(self) -> dict[str, float]:
        """Key prefix (see :func:`key_kind`) -> :meth:`window_of` its kind, and kind -> its window.

        PERF: worked out once (again when a setting changes), not per key an event leaves or is weighed by.
        """
        gaps: dict[str, float] | None = self.__dict__.get("_gaps")
        if gaps is None:
            gaps = {kind: self.window_of(kind) for kind in _WINDOW_OF_KIND}
            gaps.update({prefix: gaps[kind] for prefix, kind in _PREFIX_KIND.items()})
            self.__dict__["_gaps"] = gaps
        return gaps


#: Kind of evidence (see :func:`key_kind`) -> the :class:`GroupingSettings` window it is judged within.
_WINDOW_OF_KIND = {"fingerprint": "lookback", "topology": "causal_window", "service": "window", "entity": "entity_window",
                   "template": "template_window", "host": "host_window", "routine": "routine_window",
                   "link": "lookback"}  # fmt: skip


def key_kind(key: str) -> str:
    """The kind of a key an incident keeps (its prefix): see :func:`Facts.emits`."""
    return _PREFIX_KIND[key[0]]


#: Key prefix -> the kind of evidence (and window) it stands for.
_PREFIX_KIND = {"f": "fingerprint", "s": "service", "j": "service", "t": "template", "h": "host", "r": "routine", "n": "topology",
                "a": "topology", "v": "topology", "w": "topology", "k": "topology", "x": "entity", "y": "entity", "u": "entity", "l": "link"}  # fmt: skip
