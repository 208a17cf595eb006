"""A receiver process reports its counters to the database, in a greenlet of its own, never in the way of receiving.

Receivers must keep receiving while PostgreSQL is away, so the report is best effort: it runs
apart from the servers and the outbox, waits cooperatively (psycogreen, set up by
:func:`app.receivers.process.serve`), gives up after :data:`REPORT_TIMEOUT_S`, logs the loss
of the database once (and its return once), and tries again at the next interval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import peewee

from ..db import in_transaction, release_connection
from ..errors import DatabaseUnavailable
from ..timeutil import now
from .counters import Counters, Identity, save

logger = logging.getLogger(__name__)

#: Longest a report may take, connection included, in seconds: psycopg2's connect_timeout does not
#: bound a cooperative (psycogreen) connect, so a database that accepts and never answers would hold it.
REPORT_TIMEOUT_S = 10.0


class Reporter:
    """Upserts one process's counters every ``interval_s`` seconds (:func:`app.receivers.counters.save`).

    Parameters:
      kind: The process type (``syslog``, ``snmptrap``, ``all-in-one``).
      snapshot: Returns the counters as they are now (called in the reporter's greenlet).
      interval_s: Seconds between two reports.
      timeout_s: Longest one report may take.
      clock: Aware UTC now (tests freeze it).
    """

    def __init__(
        self,
        *,
        kind: str,
        snapshot: Callable[[], Counters],
        interval_s: float,
        timeout_s: float = REPORT_TIMEOUT_S,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self.snapshot = snapshot
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.clock = clock
        self.identity = Identity.of_this_process(kind, started_at=clock())
        #: Whether the last report reached the database (None: none tried yet).
        self.reporting: bool | None = None

    def report(self) -> bool:
        """Write the counters once. Never raises (but for greenlet exit): False when the database did not take them."""
        import gevent

        counters = self.snapshot()
        try:
            # The timeout raises inside the database call, as a connection error, so the connection is discarded.
            with gevent.Timeout(self.timeout_s, peewee.OperationalError(f"no answer in {self.timeout_s:g} s")):
                forgotten = in_transaction(
                    lambda: save(self.identity, counters, interval_s=self.interval_s, at=self.clock())
                )
        except DatabaseUnavailable as e:
            self._failed(logging.WARNING, "%s counters not reported: the database is unavailable (%s); receiving goes "
                         "on, trying again every %g s.", self.identity.kind, e, self.interval_s)  # fmt: skip
            return False
        except Exception:  # noqa: BLE001 - a report must never stop a receiver
            self._failed(logging.ERROR, "%s counters not reported (trying again every %g s).", self.identity.kind,
                         self.interval_s, exc_info=True)  # fmt: skip
            return False
        finally:
            release_connection()
        if forgotten:
            logger.info("Forgot %d receiver processes not heard from for a day.", forgotten)
        if self.reporting is False:
            logger.warning("%s counters reported to the database again.", self.identity.kind)
        self.reporting = True
        return True

    def _failed(self, level: int, msg: str, *args: object, exc_info: bool = False) -> None:
        """Log the first failure of a run of them; the rest at DEBUG (one line a report would flood the log)."""
        logger.log(level if self.reporting is not False else logging.DEBUG, msg, *args, exc_info=exc_info)
        self.reporting = False

    def run(self) -> None:
        """Report now, then every ``interval_s`` until killed (run it in a greenlet)."""
        import gevent

        while True:
            self.report()
            gevent.sleep(self.interval_s)
