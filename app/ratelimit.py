"""Bounding what input from the network can cost us: token buckets and rate-limited, truncated log lines.

Receivers log about bad input (undecodable datagrams, failed authentication,
refused connections), and anyone can send bad input. :class:`LogLimiter` keeps
such lines short (:func:`shorten`) and rare: at most one per peer every
``interval_s`` and a few per second over all peers; the lines it suppressed are
counted and reported with the next line it lets through. What is dropped is
still counted by the caller in its ``stats``: the limiter only thins the log.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

#: Longest text taken from the input (or an error about it) into a log line, in characters.
MAX_LOGGED_CHARS = 200


def shorten(value: Any, limit: int = MAX_LOGGED_CHARS) -> str:
    """``str(value)`` cut to ``limit`` characters, saying how much was left out."""
    text = str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


class TokenBucket:
    """``rate`` events per second on average, ``burst`` at once.

    Parameters:
      rate: Tokens added per second.
      burst: Most tokens held (and the tokens at the start).
      clock: Monotonic seconds (tests pass their own).
    """

    def __init__(self, *, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._tokens = burst
        self._at = clock()

    def take(self, n: float = 1.0) -> bool:
        """Take ``n`` tokens; False (and nothing taken) when there are not enough."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < n:
            return False
        self._tokens -= n
        return True


class LogLimiter:
    """Log a line of one kind (its format string) about one key (a peer) at most once every ``interval_s``,
    and at most ``per_second`` lines over all keys.

    Parameters:
      logger: Where the lines go.
      interval_s: Seconds between two lines about one key.
      per_second: Lines per second over all keys (a flood from spoofed addresses has many keys).
      max_keys: Keys remembered (least recently logged forgotten first), so memory stays bounded.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval_s: float = 10.0,
        per_second: float = 5.0,
        max_keys: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.max_keys = max_keys
        self._clock = clock
        self._bucket = TokenBucket(rate=per_second, burst=per_second * 2, clock=clock)
        self._last: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._suppressed: dict[tuple[str, str], int] = {}
        #: Lines suppressed so far, over all keys.
        self.suppressed = 0

    def log(self, level: int, key: str, msg: str, *args: Any) -> bool:
        """Log ``msg % args`` about ``key`` unless it is too soon; True when the line was written.

        A line written after suppressed ones says how many were left out.
        """
        now = self._clock()
        slot = (key, msg)
        last = self._last.get(slot)
        if (last is not None and now - last < self.interval_s) or not self._bucket.take():
            self.suppressed += 1
            if slot in self._last:
                self._suppressed[slot] = self._suppressed.get(slot, 0) + 1
            return False
        self._last[slot] = now
        self._last.move_to_end(slot)
        while len(self._last) > self.max_keys:
            old, _ = self._last.popitem(last=False)
            self._suppressed.pop(old, None)
        skipped = self._suppressed.pop(slot, 0)
        if skipped:
            msg, args = msg + " (%d similar lines suppressed)", (*args, skipped)
        self.logger.log(level, msg, *args)
        return True
