"""Log lines about bad input are short and rare, and say how many were left out."""

from __future__ import annotations

import logging

from app.ratelimit import LogLimiter, TokenBucket, shorten


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_from_one_peer_logs_one_line_per_interval_and_counts_the_rest(caplog):
    # Given a limiter allowing one line per peer and kind every 10 s
    clock = Clock()
    limiter = LogLimiter(logging.getLogger("test.ratelimit"), interval_s=10.0, clock=clock)
    with caplog.at_level("INFO", logger="test.ratelimit"):
        # When one peer causes 100 lines in a second, then one more 11 s later
        written = [limiter.log(logging.INFO, "192.0.2.1", "Bad datagram from %s.", "192.0.2.1") for _ in range(100)]
        clock.now += 11
        limiter.log(logging.INFO, "192.0.2.1", "Bad datagram from %s.", "192.0.2.1")
        # ... and a line of another kind about the same peer
        limiter.log(logging.INFO, "192.0.2.1", "Refused %s.", "192.0.2.1")
    # Then three lines are written: the first, the next one saying 99 were suppressed, and the other kind
    assert written.count(True) == 1
    assert [r.getMessage() for r in caplog.records] == [
        "Bad datagram from 192.0.2.1.",
        "Bad datagram from 192.0.2.1. (99 similar lines suppressed)",
        "Refused 192.0.2.1.",
    ]
    assert limiter.suppressed == 99


def test_many_peers_cannot_flood_the_log_and_memory_stays_bounded(caplog):
    # Given a limiter of 5 lines a second over all peers, remembering 100 peers
    clock = Clock()
    limiter = LogLimiter(logging.getLogger("test.ratelimit"), per_second=5.0, max_keys=100, clock=clock)
    # When 10,000 spoofed peers each cause a line within one second
    with caplog.at_level("INFO", logger="test.ratelimit"):
        for i in range(10_000):
            limiter.log(logging.INFO, f"10.0.{i // 256}.{i % 256}", "Bad datagram from %s.", i)
    # Then the burst (10) is written, and at most 100 peers are remembered
    assert len(caplog.records) == 10
    assert len(limiter._last) <= 100


def test_a_token_bucket_refills_at_its_rate():
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=2.0, clock=clock)
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock.now += 0.5
    assert [bucket.take() for _ in range(2)] == [True, False]


def test_shorten_cuts_long_text_and_says_how_much():
    assert shorten("abc") == "abc"
    assert shorten("x" * 46_000) == "x" * 200 + "… (45800 more characters)"
