"""The ``notify`` actor: sends one outbox notification (see :mod:`app.notifications.delivery`).

The actors that page (decide, execute, rollback) and the clock send it the ids of the rows they
wrote or found due. A failed attempt is not a failure of the message: the row keeps its next
attempt's time and the clock sends it again then, so the message is never retried by Dramatiq.
Run it under gevent (``dramatiq-gevent``): each send waits on a chat service, PagerDuty or SMTP.
"""

from __future__ import annotations

import logging

import dramatiq

from ..config import get_settings
from ..errors import InvalidMessage
from ..notifications.delivery import deliver

logger = logging.getLogger(__name__)


@dramatiq.actor(queue_name="notify", throws=(InvalidMessage,), time_limit=300_000)
def notify(notification_id: int) -> None:
    """Make one attempt at notification ``notification_id`` if it is pending and due."""
    if not isinstance(notification_id, int) or isinstance(notification_id, bool):
        raise InvalidMessage("a notify message carries a notification id")
    status = deliver(notification_id, settings=get_settings())
    if status is not None:
        logger.info("Notification %r is %s.", notification_id, status)


def send_all(ids: list[int]) -> None:
    """Send ``notify`` messages for ``ids`` (rows just committed)."""
    for notification_id in ids:
        notify.send(notification_id)
