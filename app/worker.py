"""Entry point of the Dramatiq worker processes: ``dramatiq app.worker --queues normalize``."""

from __future__ import annotations

from .runtime import bootstrap

bootstrap(role="worker", db_connections=32)
