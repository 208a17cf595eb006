"""Input taken again: raw rows parsed again (``reprocess``) and dead letters (``dlq list|replay``)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC


def cmd_reprocess(args: argparse.Namespace) -> int:
    """Parse again unprocessed raw rows whose errors match ``--errors-matching``; send new events on."""
    from datetime import datetime

    from ..errors import InvalidInput
    from ..events.reprocess import reprocess
    from ..http.params import parse_duration, parse_time
    from ..runtime import bootstrap

    # A dry run sends nothing, so it needs no RabbitMQ.
    settings = bootstrap(role="cli", db_connections=2, allow_in_process=args.dry_run)
    since: datetime | None = None
    if args.since:
        try:
            since = datetime.now(UTC) - parse_duration(args.since, field="since")
        except InvalidInput:
            try:
                since = parse_time(args.since, field="since")
            except InvalidInput as e:
                raise SystemExit(f"--since: {e.message}") from None
    send = None
    if not args.dry_run:
        from ..actors.correlator import correlate

        send = correlate.send
    try:
        result = reprocess(errors_matching=args.errors_matching, since=since, dry_run=args.dry_run,
                           window_s=settings.dedup_window_seconds, send=send)  # fmt: skip
    except InvalidInput as e:
        raise SystemExit(f"--errors-matching: {e.message}") from None
    verb = "would parse" if args.dry_run else "parsed"
    print(f"{result.matched} raw rows matched: {verb} {result.parsed}, {result.still_failing} still failing; "
          f"{len(result.event_ids)} events sent to correlate")  # fmt: skip
    return 0


def _rabbitmq_url() -> str:
    from ..config import load_settings

    url = load_settings().rabbitmq_url
    if not url:
        raise SystemExit("RABBITMQ_URL is not set: dead letters live in RabbitMQ")
    return url


def cmd_dlq_list(args: argparse.Namespace) -> int:
    from ..deadletters import list_dead

    for entry in list_dead(_rabbitmq_url(), args.queue, limit=args.limit):
        print(json.dumps(entry))
    return 0


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    from ..deadletters import replay

    print(f"replayed {replay(_rabbitmq_url(), args.queue, limit=args.limit)} messages onto {args.queue}")
    return 0


def add_reprocess(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``reprocess``."""
    again_raw = sub.add_parser("reprocess", help="parse again raw input whose processing errors match a pattern")
    again_raw.add_argument("--errors-matching", required=True, metavar="PATTERN",
                           help="regular expression (RE2) searched in each processing error, e.g. DatabaseUnavailable")  # fmt: skip
    again_raw.add_argument("--since", help="only input received at or after this time (ISO 8601, or e.g. 24h)")
    again_raw.add_argument("--dry-run", action="store_true", help="count what would parse; change nothing")
    again_raw.set_defaults(fn=cmd_reprocess)


def add_dlq(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``dlq list|replay``."""
    dlq = sub.add_parser("dlq", help="dead letters of a queue").add_subparsers(dest="dlq_command", required=True)
    listing = dlq.add_parser("list", help="show dead letters of QUEUE")
    listing.add_argument("queue")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(fn=cmd_dlq_list)
    again = dlq.add_parser("replay", help="move dead letters of QUEUE back onto it")
    again.add_argument("queue")
    again.add_argument("--limit", type=int, default=None)
    again.set_defaults(fn=cmd_dlq_replay)
