"""Message templates, Drain-style: variable parts masked, then token similarity.

Drain (He et al., ICWS 2017) groups log lines by masking tokens that look
variable (numbers, addresses, ids) and comparing the remaining tokens position
by position. This is that similarity, without Drain's parse tree: incidents
are few, so comparing a message with each open incident's template is cheap.
"""

from __future__ import annotations

import re
from functools import lru_cache

# PERF: one pass with one compiled alternation.
_VARIABLE = re.compile(
    r"\b(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # uuid
    r"|\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?"  # IPv4[:port]
    r"|(?:[0-9a-f]{2}:){5}[0-9a-f]{2}"  # MAC
    r"|0x[0-9a-f]+|[0-9a-f]{12,}"  # hex
    r"|[a-z]+-?\d+[\w.-]*"  # host-01, eth0, web-server-07 (names with a number)
    r"|\d+(?:[.,:]\d+)*%?\w*)\b",  # numbers, durations, sizes
    re.IGNORECASE,
)
WILDCARD = "<*>"


# PERF: the correlator computes a batch's templates before its lock and again under it, where they are cache hits.
@lru_cache(maxsize=4096)
def template(message: str) -> tuple[str, ...]:
    """The message's tokens with variable ones replaced by ``<*>``."""
    return tuple(_VARIABLE.sub(WILDCARD, message.lower()).split())


def similarity(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    """Drain's sequence similarity: equal tokens at equal positions over the longer length.

    Wildcards match anything, so two lines differing only in their variables score 1.0.
    """
    if not a or not b:
        return 0.0
    same = sum(1 for x, y in zip(a, b, strict=False) if x == y or x == WILDCARD or y == WILDCARD)
    return same / max(len(a), len(b))


def alike(a: tuple[str, ...], b: tuple[str, ...], floor: float) -> bool:
    """Whether ``similarity(a, b) >= floor``.

    PERF: stops at the first position past which the similarity cannot reach ``floor`` (most pairs of a
    correlator's templates differ within a few tokens): the likeness of every new template to every
    known one of its length was a fifth of a correlator's CPU with the full count.
    """
    n = max(len(a), len(b))
    if not a or not b:
        return 0.0 >= floor
    misses = n - min(len(a), len(b))
    if (n - misses) / n < floor:
        return False
    for x, y in zip(a, b, strict=False):
        if x != y and x != WILDCARD and y != WILDCARD:
            misses += 1
            if (n - misses) / n < floor:
                return False
    return True


def most_misses(length: int, floor: float) -> int:
    """The most positions at which two templates of ``length`` tokens may differ and still be alike at ``floor``."""
    misses = 0
    while misses < length and (length - misses - 1) / length >= floor:
        misses += 1
    return misses


class Positions:
    """Templates of one length, indexed by their token at each position (wildcards apart).

    PERF: which held templates are alike a new one is asked for every template a correlator meets;
    comparing it with each held one of its length was a fifth of a correlator's CPU with thousands
    held. A template alike ``tpl`` differs from it at no more than :func:`most_misses` positions, all
    where ``tpl`` has a word (a wildcard agrees with anything); so among any ``misses + 1`` disjoint
    groups of those positions there is one on which it agrees with ``tpl`` at every position
    (pigeonhole). Only the templates agreeing on a whole group are compared, each group starting
    from its rarest word.
    """

    def __init__(self, length: int) -> None:
        self.templates: set[tuple[str, ...]] = set()
        self._words: list[dict[str, set[tuple[str, ...]]]] = [{} for _ in range(length)]
        self._wild: list[set[tuple[str, ...]]] = [set() for _ in range(length)]

    def add(self, tpl: tuple[str, ...]) -> None:
        if tpl in self.templates:
            return
        self.templates.add(tpl)
        for p, token in enumerate(tpl):
            (self._wild[p] if token == WILDCARD else self._words[p].setdefault(token, set())).add(tpl)

    def alike(self, tpl: tuple[str, ...], floor: float) -> list[tuple[str, ...]]:
        """The templates held alike ``tpl`` (of this length): those with ``similarity(tpl, t) >= floor``."""
        misses = most_misses(len(tpl), floor)
        fixed = [p for p, token in enumerate(tpl) if token != WILDCARD]
        pool: set[tuple[str, ...]]
        if len(fixed) <= misses:
            pool = self.templates  # too few words to rule any template out
        else:
            fixed.sort(key=lambda p: len(self._words[p].get(tpl[p], ())) + len(self._wild[p]))
            pool = set()
            for first, *rest in (fixed[g :: misses + 1] for g in range(misses + 1)):
                agree = self._words[first].get(tpl[first], set()) | self._wild[first]
                for p in rest:
                    if not agree:
                        break
                    word = tpl[p]
                    agree = {t for t in agree if t[p] == word or t[p] == WILDCARD}
                pool |= agree
        return [t for t in pool if t == tpl or alike(tpl, t, floor)]
