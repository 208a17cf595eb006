"""Silences, like Alertmanager's: time-bounded matchers whose events are stored and correlated but fire no rule.

:mod:`.matching` is plain logic (matchers, the set the evaluator matches events against);
:mod:`.store` reads and writes silences, each write audited. The API, the CLI and the console
call the functions re-exported here.
"""

from __future__ import annotations

from .matching import Matcher, SilenceSet, parse_matcher_text, parse_matchers
from .store import (
    STATES,
    SilenceCache,
    active_silences,
    create,
    expire,
    get,
    list_silences,
    silence_from_incident,
    silence_json,
    update,
)

__all__ = [
    "STATES",
    "Matcher",
    "SilenceCache",
    "SilenceSet",
    "active_silences",
    "create",
    "expire",
    "get",
    "list_silences",
    "parse_matcher_text",
    "parse_matchers",
    "silence_from_incident",
    "silence_json",
    "update",
]
