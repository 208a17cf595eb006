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

#: A compiled RE2 pattern (``re2._Regexp``: ``search``, ``match``, ``groups``, ``groupindex``).
Regex = Any
#: A match of a :data:`Regex` (``re2._Match``: ``group``, ``groups``, ``groupdict``, ``span``).
Match = Any


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
      The compiled pattern; search it with :func:`search`.

    Raises:
      InvalidRule: ``pattern`` is not a string, is longer than :data:`MAX_PATTERN_CHARS`, or RE2
        refuses it (a backreference, a lookaround, a syntax error, a program over :data:`MAX_MEM_BYTES`).
    """
    if not isinstance(pattern, str):
        raise InvalidRule(f"{label} is a string (a regular expression)", field=field)
    if len(pattern) > MAX_PATTERN_CHARS:
        raise InvalidRule(f"{label} is longer than {MAX_PATTERN_CHARS} characters", field=field)
    try:
        return re2.compile(pattern, options())
    except re2.error as e:
        reason = e.args[0].decode("utf-8", "replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        raise InvalidRule(
            f"{label} does not compile with RE2 ({reason}); RE2 runs in linear time and so has no "
            "backreferences or lookarounds, and writes \\Z as \\z",
            field=field,
        ) from None
    except UnicodeEncodeError:
        raise InvalidRule(f"{label} is not valid Unicode (a lone surrogate)", field=field) from None


def search(regex: Regex, text: str) -> Match | None:
    """The first match of ``regex`` anywhere in ``text``, or ``None``.

    RE2 reads UTF-8: a lone surrogate (which JSON may carry, ``"\\ud800"``) cannot be encoded the
    usual way, so such a text is searched as its ``surrogatepass`` bytes and the groups come back as bytes.
    """
    try:
        return regex.search(text)
    except UnicodeEncodeError:
        return regex.search(text.encode("utf-8", "surrogatepass"))
