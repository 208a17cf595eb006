"""``gunicorn -k gevent app.http.wsgi:app`` — the entry point of the ``web`` process.

gunicorn's gevent worker monkey-patches the standard library before loading
this module; psycopg2 is a C extension the patch cannot reach, so psycogreen
makes its waits cooperative too (otherwise one slow query blocks every request).
"""

from __future__ import annotations

from gevent import monkey

if monkey.is_module_patched("socket"):
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()

from .app import get_app  # noqa: E402

app = get_app()
