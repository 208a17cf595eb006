"""The processes of a deployment: ``run`` (all in one), ``migrate`` (release), ``clock`` (the sweep).

Imports stay inside the commands: ``run`` must monkey-patch with gevent before anything else is imported.
"""

from __future__ import annotations

import argparse

from .bootstrap import bootstrap_db


def cmd_run(args: argparse.Namespace) -> int:
    from .. import allinone

    return allinone.main()


def cmd_migrate(args: argparse.Namespace) -> int:
    from ..auth import create_key
    from ..config import load_settings
    from ..migrate import migrate

    bootstrap_db()
    migrate()
    settings = load_settings()
    if settings.admin_key:
        create_key(role="admin", name="OPSCONDUCTOR_ADMIN_KEY", key=settings.admin_key, actor="release")
    print("Database schema is up to date.", flush=True)
    if settings.under_procfile_runner:
        # honcho stops every process as soon as one exits; Heroku-style hosts run `release`
        # on its own and need it to exit, so only a local runner keeps it up.
        import signal

        print("release: staying up under honcho (it would stop the other processes otherwise).", flush=True)
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
    return 0


def cmd_clock(args: argparse.Namespace) -> int:
    """Every ``--interval`` seconds: expire overdue approvals, resend stuck executions; hourly: retention."""
    from ..runtime import bootstrap

    settings = bootstrap(role="clock", db_connections=2)
    from ..clock import run  # after bootstrap: it imports the actors, bound to the broker set there

    return run(settings, interval_s=args.interval, once=args.once)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``run``, ``migrate`` and ``clock``."""
    sub.add_parser("run", help="start everything in one process (embedded default)").set_defaults(fn=cmd_run)
    sub.add_parser("migrate", help="create or upgrade the database schema").set_defaults(fn=cmd_migrate)
    clock = sub.add_parser("clock", help="periodic sweep: overdue approvals, executions whose message was lost")
    clock.add_argument("--interval", type=int, default=60, help="seconds between sweeps (default 60)")
    clock.add_argument("--once", action="store_true", help="sweep once and exit")
    clock.set_defaults(fn=cmd_clock)
