"""Entry point of the Dramatiq worker processes: ``dramatiq app.worker --queues normalize``.

Under ``dramatiq-gevent`` (the ``execute`` and ``rollback`` queues) the standard library is
monkey-patched before this module loads; psycopg2 is a C extension the patch cannot reach,
so psycogreen makes its waits cooperative too.
"""

from __future__ import annotations

from gevent import monkey

if monkey.is_module_patched("socket"):
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()

from .runtime import bootstrap  # noqa: E402

bootstrap(role="worker", db_connections=32)

if monkey.is_module_patched("socket"):  # the execute and rollback queues: their first action step must not wait
    from .actions import http as _http_action

    _http_action.warm()
