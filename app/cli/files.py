"""Commands that load or write files: syslog parsing rules (``rules import``) and the dependency map (``topology import|export``)."""

from __future__ import annotations

import argparse
import json
import sys

from .bootstrap import bootstrap_db


def cmd_rules_import(args: argparse.Namespace) -> int:
    from ..events.syslog_rule_store import import_rules

    bootstrap_db()
    print(f"imported {import_rules(args.file)} syslog parsing rules (normalizers pick them up within 30 s)")
    return 0


def _topology_format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    return "csv" if str(args.file).lower().endswith(".csv") else "json"


def cmd_topology_import(args: argparse.Namespace) -> int:
    from ..topology.csvfile import parse_csv
    from ..topology.netbox import parse_netbox
    from ..topology.store import replace_topology

    bootstrap_db()
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
    from ..topology.csvfile import to_csv
    from ..topology.store import document_at, topology_json

    bootstrap_db()
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


def add_rules(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``rules import``."""
    rules = sub.add_parser("rules", help="syslog parsing rules").add_subparsers(dest="rules_command", required=True)
    load = rules.add_parser("import", help="load a JSON file of syslog parsing rules into the database")
    load.add_argument("file")
    load.set_defaults(fn=cmd_rules_import)


def add_topology(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``topology import|export``."""
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
