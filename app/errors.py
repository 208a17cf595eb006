"""The exception hierarchy of OpsConductor.

Bad input is never retried (it is stored with its processing error or
answered with a 400); transient failures are retried with backoff; unsafe
actions are refused.
"""

from __future__ import annotations


class OpsConductorError(Exception):
    """Base class for every error this package raises on purpose."""


class InvalidInput(OpsConductorError):
    """Input from outside that cannot be accepted as it is.

    Parameters:
      message: What is wrong, in a sentence.
      field: The dotted path of the offending field, when there is one.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidEvent(InvalidInput):
    """An event (webhook body, syslog line, trap) that cannot be parsed or validated."""


class InvalidMessage(InvalidInput):
    """A broker message whose envelope is malformed: it is dead-lettered, not retried."""


class InvalidRule(InvalidInput):
    """A trigger rule, condition or response template that fails validation."""


class TransientError(OpsConductorError):
    """A failure that may pass: database or broker unreachable, a timeout."""


class DatabaseUnavailable(TransientError):
    """The database refused or dropped the connection."""


class BrokerUnavailable(TransientError):
    """The message broker could not confirm a publish."""


class ActionNotAllowed(OpsConductorError):
    """An action that the safety rules refuse to run."""


class NotFound(OpsConductorError):
    """The thing asked for does not exist (HTTP 404)."""


class Conflict(OpsConductorError):
    """The request does not fit the current state, e.g. approving what is not awaiting approval (HTTP 409)."""


class InvalidLink(ActionNotAllowed):
    """A signed approval link that cannot be used (HTTP 403), with the reason why.

    Parameters:
      message: What is wrong, in a sentence.
      reason: One word a page or a client can branch on: ``bad_signature``, ``expired``,
        ``used``, ``wrong_approver``, ``other_decision`` or ``not_pending``.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
