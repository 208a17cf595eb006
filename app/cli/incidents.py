"""``opsconductor incidents``: list incidents and work them through their lifecycle."""

from __future__ import annotations

import argparse
import sys

from .bootstrap import bootstrap_db


def cmd_incidents_list(args: argparse.Namespace) -> int:
    from ..correlation.query import list_incidents
    from ..errors import InvalidInput

    bootstrap_db()
    try:
        page = list_incidents(status=args.status, severity=None, host=None, since=None, limit=args.limit, offset=0,
                              assignee=args.assignee)  # fmt: skip
    except InvalidInput as e:
        raise SystemExit(f"--{e.field}: {e.message}") from None
    for i in page["incidents"]:
        print(f"{i['id']}\t{i['status']}\t{i['severity']}\t{i['event_count']}\t{i['assignee'] or '-'}\t{i['title']}")
    return 0


def cmd_incidents_change(args: argparse.Namespace) -> int:
    """ack, resolve, close, reopen, assign, note: the lifecycle's functions, as actor ``cli``."""
    from ..errors import Conflict, InvalidInput, NotFound
    from ..incidents import lifecycle

    bootstrap_db()
    try:
        if args.incidents_command == "note":
            lifecycle.add_note(args.id, text=args.text, actor="cli")
            print(f"note added to incident {args.id}")
            return 0
        if args.incidents_command == "assign":
            incident = lifecycle.assign(args.id, assignee=args.assignee, actor="cli", comment=args.comment)
        else:
            verb = {"ack": "acknowledge"}.get(args.incidents_command, args.incidents_command)
            incident = getattr(lifecycle, verb)(args.id, actor="cli", comment=args.comment)
    except (NotFound, Conflict, InvalidInput) as e:
        print(e, file=sys.stderr)
        return 1
    print(f"incident {incident['id']} is {incident['status']}, assigned to {incident['assignee'] or 'nobody'}")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``incidents list|ack|resolve|close|reopen|assign|note``."""
    incidents = sub.add_parser("incidents", help="work incidents: list, ack, resolve, close, reopen, assign, note")
    work = incidents.add_subparsers(dest="incidents_command", required=True)
    listing_incidents = work.add_parser("list", help="incidents, latest event first")
    listing_incidents.add_argument("--status", help="open, flapping, acknowledged, resolved or closed")
    listing_incidents.add_argument("--assignee")
    listing_incidents.add_argument("--limit", type=int, default=50)
    listing_incidents.set_defaults(fn=cmd_incidents_list)
    for verb, text in (("ack", "acknowledge"), ("resolve", "resolve"), ("close", "close (a resolved one)"),
                       ("reopen", "reopen")):  # fmt: skip
        change = work.add_parser(verb, help=f"{text} incident ID")
        change.add_argument("id")
        change.add_argument("--comment")
        change.set_defaults(fn=cmd_incidents_change)
    give = work.add_parser("assign", help="assign incident ID to a person or team")
    give.add_argument("id")
    give.add_argument("assignee")
    give.add_argument("--comment")
    give.set_defaults(fn=cmd_incidents_change)
    annotate = work.add_parser("note", help="write a note on incident ID")
    annotate.add_argument("id")
    annotate.add_argument("text")
    annotate.set_defaults(fn=cmd_incidents_change)
