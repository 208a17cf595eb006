"""The web tier's fast paths give the answers of the slow ones: body checks, item ids, items."""

from __future__ import annotations

import time
import uuid

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from app.events.envelope import check_batch, make_item, make_items, new_ids
from app.events.limits import MAX_DEPTH, decoded_problem, first_problem

#: JSON values with the characters storage refuses among the ordinary ones, nested now and then deeply.
TEXT = st.text(alphabet=st.sampled_from(["a", "é", "\x00", "\\", '"', "u", "0", "{", "["]), max_size=8)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=40,
)


def nested(levels: int) -> object:
    value: object = {"leaf": "x"}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_a_decoded_body_is_judged_as_the_full_walk_judges_it(value):
    # Given a JSON body as a sender writes it
    raw = orjson.dumps(value)
    # When the fast check judges what orjson decoded from it
    problem = decoded_problem(raw, orjson.loads(raw), max_depth=3)
    # Then it finds exactly what the walk over every string finds
    assert problem == first_problem(orjson.loads(raw), max_depth=3)


def test_a_nul_deep_in_a_body_is_named_by_its_field():
    # Given an array whose third event hides a NUL in its metadata
    body = [{"title": "ok"}, {"title": "ok"}, {"title": "ok", "metadata": {"note": "a\x00b"}}]
    raw = orjson.dumps(body)
    # When it is checked, Then the field is named with its index
    assert decoded_problem(raw, orjson.loads(raw)) == ("[2].metadata.note", first_problem(body)[1])


def test_a_written_backslash_u0000_is_text_not_a_nul():
    # Given a body whose string is the six characters \u0000 (an escaped backslash), not a NUL
    raw = rb'{"title": "\\u0000"}'
    # Then nothing is wrong with it
    assert decoded_problem(raw, orjson.loads(raw)) is None


def test_nesting_is_limited_even_when_the_bracket_count_alone_cannot_tell():
    # Given a hundred shallow events (more brackets than the depth limit) and one too deep among them
    shallow = [{"title": "t", "metadata": {"a": [1]}} for _ in range(100)]
    too_deep = [*shallow, nested(MAX_DEPTH)]
    at_limit = [*shallow, nested(MAX_DEPTH - 1)]
    # When each is checked
    # Then shallow ones pass, the array holding an object MAX_DEPTH deep (MAX_DEPTH + 1 with the array) fails
    assert decoded_problem(orjson.dumps(shallow), shallow) is None
    assert decoded_problem(orjson.dumps(at_limit), at_limit) is None
    problem = decoded_problem(orjson.dumps(too_deep), too_deep)
    assert problem is not None and problem == first_problem(too_deep)
    assert problem[0].startswith("[100].a.a") and "deeper than 64" in problem[1]


def test_new_ids_are_distinct_uuid7s_of_this_millisecond():
    # When a thousand ids are made at once
    before = time.time_ns() // 1_000_000
    ids = new_ids(1000)
    after = time.time_ns() // 1_000_000
    # Then each is the canonical text of a version-7 RFC 9562 UUID stamped with the current time, and none repeats
    assert len(set(ids)) == 1000
    for text in ids:
        value = uuid.UUID(text)
        assert str(value) == text and value.version == 7 and value.variant == uuid.RFC_4122
        assert before <= value.int >> 80 <= after
    assert new_ids(0) == []


def test_make_items_makes_what_make_item_makes_with_an_id_each():
    # Given two payloads of one request
    payloads = [{"title": "a"}, {"title": "b"}]
    # When items are made for them at once
    items = make_items(payloads, source_type="webhook", received_at=12.5, source="10.0.0.1", request_id="r")
    # Then each is the item make_item builds, with its own id, valid as a normalize message
    for item, payload in zip(items, payloads, strict=True):
        assert item == make_item(id=item["id"], source_type="webhook", received_at=12.5, payload=payload,
                                 source="10.0.0.1", request_id="r")  # fmt: skip
        assert item["payload"] is payload
    assert items[0]["id"] != items[1]["id"]
    assert check_batch(items) == items


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 120), st.booleans(), st.floats(0, 100_000, allow_nan=False).map(lambda ms: round(ms, 2)))
def test_the_accepted_answer_is_what_orjson_writes_of_the_answers(count, many, elapsed_ms):
    from app.http.resources.ingest import answers

    # Given the ids of a request's events, its correlation id and the time taken
    ids, request_id = new_ids(count), str(uuid.uuid4())
    expected = [{"event_id": i, "status": "accepted", "correlation_id": request_id, "processing_time_ms": elapsed_ms}
                for i in ids]  # fmt: skip
    many = many or count != 1
    # When the 202's body is written without building the answers
    body = answers(ids, request_id, elapsed_ms, many=many)
    # Then it is byte for byte what encoding the answers gives
    assert body == orjson.dumps(expected if many else expected[0])
