"""``opsconductor audit``: the audit log written to stdout as CSV or JSON."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

from .bootstrap import bootstrap_db


def _instant(value: str | None, *, field: str) -> datetime | None:
    """``--since``/``--until``: ISO 8601, or a duration back from now (``24h``, ``7d``)."""
    import datetime as dt

    from ..errors import InvalidInput
    from ..http.params import parse_duration, parse_time

    if not value:
        return None
    try:
        return dt.datetime.now(UTC) - parse_duration(value, field=field)
    except InvalidInput:
        try:
            return parse_time(value, field=field)
        except InvalidInput as e:
            raise SystemExit(f"--{field}: {e.message}") from None


def cmd_audit(args: argparse.Namespace) -> int:
    """Write the audit rows matching the options to stdout, newest first, as CSV or JSON."""
    from .. import audit_query
    from ..db import in_transaction
    from ..errors import InvalidInput

    bootstrap_db()
    flt = audit_query.AuditFilter(
        actor=args.actor, person=args.person, action=args.action, object_kind=args.object_kind,
        object_id=args.object_id, since=_instant(args.since, field="since"), until=_instant(args.until, field="until"),
    )  # fmt: skip
    try:
        rows = audit_query.export_rows(audit_query.check(flt), run=in_transaction)
    except InvalidInput as e:
        raise SystemExit(f"--{(e.field or 'filter').replace('_', '-')}: {e.message}") from None
    lines = audit_query.csv_lines(rows) if args.format == "csv" else audit_query.json_lines(rows)
    for line in lines:
        sys.stdout.buffer.write(line)
    sys.stdout.flush()
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``audit``."""
    trail = sub.add_parser("audit", help="export the audit log (who did what, when, why), newest first")
    trail.add_argument("--since", help="from this time (ISO 8601, or back from now: 24h, 7d)")
    trail.add_argument("--until", help="before this time (ISO 8601, or back from now)")
    trail.add_argument("--actor", help="e.g. key:3:alice-laptop, cli, executor")
    trail.add_argument("--person", help="the person behind the actor")
    trail.add_argument("--action", help="e.g. approval.approved (old names too)")
    trail.add_argument("--object-kind", help="e.g. execution, trigger_rule")
    trail.add_argument("--object-id", help="with --object-kind: one object")
    trail.add_argument("--format", choices=("csv", "json"), default="csv", help="default csv")
    trail.set_defaults(fn=cmd_audit)
