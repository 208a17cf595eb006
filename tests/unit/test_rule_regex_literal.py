"""A ``$regex`` that is literal text (``^web-``, ``timeout``, ``-01$``) is answered by a string test, not by
RE2: both answer the same on any text (newlines, non-ASCII, a lone surrogate), and a pattern with any
other meaning still goes to RE2."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.regex import compile_regex
from app.rules.conditions import _literal_regex, compile_condition

#: Text and patterns drawn from a few letters, the characters RE2 gives a meaning to, a newline and non-ASCII.
ALPHABET = st.sampled_from(list("ab-.^$|?*+()[]{}\\\nü") + ["\ud800"])


@settings(max_examples=600, deadline=None)
@given(start=st.booleans(), body=st.text(alphabet=ALPHABET, max_size=4), end=st.booleans(),
       value=st.one_of(st.text(alphabet=ALPHABET, max_size=8), st.none(), st.integers(), st.lists(st.text())))  # fmt: skip
def test_a_literal_pattern_answers_what_re2_answers(start, body, end, value):
    pattern = ("^" if start else "") + body + ("$" if end else "")
    try:
        regex = compile_regex(pattern, field="p")
    except Exception:  # noqa: BLE001 - a pattern RE2 refuses is refused before any test is made
        return
    literal = _literal_regex(pattern)
    if literal is None:
        assert any(c in "\\.^$|?*+()[]{}" for c in body)
        return
    # (RE2 searches the text as its surrogatepass bytes, as app.regex does)
    assert literal(value) == (isinstance(value, str) and regex.search(value) is not None)


def test_conditions_with_literal_and_other_patterns_match_as_re2_does():
    events = [{"host": "app-07-01", "title": "Database timeout\n"}, {"host": "xapp-07-01", "title": "timeout"},
              {"host": "app-7", "title": None}]  # fmt: skip
    for condition, expected in [
        ({"host": {"$regex": "^app-07-"}}, [True, False, False]),
        ({"host": {"$regex": "-01$"}}, [True, True, False]),
        ({"title": {"$regex": "timeout$"}}, [False, True, False]),  # RE2's $ is the end of the text, not of a line
        ({"title": {"$regex": "^timeout$"}}, [False, True, False]),
        ({"host": {"$regex": "^app-0?7"}}, [True, False, True]),  # not literal: RE2
    ]:
        test = compile_condition(condition)
        assert [test(e) for e in events] == expected, condition
