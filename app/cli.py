"""The ``opsconductor`` command: run, migrate, keys, incidents, dead letters.

Imports stay inside the commands: ``run`` must monkey-patch with gevent before
anything else is imported.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime


def _bootstrap_db() -> None:
    from .config import load_settings
    from .db import init_database
    from .runtime import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level)
    init_database(settings.database_url, application_name="opsconductor-cli", max_connections=2)


def cmd_run(args: argparse.Namespace) -> int:
    from . import allinone

    return allinone.main()


def cmd_migrate(args: argparse.Namespace) -> int:
    from .auth import create_key
    from .config import load_settings
    from .migrate import migrate

    _bootstrap_db()
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


def cmd_keys_create(args: argparse.Namespace) -> int:
    from .auth import create_key

    _bootstrap_db()
    print(create_key(role=args.role, name=args.name, person=args.person))
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from .models import ApiKey

    _bootstrap_db()
    for key in ApiKey.select().order_by(ApiKey.id):
        state = "revoked" if key.revoked_at else "active"
        print(f"{key.id}\t{key.prefix}…\t{key.role}\t{state}\t{key.name}\t{key.person or key.name}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from datetime import datetime

    from . import audit
    from .db import in_transaction
    from .models import ApiKey

    _bootstrap_db()

    def revoke() -> int:
        n = ApiKey.update(revoked_at=datetime.now(UTC)).where(ApiKey.id == args.id).execute()
        if n:
            audit.record(audit.Action.API_KEY_REVOKED, actor="cli", subject=f"api_key:{args.id}")
        return n

    n = in_transaction(revoke)
    print("revoked" if n else f"no key {args.id}")
    return 0 if n else 1


def cmd_rules_import(args: argparse.Namespace) -> int:
    from .events.syslog_rule_store import import_rules

    _bootstrap_db()
    print(f"imported {import_rules(args.file)} syslog parsing rules (normalizers pick them up within 30 s)")
    return 0


def _topology_format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    return "csv" if str(args.file).lower().endswith(".csv") else "json"


def cmd_topology_import(args: argparse.Namespace) -> int:
    from .topology.csvfile import parse_csv
    from .topology.netbox import parse_netbox
    from .topology.store import replace_topology

    _bootstrap_db()
    fmt = _topology_format(args)
    with open(args.file, encoding="utf-8") as f:
        text = f.read()
    if fmt == "csv":
        topology = replace_topology(parse_csv(text), actor="cli", source="csv")
    elif fmt == "netbox":
        doc, counts = parse_netbox(json.loads(text))
        topology = replace_topology(doc, actor="cli", source="netbox", counts=counts)
    else:
        topology = replace_topology(json.loads(text), actor="cli")
    print(f"topology version {topology['version']}: {len(topology['nodes'])} nodes, {len(topology['edges'])} edges")
    return 0


def cmd_topology_export(args: argparse.Namespace) -> int:
    from .topology.csvfile import to_csv
    from .topology.store import document_at, topology_json

    _bootstrap_db()
    if args.format == "csv":
        text = to_csv(document_at(args.version)[0])
    else:
        text = json.dumps(topology_json(args.version), indent=2) + "\n"
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        with open(args.output, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return 0


def _rabbitmq_url() -> str:
    from .config import load_settings

    url = load_settings().rabbitmq_url
    if not url:
        raise SystemExit("RABBITMQ_URL is not set: dead letters live in RabbitMQ")
    return url


def cmd_dlq_list(args: argparse.Namespace) -> int:
    from .deadletters import list_dead

    for entry in list_dead(_rabbitmq_url(), args.queue, limit=args.limit):
        print(json.dumps(entry))
    return 0


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    from .deadletters import replay

    print(f"replayed {replay(_rabbitmq_url(), args.queue, limit=args.limit)} messages onto {args.queue}")
    return 0


def cmd_reprocess(args: argparse.Namespace) -> int:
    """Parse again unprocessed raw rows whose errors match ``--errors-matching``; send new events on."""
    from datetime import datetime

    from .errors import InvalidInput
    from .events.reprocess import reprocess
    from .http.params import parse_duration, parse_time
    from .runtime import bootstrap

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
        from .actors.correlator import correlate

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


def cmd_clock(args: argparse.Namespace) -> int:
    """Every ``--interval`` seconds: expire overdue approvals, resend stuck executions; hourly: retention."""
    from .runtime import bootstrap

    settings = bootstrap(role="clock", db_connections=2)
    from .clock import run  # after bootstrap: it imports the actors, bound to the broker set there

    return run(settings, interval_s=args.interval, once=args.once)


def cmd_secrets_set(args: argparse.Namespace) -> int:
    """Store the secret NAME, its value read from stdin (one trailing newline dropped), so it is in no argv or history."""
    from . import secrets
    from .config import load_settings
    from .db import in_transaction

    _bootstrap_db()
    value = sys.stdin.read()
    value = value[:-1] if value.endswith("\n") else value
    try:
        created = in_transaction(lambda: secrets.put(args.name, value, keys=load_settings().secret_keys, actor="cli"))
    except (secrets.InvalidInput, secrets.ActionNotAllowed) as e:
        print(f"secret {args.name} not stored: {e}", file=sys.stderr)
        return 1
    print(f"secret {args.name} {'created' if created else 'replaced'}")
    return 0


def cmd_secrets_list(args: argparse.Namespace) -> int:
    from . import secrets
    from .db import in_transaction

    _bootstrap_db()
    for row in in_transaction(secrets.listing):
        print(f"{row['name']}\t{row['updated_at']}\t{row['updated_by'] or ''}")
    return 0


def cmd_secrets_delete(args: argparse.Namespace) -> int:
    from . import secrets
    from .db import in_transaction

    _bootstrap_db()
    deleted = in_transaction(lambda: secrets.delete(args.name, actor="cli"))
    print(f"secret {args.name} deleted" if deleted else f"no secret {args.name}")
    return 0 if deleted else 1


def cmd_secrets_rotate(args: argparse.Namespace) -> int:
    from . import secrets
    from .config import load_settings
    from .db import in_transaction

    _bootstrap_db()
    try:
        n = in_transaction(lambda: secrets.rotate(keys=load_settings().secret_keys, actor="cli"))
    except secrets.ActionNotAllowed as e:
        print(f"nothing re-encrypted: {e}", file=sys.stderr)
        return 1
    print(f"re-encrypted {n} secrets with the first key of OPSCONDUCTOR_SECRET_KEYS")
    return 0


def cmd_silences_list(args: argparse.Namespace) -> int:
    from . import silences

    _bootstrap_db()
    for row in silences.list_silences(state=args.state, limit=args.limit)["silences"]:
        shown = " ".join(str(silences.Matcher(**m)) for m in row["matchers"])
        print(f"{row['id']}\t{row['state']}\t{row['starts_at']}\t{row['ends_at']}\t{shown}\t{row['comment']}")
    return 0


def cmd_silences_create(args: argparse.Namespace) -> int:
    """Create a silence from ``NAME=VALUE`` (``!=``, ``=~``, ``!~``) matchers, for ``--duration`` from ``--start``."""
    from datetime import datetime

    from . import silences
    from .errors import InvalidInput
    from .http.params import parse_duration

    _bootstrap_db()
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
    from . import silences
    from .errors import Conflict, NotFound

    _bootstrap_db()
    try:
        expired = silences.expire(args.id, actor="cli")
    except (NotFound, Conflict) as e:
        print(e, file=sys.stderr)
        return 1
    print(f"silence {expired['id']} expired at {expired['ends_at']}")
    return 0


def cmd_incidents_list(args: argparse.Namespace) -> int:
    from .correlation.query import list_incidents
    from .errors import InvalidInput

    _bootstrap_db()
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
    from .errors import Conflict, InvalidInput, NotFound
    from .incidents import lifecycle

    _bootstrap_db()
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


def _instant(value: str | None, *, field: str) -> datetime | None:
    """``--since``/``--until``: ISO 8601, or a duration back from now (``24h``, ``7d``)."""
    import datetime as dt

    from .errors import InvalidInput
    from .http.params import parse_duration, parse_time

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
    from . import audit_query
    from .db import in_transaction
    from .errors import InvalidInput

    _bootstrap_db()
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


def parser() -> argparse.ArgumentParser:
    from .roles import ROLES

    p = argparse.ArgumentParser(prog="opsconductor", description="OpsConductor Event Engine")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start everything in one process (embedded default)").set_defaults(fn=cmd_run)
    sub.add_parser("migrate", help="create or upgrade the database schema").set_defaults(fn=cmd_migrate)
    clock = sub.add_parser("clock", help="periodic sweep: overdue approvals, executions whose message was lost")
    clock.add_argument("--interval", type=int, default=60, help="seconds between sweeps (default 60)")
    clock.add_argument("--once", action="store_true", help="sweep once and exit")
    clock.set_defaults(fn=cmd_clock)
    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", required=True)
    create.add_argument("--person", default=None,
                        help="who holds the key (default: its name); two-person rules compare persons")  # fmt: skip
    create.set_defaults(fn=cmd_keys_create)
    keys.add_parser("list", help="list keys (never their secret)").set_defaults(fn=cmd_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id", type=int)
    revoke.set_defaults(fn=cmd_keys_revoke)
    rules = sub.add_parser("rules", help="syslog parsing rules").add_subparsers(dest="rules_command", required=True)
    load = rules.add_parser("import", help="load a JSON file of syslog parsing rules into the database")
    load.add_argument("file")
    load.set_defaults(fn=cmd_rules_import)
    topology = sub.add_parser("topology", help="the dependency map").add_subparsers(
        dest="topology_command", required=True
    )
    load_map = topology.add_parser(
        "import", help="replace it with a file: JSON {nodes, edges, resolutions} (or the older shape), CSV, NetBox"
    )
    load_map.add_argument("file")
    load_map.add_argument("--format", choices=("json", "csv", "netbox"), help="default: csv for *.csv, else json")
    load_map.set_defaults(fn=cmd_topology_import)
    save_map = topology.add_parser("export", help="write the current map (or --version N) as JSON or CSV")
    save_map.add_argument("--format", choices=("json", "csv"), default="json")
    save_map.add_argument("--version", type=int, help="an earlier version (default: the current one)")
    save_map.add_argument("-o", "--output", help="file to write (default: standard output)")
    save_map.set_defaults(fn=cmd_topology_export)
    again_raw = sub.add_parser("reprocess", help="parse again raw input whose processing errors match a pattern")
    again_raw.add_argument("--errors-matching", required=True, metavar="PATTERN",
                           help="regular expression (RE2) searched in each processing error, e.g. DatabaseUnavailable")  # fmt: skip
    again_raw.add_argument("--since", help="only input received at or after this time (ISO 8601, or e.g. 24h)")
    again_raw.add_argument("--dry-run", action="store_true", help="count what would parse; change nothing")
    again_raw.set_defaults(fn=cmd_reprocess)
    vault = sub.add_parser("secrets", help="named secrets templates use as {{ secret.NAME }}").add_subparsers(
        dest="secrets_command", required=True
    )
    put_secret = vault.add_parser("set", help="store NAME, its value read from stdin (encrypted)")
    put_secret.add_argument("name")
    put_secret.set_defaults(fn=cmd_secrets_set)
    vault.add_parser("list", help="names and times, never values").set_defaults(fn=cmd_secrets_list)
    drop_secret = vault.add_parser("delete", help="delete NAME")
    drop_secret.add_argument("name")
    drop_secret.set_defaults(fn=cmd_secrets_delete)
    vault.add_parser(
        "rotate", help="re-encrypt every secret with the first key of OPSCONDUCTOR_SECRET_KEYS"
    ).set_defaults(fn=cmd_secrets_rotate)
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
    dlq = sub.add_parser("dlq", help="dead letters of a queue").add_subparsers(dest="dlq_command", required=True)
    listing = dlq.add_parser("list", help="show dead letters of QUEUE")
    listing.add_argument("queue")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(fn=cmd_dlq_list)
    again = dlq.add_parser("replay", help="move dead letters of QUEUE back onto it")
    again.add_argument("queue")
    again.add_argument("--limit", type=int, default=None)
    again.set_defaults(fn=cmd_dlq_replay)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.fn(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
