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
