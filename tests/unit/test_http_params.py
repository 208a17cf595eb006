"""Request parameters are read one way, each refused with one message naming its field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dramatiq
import falcon
import pytest
from falcon import testing

from app.errors import BrokerUnavailable, InvalidInput
from app.http import params
from app.publishing import BrokerDispatcher


def request(query: str) -> falcon.Request:
    return falcon.Request(testing.create_environ(query_string=query))


@pytest.mark.parametrize(("query", "field"), [("limit=0", "limit"), ("limit=1001", "limit"), ("offset=-1", "offset"),
                                              ("limit=ten", "limit")])  # fmt: skip
def test_a_bad_page_is_refused_naming_its_field(query, field):
    with pytest.raises(InvalidInput) as refused:
        params.page(request(query))
    assert refused.value.field == field


def test_a_page_defaults_to_the_first_hundred():
    assert params.page(request("")) == (params.DEFAULT_LIMIT, 0)
    assert params.page(request("limit=5&offset=10")) == (5, 10)


def test_timestamps_flags_durations_and_ids_are_parsed_or_refused():
    assert params.timestamp(request("since=2026-01-02T03:04:05Z"), "since") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert params.timestamp(request(""), "since") is None
    assert (params.flag(request("active=true"), "active"), params.flag(request("active=0"), "active")) == (True, False)
    assert params.flag(request(""), "active") is None
    assert params.parse_duration("7d", field="timerange") == timedelta(days=7)
    assert params.parse_uuid("not-a-uuid") is None
    for bad in (lambda: params.flag(request("active=maybe"), "active"),
                lambda: params.timestamp(request("since=yesterday"), "since"),
                lambda: params.parse_duration("a while", field="timerange")):  # fmt: skip
        with pytest.raises(InvalidInput):
            bad()


def test_a_dispatch_the_broker_cannot_take_is_a_broker_unavailable():
    # Given a broker whose connection is gone
    class Gone:
        def get_actor(self, name):
            raise dramatiq.errors.BrokerConnectionError("connection refused")

    # When the web tier hands an execution on, then the error is ours (answered 503)
    with pytest.raises(BrokerUnavailable):
        BrokerDispatcher(Gone())("execute", "0190c0de-0000-7000-8000-000000000000")  # type: ignore[arg-type]
