"""``opsconductor silences``: list, create and expire silences."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC

from .bootstrap import bootstrap_db


def cmd_silences_list(args: argparse.Namespace) -> int:
    from .. import silences

    bootstrap_db()
    for row in silences.list_silences(state=args.state, limit=args.limit)["silences"]:
        shown = " ".join(str(silences.Matcher(**m)) for m in row["matchers"])
        print(f"{row['id']}\t{row['state']}\t{row['starts_at']}\t{row['ends_at']}\t{shown}\t{row['comment']}")
    return 0


def cmd_silences_create(args: argparse.Namespace) -> int:
    """Create a silence from ``NAME=VALUE`` (``!=``, ``=~``, ``!~``) matchers, for ``--duration`` from ``--start``."""
    from datetime import datetime

    from .. import silences
    from ..errors import InvalidInput
    from ..http.params import parse_duration

    bootstrap_db()
    try:
        starts = datetime.fromisoformat(args.start.replace("Z", "+00:00")) if args.start else datetime.now(UTC)
        starts = starts if starts.tzinfo else starts.replace(tzinfo=UTC)
        body = {
            "matchers": [silences.parse_matcher_text(text) for text in args.matchers],
            "starts_at": starts.isoformat(),
            "ends_at": (starts + parse_duration(args.duration, field="duration")).isoformat(),
            "comment": args.comment,
        }
        created = silences.create(body, actor="cli")
    except (InvalidInput, ValueError) as e:
        print(f"silence not created: {e}", file=sys.stderr)
        return 1
    print(f"silence {created['id']} {created['state']} until {created['ends_at']}")
    return 0


def cmd_silences_expire(args: argparse.Namespace) -> int:
    from .. import silences
    from ..errors import Conflict, NotFound

    bootstrap_db()
    try:
        expired = silences.expire(args.id, actor="cli")
    except (NotFound, Conflict) as e:
        print(e, file=sys.stderr)
        return 1
    print(f"silence {expired['id']} expired at {expired['ends_at']}")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``silences list|create|expire``."""
    hush = sub.add_parser("silences", help="silences: matching events fire no rule").add_subparsers(
        dest="silences_command", required=True
    )
    hush_list = hush.add_parser("list", help="silences, newest first")
    hush_list.add_argument("--state", choices=("active", "pending", "expired"), default=None)
    hush_list.add_argument("--limit", type=int, default=100)
    hush_list.set_defaults(fn=cmd_silences_list)
    hush_create = hush.add_parser(
        "create", help="silence events matching every MATCHER, e.g. host=web-01 'service=~api|db'"
    )
    hush_create.add_argument(
        "matchers", nargs="+", metavar="MATCHER", help="NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX"
    )
    hush_create.add_argument("--comment", required=True, help="why (required)")
    hush_create.add_argument("--duration", default="2h", help="how long, e.g. 30m, 2h, 1d (default 2h)")
    hush_create.add_argument("--start", default=None, help="when it begins (ISO 8601; default now)")
    hush_create.set_defaults(fn=cmd_silences_create)
    hush_expire = hush.add_parser("expire", help="end silence ID now (it is kept for history)")
    hush_expire.add_argument("id", type=int)
    hush_expire.set_defaults(fn=cmd_silences_expire)
