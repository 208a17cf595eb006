"""Paging: notification policies, the outbox of notifications, and the channels that carry them.

- :mod:`.policies`: a policy's validation (pure) and its storage, each write audited;
- :mod:`.routing`: which policies take a page (trigger, severity, service, tags), the repeat
  interval, quiet hours and maintenance windows, and the outbox rows that result (written in the
  transaction of the change that pages);
- :mod:`.channels`: what each channel receives (email, Slack, Teams Workflows' Adaptive Card,
  PagerDuty Events v2, a generic webhook), pure;
- :mod:`.delivery`: sending an outbox row, retries with backoff, ``failed`` after the last attempt;
- :mod:`.outbox`: the outbox as the API shows it, and an operator's retry.

Nothing here sends a broker message: the ``notify`` actor (:mod:`app.actors.notifier`) sends rows,
and the actors that page send it their ids after their transaction committed.
"""
