"""Regular expressions that meet event text, on RE2: time linear in the text, whatever the pattern.

Python's ``re`` backtracks. A trigger rule ``{"title": {"$regex": "(a+)+$"}}`` and a title of
forty ``a`` and a ``!`` never finish, and the process cannot even be stopped (``re`` does not
check signals). RE2 (``google-re2``) runs any pattern in time linear in the text, at the price
of the Perl features that need backtracking: backreferences (``\\1``) and lookarounds
(``(?=``, ``(?!``, ``(?<=``, ``(?<!``) do not compile, and Python's ``\\Z`` is written ``\\z``.
Named groups are written as in Python, ``(?P<name>...)``. ``\\d``, ``\\w`` and ``\\s`` are ASCII.

Every pattern an operator writes (``$regex`` in conditions, syslog parsing rules) and every
shipped parsing rule is compiled here. A pattern RE2 refuses is an :class:`~app.errors.InvalidRule`
naming the field, so the API answers 400 when the rule is written.
"""

from __future__ import annotations

from typing import Any

import re2

from .errors import InvalidRule

#: Longest pattern accepted, in characters. Real rules are a few hundred; a longer one is a mistake or an attack.
MAX_PATTERN_CHARS = 4096
#: Memory RE2 may use for one pattern, in bytes: its compiled program and its DFA cache. A pattern whose
#: program does not fit is refused when written; a DFA cache that fills up on hostile text makes RE2 fall
#: back to its NFA, slower but still linear, so the bound costs speed, never correctness.
MAX_MEM_BYTES = 8 << 20

#: RE2's "search anywhere" anchor, for the binding's matcher.
_UNANCHORED = re2._re2.RE2.Anchor.UNANCHORED
#: What the binding answers for a group that did not take part in the match.
_NO_SPAN = (-1, -1)


class Regex:
    """A pattern compiled by RE2; :meth:`search` returns its groups as text.

    Parameters:
      compiled: The ``re2.compile`` result.
    """

    __slots__ = ("pattern", "groups", "names", "_program")

    def __init__(self, compiled: Any) -> None:
        #: The pattern as written.
        self.pattern: str = compiled.pattern
        #: How many capturing groups it has.
        self.groups: int = compiled.groups
        #: Group number -> name, for the named groups.
        self.names: dict[int, str] = {index: name for name, index in compiled.groupindex.items()}
        # PERF: the binding's own matcher on bytes encoded once: the re-like wrapper costs ~6 times more
        # per search (a generator, offsets mapped back to characters, a match object), and this runs
        # for every syslog line a rule matches.
        self._program = compiled._regexp

    def search(self, text: str) -> list[str | None] | None:
        """The first match anywhere in ``text``: ``[whole match, group 1, ...]`` (``None`` for a group
        that did not take part), or ``None`` when there is no match.

        A lone surrogate (JSON may carry one: ``"\\ud800"``) cannot be UTF-8; it is searched as its
        ``surrogatepass`` bytes and comes back in a group as U+FFFD.
        """
        return self.search_utf8(text.encode("utf-8", "surrogatepass"))

    def search_utf8(self, data: bytes) -> list[str | None] | None:
        """:meth:`search` on text already encoded (``surrogatepass``), for callers searching it with many patterns."""
        spans = self._program.Match(_UNANCHORED, data, 0, len(data))
        if spans[0] == _NO_SPAN:
            return None
        return [None if span == _NO_SPAN else data[span[0] : span[1]].decode("utf-8", "replace") for span in spans]

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r})"


def options() -> re2.Options:
    """The RE2 options of every pattern: bounded memory, and no C++ log line per refused pattern."""
    opts = re2.Options()
    opts.max_mem = MAX_MEM_BYTES
    opts.log_errors = False
    return opts


def compile_regex(pattern: Any, *, field: str, label: str = "the pattern") -> Regex:
    """Compile ``pattern`` with RE2.

    Parameters:
      pattern: The regular expression, as the operator wrote it.
      field: The dotted path of the pattern in the rule, named by the error.
      label: How the error message names the pattern (``"$regex"``, ``"rule 'x': the pattern"``).

    Returns:
      The compiled pattern.

    Raises:
      InvalidRule: ``pattern`` is not a string, is longer than :data:`MAX_PATTERN_CHARS`, or RE2
        refuses it (a backreference, a lookaround, a syntax error, a program over :data:`MAX_MEM_BYTES`).
    """
    if not isinstance(pattern, str):
        raise InvalidRule(f"{label} is a string (a regular expression)", field=field)
    if len(pattern) > MAX_PATTERN_CHARS:
        raise InvalidRule(f"{label} is longer than {MAX_PATTERN_CHARS} characters", field=field)
    try:
        return Regex(re2.compile(pattern, options()))
    except re2.error as e:
        reason = e.args[0].decode("utf-8", "replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        raise InvalidRule(
            f"{label} does not compile with RE2 ({reason}); RE2 runs in linear time and so has no "
            "backreferences or lookarounds, and writes \\Z as \\z",
            field=field,
        ) from None
    except UnicodeEncodeError:
        raise InvalidRule(f"{label} is not valid Unicode (a lone surrogate)", field=field) from None
